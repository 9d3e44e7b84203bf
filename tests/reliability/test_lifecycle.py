"""Contracts of a run's lifecycle that a tester found broken: a dead run's pid reused by another
process, SIGTERM to a parallel sweep, a result that cannot be read back, a profile that would
record nothing, the ports and stores of `server` and `ui`, and profiles a dry run let through.

Each case checks what a user sees (one line, its exit status) and what the store holds after.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from clusters import ctrl_c_as_in_a_terminal, descendants

from initprune.lab import grid, points
from initprune.lab.points import Points
from initprune.lab.store import ensure_store
from initprune.spec import RunSpec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("INITPRUNE_FIGURES", str(tmp_path / "figures"))
    return uri


def initprune(*args, uri, timeout=120, env=None):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "initprune", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


POINT = RunSpec(method="random", dataset="digits", arch="mlp", sparsity=0.5, epochs=1, seed=0)


# 1. a dead run's pid, reused by another process

def test_a_running_point_whose_pid_another_process_now_has_is_dead_and_not_waited_for(store):
    c, exp_id = ensure_store(store)
    other = subprocess.Popen(["sleep", "60"])  # the pid a killed kernel had, now someone else's
    try:
        # the runs a sweep killed with -9 left RUNNING, recorded when the dead process started
        dead = {"pid": str(other.pid), "started": "1"}
        parent = Points(c, exp_id).start_parent("random", "digits", "mlp", "test", **dead)
        point = Points(c, exp_id).open_point(POINT, parent)
        for run_id in (parent, point):
            c.set_tag(run_id, "pid", dead["pid"])
            c.set_tag(run_id, "started", dead["started"])
        assert Points(c, exp_id).holder(POINT) is None
        assert not points._alive(c.get_run(point).data.tags)
        assert points._alive(points._owner())  # this process, as it recorded itself, is alive
        assert points._alive({"pid": str(other.pid)})  # recorded without a start time: the pid alone

        out = []
        training = threading.Thread(target=lambda: out.append(grid.run_grid(
            "random", "digits", "mlp", [0.5], [0], 1, progress=False, device="cpu")), daemon=True)
        training.start()
        training.join(60)
        assert out and out[0][0].run_id != point, "the sweep waited on a dead run"
        assert Points(c, exp_id).reap() == 2  # what a sweep does first: the dead runs are marked KILLED
        assert {c.get_run(r).info.status for r in (parent, point)} == {"KILLED"}
        assert other.poll() is None  # the live process is left alone
    finally:
        other.kill()
        other.wait()


# 2. SIGTERM to a parallel sweep

def tiny_profile(tmp_path, *sparsities, name="tiny.yaml", extra="") -> str:
    """One random-pruning execution per sparsity, one seed, one epoch: a few seconds each."""
    path = tmp_path / name
    path.write_text("executions:\n" + "".join(
        f"  - {{notebook: random, sparsities: [{s}], seeds: [0], epochs: 1{extra}}}\n" for s in sparsities))
    return str(path)


def gone(pids, seconds: float) -> list[int]:
    """Those of ``pids`` still alive after ``seconds`` (zombies count as gone)."""
    deadline = time.time() + seconds
    while True:
        left = []
        for pid in pids:
            try:
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    left.append(pid)
            except OSError:
                pass
        if not left or time.time() > deadline:
            return left
        time.sleep(0.3)


def test_sigterm_stops_a_parallel_sweep_as_ctrl_c_does(store, tmp_path):
    profile = tiny_profile(tmp_path, 0.5, 0.7)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONUNBUFFERED": "1", "INITPRUNE_TEST_PAUSE": "training:120"}
    log = open(tmp_path / "sweep.log", "w+")  # a file, not a pipe: a process left behind cannot hold the test up
    proc = subprocess.Popen([sys.executable, "-m", "initprune", "sweep", "--profile", profile, "--jobs", "2"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ctrl_c_as_in_a_terminal)
    c, exp_id = ensure_store(store)
    deadline, holding = time.time() + 600, []
    while not holding and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        holding = c.search_runs([exp_id], "tags.kind = 'point' and attributes.status = 'RUNNING'")
    if not holding:
        proc.kill()
        pytest.fail(f"no point started: {(tmp_path / 'sweep.log').read_text()}")
    time.sleep(2)  # the other worker, still starting or training too
    holding = c.search_runs([exp_id], "tags.kind = 'point' and attributes.status = 'RUNNING'")
    workers = descendants(proc.pid)
    kernels = [int(r.data.tags["pid"]) for r in holding]  # the kernels, in sessions of their own
    began = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
        stopped = time.perf_counter() - began
    finally:
        left = gone(workers + kernels, 30)
        names = {pid: Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120] for pid in left}
        for pid in left:  # do not leave them to the next test
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    out = (tmp_path / "sweep.log").read_text()
    assert proc.returncode == 143, out
    assert "run the same command again to resume" in out
    assert not left, f"processes left after SIGTERM: {names}"
    print(f"stopped in {stopped:.1f}s")
    found = c.search_runs([exp_id], "", max_results=100)
    assert not [r for r in found if r.info.status == "RUNNING"]
    assert {r.info.status for r in found} == {"KILLED"}


# 3. a FINISHED point whose result cannot be read

def point_runs(c, exp_id):
    return {r.info.run_id: r.info.status for r in c.search_runs([exp_id], "tags.kind = 'point'", max_results=100)}


def test_a_finished_point_without_its_result_counts_as_not_finished(store, tmp_path, capsys):
    from urllib.parse import urlparse

    from initprune.lab import profiles, results, sweep

    c, exp_id = ensure_store(store)
    first = grid.run_grid("random", "digits", "mlp", [0.5, 0.7], [0], 1, progress=False, device="cpu")
    lost, kept = first[0].run_id, first[1].run_id
    (Path(urlparse(c.get_run(lost).info.artifact_uri).path) / "result.json").unlink()
    # and a run whose status was edited to FINISHED before it logged anything
    edited_point = RunSpec(method="random", dataset="digits", arch="mlp", sparsity=0.9, epochs=1, seed=0)
    edited = Points(c, exp_id).open_point(edited_point, None)
    c.set_terminated(edited, "FINISHED")
    capsys.readouterr()

    table = results.runs_table(store)  # what figures reads: the others, and one line naming each left out
    assert list(table["run_id"]) == [kept]
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 2 and all(line.startswith("left out: point run ") for line in said), said
    assert any(lost in line for line in said) and any(edited in line for line in said)
    named = results.without_result(c, exp_id)  # what the figures command says before its notebook runs
    assert len(named) == 2 and any(lost in line for line in named) and any(edited in line for line in named)

    profile = tmp_path / "three.yaml"
    profile.write_text("executions:\n  - {notebook: random, sparsities: [0.5, 0.7, 0.9], seeds: [0], epochs: 1}\n")
    (row,) = sweep.status(profiles.load_profile(str(profile)))
    assert len(row.points) == 3 and len(row.finished) == 1  # its execution runs again on a resume

    again = grid.run_grid("random", "digits", "mlp", [0.5, 0.7, 0.9], [0], 1, progress=False, device="cpu")
    said = capsys.readouterr().out
    assert f"point run {lost}" in said and f"point run {edited}" in said and "training it again" in said
    assert again[1].run_id == kept  # read back, not trained again
    assert again[0].run_id not in (lost, kept) and again[2].run_id != edited  # trained again
    status = point_runs(c, exp_id)
    assert status[lost] == status[edited] == "FAILED"
    assert sorted(status.values()) == ["FAILED", "FAILED", "FINISHED", "FINISHED", "FINISHED"]
    assert sorted(results.runs_table(store)["run_id"]) == sorted(r.run_id for r in again)


# 4 and 6. profiles: what a dry run must refuse as a run would

def dry_run(capsys, profile: str) -> tuple[int, str, str]:
    from initprune import cli

    capsys.readouterr()
    status = cli.main(["sweep", "--profile", profile, "--dry-run"])
    out, err = capsys.readouterr()
    return status, out, err


def refused(capsys, profile: str, *words) -> str:
    status, out, err = dry_run(capsys, profile)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, out + err
    assert lines[0].startswith("initprune: error: profile "), lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


ONE = "  - {notebook: random, sparsities: [0.5], seeds: [0], epochs: 1%s}\n"


@pytest.mark.parametrize("text, words", [
    ("defaults: [1, 2]\nexecutions:\n" + ONE % "", ["'defaults' must be a mapping", "[1, 2]"]),
    ("executions: 5\n", ["'executions' must be a list", "5"]),
    ("executions:\n" + ONE % ", log_to_mlflow: false", ["execution 1", "log_to_mlflow", "--no-tracking"]),
    ("defaults: {log_to_mlflow: false}\nexecutions:\n" + ONE % "", ["execution 1", "log_to_mlflow"]),
    ("executions:\n" + ONE % ", device: tpu", ["execution 1", "unknown device 'tpu'", "cuda:N"]),
    ("executions:\n  - {notebook: kstarts, k: 100000000000000000000, sparsities: [0.5], seeds: [0], epochs: 1}\n",
     ["execution 1", "would hold about", "lower --k"]),
    ("executions:\n  - {notebook: kstarts, k: 1e20, sparsities: [0.5], seeds: [0], epochs: 1}\n",  # YAML: a string
     ["execution 1", "k must be an integer of at least 1", "'1e20'"]),
    ("executions:\n  - {notebook: kstarts, k: 1.0e+20, sparsities: [0.5], seeds: [0], epochs: 1}\n",  # a float
     ["execution 1", "k must be an integer of at least 1", "1e+20"]),
    ("defaults:\n  epochs: 1\n  seeds: [0]\n  epochs: 2\nexecutions:\n" + ONE % "",
     ["not valid YAML", "key 'epochs' is given twice, on line 2 and line 4"]),
    ("executions:\n  - notebook: random\n    sparsities: [0.5]\n    notebook: kstarts\n",
     ["key 'notebook' is given twice, on line 2 and line 4"]),
], ids=["defaults-list", "executions-number", "log_to_mlflow", "log_to_mlflow-default", "device-tpu", "k-huge",
        "k-1e20-text", "k-1e20-float", "duplicate-default", "duplicate-in-execution"])
def test_a_profile_a_run_would_refuse_is_refused_by_the_dry_run_in_one_line(store, tmp_path, capsys, text, words):
    profile = tmp_path / "bad.yaml"
    profile.write_text(text)
    refused(capsys, str(profile), *words)


def test_a_yml_profile_is_taken_by_path_and_by_name(store, tmp_path, capsys, monkeypatch):
    from initprune.lab import profiles

    profile = tmp_path / "tiny.yml"
    profile.write_text("executions:\n" + ONE % "")
    status, out, err = dry_run(capsys, str(profile))
    assert status == 0 and "1 points in 1 executions, 0 finished" in out, out + err
    monkeypatch.setattr(profiles, "PROFILES", tmp_path)
    assert "tiny" in profiles.profiles()
    status, out, err = dry_run(capsys, "tiny")
    assert status == 0 and "1 points in 1 executions" in out, out + err
    refused(capsys, str(tmp_path / "other.yml"), "other.yml not found")
    assert ".yml.yaml" not in refused(capsys, str(tmp_path / "other.yml"))


# 5. the ports and stores of `server` and `ui`

@pytest.fixture
def no_start(monkeypatch):
    """Where a command would start MLflow's server, record it instead."""
    from initprune.lab import serve

    started = []
    monkeypatch.setattr(serve, "serve", lambda name, command, *args: started.append(command) or 0)
    return started


