"""Real services on 127.0.0.1 for the executor tests: an MLflow tracking server, a two-node Ray
cluster with token authentication, a Dask scheduler with two workers. Each runs in its own
process session, so that stopping it stops everything it started, and nothing else."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from initprune.lab.serve import descendants  # noqa: F401  (the tests walk processes as serve does)

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
# the test plugin (tests/plugins), importable on every worker as a user's own package would be installed there
PLUGINS = str(Path(__file__).resolve().parent / "plugins")
WORKER_ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [PLUGINS, os.environ.get("PYTHONPATH")]))}


def ctrl_c_as_in_a_terminal() -> None:
    """For Popen's preexec_fn: a process started from a background job inherits SIGINT ignored,
    and one started under nohup SIGHUP too (which `ui` and `server` then keep ignoring, as nohup
    asks); give both a terminal's default, so that a test can press Ctrl-C or close the terminal
    wherever the suite runs."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(check, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not come up in {timeout}s")


class Services:
    """Processes started in their own sessions; ``stop`` ends each session, children included."""

    def __init__(self, log_dir: Path):
        self.log_dir, self.procs = log_dir, []

    def start(self, name: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")
        proc = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, grace: float = 5) -> None:
        """SIGTERM to every session, then SIGKILL to what is still there after ``grace`` seconds
        (``ray start --block`` outwaits 20: the tests are over, and nothing they read is kept)."""
        for proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.time() + grace
        for proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            proc.wait()

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text()


def _signal_group(proc, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def mlflow_server(services: Services, store: Path) -> str:
    port = free_port()
    store.mkdir(parents=True, exist_ok=True)  # `server --store` refuses a folder that does not exist
    services.start("mlflow", [sys.executable, "-m", "initprune", "server", "--store", str(store),
                              "--host", HOST, "--port", str(port)])
    uri = f"http://{HOST}:{port}"
    wait_until(lambda: urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200, "the MLflow server")
    return uri


RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}


def _agent_ports() -> list[str]:
    """Fixed ports for a node's agents: with them the raylet need not wait for its agent to write
    its port to a file, a wait that times out after 15 s (ray-project/ray#65983) when the agent
    starts slowly on a loaded 2-core machine."""
    return [f"--metrics-export-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]


def ray_cluster(services: Services, attempts: int = 3) -> str:
    """`ray start --head` and a second node with `ray start --address`, one CPU each; a start that
    fails (Ray's own start-up races under load) is stopped and tried again."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        address = f"{HOST}:{port}"
        common = ["--block", f"--node-ip-address={HOST}", "--num-cpus=1", "--object-store-memory=100000000",
                  "--disable-usage-stats"]
        started = len(services.procs)
        services.start("ray-head", [str(BIN / "ray"), "start", "--head", f"--port={port}", "--include-dashboard=false",
                                    *common, *_agent_ports()], {**RAY_ENV, **WORKER_ENV})
        count = (f"import ray; ray.init(address='{address}', logging_level='ERROR'); "
                 "print(sum(n['Alive'] for n in ray.nodes()))")
        try:
            wait_until(lambda port=port: socket.create_connection((HOST, port), timeout=1).close() or True,
                       "the Ray head")
            services.start("ray-node", [str(BIN / "ray"), "start", f"--address={address}", *common, *_agent_ports()],
                           {**RAY_ENV, **WORKER_ENV})
            wait_until(lambda count=count: subprocess.run([sys.executable, "-c", count], env={**os.environ, **RAY_ENV},
                                                          text=True, capture_output=True, timeout=60).stdout.strip()
                       == "2", "two Ray nodes")
            return address
        except AssertionError:
            if attempt == attempts:
                raise
            for proc in services.procs[started:]:  # this attempt's nodes, then a fresh start
                _signal_group(proc, signal.SIGTERM)
                proc.wait()
            del services.procs[started:]
    raise AssertionError("unreachable")


def dask_cluster(services: Services) -> str:
    """`dask scheduler` and two `dask worker`s of one thread each."""
    port = free_port()
    address = f"tcp://{HOST}:{port}"
    services.start("dask-scheduler", [str(BIN / "dask"), "scheduler", "--host", HOST, "--port", str(port),
                                      "--no-dashboard"])
    for i in range(2):
        services.start(f"dask-worker-{i}", [str(BIN / "dask"), "worker", address, "--host", HOST, "--nthreads", "1",
                                            "--no-dashboard", "--name", f"worker-{i}"], WORKER_ENV)

    def two_workers():
        from distributed import Client

        with Client(address, timeout="5s") as client:
            return len(client.scheduler_info(n_workers=-1)["workers"]) == 2

    wait_until(two_workers, "two Dask workers")
    return address


def one_line_error(proc, *words, status=2) -> str:
    """The exit status, and one line on stderr that names the cause, without a traceback."""
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("initprune: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
