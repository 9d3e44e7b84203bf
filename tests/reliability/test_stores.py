"""Breaking the MLflow store on purpose: an unreachable server, a full disk, a damaged database,
and the smaller faults around it (huge grids, duplicated points, a notebook never stored, the
figures notebook and `make lab`).

Every case checks what a user sees (the exit status and one line naming the cause, never a
traceback) and what the store holds afterwards (nothing FINISHED that did not finish, nothing
RUNNING, an intact sqlite file).
"""

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clusters import ctrl_c_as_in_a_terminal, free_port, one_line_error

from initprune.errors import InitpruneError
from initprune.lab import results, store, sweep
from initprune.lab.grid import run_grid
from initprune.lab.points import Points

REPO = Path(__file__).resolve().parents[2]
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def profile(tmp_path, *sparsities, epochs=1, name="tiny.yaml") -> str:
    """One random-pruning execution per sparsity, one seed, one epoch: a few seconds each."""
    path = tmp_path / name
    path.write_text("executions:\n" + "".join(
        f"  - {{notebook: random, sparsities: [{s}], seeds: [0], epochs: {epochs}}}\n" for s in sparsities))
    return str(path)


def initprune(*args, uri, timeout=120, cwd=None, env=None, pause=""):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1", **(env or {})}
    if pause:
        env["INITPRUNE_TEST_PAUSE"] = pause
    if uri is None:
        env.pop("MLFLOW_TRACKING_URI")
    return subprocess.run([sys.executable, "-m", "initprune", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def runs(db: Path) -> list[tuple[str, str, str]]:
    """(kind, status, run id) of every run, read with sqlite itself; the file must be intact."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return con.execute("SELECT t.value, r.status, r.run_uuid FROM runs r LEFT JOIN tags t "
                           "ON t.run_uuid = r.run_uuid AND t.key = 'kind'").fetchall()


def check_store(db: Path, finished_points: int) -> list:
    """Nothing RUNNING; every FINISHED point has its result, every FINISHED execution its notebook."""
    found = runs(db)
    assert not [r for r in found if r[1] == "RUNNING"], found
    uri = f"sqlite:///{db}"
    c, exp_id = store.ensure_store(uri)
    for kind, status, run_id in found:
        if status == "FINISHED" and kind == "point":
            assert "test_accuracy" in Points.load(c.get_run(run_id))
        if status == "FINISHED" and kind == "execution":
            assert c.list_artifacts(run_id), "a FINISHED execution without its notebook"
    assert len(results.runs_table(uri)) == finished_points
    return found


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A small filesystem of its own at ``path``, to fill; skips where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({proc.stderr.strip() or 'mount failed'}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(folder: Path) -> None:
    """Write zeros into ``folder`` until its disk is full."""
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()


# A. an unreachable tracking server

COMMANDS = {
    "sweep --dry-run": ["sweep", "--profile", "smoke", "--dry-run"],
    "sweep local": ["sweep", "--profile", "smoke"],
    "sweep ray": ["sweep", "--profile", "smoke", "--executor", "ray"],
    "sweep dask": ["sweep", "--profile", "smoke", "--executor", "dask"],
    "figures": ["figures"],
    "ui": ["ui", "--port", "0"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unreachable_tracking_server_fails_every_command_at_once(command, tmp_path):
    began = time.perf_counter()
    args = [a if a != "0" else str(free_port()) for a in COMMANDS[command]]
    proc = initprune(*args, uri=UNREACHABLE, timeout=60, env={"INITPRUNE_FIGURES": str(tmp_path)})
    one_line_error(proc, "no MLflow tracking server answers at http://127.0.0.1:9", "make server")
    assert time.perf_counter() - began < 20  # imports included; the probe itself waits 5 s at most
    assert not list(tmp_path.iterdir())  # the figures command wrote nothing


def test_the_store_check_for_commands_that_track_later_is_quick():
    began = time.perf_counter()
    with pytest.raises(InitpruneError, match="no MLflow tracking server answers"):
        store.check_store(UNREACHABLE)
    assert time.perf_counter() - began < 6


# B. a full disk and a damaged store

def test_a_disk_full_while_the_store_is_created_leaves_no_half_built_store(tmp_path):
    folder = tmp_path / "mlruns"
    with tmpfs(folder, "64k"):
        db = folder / "mlflow.db"
        proc = initprune("sweep", "--profile", profile(tmp_path, 0.5), "--dry-run", uri=f"sqlite:///{db}")
        one_line_error(proc, str(db), "no space left", "free space")
        assert not [p.name for p in folder.iterdir() if p.name.startswith("mlflow.db")]
        subprocess.run(["mount", "-o", "remount,size=16m", str(folder)], check=True)  # space freed
        proc = initprune("sweep", "--profile", profile(tmp_path, 0.5), "--dry-run", uri=f"sqlite:///{db}")
        assert proc.returncode == 0, proc.stderr
        assert "1 points in 1 executions, 0 finished" in proc.stdout
        assert runs(db) == []


def test_a_disk_that_fills_mid_sweep_fails_its_points_and_the_sweep_ends_with_its_summary(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    store.ensure_store(uri)
    two = profile(tmp_path, 0.5, 0.7)
    marker = tmp_path / "paused"
    with tmpfs(tmp_path / "artifacts", "1m") as artifacts:
        sweeping = subprocess.Popen(
            [sys.executable, "-m", "initprune", "sweep", "--profile", two],
            env={**os.environ, "MLFLOW_TRACKING_URI": uri, "INITPRUNE_TEST_PAUSE": f"logging:3:{marker}"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline:  # the first point is writing its metrics
            time.sleep(0.1)
        fill(artifacts)
        out, err = sweeping.communicate(timeout=180)
        assert sweeping.returncode == 1 and "Traceback" not in err, out + err
        assert "No space left on device" in out and "free space" in out
        assert "done: 0 executions finished, 2 failed" in out
        found = check_store(db, 0)
        assert sorted(s for k, s, _ in found) == ["FAILED"] * 4  # two points, two executions
    proc = initprune("sweep", "--profile", two, uri=uri)  # space freed: the next sweep recovers everything
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done: 2 executions finished, 0 failed" in proc.stdout
    check_store(db, 2)


def test_a_store_whose_own_disk_fills_mid_sweep_stops_it_in_one_line(tmp_path):
    folder = tmp_path / "mlruns"
    one = profile(tmp_path, 0.5)
    marker = tmp_path / "paused"
    with tmpfs(folder, "4m"):
        db = folder / "mlflow.db"
        uri = f"sqlite:///{db}"
        sweeping = subprocess.Popen(
            [sys.executable, "-m", "initprune", "sweep", "--profile", one],
            env={**os.environ, "MLFLOW_TRACKING_URI": uri, "INITPRUNE_TEST_PAUSE": f"logging:3:{marker}"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.1)
        fill(folder)
        out, err = sweeping.communicate(timeout=180)
        assert sweeping.returncode == 2 and "Traceback" not in err, out + err
        assert len(err.strip().splitlines()) == 1 and str(db) in err and "free space" in err, err
        (folder / "filler").unlink()
        proc = initprune("sweep", "--profile", one, uri=uri)  # the next sweep recovers everything
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "marked" in proc.stdout and "KILLED" in proc.stdout  # what the full disk left RUNNING
        check_store(db, 1)


def test_a_truncated_store_is_named_with_what_to_do_and_left_as_it_is(tmp_path, monkeypatch):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run_grid("random", sparsities=[0.5], seeds=[0, 1], epochs=1, progress=False)
    os.truncate(db, db.stat().st_size // 2)
    size = db.stat().st_size
    for args in (["sweep", "--profile", "smoke", "--dry-run"], ["figures", "--out", str(tmp_path / "figures")]):
        proc = initprune(*args, uri=uri)
        one_line_error(proc, str(db), "damaged", "restore it", "move it aside")
    assert db.stat().st_size == size and not (tmp_path / "figures").exists()  # nothing touched
    db.rename(tmp_path / "mlflow.db.damaged")  # moved aside, as the message says: a new store works
    proc = initprune("sweep", "--profile", profile(tmp_path, 0.5), "--dry-run", uri=uri)
    assert proc.returncode == 0 and "1 points in 1 executions, 0 finished" in proc.stdout, proc.stderr


def test_a_store_of_a_newer_mlflow_schema_is_refused_in_one_line_and_left_as_it_is(tmp_path, monkeypatch, capsys):
    """A store that a newer MLflow migrated (a schema revision the installed one does not know):
    one line saying to upgrade MLflow, from the store check and from a command, the file untouched.
    One of an older schema says how to upgrade the store, in one line too."""
    from initprune import cli

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    store.ensure_store(uri)
    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute("UPDATE alembic_version SET version_num = '0123456789ab'")  # no MLflow's revision
        con.commit()
    content = db.read_bytes()
    with pytest.raises(InitpruneError, match="newer MLflow") as refused:
        store.check_store(uri)
    assert "0123456789ab" in str(refused.value) and "upgrade MLflow" in str(refused.value)
    capsys.readouterr()
    assert cli.main(["sweep", "--profile", "smoke", "--dry-run"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "newer MLflow" in lines[0] and str(db) in lines[0], out + err
    assert db.read_bytes() == content  # nothing rewritten
    with contextlib.closing(sqlite3.connect(db)) as con:  # MLflow's first schema: an older store
        con.execute("UPDATE alembic_version SET version_num = '451aebb31d03'")
        con.commit()
    assert cli.main(["sweep", "--profile", "smoke", "--dry-run"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "older MLflow" in lines[0] and f"mlflow db upgrade {uri}" in lines[0], lines


# C. the smaller ones

def grid(tmp_path, execution: str, sparsities: int, seeds: int) -> Path:
    path = tmp_path / "grid.yaml"
    values = ", ".join(str(i / sparsities) for i in range(sparsities))
    path.write_text(f"executions:\n  - {{{execution}, sparsities: [{values}], seeds: {list(range(seeds))}}}\n")
    return path


def test_a_huge_grid_is_refused_at_once_naming_its_size(tmp_path):
    huge = grid(tmp_path, "notebook: random, epochs: 1", 1000, 1000)
    began = time.perf_counter()
    proc = initprune("sweep", "--profile", str(huge), "--dry-run", uri=f"sqlite:///{tmp_path}/mlflow.db")
    one_line_error(proc, "1,000,000 points", "at most 100,000")
    assert time.perf_counter() - began < 30


def test_a_large_dry_run_is_quick(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    large = grid(tmp_path, "notebook: kstarts, epochs: 2, k: [2, 4]", 100, 100)  # 20,000 points
    store.ensure_store()
    began = time.perf_counter()
    assert sweep.sweep(str(large), dry_run=True) == 0
    assert time.perf_counter() - began < 10
    assert "20000 points in 1 executions, 0 finished" in capsys.readouterr().out


def test_the_dry_run_counts_a_point_that_trains_once_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    twice = tmp_path / "twice.yaml"
    twice.write_text("executions:\n  - {notebook: random, sparsities: [0.5, 0.5], seeds: [0, 0], epochs: 1}\n"
                     "  - {notebook: random, sparsities: [0.5], seeds: [0], epochs: 1}\n")
    assert sweep.sweep(str(twice), dry_run=True) == 0
    out = capsys.readouterr().out
    assert "   1 points" in out and "1 points in 2 executions, 0 finished" in out, out


def test_an_execution_killed_before_its_notebook_was_stored_runs_again(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    one = profile(tmp_path, 0.5)
    marker = tmp_path / "paused"
    sweeping = subprocess.Popen(
        [sys.executable, "-m", "initprune", "sweep", "--profile", one],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri, "INITPRUNE_TEST_PAUSE": f"notebook:60:{marker}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=ctrl_c_as_in_a_terminal)
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and sweeping.poll() is None:
        time.sleep(0.1)  # waits until every point is FINISHED and the notebook is not stored yet
    assert marker.exists()
    sweeping.send_signal(signal.SIGKILL)
    sweeping.wait()
    assert sorted(s for k, s, _ in runs(db)) == ["FINISHED", "RUNNING"]
    proc = initprune("sweep", "--profile", one, uri=uri)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 to run" in proc.stdout and "done: 1 executions finished" in proc.stdout, proc.stdout
    found = check_store(db, 1)
    assert sorted((k, s) for k, s, _ in found) == [("execution", "FINISHED"), ("execution", "KILLED"),
                                                   ("point", "FINISHED")]  # the point was not trained again


def test_the_figures_notebook_uses_the_store_of_the_command(tmp_path):
    """Two clones sharing one environment: the command imports the package from the clone it runs
    in, the notebook's kernel from the other one; both must use the command's store."""
    here, other = tmp_path / "here", tmp_path / "other"
    for clone in (here, other):
        shutil.copytree(REPO / "initprune", clone / "initprune", ignore=shutil.ignore_patterns("__pycache__"))
        (clone / "notebooks").mkdir()
        shutil.copy(REPO / "notebooks" / "figures.ipynb", clone / "notebooks")
        shutil.copy(REPO / "pyproject.toml", clone)  # what makes a folder a clone (lab/root.py)
    proc = initprune("figures", "--out", str(tmp_path / "figures"), uri=None, cwd=here,
                     env={"PYTHONPATH": str(other), "INITPRUNE_FIGURES": ""}, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (other / "mlruns").exists()  # the notebook did not open another store
    assert [(k, s) for k, s, _ in runs(here / "mlruns" / "mlflow.db")] == [("figures", "FINISHED")]


@pytest.mark.skipif(os.geteuid() != 0, reason="the case of `make lab` run as root")
def test_make_lab_as_root_starts_jupyter_with_allow_root():
    venv = Path(sys.executable).parent.parent
    proc = subprocess.run(["make", "-n", "lab", f"VENV={venv}"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lab = [line for line in proc.stdout.splitlines() if "jupyter lab" in line]
    assert len(lab) == 1 and "--allow-root" in lab[0], proc.stdout
    assert "running as root" in proc.stdout


def test_a_store_creation_killed_half_way_does_not_spoil_the_next(tmp_path):
    db = tmp_path / "mlflow.db"
    (tmp_path / "mlflow.db.new").write_bytes(b"SQLite format 3\0" + b"\xff" * 100)  # a build cut short
    c, exp_id = store.ensure_store(f"sqlite:///{db}")
    assert c.get_experiment(exp_id).name == store.experiment()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".initprune.lock", "mlflow.db"]
    assert runs(db) == []