def command_error(capsys, *args, words=()) -> str:
    from initprune import cli

    capsys.readouterr()
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("initprune: error: "), (status, out + err)
    assert "MLflow" not in out, out  # no address printed to use
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", ["ui", "server"])
def test_a_port_out_of_range_or_taken_is_refused_before_any_address_is_printed(store, tmp_path, capsys, no_start,
                                                                                 command):
    import socket

    extra = ["--store", str(tmp_path)] if command == "server" else []
    command_error(capsys, command, "--port", "70000", *extra, words=["--port 70000", "1-65535"])
    command_error(capsys, command, "--port", "0", *extra, words=["1-65535"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command_error(capsys, command, "--port", str(port), *extra, words=[f"port {port} on 127.0.0.1 is taken"])
    assert not no_start


def test_server_refuses_a_store_that_is_missing_a_file_or_damaged_naming_it(store, tmp_path, capsys, no_start):
    from clusters import free_port

    port = str(free_port())
    command_error(capsys, "server", "--port", port, "--store", str(tmp_path / "missing"),
                  words=[f"--store {tmp_path / 'missing'} does not exist"])
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("")
    command_error(capsys, "server", "--port", port, "--store", str(tmp_path / "file"), words=["is a file"])
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "mlflow.db").write_bytes(b"this is not a database" * 100)
    command_error(capsys, "server", "--port", port, "--store", str(damaged),
                  words=[f"the MLflow store {damaged / 'mlflow.db'} is damaged"])
    assert not no_start


# 7. a point held by a sweep on another host (a shared store)

def held_elsewhere(c, exp_id, config=POINT) -> tuple[str, str]:
    """An execution and the point it holds, RUNNING, as a sweep on host "elsewhere" left them."""
    parent = Points(c, exp_id).start_parent("random", "digits", "mlp", "test")
    point = Points(c, exp_id).open_point(config, parent)
    for run_id in (parent, point):
        c.set_tag(run_id, "host", "elsewhere")
    return parent, point


def test_a_point_whose_holder_on_another_host_missed_three_heartbeats_is_taken_over(store, monkeypatch):
    monkeypatch.setattr(points, "HEARTBEAT", 0.2)
    c, exp_id = ensure_store(store)
    _, point = held_elsewhere(c, exp_id)  # its sweep died: nothing refreshes its heartbeat
    assert Points(c, exp_id).holder(POINT).info.run_id == point  # not yet: three beats are missed first
    out = []
    began = time.perf_counter()
    training = threading.Thread(target=lambda: out.append(grid.run_grid(
        "random", "digits", "mlp", [0.5], [0], 1, progress=False, device="cpu")), daemon=True)
    training.start()
    training.join(60)
    assert out, "the point held by a dead sweep on another host was waited for without end"
    assert time.perf_counter() - began >= 3 * points.HEARTBEAT
    taken = c.get_run(point)
    assert taken.info.status == "FAILED" and "abandoned" in taken.data.tags["error"], taken.data.tags
    assert "elsewhere" in taken.data.tags["error"]
    assert out[0][0].run_id != point and c.get_run(out[0][0].run_id).info.status == "FINISHED"


def test_a_point_whose_holder_on_another_host_beats_is_waited_for(store, monkeypatch):
    monkeypatch.setattr(points, "HEARTBEAT", 0.1)
    c, exp_id = ensure_store(store)
    _, point = held_elsewhere(c, exp_id)
    with Points(c, exp_id).beating([point], None):  # the live sweep over there, as its heartbeat shows it
        deadline = time.time() + 10 * points.HEARTBEAT
        while time.time() < deadline:
            assert Points(c, exp_id).holder(POINT).info.run_id == point
            time.sleep(points.HEARTBEAT / 2)
    assert c.get_run(point).info.status == "RUNNING"


def test_the_heartbeat_advances_while_a_point_trains_and_stops_after(store, monkeypatch):
    from initprune import api

    monkeypatch.setattr(points, "HEARTBEAT", 0.1)
    c, exp_id = ensure_store(store)
    parent = Points(c, exp_id).start_parent("random", "digits", "mlp", "test")
    point = Points(c, exp_id).open_point(POINT, parent)
    heard = []

    def train(configs, data_root=None):  # what the point's run shows while it trains
        for _ in range(4):
            heard.append(int(c.get_run(point).data.tags["heartbeat"]))
            time.sleep(0.3)
        raise RuntimeError("stop here")

    monkeypatch.setattr(api, "run_group", train)
    with pytest.raises(RuntimeError, match="stop here"):
        grid.train(Points(c, exp_id), parent, [POINT], [point], None)
    assert heard == sorted(heard) and len(set(heard)) == 4, heard
    last = c.get_run(point).data.tags["heartbeat"]
    time.sleep(0.5)
    assert c.get_run(point).data.tags["heartbeat"] == last  # no beat once the point has ended


def test_the_sweep_shows_a_wait_for_another_host_and_sigterm_then_ends_it_in_one_line(store, tmp_path):
    c, exp_id = ensure_store(store)
    config = grid.expand("random", "digits", "mlp", [0.5], [0], 1)[0]  # the profile's point, as resolved
    parent, point = held_elsewhere(c, exp_id, config)
    log = open(tmp_path / "sweep.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "initprune", "sweep", "--profile", tiny_profile(tmp_path, 0.5)],
                            env={**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONUNBUFFERED": "1",
                                 "INITPRUNE_HEARTBEAT": "600"},  # the holder over there is taken for alive
                            stdout=log, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        deadline = time.time() + 120
        while "waiting for" not in (tmp_path / "sweep.log").read_text() and time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "sweep.log").read_text() + proc.stderr.read()
            time.sleep(0.3)
        out = (tmp_path / "sweep.log").read_text()
        line = next(line for line in out.splitlines() if "waiting for" in line)  # the sweep says it, not the kernel
        assert point in line and "elsewhere" in line, out
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "terminated" in err, err
    assert {c.get_run(r).info.status for r in (parent, point)} == {"RUNNING"}  # the other sweep's are its own
    assert not [r for r in c.search_runs([exp_id], "tags.host != 'elsewhere'") if r.info.status == "RUNNING"]
