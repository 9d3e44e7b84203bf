"""`ui` and `server` run MLflow as their children: SIGTERM or SIGHUP to initprune (a service
manager stopping it, a closed terminal) ends MLflow and every process it started, and the port is
free again.

A real `ui` on a free port over a temporary store; what it started is read from /proc while it
serves, and looked for again after the signal."""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from clusters import HOST, ctrl_c_as_in_a_terminal, descendants, free_port


def session_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def in_sessions(sessions: set[int]) -> list[int]:
    """Every live process whose session is one of ``sessions`` (zombies are gone already)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) in sessions:
            found.append(int(stat.parent.name))
    return found


def answers(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def lines_of(proc) -> queue.Queue:
    """The process's output, a line at a time, read by a thread so that a wait can time out."""
    out: queue.Queue = queue.Queue()

    def read():
        for line in proc.stdout:
            out.put(line)
        out.put(None)

    threading.Thread(target=read, daemon=True).start()
    return out


def wait_for(out: queue.Queue, words: str, timeout: float) -> list[str]:
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            line = out.get(timeout=max(0.1, deadline - time.time()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if words in line:
            return seen
    raise AssertionError(f"no line with {words!r} in {timeout}s: {''.join(seen)}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_ui_ends_mlflow_and_all_it_started_and_frees_the_port(tmp_path, sig):
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "PYTHONUNBUFFERED": "1",
           "INITPRUNE_CREDENTIALS": str(tmp_path / "credentials")}
    proc = subprocess.Popen([sys.executable, "-m", "initprune", "ui", "--no-auth", "--host", HOST, "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=ctrl_c_as_in_a_terminal)  # under nohup too
    started, sessions = [], {proc.pid}
    try:
        out = lines_of(proc)
        said = wait_for(out, "compare runs at", 120)  # once it answers; a loaded machine starts slowly
        assert any("MLflow authentication: off" in line for line in said)  # said before it started
        started = descendants(proc.pid)
        sessions |= {s for s in map(session_of, started) if s is not None}
        assert started and answers(port)
        proc.send_signal(sig)
        status = proc.wait(90)  # its children end first; a loaded machine ends them slowly
        deadline = time.time() + 20
        while time.time() < deadline and (in_sessions(sessions) or answers(port)):
            time.sleep(0.2)
        assert not in_sessions(sessions), [Path(f"/proc/{p}/cmdline").read_bytes() for p in in_sessions(sessions)]
        assert not answers(port)
        said = list(iter(out.get, None))  # MLflow's own log lines, then initprune's last
        assert status == 0 and said and said[-1].startswith("MLflow UI stopped"), (status, said)
        assert not any("Traceback" in line for line in said), said
    finally:
        for pid in [proc.pid, *started, *in_sessions(sessions)]:  # nothing stays, whatever failed
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait()


def test_the_ui_opens_on_the_points_with_columns_a_logged_point_has(tmp_path, monkeypatch):
    """The address `ui` prints names a shared view (an experiment tag) whose columns are the
    method, cell, sparsity and accuracy of the points, in MLflow's model-training mode."""
    import json

    from initprune import api
    from initprune.lab import grid, serve, store
    from initprune.lab.points import Points
    from initprune.spec import RunSpec

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    config = RunSpec(method="random", dataset="digits", arch="mlp", sparsity=0.5, epochs=1, seed=0)
    result = api.run(config, record=lambda report: grid.log_run(config, report, uri))
    c, exp_id = store.ensure_store(uri)
    query = serve.runs_view(Points(c, exp_id))
    assert query == "?viewStateShareKey=initprune&workflowType=machine_learning"
    tags = c.get_experiment(exp_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(tags["mlflow.sharedViewState.initprune"])
    run = c.get_run(result.run_id)
    assert run.data.tags["kind"] == "point"  # what the view's filter keeps
    assert view["searchFilter"] == "tags.kind = 'point'"
    logged = {"tags": run.data.tags, "params": run.data.params, "metrics": run.data.metrics}
    for column in view["selectedColumns"]:  # "metrics.`test_accuracy`": a key the point has
        kind, key = column.split(".", 1)
        assert key.strip("`") in logged[kind], column
    assert {"metrics.`test_accuracy`", "params.`sparsity`", "tags.`method`"} <= set(view["selectedColumns"])
