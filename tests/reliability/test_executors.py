"""Sweeps on real clusters, on 127.0.0.1: a two-node Ray cluster with token authentication, a
Dask scheduler with two workers, both logging to a real MLflow tracking server.

Each executor must give the runs the local process pool gives, even when a worker is killed with
SIGKILL in the middle of an execution: that leaves a KILLED attempt, a FINISHED retry and one
FINISHED run per grid point. A notebook that raises must be FAILED once, not retried, and the
sweep must end non-zero with a summary. The grid is two small executions (random pruning, two seeds;
dissipating gradients): the whole smoke profile runs in tests/test_sweep.py, once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from clusters import RAY_ENV, WORKER_ENV, Services, ctrl_c_as_in_a_terminal, dask_cluster, mlflow_server, ray_cluster

from initprune.lab import profiles, store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TWO = "executions:\n  - {notebook: random, sparsities: [0.5], seeds: [0, 1], epochs: 1}\n" \
      "  - {notebook: dissipating, sparsities: [0.5], epochs: 2, prune_epochs: 1}\n"


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    running = Services(tmp_path_factory.mktemp("logs"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(services, tmp_path_factory):
    return mlflow_server(services, tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    path = tmp_path_factory.mktemp("profile") / "two.yaml"
    path.write_text(TWO)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, two):
    """The two executions on the local process pool: the results every executor must give."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('local')}/mlflow.db"
    out = run_sweep(uri, "local-reference", "--jobs", "2", profile=two)
    assert out.returncode == 0, out.stdout
    found = points(uri, "local-reference")
    assert set(found) == {(p.hash(), p.seed) for ex in profiles.load_profile(str(two)) for p in ex.points}
    return found


@pytest.fixture(scope="module", params=["ray", "dask"])
def cluster(request, tmp_path_factory):
    """The executor's flags; its cluster runs for the tests of that executor, then stops."""
    running = Services(tmp_path_factory.mktemp(request.param))
    try:
        if request.param == "ray":
            yield ["--executor", "ray", "--ray-address", ray_cluster(running)]
        else:
            yield ["--executor", "dask", "--dask-scheduler", dask_cluster(running)]
    finally:
        running.stop()


def start_sweep(uri, experiment, *args, profile="smoke", **env):
    env = {**os.environ, **RAY_ENV, "MLFLOW_TRACKING_URI": uri, "INITPRUNE_EXPERIMENT": experiment,
           "PYTHONUNBUFFERED": "1", **env}
    return subprocess.Popen([sys.executable, "-m", "initprune", "sweep", "--profile", str(profile), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ctrl_c_as_in_a_terminal)


def run_sweep(uri, experiment, *args, **kw):
    proc = start_sweep(uri, experiment, *args, **kw)
    out, _ = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out)


def all_runs(uri, experiment):
    os.environ["INITPRUNE_EXPERIMENT"] = experiment
    try:
        c, exp_id = store.ensure_store(uri)
        return c, c.search_runs([exp_id], "", max_results=5000)
    finally:
        del os.environ["INITPRUNE_EXPERIMENT"]


def points(uri, experiment) -> dict:
    """{(config hash, seed): test accuracy} of the FINISHED points, checking there is one each."""
    _, runs = all_runs(uri, experiment)
    finished = [r for r in runs if r.data.tags.get("kind") == "point" and r.info.status == "FINISHED"]
    keys = [(r.data.tags["config_hash"], int(r.data.tags["seed"])) for r in finished]
    assert len(keys) == len(set(keys)), "a grid point with two FINISHED runs"
    return {k: r.data.metrics["test_accuracy"] for k, r in zip(keys, finished)}


def check_true(uri, experiment):
    """Nothing left RUNNING; every FINISHED execution has its notebook and a host and attempt tag."""
    c, runs = all_runs(uri, experiment)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    for r in runs:
        if r.data.tags.get("kind") == "execution" and r.info.status == "FINISHED":
            assert {"cell", "attempt", "host", "sweep"} <= set(r.data.tags)
            assert c.list_artifacts(r.info.run_id), "a FINISHED execution without its notebook"
    return runs


