"""How many calls between the package's modules carry one point from the command to its stored result.

    python benchmarks/hops.py [--root CHECKOUT] [--list] [--out FILE]

Issue "One path" counts hops from ``python -m initprune sweep`` to the stored result: a call into a
function of another module, or a process boundary; calls inside one module not counted. This runs a
one-point sweep (random, digits / mlp, s = 0.9, one epoch, seed 0) into a temporary store with a
profiler in every Python process it starts (a ``sitecustomize`` on ``PYTHONPATH``: the driver and
the notebook's kernel), which records each call of a package function with the package frames above
it. From those chains, per process:

* the spine: every package frame on a chain that reaches the store layer (``lab.points``,
  ``lab.store``; ``lab.runs`` before round 4) or the notebook's launch (``lab.kernel``);
* rule A, the chain: calls between two spine frames of different modules;
* rule B, the spine's every call: rule A and each call a spine frame, or a helper of one in its
  own module, makes into a function of another module (side calls: registry lookups, option and
  device checks, progress, fault hooks, the call that trains), less what an import runs (class
  bodies, the function a dataclass builds its methods in, registrations). A call moved into a
  helper of the same module still counts; one moved into another module's function (which the
  spine then calls) counts as that one call.

Each distinct (caller, callee) pair counts once, however often it runs. The three process
boundaries (shell to driver, driver to kernel, kernel back) are added to both. Apart, and in
neither rule: ``training``, the calls between the core's modules below ``api.run_group`` (data,
model, pruner, trainer: what trains the point, not the pipeline that carries it). ``--root``
measures another checkout with this machine's environment (a worktree of an older commit, say).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOUNDARIES = 3
PROFILE = ("description: one point\ndefaults: {dataset: digits, arch: mlp, epochs: 1, seeds: [0], sparsities: [0.9]}\n"
           "executions:\n  - {notebook: random}\n")
STORE = ("initprune.lab.points:", "initprune.lab.store:", "initprune.lab.runs:", "initprune.lab.kernel:")
# the profiler every process of the sweep loads: each call of a package function, with its chain of
# package frames (outermost first), counted; written when the process ends
TRACER = '''
import atexit, json, os, signal, sys, threading
OUT = os.environ.get("INITPRUNE_HOPTRACE")
if OUT:
    seen = {}
    def package(f):
        return (f.f_globals.get("__name__") or "").startswith("initprune") and f.f_code.co_name != "<module>"
    def call(frame, event, arg):
        if event != "call" or not package(frame):
            return
        chain, f = [], frame
        while f is not None:
            if package(f):
                chain.append(f.f_globals["__name__"] + ":" + f.f_code.co_qualname)
            f = f.f_back
        key = tuple(reversed(chain))
        seen[key] = seen.get(key, 0) + 1
    def dump(*_):
        with open(os.path.join(OUT, f"{os.getpid()}.json"), "w") as fh:
            json.dump([[list(k), n] for k, n in seen.items()], fh)
    sys.setprofile(call); threading.setprofile(call)
    atexit.register(dump)
    def term(signum, frame):
        dump(); os._exit(0)
    signal.signal(signal.SIGTERM, term)
'''


def _module(frame: str) -> str:
    return frame.split(":")[0]


def _import_time(frame: str) -> bool:
    """What an import runs, seen as called from the function that imported: a class body, the
    function a dataclass builds its methods in (the methods it built run later, and count), a
    registration."""
    name = frame.split(":", 1)[1]
    return (name == "__create_fn__" or bool(re.fullmatch(r"_?[A-Z]\w*", name))
            or "register" in name or name.endswith("Registry.__init__"))


def count(chains: list) -> dict:
    """Rules A and B over one process's recorded chains. A spine frame's helpers in its own module
    are part of it (the issue does not count the call into them): what they call counts in rule B,
    so that a call moved into a helper is still counted."""
    spine = set()
    for chain, _ in chains:
        hit = next((i for i, frame in enumerate(chain) if frame.startswith(STORE)), None)
        if hit is not None:
            spine.update(chain[:hit + 1])
    a, b = set(), set()
    for chain, _ in chains:
        on = []  # per frame: a spine frame, or a helper of one in the same module
        for i, frame in enumerate(chain):
            on.append(frame in spine or (i > 0 and on[-1] and _module(chain[i - 1]) == _module(frame)))
        for caller, callee, counted in zip(chain, chain[1:], on):
            if counted and _module(caller) != _module(callee) and not _import_time(callee):
                (a if caller in spine and callee in spine else b).add((caller, callee))
    def short(pairs):
        return [f"{x.removeprefix('initprune.')} -> {y.removeprefix('initprune.')}" for x, y in sorted(pairs)]
    return {"rule_a": len(a), "rule_b": len(a) + len(b), "chain": short(a), "side": short(b),
            "modules": len({_module(f) for pair in a | b for f in pair})}


def trace(root: Path) -> list[list]:
    """The chains of the sweep's driver and of its notebook's kernel, in the order they started."""
    with tempfile.TemporaryDirectory(prefix="hops-") as tmp:
        tmp = Path(tmp)
        (tmp / "sitecustomize.py").write_text(TRACER)
        (tmp / "one.yaml").write_text(PROFILE)
        (tmp / "out").mkdir()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), str(root)]), "INITPRUNE_ROOT": str(root),
               "INITPRUNE_HOPTRACE": str(tmp / "out"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
        env.pop("INITPRUNE_EXPERIMENT", None)
        done = subprocess.run([sys.executable, "-m", "initprune", "sweep", "--profile", str(tmp / "one.yaml")],
                              cwd=root, env=env, text=True, capture_output=True)
        if done.returncode:
            raise SystemExit(f"the one-point sweep failed:\n{(done.stdout + done.stderr)[-3000:]}")
        files = sorted(glob.glob(str(tmp / "out" / "*.json")), key=os.path.getmtime)
        chains = [json.loads(Path(f).read_text()) for f in files]
    # the kernel is the process whose chains reach the point's record; the driver, the one that launched it
    kernel = [c for c in chains if any(f.endswith("lab.grid:run_grid") for ch, _ in c for f in ch)]
    driver = [c for c in chains if any(f.endswith("lab.sweep:sweep") for ch, _ in c for f in ch)]
    if len(kernel) != 1 or len(driver) != 1:
        raise SystemExit(f"expected one driver and one kernel, traced {len(driver)} and {len(kernel)}")
    return [driver[0], kernel[0]]


ENTRIES = ("initprune.api:run_group", "initprune.api:run", "initprune.stack:run_group")  # now, and before round 4


def training(chains: list) -> int:
    """The distinct calls between two of the core's modules below the core's entry (``ENTRIES``)."""
    pairs = set()
    for chain, _ in chains:
        entry = next((i for i, frame in enumerate(chain) if frame in ENTRIES), None)
        if entry is not None:
            below = chain[entry:]
            pairs |= {(a, b) for a, b in zip(below, below[1:]) if _module(a) != _module(b) and not _import_time(b)}
    return len(pairs)


def measure(root: Path) -> dict:
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], text=True,
                            capture_output=True).stdout.strip() or None
    traced = trace(root)
    driver, kernel = (count(c) for c in traced)
    return {"root": str(root), "commit": commit, "process_boundaries": BOUNDARIES, "driver": driver, "kernel": kernel,
            "rule_a": driver["rule_a"] + kernel["rule_a"] + BOUNDARIES,
            "rule_b": driver["rule_b"] + kernel["rule_b"] + BOUNDARIES, "training": training(traced[1])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, nargs="+", default=[ROOT],
                    help="the checkouts to measure, in order (default: this one)")
    ap.add_argument("--list", action="store_true", help="print every hop")
    ap.add_argument("--out", type=Path, help="write the counts and hops as JSON")
    args = ap.parse_args(argv)
    results = []
    for root in args.root:
        r = measure(root.resolve())
        d, k = r["driver"], r["kernel"]
        print(f"{r['commit'] or r['root']}: rule A (the chain) {r['rule_a']} hops, "
              f"rule B (the spine's every call) {r['rule_b']} "
              f"(driver {d['rule_a']}/{d['rule_b']}, kernel {k['rule_a']}/{k['rule_b']}, +{BOUNDARIES} processes); "
              f"below the core's entry, {r['training']} calls between its modules")
        if args.list:
            for name, part in (("driver", d), ("kernel", k)):
                print(f"{name}:")
                print("\n".join([f"  A {h}" for h in part["chain"]] + [f"  B {h}" for h in part["side"]]))
        results.append(r)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
