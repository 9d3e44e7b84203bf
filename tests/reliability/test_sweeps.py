"""Breaking sweeps on purpose: SIGKILL at several points, Ctrl-C, two sweeps at once.

Each test runs real `python -m initprune sweep` processes on tests/profiles/three.yaml (three of
the smoke profile's executions) in a temporary store, then checks what a user relies on: one
FINISHED run per grid point, nothing FINISHED without its metrics or its notebook, nothing left
RUNNING, and an intact sqlite file.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clusters import ctrl_c_as_in_a_terminal, descendants

from initprune.lab import profiles, results
from initprune.lab.points import Points
from initprune.lab.store import ensure_store

PROFILE = str(Path(__file__).resolve().parents[1] / "profiles" / "three.yaml")


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("INITPRUNE_FIGURES", str(tmp_path / "figures"))
    return uri


def start(uri, *extra, pause=""):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1", "INITPRUNE_TEST_PAUSE": pause}
    return subprocess.Popen([sys.executable, "-m", "initprune", "sweep", "--profile", PROFILE, *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ctrl_c_as_in_a_terminal)



def crash(proc) -> None:
    """SIGKILL the sweep and everything it started: what a power cut does."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def check_store(uri):
    c, exp_id = ensure_store(uri)
    runs = c.search_runs([exp_id], "", max_results=5000)
    expected = {(p.hash(), p.seed) for ex in profiles.load_profile(PROFILE) for p in ex.points}
    points = [r for r in runs if r.data.tags.get("kind") == "point"]
    finished = [r for r in points if r.info.status == "FINISHED"]
    for r in finished:  # a FINISHED point has everything a figure needs
        assert "test_accuracy" in r.data.metrics and "sparsity_actual" in r.data.metrics
        assert Points.load(r).test_accuracy == pytest.approx(r.data.metrics["test_accuracy"])
    for r in runs:
        if r.data.tags.get("kind") == "execution" and r.info.status == "FINISHED":
            assert c.list_artifacts(r.info.run_id), "a FINISHED execution without its notebook"
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert sorted((r.data.tags["config_hash"], int(r.data.tags["seed"])) for r in finished) == sorted(expected)
    table = results.runs_table(uri)
    assert len(table) == len(expected)  # exactly one FINISHED run per grid point, two sweeps at once included
    db = uri[len("sqlite:///"):]
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return points


def wait_for(uri, query, seen=(), timeout=120):
    """Poll the store until a run that is not in ``seen`` matches ``query``."""
    c, exp_id = ensure_store(uri)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if [r for r in c.search_runs([exp_id], query, max_results=100) if r.info.run_id not in seen]:
            return
        time.sleep(0.3)
    raise AssertionError(f"no new run matched {query!r} in {timeout}s")


def run_ids(uri) -> set[str]:
    c, exp_id = ensure_store(uri)
    return {r.info.run_id for r in c.search_runs([exp_id], "", max_results=5000)}


RUNNING_POINT = "tags.kind = 'point' and attributes.status = 'RUNNING'"


def test_sigkill_at_several_points_then_ctrl_c_then_resume(store):
    """SIGKILL at two points, then Ctrl-C, on one store, and one resume after all of them: each
    crash and the Ctrl-C would end in the same full resume, so one resume checks what all left.
    (A crash between executions, once a third point here, leaves a FINISHED execution that the
    resume skips: tests/test_sweep.py's rerun that trains nothing shows that skip; 25 s saved.)"""
    # during a notebook's training, during MLflow logging
    for pause, when in (("training:30", RUNNING_POINT), ("logging:30", RUNNING_POINT)):
        seen = run_ids(store)
        proc = start(store, pause=pause)
        wait_for(store, when, seen)
        crash(proc)

    # Ctrl-C: the sweep stops at once, marks its own runs KILLED and says how to resume
    crashed = run_ids(store)
    proc = start(store, pause="training:30")
    wait_for(store, RUNNING_POINT, crashed)
    began = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    stopped = time.perf_counter() - began
    assert proc.returncode == 130 and stopped < 15, out
    assert "run the same command again to resume" in out
    c, exp_id = ensure_store(store)
    runs = c.search_runs([exp_id], "", max_results=5000)
    assert not [r for r in runs if r.info.status == "RUNNING"]  # the crashes' runs included
    killed = [r for r in runs if r.info.status == "KILLED" and r.info.run_id not in crashed]
    assert {r.data.tags["kind"] for r in killed} == {"execution", "point"}  # the current run and its parent

    proc = start(store)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    points = check_store(store)
    killed = [r for r in points if r.info.status == "KILLED" and r.info.run_id in crashed]
    assert len(killed) >= 2  # the two the crashes caught mid-point; never counted, trained again
    print(f"{len(points)} point runs after 2 crashes and a Ctrl-C: {len(killed)} KILLED by the crashes, "
          f"{sum(r.info.status == 'FINISHED' for r in points)} FINISHED")


def test_two_sweeps_at_once_on_one_store(store):
    ensure_store(store)  # as `sweep` does before any parallel writer
    a, b = start(store), start(store)
    out_a, _ = a.communicate(timeout=400)
    out_b, _ = b.communicate(timeout=400)
    assert a.returncode == 0 and b.returncode == 0, out_a + out_b
    check_store(store)
