"""``python -m initprune``: the command line (cli). A name ``run`` is given that is none of
initprune's own, with no plugin declared, is answered here, before cli's imports load torch."""

import sys

from .registry import unknown

# run's flags that name a registry's entry, in the order run looks them up
NAMED = {"--method": "method", "--dataset": "dataset", "--arch": "architecture"}


def unknown_name(argv: list[str]) -> str | None:
    """The error for the first unknown name ``run`` is given, as the registry would say it; None
    for any other command, a name that may be a plugin's, or a call for help."""
    if not argv or argv[0] != "run" or {"-h", "--help"} & set(argv):
        return None
    given, args = {}, iter(argv[1:])
    for arg in args:
        if arg == "--":
            break
        flag, eq, value = arg.partition("=")
        if flag in NAMED:
            value = value if eq else next(args, "-")
            if not value.startswith("-"):  # argparse's to say what a flag without a value is
                given[NAMED[flag]] = value  # the last one counts, as in argparse
    return next(filter(None, (unknown(kind, given[kind]) for kind in NAMED.values() if kind in given)), None)


if __name__ == "__main__":
    problem = unknown_name(sys.argv[1:])
    if problem is not None:
        print(f"initprune: error: {problem}", file=sys.stderr)
        sys.exit(2)

    from .cli import main

    sys.exit(main())