def test_a_worker_killed_mid_execution_is_retried_and_the_runs_are_the_local_pools(server, cluster, reference,
                                                                                    two, tmp_path):
    experiment = f"kill-{cluster[1]}"
    marker = tmp_path / "paused"  # the first point to start training waits there, once
    proc = start_sweep(server, experiment, *cluster, profile=two, INITPRUNE_TEST_PAUSE=f"training:120:{marker}")
    deadline = time.time() + 300
    while not (marker.exists() and marker.read_text()) and time.time() < deadline:
        time.sleep(0.3)
    kernel = int(marker.read_text())  # the notebook kernel holding that point
    c, runs = all_runs(server, experiment)
    point = next(r for r in runs if r.data.tags.get("pid") == str(kernel) and r.info.status == "RUNNING")
    execution = c.get_run(point.data.tags["mlflow.parentRunId"])
    worker = int(execution.data.tags["pid"])
    assert worker != proc.pid  # a worker of the cluster, not the driver
    os.kill(worker, signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "1 execution(s) retried after a lost worker" in out
    assert "done: 2 executions finished, 0 failed, 0 skipped" in out

    runs = check_true(server, experiment)
    attempts = {r.data.tags["attempt"]: r.info.status for r in runs
                if r.data.tags.get("cell") == execution.data.tags["cell"]}
    assert attempts == {"1": "KILLED", "2": "FINISHED"}
    others = [r.data.tags["attempt"] for r in runs if r.data.tags["kind"] == "execution"
              and r.data.tags["cell"] != execution.data.tags["cell"]]
    assert others == ["1"]  # the execution the kill did not touch ran once
    assert c.get_run(point.info.run_id).info.status == "KILLED"  # what the dead worker was training
    found = points(server, experiment)  # one FINISHED run per point ...
    assert set(found) == set(reference)
    assert found == pytest.approx(reference, abs=1e-6)  # ... and the same training, wherever it ran
    _gone_within(kernel, 10)  # the notebook kernel did not outlive its worker
    print(f"{cluster[1]}: killed worker {worker} while its kernel {kernel} trained {point.data.tags['method']}; "
          f"attempts {attempts}; {out.strip().splitlines()[-1]}")


def test_a_notebook_that_raises_is_failed_once_and_the_sweep_goes_on(server, cluster, two):
    """The task returns the notebook's failure (tasks.run_task catches it), on any executor alike;
    shown on Ray, the executor told to retry (max_retries), where a second attempt would show."""
    if cluster[1] != "ray":
        pytest.skip("a raising notebook is a returned result on every executor; shown on Ray, which retries")
    experiment = f"raise-{cluster[1]}"
    out = run_sweep(server, experiment, *cluster, profile=two, INITPRUNE_INJECT_FAILURE="random:1")
    assert out.returncode == 1, out.stdout
    assert "FAILED random digits/mlp" in out.stdout and "injected failure at random seed 1" in out.stdout
    assert "done: 1 executions finished, 1 failed, 0 skipped" in out.stdout
    runs = check_true(server, experiment)
    executions = {r.data.tags["method"]: r for r in runs if r.data.tags["kind"] == "execution"}
    assert len(executions) == 2  # no second attempt
    assert executions["random"].info.status == "FAILED" and executions["random"].data.tags["attempt"] == "1"
    assert executions["dissipating"].info.status == "FINISHED"
    seeds = {r.data.tags["seed"]: r.info.status for r in runs if r.data.tags.get("method") == "random"
             and r.data.tags["kind"] == "point"}
    assert seeds == {"0": "FINISHED", "1": "FAILED"}
    print(f"{cluster[1]}: " + " | ".join(out.stdout.strip().splitlines()[-2:]))


def test_a_plugin_method_runs_on_the_workers_with_its_option(server, cluster, tmp_path):
    """tests/plugins/initprune_mine, named by INITPRUNE_PLUGINS and installed on the workers (on
    their path): its method, model and dataset run in the workers' notebook kernels, no notebook
    edited, and its option reaches every point."""
    if cluster[1] != "dask":
        pytest.skip("the plugin's run on a cluster is shown on Dask; Ray runs the same task")
    experiment = "plugin-dask"
    profile = tmp_path / "mine.yaml"
    profile.write_text("executions:\n  - {notebook: baselines, dataset: blobs, arch: tiny, method: [mine], "
                       "my_option: 2, sparsities: [0.5], seeds: [0, 1], epochs: 2}\n")
    out = run_sweep(server, experiment, *cluster, profile=profile, INITPRUNE_PLUGINS="initprune_mine", **WORKER_ENV)
    assert out.returncode == 0, out.stdout
    assert "done: 1 executions finished, 0 failed, 0 skipped" in out.stdout
    runs = check_true(server, experiment)
    mine = [r for r in runs if r.data.tags.get("kind") == "point"]
    assert len(mine) == 2 and {r.info.status for r in mine} == {"FINISHED"}
    assert {(r.data.tags["method"], r.data.tags["dataset"], r.data.params["option.my_option"]) for r in mine} == \
        {("mine", "blobs", "2")}


def test_ctrl_c_stops_the_sweep_and_leaves_nothing_running(server, cluster, two):
    experiment = f"ctrl-c-{cluster[1]}"
    proc = start_sweep(server, experiment, *cluster, profile=two, INITPRUNE_TEST_PAUSE="training:300")
    deadline = time.time() + 300
    while time.time() < deadline:
        c, runs = all_runs(server, experiment)
        holding = [r for r in runs if r.data.tags.get("kind") == "point" and r.info.status == "RUNNING"]
        if holding:
            break
        time.sleep(0.5)
    began = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.perf_counter() - began < 30, out
    assert "run the same command again to resume" in out
    runs = check_true(server, experiment)
    assert {r.info.status for r in runs} == {"KILLED"}
    if cluster[1] == "ray":  # Ray cancels running tasks: the kernels that held the points are gone.
        for point in holding:  # (Dask cannot stop a running task; what it finishes is not counted.)
            _gone_within(int(point.data.tags["pid"]), 15)


def _gone_within(pid: int, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} outlived its worker")
