"""The command line (README, "Command line"): the run, its JSON and checkpoint, and bad input."""

import json
import subprocess
import sys

import pytest
import torch

from initprune import api, cli
from initprune.errors import InitpruneError


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "initprune", *args], capture_output=True, text=True)


@pytest.mark.parametrize("method,sparsity,extra", [
    ("random", 0.9, []), ("kstarts", 0.9, ["--k", "3"]), ("dissipating", 0.9, ["--prune-epochs", "2"]),
    ("combined", 0.9, ["--k", "2", "--prune-epochs", "1"]), ("dense", 0.0, []),
])
def test_run_writes_the_result_json_and_a_safe_checkpoint(tmp_path, method, sparsity, extra):
    out, ckpt = tmp_path / "r.json", tmp_path / "m.pt"
    code = cli.main(["run", "--method", method, "--sparsity", str(sparsity), "--epochs", "3",
                     "--seed", "0", "--out", str(out), "--save-model", str(ckpt), "--no-tracking", *extra])
    assert code == 0
    result = json.loads(out.read_text())
    keys = {"method", "dataset", "arch", "seed", "sparsity_target", "sparsity_actual", "test_accuracy",
            "val_accuracy", "epochs", "history", "layers", "extra", "run_id", "seconds",
            "effective_sparsity", "dead_classes"}
    assert keys <= set(result)
    assert result["method"] == method and result["epochs"] == 3 and len(result["history"]) == 3
    assert set(result["history"][0]) == {"epoch", "train_loss", "val_accuracy", "test_accuracy", "sparsity", "seconds"}
    assert result["sparsity_actual"] == pytest.approx(sparsity, abs=1e-3)
    assert result["test_accuracy"] > 0.5  # digits is easy; chance is 0.1
    saved = torch.load(ckpt, weights_only=True)
    for name, mask in saved["mask"].items():
        assert mask.dtype == torch.bool
        assert (saved["state_dict"][name][~mask] == 0).all()
        assert result["layers"][name] == {"numel": mask.numel(), "kept": int(mask.sum())}


