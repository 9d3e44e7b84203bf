"""``python -m initprune run | sweep | figures | ui | server | list``: the command line the README describes.

Bad input exits with status 2 and one line on stderr, before any training starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from . import api, data, models, options, pruners
from .errors import DivergedError, InitpruneError
from .lab import grid, store
from .options import OptionError
from .spec import ABLATIONS, RUN, RunSpec
from .train import Settings


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage block
        command = " ".join(self.prog.split()[1:])
        raise InitpruneError(f"{message} (see: python -m initprune {command + ' ' if command else ''}--help)")


NO_AUTH = ("no login: anyone who can reach the port can write, delete or forge runs (a single-user machine "
           "only); by default MLflow's basic-auth app asks for the user and password initprune generated")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="initprune",
                description="Pruning at initialization: K-starts, dissipating gradients and baselines.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="prune, train and evaluate one model", allow_abbrev=False)
    default = RUN  # the run's defaults, declared once (spec.py)
    r.add_argument("--method", required=True, help=f"one of: {', '.join(pruners.PRUNERS.names())}")
    r.add_argument("--dataset", default=default["dataset"],
                   help=f"one of: {', '.join(data.DATASETS.names())} (default: %(default)s)")
    r.add_argument("--arch", default=default["arch"],
                   help=f"one of: {', '.join(models.MODELS.names())} (default: %(default)s)")
    r.add_argument("--sparsity", type=float, default=default["sparsity"],
                   help="fraction of prunable weights removed, in [0, 1) (default: %(default)s)")
    r.add_argument("--epochs", type=int, default=default["epochs"],
                   help="training epochs in all, pruning epochs included (default: %(default)s)")
    r.add_argument("--seed", type=int, default=default["seed"], help="(default: %(default)s)")
    r.add_argument("--ablation", default=default["ablation"],
                   help=f"sanity check: {', '.join(ABLATIONS)} (default: %(default)s)")
    m = r.add_argument_group("method options (each method's, with defaults: python -m initprune list)")
    for declared in method_options().values():
        _add_option(m, declared[0][1], _shared_help(declared), all(o.kind is bool for _, o in declared))
    t = r.add_argument_group("training (defaults per dataset: python -m initprune list)")
    for opt in options.declared(Settings):
        _add_option(t, opt, opt.help, False)
    r.add_argument("--out", type=Path, help="write the result JSON here")
    r.add_argument("--save-model", type=Path, help="write {state_dict, mask} here (torch.save)")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--tracking-uri", help="the MLflow store to log the run to (default $MLFLOW_TRACKING_URI, "
                       "else mlruns/)")
    where.add_argument("--no-tracking", action="store_true", help="log nothing to MLflow")
    r.add_argument("--data-root", type=Path, help="where torchvision datasets live (default data/ or $INITPRUNE_DATA)")
    r.add_argument("--device", default=default["device"], help="auto, cpu or cuda (default: %(default)s)")
    s = sub.add_parser("sweep", help="run a profile's notebooks through papermill, logging to MLflow",
                       allow_abbrev=False)
    s.add_argument("--profile", required=True,
                   help="a profile's name (notebooks/profiles/NAME.yaml; see: list) or a YAML file's path")
    s.add_argument("--jobs", type=int, help="notebook executions in parallel (local; dask's local cluster; default 1; "
                   "without it a dry run estimates for 1 and for every core)")
    s.add_argument("--dry-run", action="store_true", help="print the grid and what is finished; run nothing")
    s.add_argument("--executor", default="local", help="local (a process pool, the default), ray or dask")
    s.add_argument("--ray-address", help="a Ray cluster, HOST:6379 (default $RAY_ADDRESS, else a local instance)")
    s.add_argument("--dask-scheduler", help="a Dask scheduler, tcp://HOST:8786 (default: a local cluster)")
    s.add_argument("--shared-fs", action="store_true",
                   help="every worker sees this machine's paths, so a sqlite store works on a cluster")
    s.add_argument("--retries", type=int, default=3, help="times Ray retries an execution whose worker died")
    s.add_argument("--cpus-per-task", type=float, dest="cpus", help="CPUs per execution (default: the profile's, 1)")
    s.add_argument("--gpus-per-task", type=float, dest="gpus",
                   help="GPUs per execution (default: the profile's; 1 where device is cuda)")
    f = sub.add_parser("figures", help="the paper's figures from every run in MLflow", allow_abbrev=False)
    f.add_argument("--out", type=Path, help="default: figures/ at the repository root, or $INITPRUNE_FIGURES")
    u = sub.add_parser("ui", help="the MLflow UI over the store, on 127.0.0.1", allow_abbrev=False)
    u.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    u.add_argument("--port", type=int, default=5000)
    u.add_argument("--no-auth", action="store_true", help=NO_AUTH)
    v = sub.add_parser("server", help="a shared MLflow tracking server over the store, for cluster sweeps",
                       allow_abbrev=False)
    v.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 for workers)")
    v.add_argument("--port", type=int, default=5000)
    v.add_argument("--store", type=Path, help="the folder of mlflow.db and artifacts/ (default: mlruns/)")
    v.add_argument("--allowed-hosts", help="host names workers use to reach it, if not this network's addresses")
    v.add_argument("--no-auth", action="store_true", help=NO_AUTH)
    sub.add_parser("list", help="methods, datasets, architectures, profiles")
    p.commands = sub.choices  # each command's parser, for its flags in "did you mean"
    return p


def method_options() -> dict[str, list[tuple[str, options.Option]]]:
    """Every option of every registered method, by name, with the methods that declare it:
    one flag each, whatever methods share it."""
    out: dict[str, list] = {}
    for method in pruners.PRUNERS.names():
        for opt in pruners.PRUNERS[method].declared():
            out.setdefault(opt.name, []).append((method, opt))
    return out


def _shared_help(declared: list[tuple[str, options.Option]]) -> str:
    """One flag's help for every method that declares it: the first help, each default with its
    methods, and the values it takes."""
    defaults: dict[str, list[str]] = {}
    for method, opt in declared:
        defaults.setdefault(str(opt.default), []).append(method)
    choices = list(dict.fromkeys(c for _, o in declared for c in (o.choices or ())))
    takes = f"; one of: {', '.join(map(str, choices))}" if choices else ""
    return (f"{declared[0][1].help}{takes}; default "
            + ", ".join(f"{d} ({', '.join(ms)})" for d, ms in defaults.items()))


def _add_option(group, opt: options.Option, help: str, switch: bool) -> None:
    """A flag for a declared option; its value stays text until the method is known (parse_given)."""
    try:
        if switch:
            group.add_argument(opt.flag, action=argparse.BooleanOptionalAction, default=None, dest=opt.name,
                               help=help)
        else:
            group.add_argument(opt.flag, default=None, dest=opt.name, metavar=opt.kind.__name__.upper(), help=help)
    except argparse.ArgumentError:
        raise InitpruneError(f"option '{opt.name}' has the name of a command-line flag ({opt.flag}); "
                             "rename it in its declaration") from None


def parse_given(args, declared) -> dict:
    """The options given on the command line, as their declarations' types."""
    return {o.name: getattr(args, o.name) if isinstance(getattr(args, o.name), bool) else o.parse(getattr(args, o.name))
            for o in declared if getattr(args, o.name, None) is not None}


