"""``python -m initprune ui | server``: MLflow's UI or tracking server over the store, as a child
of this process that ends with it.

MLflow starts in a session of its own (its server, its workers, whatever they start), and its
address is printed once it answers ``/health``, not before. Ctrl-C, SIGTERM (a service manager,
``kill``) or SIGHUP (a closed terminal) ends that whole session: SIGTERM first, SIGKILL to what
is left after a grace period; then one line says it stopped. The password of MLflow's basic-auth
app travels in MLflow's environment, never on its command line (``/proc/PID/cmdline`` is
readable by every user; the environment is not).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..errors import InitpruneError
from . import root, store
from .points import POINT, Points, where

GRACE = 10.0  # seconds MLflow has to stop after SIGTERM, before SIGKILL


def check_port(host: str, port: int) -> None:
    """A port in 1-65535 that is free on ``host``: bound once and closed, before any address is printed."""
    if not 1 <= port <= 65535:
        raise InitpruneError(f"--port {port} is not a port; give a number in 1-65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as err:
        raise InitpruneError(f"--host {host} is not an address of this machine ({err}); give one, "
                             "e.g. 127.0.0.1 or 0.0.0.0") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise InitpruneError(f"port {port} on {host} is taken (another server is listening there); "
                                     "pass --port with a free one (make ui PORT=...)") from None
            raise InitpruneError(f"cannot listen on {host}:{port} ({err.strerror}); pass another --host or "
                                 "--port") from None


def ui(host: str, port: int, no_auth: bool) -> int:
    """The MLflow UI over the default store, until Ctrl-C, SIGTERM or SIGHUP."""
    check_port(host, port)
    uri = store.default_uri()
    runs = store.points(uri)
    view = runs_view(runs)
    command = ["-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port),
               "--workers", "1"]
    artifacts = store.artifact_root(uri)
    if artifacts:
        command += ["--default-artifact-root", artifacts]
    env, said = _auth(host, port, no_auth, Path(uri[len("sqlite:///"):]).parent if uri.startswith("sqlite:///")
                      else None)
    if not no_auth:
        command += ["--app-name", "basic-auth"]
    address = f"http://{_reachable(host)}:{port}"
    print(f"MLflow UI: starting on {host}:{port} ...", said, sep="\n", flush=True)  # the login: known before
    return serve("MLflow UI", command, env, address,
                 [f"MLflow UI: compare runs at {address}/#/experiments/{runs.exp_id}/runs{view} (Ctrl-C stops it)"])


def server(host: str, port: int, folder: Path | None, allowed_hosts: str | None, no_auth: bool) -> int:
    """``mlflow server`` over the project's sqlite store in ``folder`` (default mlruns/), serving
    its artifacts to the workers, until Ctrl-C, SIGTERM or SIGHUP."""
    check_port(host, port)
    if folder is not None and not folder.is_dir():
        problem = "is a file" if folder.exists() else "does not exist"
        raise InitpruneError(f"--store {folder} {problem}; give the folder of a store (its mlflow.db and "
                             "artifacts/), or leave it out for mlruns/")
    folder = (folder or root.root() / "mlruns").resolve()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    folder.mkdir(exist_ok=True)
    store.check_store(uri)  # a damaged database is named as the one given
    try:
        store.client(uri).search_experiments(max_results=1)  # create the database before the server's workers
    except Exception as err:
        problem = store.store_error(err, uri)
        if problem is None:
            raise
        raise problem from None
    env, said = _auth(host, port, no_auth, folder)
    command = ["-m", "mlflow", "server", "--backend-store-uri", uri, "--serve-artifacts",
               "--artifacts-destination", str(folder / "artifacts"), "--host", host, "--port", str(port),
               "--workers", "2"]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    if not no_auth:
        command += ["--app-name", "basic-auth"]
    print(f"MLflow tracking server: starting on {host}:{port} ...", said, sep="\n", flush=True)
    return serve("MLflow tracking server", command, env, f"http://{_reachable(host)}:{port}",
                 [f"MLflow tracking server at http://{host}:{port} (Ctrl-C stops it): on every worker and the driver, "
                  f"export MLFLOW_TRACKING_URI=http://{host if host != '0.0.0.0' else 'THIS_HOST'}:{port}"])


VIEW = "initprune"  # the runs table's view, an experiment tag: mlflow.sharedViewState.initprune
COLUMNS = ("tags.`method`", "tags.`dataset`", "tags.`arch`", "params.`sparsity`", "tags.`seed`",
           "metrics.`test_accuracy`", "metrics.`sparsity_actual`", "metrics.`effective_sparsity`", "metrics.`seconds`")


def runs_view(runs: Points) -> str:
    """The runs table as the UI opens it from the printed address: the points, with their method,
    cell, sparsity and test accuracy as columns, in MLflow's model-training mode (3.x opens an
    experiment without runs of that kind in its GenAI mode). MLflow keeps a table's columns in the
    browser, except for a shared view: an experiment tag ``mlflow.sharedViewState.KEY`` that the
    address names (``viewStateShareKey``). Returns the address's query."""
    state = {"selectedColumns": list(COLUMNS), "searchFilter": where(kind=POINT)}
    runs.client.set_experiment_tag(runs.exp_id, f"mlflow.sharedViewState.{VIEW}", json.dumps(state))
    runs.client.set_experiment_tag(runs.exp_id, "mlflow.experimentKind", "custom_model_development")
    return f"?viewStateShareKey={VIEW}&workflowType=machine_learning"


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def _auth(host: str, port: int, no_auth: bool, folder: Path | None) -> tuple[dict, str]:
    """The server's environment for MLflow's basic-auth app (its users beside the store in
    ``folder``), and the line that says where the credentials are; with --no-auth, the line that
    says who can write."""
    from . import auth

    if no_auth:
        return {}, auth.off_line(host, port)
    return auth.server_environment(folder or root.root() / "mlruns")


