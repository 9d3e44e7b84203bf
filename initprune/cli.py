"""``python -m initprune run | sweep | figures | ui | server | list``: the command line of shared/INTERFACE.md.

Bad input exits with status 2 and one line on stderr, before any training starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import api, data, models, pruners
from .errors import DivergedError, InitpruneError

# command-line flag -> pruner option (METHOD.md's words)
METHOD_OPTIONS = {
    "k": int, "fitness": str, "warmup_epochs": int, "selection": str, "prune_epochs": int,
    "schedule": str, "tau": float, "kstarts_sparsity": float, "scope": str, "analysis": bool,
    "batches": int, "temperature": float, "rounds": int, "double": bool, "finetune_epochs": int,
}
TRAINING_OPTIONS = {"optimizer": str, "lr": float, "momentum": float, "weight_decay": float, "batch_size": int}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage block
        raise InitpruneError(f"{message} (see: python -m initprune {self.prog.split()[-1]} --help)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="initprune",
                description="Pruning at initialization: K-starts, dissipating gradients and baselines.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="prune, train and evaluate one model", allow_abbrev=False)
    r.add_argument("--method", required=True, help=f"one of: {', '.join(pruners.PRUNERS.names())}")
    r.add_argument("--dataset", default="digits", help=f"one of: {', '.join(data.DATASETS.names())}")
    r.add_argument("--arch", default="mlp", help=f"one of: {', '.join(models.MODELS.names())}")
    r.add_argument("--sparsity", type=float, default=0.9, help="fraction of prunable weights removed, in [0, 1)")
    r.add_argument("--epochs", type=int, default=20, help="training epochs in all, pruning epochs included")
    r.add_argument("--seed", type=int, default=0)
    m = r.add_argument_group("method options (shared/METHOD.md)")
    for name, kind in METHOD_OPTIONS.items():
        if kind is bool:
            m.add_argument("--" + name.replace("_", "-"), action="store_true", default=None, dest=name)
        else:
            m.add_argument("--" + name.replace("_", "-"), type=kind, default=None, dest=name)
    m.add_argument("--ablation", default="none", help="sanity check: none, shuffle, reinit, invert, rewind")
    t = r.add_argument_group("training (defaults per dataset)")
    for name, kind in TRAINING_OPTIONS.items():
        t.add_argument("--" + name.replace("_", "-"), type=kind, default=None, dest=name)
    r.add_argument("--out", type=Path, help="write the result JSON here")
    r.add_argument("--save-model", type=Path, help="write {state_dict, mask} here (torch.save)")
    r.add_argument("--tracking-uri", help="MLflow tracking URI")
    r.add_argument("--no-tracking", action="store_true", help="log nothing to MLflow")
    r.add_argument("--data-root", type=Path, help="where torchvision datasets live (default data/ or $INITPRUNE_DATA)")
    r.add_argument("--device", default="auto", help="auto, cpu or cuda")
    s = sub.add_parser("sweep", help="run a profile's notebooks through papermill, logging to MLflow",
                       allow_abbrev=False)
    s.add_argument("--profile", required=True, help="a YAML file under notebooks/profiles/ (see: list)")
    s.add_argument("--jobs", type=int, default=1, help="notebook executions in parallel (local; dask's local cluster)")
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
    v = sub.add_parser("server", help="a shared MLflow tracking server over the store, for cluster sweeps",
                       allow_abbrev=False)
    v.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 for workers)")
    v.add_argument("--port", type=int, default=5000)
    v.add_argument("--store", type=Path, help="the folder of mlflow.db and artifacts/ (default: mlruns/)")
    v.add_argument("--allowed-hosts", help="host names workers use to reach it, if not this network's addresses")
    sub.add_parser("list", help="methods, datasets, architectures, profiles")
    return p


def _given(args, names) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def cmd_run(args) -> int:
    config = api.RunConfig(
        method=args.method, dataset=args.dataset, arch=args.arch, sparsity=args.sparsity,
        epochs=args.epochs, seed=args.seed, options=_given(args, METHOD_OPTIONS),
        training=_given(args, TRAINING_OPTIONS), ablation=args.ablation,
    )
    data.DATASETS[config.dataset]
    try:
        result = api.run(config, data_root=args.data_root, device=args.device, save_model=args.save_model,
                         out=args.out)
    except api.OutputError as err:
        if err.result is not None:  # the result JSON could not be written: it is not lost
            print(json.dumps(err.result))
        print(f"initprune: error: {err}" + ("; the result JSON is on stdout" if err.result else ""),
              file=sys.stderr)
        return 1
    summary = (f"{config.method} {config.dataset}/{config.arch} s={result['sparsity_actual']:.4f}: "
               f"test accuracy {result['test_accuracy']:.4f} in {result['seconds']:.1f}s")
    print(summary, file=sys.stderr)
    if not args.out:
        print(json.dumps({k: v for k, v in result.items() if k != "history"}))
    return 0


def cmd_list(args) -> int:
    print("methods:")
    for name in pruners.PRUNERS.names():
        cls = pruners.PRUNERS[name]
        opts = [f"{k}={v}" for k, v in cls(sparsity=0.0 if cls.fixed_sparsity is not None else 0.5).options().items()]
        print(f"  {name:12s} {' '.join(opts)}")
    print("datasets:      " + ", ".join(data.DATASETS.names()))
    print("architectures: " + ", ".join(models.MODELS.names()))
    from . import sweep

    print("profiles:      " + ", ".join(sweep.profiles()))
    return 0


def cmd_sweep(args) -> int:
    from . import sweep

    return sweep.sweep(args.profile, jobs=args.jobs, dry_run=args.dry_run, executor=args.executor,
                       ray_address=args.ray_address, dask_scheduler=args.dask_scheduler, shared_fs=args.shared_fs,
                       retries=args.retries, cpus=args.cpus, gpus=args.gpus)


def cmd_ui(args) -> int:
    import os

    from . import store

    uri = store.default_uri()
    _, exp_id = store.ensure_store(uri)
    print(f"MLflow UI: compare runs at http://{args.host}:{args.port}/#/experiments/{exp_id}/runs", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", args.host,
               "--port", str(args.port), "--workers", "1"]
    root = store.artifact_root(uri)
    if root:
        command += ["--default-artifact-root", root]
    os.execv(command[0], command)


def cmd_server(args) -> int:
    """``mlflow server`` over the project's sqlite store, serving its artifacts to the workers."""
    import os

    from . import store

    folder = (args.store or store.ROOT / "mlruns").resolve()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    folder.mkdir(exist_ok=True)
    store.client(uri).search_experiments(max_results=1)  # create the database before the server's workers
    print(f"MLflow tracking server at http://{args.host}:{args.port}: on every worker and the driver, "
          f"export MLFLOW_TRACKING_URI=http://{args.host if args.host != '0.0.0.0' else 'THIS_HOST'}:{args.port}",
          flush=True)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--serve-artifacts",
               "--artifacts-destination", str(folder / "artifacts"), "--host", args.host, "--port", str(args.port),
               "--workers", "2"]
    if args.allowed_hosts:
        command += ["--allowed-hosts", args.allowed_hosts]
    os.execv(command[0], command)


def cmd_figures(args) -> int:
    from . import sweep

    return sweep.figures(args.out)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
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
        from . import store

        problem = store.store_error(err)
        if problem is None:
            raise
        print(f"initprune: error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("initprune: interrupted; what finished is kept: run the same command again to resume",
              file=sys.stderr)
        return 130