BAD = [
    (["--method", "snipp"], "unknown method 'snipp'"),
    (["--method", "random", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--method", "random", "--arch", "vgg99"], "unknown architecture 'vgg99'"),
    (["--method", "random", "--sparsity", "1"], "sparsity must be in [0, 1)"),
    (["--method", "random", "--sparsity", "-0.1"], "sparsity must be in [0, 1)"),
    (["--method", "random", "--sparsity", "lots"], "invalid float value: 'lots'"),
    (["--method", "kstarts", "--k", "0"], "--k must be an integer of at least 1"),
    (["--method", "kstarts", "--epochs", "1", "--warmup-epochs", "2"], "--epochs must be 2 or more: method 'kstarts'"),
    (["--method", "dissipating", "--epochs", "2"], "--epochs must be 3 or more"),
    (["--method", "random", "--k", "3"], "--k does not apply to method 'random' (its options: scope)"),
    (["--method", "kstarts", "--fitness", "beauty"], "--fitness must be one of: magnitude, gradient, both"),
    (["--method", "dissipating", "--schedule", "cosine"], "--schedule must be one of: linear, geometric, cubic"),
    (["--method", "random", "--scope", "local"], "--scope must be one of: layerwise, global, erk; got 'local'"),
    (["--method", "dissipating", "--tau", "-1"], "--tau must be positive"),
    (["--method", "dense", "--sparsity", "0.5"], "--sparsity must be 0: method 'dense' keeps every weight"),
    (["--method", "random", "--dataset", "mnist", "--arch", "lenet300", "--data-root", "{tmp}"],
     "dataset 'mnist' not found under"),
    (["--method", "random", "--out", "{tmp}/missing/r.json"], "folder"),
    (["--method", "random", "--device", "tpu"], "unknown device 'tpu'"),
    (["--method", "random", "--optimizer", "lion"], "--optimizer must be one of: sgd, adam, adamw; got 'lion'"),
    (["--method", "random", "--epochs", "0"], "epochs must be a positive integer"),
    (["--method", "random", "--sparsty", "0.5"],
     "unrecognized arguments: --sparsty 0.5; did you mean --sparsity? (see: python -m initprune run --help)"),
    ([], "the following arguments are required: --method"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "r.json"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = cli.main(["run", *args, "--out", str(out)] if "--out" not in args else ["run", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("initprune: error:") and message in err
    assert not out.exists()


BAD_SWEEP = [
    (["--executor", "spark"], {}, "unknown executor 'spark'; choose one of: local, ray, dask"),
    (["--ray-address", "127.0.0.1:6379"], {}, "--ray-address goes with --executor ray"),
    (["--executor", "dask", "--dask-scheduler", "127.0.0.1:8786"], {}, "give the scheduler's address, tcp://"),
    (["--executor", "ray", "--retries", "-1"], {}, "--retries must be 0 or more"),
    (["--executor", "ray", "--gpus-per-task", "-1"], {}, "--gpus-per-task must be 0 or more"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], {},
     "workers on other machines cannot write to sqlite:///"),
    (["--executor", "dask", "--dask-scheduler", "tcp://127.0.0.1:1"], {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"},
     "no MLflow tracking server answers at http://127.0.0.1:1"),
    (["--executor", "dask", "--dask-scheduler", "tcp://127.0.0.1:1", "--shared-fs"], {},
     "cannot reach a Dask scheduler at tcp://127.0.0.1:1"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1", "--shared-fs"],
     {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "", "HOME": "{tmp}"},
     "the Ray cluster at 127.0.0.1:1 wants its authentication token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN"),
]


@pytest.mark.parametrize("args,env,message", BAD_SWEEP, ids=[m for *_, m in BAD_SWEEP])
def test_a_sweep_that_cannot_run_where_it_is_sent_is_refused_in_one_line(capsys, monkeypatch, tmp_path, args, env,
                                                                           message):
    for key, value in env.items():
        monkeypatch.setenv(key, value.replace("{tmp}", str(tmp_path)))
    code = cli.main(["sweep", "--profile", "smoke", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err, err


def test_bad_input_from_a_real_process_has_no_traceback():
    proc = run_cli("run", "--method", "random", "--sparsity", "1.5")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "initprune: error: sparsity must be in [0, 1) (the fraction of weights removed), got 1.5"]


def test_list_names_everything(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("kstarts", "dissipating", "combined", "digits", "mnist1d", "cnn1d", "cifar10", "resnet20", "k=8"):
        assert name in out


def test_config_hash_is_the_resolved_configuration_without_the_seed():
    base = api.RunSpec(method="kstarts")
    assert base.hash() == api.RunSpec(method="kstarts", seed=5, options={"k": 8}).hash()  # k=8 is what it resolves to
    assert base.hash() != api.RunSpec(method="kstarts", options={"k": 4}).hash()
    assert base.identity()["options"]["k"] == 8 and base.identity()["training"]["lr"] == 0.1
    # pinned: a change here silently orphans every recorded run (identity scheme 2, issue 18)
    # (on cpu: device auto is cuda on a machine with a GPU, another identity)
    assert api.RunSpec(method="kstarts", sparsity=0.95, options={"k": 4}, device="cpu").hash() == "6776fe1b587d"


def _store_runs(uri):
    from initprune.lab.store import ensure_store

    c, exp_id = ensure_store(uri)
    return c.search_runs([exp_id], "", max_results=100)


def test_run_is_logged_like_a_sweeps_point_and_a_sweep_then_reuses_it(tmp_path, monkeypatch, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = tmp_path / "r.json"
    assert cli.main(["run", "--method", "kstarts", "--k", "2", "--sparsity", "0.9", "--epochs", "2",
                     "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    (run,) = _store_runs(uri)
    assert run.info.run_id == result["run_id"] and run.info.status == "FINISHED"
    assert run.data.tags["kind"] == "point" and run.data.tags["config_hash"] == result["config_hash"]
    assert run.data.params["option.k"] == "2" and run.data.metrics["kstarts.winner"] == result["extra"]["winner"]
    from initprune.lab import grid

    again = grid.run_grid("kstarts", "digits", "mlp", [0.9], [0], 2, options={"k": 2}, progress=False)
    assert again[0].run_id == result["run_id"]  # read back, not trained again


def test_two_runs_of_one_point_are_both_kept_and_counted_once(tmp_path, monkeypatch):
    """`run` always trains (it was asked to); the runs table, the figures and a sweep's counts
    take each (identity, seed) once: the oldest FINISHED run."""
    from initprune.lab import results, store

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    argv = ["run", "--method", "random", "--sparsity", "0.5", "--epochs", "1", "--seed", "3"]
    assert cli.main(argv) == 0 and cli.main(argv) == 0
    kept = sorted(_store_runs(uri), key=lambda r: r.info.start_time)
    assert [r.info.status for r in kept] == ["FINISHED", "FINISHED"]
    assert len({r.data.tags["config_hash"] for r in kept}) == 1
    table = results.runs_table(uri)
    assert len(table) == 1 and table["run_id"].iloc[0] == kept[0].info.run_id
    c, exp_id = store.ensure_store(uri)
    assert results.finished_points(c, exp_id) == {(kept[0].data.tags["config_hash"], 3)}


def test_a_run_that_cannot_be_logged_keeps_its_result_and_one_that_fails_leaves_nothing(tmp_path, monkeypatch,
                                                                                        capsys):
    from initprune.lab.points import Points

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Points, "log", full)
    out = tmp_path / "r.json"
    assert cli.main(["run", "--method", "random", "--epochs", "1", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "could not be logged to MLflow" in captured.err and captured.err.count("\n") == 1
    assert json.loads(out.read_text())["test_accuracy"] == json.loads(captured.out)["test_accuracy"]
    assert [r.info.status for r in _store_runs(uri)] == ["FAILED"]  # never FINISHED without its metrics

    monkeypatch.undo()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/other.db")
    assert cli.main(["run", "--method", "random", "--epochs", "2", "--lr", "1e6"]) == 1  # diverges
    assert _store_runs(f"sqlite:///{tmp_path}/other.db") == []


def test_run_help_shows_the_defaults_a_run_takes():
    text = cli.parser().commands["run"].format_help()
    for flag, value in (("--dataset", "digits"), ("--arch", "mlp"), ("--sparsity", "0.9"), ("--epochs", "20"),
                        ("--seed", "0"), ("--device", "auto")):
        after = " ".join(text.split(flag, 2)[2].split()) if text.count(flag) > 1 else ""
        assert f"(default: {value})" in after.split(" --")[0], flag


def test_run_ends_with_one_line_of_what_matters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert cli.main(["run", "--method", "random", "--epochs", "1"]) == 0
    captured = capsys.readouterr()
    last = captured.err.strip().splitlines()[-1]
    result = json.loads(captured.out)  # not a terminal: the JSON for a script
    assert result["run_id"] and f"MLflow run {result['run_id']}" in last
    assert f"effective {result['effective_sparsity']:.4f}" in last and "dead classes" in last
    assert f"test accuracy {result['test_accuracy']:.4f}" in last and "s=0.9000" in last


def test_the_dry_run_tells_executions_apart_and_estimates_for_the_jobs_it_will_use(tmp_path, monkeypatch, capsys):
    from initprune.lab import sweep

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    profile = tmp_path / "p.yaml"
    cell = "{notebook: random, dataset: digits, arch: mlp, seeds: [0]"
    profile.write_text(f"executions:\n  - {cell}, sparsities: [0.5, 0.9], epochs: 2}}\n"
                       f"  - {cell}, sparsities: [0.5], epochs: 3}}\n")
    monkeypatch.setattr(sweep.os, "cpu_count", lambda: 2)
    assert cli.main(["sweep", "--profile", str(profile), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("random digits/mlp epochs=2 sparsities=[0.5, 0.9]"), lines
    assert lines[1].endswith("random digits/mlp epochs=3 sparsities=[0.5]"), lines
    estimate = lines[-1]
    assert estimate.startswith("estimate: under a minute with --jobs 1, under a minute with --jobs 2 ("), estimate
    assert cli.main(["sweep", "--profile", str(profile), "--dry-run", "--jobs", "3"]) == 0
    estimate = capsys.readouterr().out.splitlines()[-1]
    assert "with --jobs 3" in estimate and "--jobs 1" not in estimate and "about 0 min" not in estimate


def test_an_estimate_divides_over_jobs_but_never_over_more_executions_than_are_left(monkeypatch):
    from initprune.lab import profiles
    from initprune.lab.sweep import Status

    class Ex:
        def __init__(self, *points):
            self.points = list(points)

    class Point:
        dataset, arch, epochs, seed = "digits", "mlp", 600, 0

        def __init__(self, name):
            self.name = name

        def hash(self):
            return self.name

        def pruner(self):
            return type("P", (), {"trained_epochs": staticmethod(lambda epochs: epochs)})()

    monkeypatch.setattr(profiles, "seconds_per_epoch", lambda: {"digits/mlp": (1.0, "measured")})
    rows = [Status(Ex(Point("a")), set(), set(), False), Status(Ex(Point("b")), set(), set(), False)]
    said = profiles.estimate(rows, [1, 2, 8])  # 1,200 s of training in two executions
    assert said.startswith("estimate: about 20 min with --jobs 1, about 10 min with --jobs 2, "
                           "about 10 min with --jobs 8 ("), said


def test_a_bad_method_name_is_answered_within_a_second_of_python_starting():
    """Issue 34: torch (seconds) is imported after the names are checked against the declared
    built-ins (registry.BUILT_IN), where no plugin is declared."""
    import time

    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    startup = time.perf_counter() - began  # this machine, now: a loaded machine starts slowly
    began = time.perf_counter()
    proc = run_cli("run", "--method", "nope")
    answered = time.perf_counter() - began
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "unknown method 'nope'" in proc.stderr
    assert answered < startup + 1.0, (answered, startup)


def test_the_lab_finds_its_root_around_the_working_directory_and_says_in_one_line_when_outside_a_clone(
        tmp_path, monkeypatch):
    """From a wheel (the package in site-packages, no clone around it), the lab's root is the clone
    the command runs in, found from any folder inside it; outside one, one line says how to fix it,
    and the sweep and the default store say so too instead of writing into site-packages."""
    from initprune.lab import root, store

    monkeypatch.delenv(root.ENV, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(root, "__file__", str(tmp_path / "site-packages" / "initprune" / "lab" / "root.py"))
    clone = tmp_path / "clone"
    for folder in ("notebooks/profiles", "initprune"):
        (clone / folder).mkdir(parents=True)
    (clone / "pyproject.toml").touch()
    monkeypatch.chdir(clone / "notebooks" / "profiles")
    assert root.root() == clone
    assert store.default_uri() == f"sqlite:///{clone / 'mlruns' / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InitpruneError, match=f"not inside a clone of initprune.*set {root.ENV}") as err:
        store.default_uri()
    assert "\n" not in str(err.value)
    assert cli.main(["sweep", "--profile", "smoke", "--dry-run"]) == 2
    monkeypatch.setenv(root.ENV, str(tmp_path))
    with pytest.raises(InitpruneError, match=f"{root.ENV}={tmp_path} is not a clone"):
        root.root()
    monkeypatch.setenv(root.ENV, str(clone))
    assert root.root() == clone


@pytest.mark.parametrize("args", [["--method", "nope"], ["--method", "random", "--dataset", "nope"],
                                  ["--method=random", "--arch=nope", "--dataset", "digits"],
                                  ["--method", "nope", "--arch", "nope"]], ids=["method", "dataset", "arch", "first"])
def test_the_early_answer_to_a_bad_name_is_the_one_the_registry_gives(capsys, args):
    """What ``python -m initprune`` says before importing torch is what cli.main says after."""
    assert cli.main(["run", *args]) == 2
    proc = run_cli("run", *args)
    assert proc.returncode == 2 and proc.stderr == capsys.readouterr().err and proc.stdout == ""


def test_the_early_check_leaves_help_other_commands_and_plugins_names_to_the_command_line(monkeypatch, tmp_path):
    from initprune import registry
    from initprune.__main__ import unknown_name

    assert unknown_name(["run", "--method", "nope", "--help"]) is None  # help first, as argparse does
    assert unknown_name(["list", "--method", "nope"]) is None
    assert unknown_name(["run", "--method", "random", "--method", "nope"]).startswith("unknown method 'nope'")
    assert unknown_name(["run", "--method", "random", "--", "--method", "nope"]) is None
    assert unknown_name(["run", "--method", "--arch", "mlp"]) is None  # argparse says what --method lacks
    assert registry.unknown("architecture", "mlp") is None
    monkeypatch.setenv("INITPRUNE_PLUGINS", "initprune_mine")  # a plugin's names are known once it is loaded
    assert registry.unknown("method", "mine") is None
    monkeypatch.delenv("INITPRUNE_PLUGINS")
    assert registry.unknown("method", "mine").startswith("unknown method 'mine'")
    dist = tmp_path / "initprune_mine-1.0.dist-info"  # an installed plugin, as pip writes it
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: initprune-mine\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[initprune.models]\ntiny = initprune_mine\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.unknown("method", "mine") is None