def cmd_run(args) -> int:
    try:
        method = pruners.PRUNERS[args.method]
        given = parse_given(args, method.declared())
        # a flag of another method's option: the pruner says it does not apply
        given |= {n: getattr(args, n) for n in method_options() if getattr(args, n) is not None and n not in given}
        config = RunSpec(
            method=args.method, dataset=args.dataset, arch=args.arch, sparsity=args.sparsity,
            epochs=args.epochs, seed=args.seed, options=given,
            training=parse_given(args, options.declared(Settings)), ablation=args.ablation, device=args.device,
        )
        api.resolve_device(args.device)  # here, where it runs: cuda asked for and absent fails now
        outputs = dict(data_root=args.data_root, save_model=args.save_model, out=args.out)
        if args.no_tracking:
            result = api.run(config, **outputs)
        else:  # logged like a sweep's point; a store that cannot be used fails before anything trains
            uri = store.check_store(args.tracking_uri)
            result = api.run(config, record=lambda report: grid.log_run(config, report, uri), **outputs)
    except OptionError as err:  # named as the user wrote it: --warmup-epochs, not warmup_epochs
        raise InitpruneError(err.as_flag()) from None
    except api.OutputError as err:
        if err.result is not None:  # the result JSON could not be written: it is not lost
            print(json.dumps(err.result.to_dict()))
        print(f"initprune: error: {err}" + ("; the result JSON is on stdout" if err.result else ""),
              file=sys.stderr)
        return 1
    print(finished(config, result), file=sys.stderr)
    if not args.out:  # a script reads the result from a pipe; a person reads the line above
        if sys.stdout.isatty():
            print("(the whole result as JSON: --out result.json)", file=sys.stderr)
        else:
            print(json.dumps({k: v for k, v in result.to_dict().items()
                              if k not in ("history", "test_correct", "test_squared_error")}))
    return 0