class Stopped(BaseException):
    """SIGTERM or SIGHUP while MLflow serves."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)


def serve(name: str, command: list[str], env: dict, address: str, ready: list[str]) -> int:
    """Run ``python COMMAND`` (MLflow) with ``env`` added to this environment in a session of its
    own; print ``ready`` once ``address`` answers ``/health``; end the session on Ctrl-C, SIGTERM
    or SIGHUP. Returns 0 when stopped so, else MLflow's own exit status."""
    handled = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) is not signal.SIG_IGN]  # nohup

    def stop(signum, frame):
        raise Stopped(signum)

    before = {s: signal.signal(s, stop) for s in handled}
    child, stopped = None, None
    try:
        child = subprocess.Popen([sys.executable, *command], env={**os.environ, **env}, start_new_session=True)
        while child.poll() is None:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise InitpruneError(f"{name} exited with status {child.returncode} before it answered (is the port "
                                 "taken? pass --port, or PORT=... to make)")
        for line in ready:
            print(line, flush=True)
        status = child.wait()
        print(f"{name} exited with status {status}", flush=True)
        return status
    except (KeyboardInterrupt, Stopped) as why:
        for s in (*handled, signal.SIGINT):  # the clean-up below is not cut short by a second signal
            signal.signal(s, signal.SIG_IGN)
        stopped = "Ctrl-C" if isinstance(why, KeyboardInterrupt) else str(why)
        return 0
    finally:
        if child is not None:
            end(child)  # however it ended: nothing of MLflow's stays
        if stopped:
            print(f"{name} stopped ({stopped})", flush=True)
        for s, handler in before.items():
            signal.signal(s, handler)


def end(child: subprocess.Popen, grace: float = GRACE) -> None:
    """End ``child``'s session (it leads it: started with a session of its own) and whatever it
    started elsewhere: SIGTERM, then SIGKILL to what is left after ``grace`` seconds."""
    others = [p for p in descendants(child.pid) if _session(p) != child.pid]  # e.g. MLflow's jobs, in their own
    _signal(child.pid, others, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(child, others):
        time.sleep(0.1)
    if _alive(child, others):
        _signal(child.pid, others, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(grace)


def _signal(group: int, others: list[int], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)
    for pid in others:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive(child: subprocess.Popen, others: list[int]) -> bool:
    child.poll()  # reaps MLflow's server once it exited: a zombie is not alive
    try:
        os.killpg(child.pid, 0)
        return True
    except ProcessLookupError:
        pass
    except PermissionError:
        return True
    return any(_session(p) is not None for p in others)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command's name; None where there is no such live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields


def _session(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[3]) if fields else None


def descendants(pid: int) -> list[int]:
    """Every live process under ``pid`` (Linux's /proc; elsewhere none: the session does)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
