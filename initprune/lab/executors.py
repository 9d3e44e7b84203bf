"""Where a sweep's notebook executions run: a local process pool, a Ray cluster or a Dask cluster.

Each executor is a generator: it takes the sweep's tasks and yields each one's small result dict
as it completes. Closing it (at the end, on Ctrl-C, on an error) cancels what has not finished.
The engines do the scheduling; nothing here schedules by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from ..errors import InitpruneError
from ..registry import Registry
from . import kernel
from .tasks import Task, run_task

PACKAGE = Path(__file__).resolve().parents[1]  # initprune/, its lab/ and report/ included
# every executor takes the tasks and the sweep's settings as keywords (jobs, address, scheduler,
# retries; each reads those it needs) and yields each task's small result as it completes
EXECUTORS: Registry = Registry("executor")


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken as Ctrl-C is: what runs stops, what is RUNNING is marked KILLED; exit status 143."""

    status = 143


@EXECUTORS.register("local")
def local(tasks: list[Task], jobs: int = 1, **_) -> Iterator[dict]:
    """A process pool on this machine (``--jobs``); one job runs in this process. Closed before
    every task returned (Ctrl-C, SIGTERM, an error), it stops its workers as Ctrl-C would, and
    waits for them to mark what they held KILLED and exit."""
    if jobs == 1:
        try:
            for task in tasks:
                yield run_task(task, keep_kernel=True)
        finally:
            kernel.close()
        return
    pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_worker_signals)
    futures = [pool.submit(_in_worker, task) for task in tasks]
    complete = False
    try:
        for future in as_completed(futures):
            yield future.result()
        complete = True
    finally:
        for future in futures:
            future.cancel()
        if not complete:
            for process in list((getattr(pool, "_processes", None) or {}).values()):  # the pool's own workers
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGTERM)
        pool.shutdown(wait=True, cancel_futures=True)


_stopping = _busy = False  # a pool worker's state: told to stop; running a task


def _worker_signals() -> None:
    """A pool worker takes SIGTERM as it takes Ctrl-C, once: a task it runs is interrupted (its
    runs marked KILLED), one it has not started never starts, and an idle worker exits."""
    def stop(signum, frame):
        global _stopping
        if _stopping:
            return
        _stopping = True
        if not _busy:
            raise SystemExit(128 + signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=_orphaned, args=(os.getppid(),), daemon=True).start()


def _orphaned(parent: int, grace: float = 30) -> None:
    """A worker whose sweep died (kill -9) stops as if told to, then exits: never idle forever."""
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)  # what it was running marks its runs KILLED meanwhile
    os._exit(143)


def _in_worker(task: Task) -> dict:
    global _busy
    if _stopping:
        raise Terminated()
    _busy = True
    try:
        return run_task(task, keep_kernel=True)
    finally:
        _busy = False


def _failed(task: Task, err: BaseException) -> dict:
    """What a task that never returned reports: the engine's error, in one line."""
    text = str(err).strip().splitlines()
    return {"label": task.execution.label, "error": f"{type(err).__name__}: {text[0] if text else ''}"[:300],
            "seconds": 0.0, "attempt": None, "cell": task.execution.cell}