def finished(config: RunSpec, result) -> str:
    """A run's last line: what it was, what it scored, how sparse it really is, how long, where it is."""
    dead = (f"{result.dead_classes} dead classes" if result.dead_classes is not None
            else f"{result.dead_outputs} dead outputs")
    return (f"{config.method} {config.dataset}/{config.arch} s={result.sparsity_actual:.4f} "
            f"(effective {result.effective_sparsity:.4f}, {dead}): "
            f"{result.metric.replace('_', ' ')} {result.score:.4f} in {result.seconds:.1f}s"
            + (f"; MLflow run {result.run_id}" if result.run_id else "; not tracked"))


def summary(obj) -> str:
    """The first paragraph of an object's docstring, on one line."""
    return " ".join((obj.__doc__ or "").strip().split("\n\n")[0].split())


def _did_you_mean(flag: str, command: argparse.ArgumentParser) -> str:
    """The command's flag closest to a mistyped one, if one is close."""
    import difflib
    import re

    flags = sorted(set(re.findall(r"--[a-z][a-z0-9-]*", command.format_help())))
    close = difflib.get_close_matches(flag.split("=")[0], flags, n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""


def cmd_list(args) -> int:
    print("methods (options: --flag, or the name in fit and profiles):")
    for name in pruners.PRUNERS.names():
        cls = pruners.PRUNERS[name]
        print(f"  {name} [{cls.family}]: {summary(cls)}")
        for opt in cls.declared():
            print(f"      {opt.describe()}")
    print("datasets:")
    for name in data.DATASETS.names():
        entry = data.DATASETS[name]
        training = " ".join(f"{k}={v}" for k, v in dataclasses.asdict(entry.training).items())
        print(f"  {name}: {summary(entry.load)} {entry.classes} classes, inputs {entry.shape}; "
              f"tasks {', '.join(entry.tasks)}; {training}")
    print("architectures:")
    for name in models.MODELS.names():
        print(f"  {name}: {summary(models.MODELS[name])} Task: {models.task_of(name)}.")
    from .lab import profiles

    print("profiles:      " + ", ".join(profiles.profiles()))
    return 0


def cmd_sweep(args) -> int:
    from .lab import sweep

    return sweep.sweep(args.profile, jobs=args.jobs, dry_run=args.dry_run, executor=args.executor,
                       ray_address=args.ray_address, dask_scheduler=args.dask_scheduler,
                       shared_fs=args.shared_fs, retries=args.retries, cpus=args.cpus, gpus=args.gpus)


def cmd_ui(args) -> int:
    from .lab import serve

    return serve.ui(args.host, args.port, args.no_auth)


def cmd_server(args) -> int:
    from .lab import serve

    return serve.server(args.host, args.port, args.store, args.allowed_hosts, args.no_auth)


def cmd_figures(args) -> int:
    from .report import assembly  # matplotlib and the report: only this command needs them

    return assembly.command(args.out)


def main(argv: list[str] | None = None) -> int:
    try:
        p = parser()
        args, unknown = p.parse_known_args(argv)
        if unknown:
            close = _did_you_mean(unknown[0], p.commands[args.command])
            raise InitpruneError(f"unrecognized arguments: {' '.join(unknown)}{close} "
                                 f"(see: python -m initprune {args.command} --help)")
        commands = {"run": cmd_run, "list": cmd_list, "sweep": cmd_sweep, "figures": cmd_figures,
                    "ui": cmd_ui, "server": cmd_server}
        return commands[args.command](args)
    except InitpruneError as err:
        print(f"initprune: error: {err}", file=sys.stderr)
        return 2
    except DivergedError as err:
        print(f"initprune: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a full disk or a damaged store, wherever it surfaced
        problem = store.store_error(err)
        if problem is None:
            raise
        print(f"initprune: error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM to a sweep (executors.Terminated: 143)
        status = getattr(err, "status", 130)
        print(f"initprune: {'terminated' if status == 143 else 'interrupted'}; what finished is kept: run the "
              "same command again to resume", file=sys.stderr)
        return status