@EXECUTORS.register("ray")
def ray(tasks: list[Task], address: str | None = None, retries: int = 3, **_) -> Iterator[dict]:
    """Each task a Ray task with the profile's CPUs and GPUs (Ray sets CUDA_VISIBLE_DEVICES for
    it), retried when its worker dies. With an address, the package's code travels in the
    runtime environment, for workers that do not share this filesystem."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray as engine
        from ray.exceptions import AuthenticationError, RayError
    except ImportError:
        raise InitpruneError("--executor ray needs Ray: pip install -e '.[ray]' (make setup installs it)") from None
    try:
        if address:
            engine.init(address=address, runtime_env={"py_modules": [str(PACKAGE)]}, log_to_driver=False,
                        logging_level=logging.WARNING)
        else:
            # "local": a new instance of our own, never a stale one a crashed run left registered
            engine.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except AuthenticationError:
        raise InitpruneError(
            f"the Ray cluster at {address} wants its authentication token: set RAY_AUTH_MODE=token and "
            "RAY_AUTH_TOKEN (or copy ~/.ray/auth_token from the head node, `ray get-auth-token`)") from None
    except ConnectionError as err:
        raise InitpruneError(f"cannot reach a Ray cluster at {address} ({str(err).splitlines()[0]}); start one "
                             "with `ray start --head`, and if it uses tokens set RAY_AUTH_MODE=token") from None
    pending = {}
    try:
        nodes = [n["Resources"] for n in engine.nodes() if n["Alive"]]  # a task runs on one node
        for what, name in (("cpus", "CPU"), ("gpus", "GPU")):
            need, largest = max(getattr(t, what) for t in tasks), max((n.get(name, 0) for n in nodes), default=0)
            if need > largest:
                raise InitpruneError(f"an execution asks for {need:g} {name}(s) but the largest Ray node has "
                                     f"{largest:g}; pass --{what}-per-task with what its nodes have")
        remote = engine.remote(run_task)
        pending = {remote.options(num_cpus=t.cpus, num_gpus=t.gpus, max_retries=retries, retry_exceptions=False,
                                  name=t.key).remote(t): t for t in tasks}
        while pending:
            # a short timeout: the wait itself does not see Ctrl-C, the loop does
            done, _ = engine.wait(list(pending), num_returns=1, timeout=0.5)
            if not done:
                continue
            task = pending.pop(done[0])
            try:
                result = engine.get(done[0])
            except RayError as err:  # lost more workers than it may retry, or failed outside the notebook
                result = _failed(task, err)
            yield result
    finally:
        for ref in pending:
            engine.cancel(ref, force=True)  # Ctrl-C or an error here: stop what still runs
        engine.shutdown()


@EXECUTORS.register("dask")
def dask(tasks: list[Task], scheduler: str | None = None, jobs: int = 1, **_) -> Iterator[dict]:
    """Each task a Dask future with an explicit key, ``pure=False``, released as soon as it is
    collected: a worker lost later then cannot make the scheduler run it again. With a scheduler
    address, the package's code is uploaded to its workers."""
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as completed
    except ImportError:
        raise InitpruneError("--executor dask needs Dask: pip install -e '.[dask]' (make setup installs it)") from None
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="20s")
        else:
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
    except (OSError, TimeoutError) as err:
        raise InitpruneError(f"cannot reach a Dask scheduler at {scheduler} ({str(err).splitlines()[0]}); "
                             "start one with `dask scheduler` and workers with `dask worker ADDRESS`") from None
    queue = None
    try:
        if scheduler:
            _upload(client)
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        gpus = max((w.get("resources", {}).get("GPU", 0) for w in workers), default=0)
        need = max(t.gpus for t in tasks)
        if need > gpus:
            raise InitpruneError(f"an execution asks for {need:g} GPU(s) but no Dask worker has that many; start "
                                 "GPU workers with --resources GPU=1, or pass --gpus-per-task 0")
        tasks_by_key = {t.key: t for t in tasks}
        futures = [client.submit(run_task, t, key=t.key, pure=False, resources={"GPU": t.gpus} if t.gpus else None)
                   for t in tasks]
        queue = completed(futures)
        del futures  # the queue holds each future only until it is collected
        for future in queue:
            task = tasks_by_key[future.key]
            try:
                result = future.result()
            except Exception as err:  # its workers kept dying (KilledWorker), or it failed outside the notebook
                result = _failed(task, err)
            future.release()
            del future
            yield result
    finally:
        if queue is not None and queue.futures:  # Ctrl-C or an error here: stop what still runs
            client.cancel(list(queue.futures), force=True)
        client.close()
        if cluster is not None:
            cluster.close()


def _upload(client) -> None:
    """The package as a zip on every worker's path (and their notebook kernels')."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "initprune.zip"
        with zipfile.ZipFile(archive, "w") as z:
            for path in sorted(PACKAGE.rglob("*.py")):
                z.write(path, f"initprune/{path.relative_to(PACKAGE).as_posix()}")
        client.upload_file(str(archive))
