"""One IPython kernel kept by a process between the notebooks it runs (a local sweep's driver
and pool workers).

Why: a fresh kernel costs every execution about 5 s on this project's 2-core machine (0.7 s to
start, 3.6 s to import torch, MLflow and matplotlib again, 1 s to shut down), more than the
training of a small grid cell. A kept kernel runs each notebook as a fresh one would:

- before every notebook but the first: IPython's own reset (an empty namespace, cells numbered
  from In [1]), the environment and working folder the kernel started with (whatever a notebook
  set in ``os.environ`` undone), torch's global generator seeded anew as a new process's is, CUDA's
  cached memory freed, figures closed and matplotlib's backend back to the kernel's. Imported
  modules stay (that is the saving); nothing in initprune keeps state between calls (seeds come
  from generators, thread counts are set per point). A notebook that registered a method, model
  or dataset of its own (defined in the notebook) leaves the kernel to no one;
- the environment a task brings (the MLflow store, INITPRUNE_* settings, the plugins' path) and
  the working folder are the key: a task with others gets a new kernel. Not the whole of this
  process's environment: MLflow sets variables of its own in it as it runs (a telemetry session
  id, for one), and with the whole of it as the key every pool worker of a sweep started a second
  kernel after its first execution;
- a notebook that fails, is interrupted or loses its kernel takes the kernel down with it: the
  next one starts fresh;
- the kernel goes when the process ends (``close``, at exit), and on its own within a second or
  two if the process is killed (ipykernel watches its parent's pid).
"""

from __future__ import annotations

import atexit
import functools

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager

NAME = "python3"  # the kernel of every notebook in notebooks/; a notebook asking for another gets its own
# the kernel's own start-up warnings (it listens on 127.0.0.1 over TCP) are noise on a sweep's stderr
# (a notebook's errors still come back through papermill); history in memory, as nbclient starts
# kernels: no history file shared by every worker's kernel
ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL", "--HistoryManager.hist_file=:memory:"]
START = "get_ipython()._initprune_environ = dict(__import__('os').environ)"
RESET = """import os, sys
_ip = get_ipython()
if "initprune" in sys.modules:  # a method, model or dataset a notebook registered is the next one's too
    from initprune import data, models, pruners, registry
    _own = [name for r in (pruners.PRUNERS, models.MODELS, data.DATASETS) for name, entry in r._entries.items()
            if registry._origin(entry)[0] == "__main__"]
    if _own:
        raise RuntimeError(f"the last notebook registered {{_own}}")
os.environ.clear()
os.environ.update(_ip._initprune_environ)
os.chdir({cwd!r})
if "torch" in sys.modules:
    sys.modules["torch"].seed()  # torch's global generator: randomly seeded, as in a new process
    if sys.modules["torch"].cuda.is_initialized():
        sys.modules["torch"].cuda.empty_cache()
if "matplotlib.pyplot" in sys.modules:
    sys.modules["matplotlib.pyplot"].close("all")
    if os.environ.get("MPLBACKEND") and sys.modules["matplotlib"].get_backend() != os.environ["MPLBACKEND"]:
        sys.modules["matplotlib.pyplot"].switch_backend(os.environ["MPLBACKEND"])
_ip.reset(new_session=True)
__import__("gc").collect()"""

_kept: dict = {}  # "key": (environment, folder), "km": its KernelManager, "used": ran a notebook


def acquire(cwd: str, env: dict) -> KernelManager:
    """The kept kernel, clean for a new notebook run in ``cwd`` by a task that set ``env`` in this
    process's environment: reset if it ran one before, a new one if there is none (or it died, or
    the task's environment or the folder changed, or the reset failed)."""
    key = (tuple(sorted(env.items())), cwd)
    if _kept and (_kept["key"] != key or not _kept["km"].is_alive()):
        close()
    if _kept and _kept["used"] and not _execute(_kept["km"], RESET.format(cwd=cwd)):
        close()
    if not _kept:
        # nbclient drives the kernel from an asyncio loop: its client must be the asynchronous one,
        # or a kernel that dies in the middle of a cell is waited for forever
        km = KernelManager(kernel_name=NAME, client_class="jupyter_client.asynchronous.AsyncKernelClient")
        _kept.update(key=key, km=km, used=False)  # before it starts: an interrupt then still finds it
        km.start_kernel(cwd=cwd, extra_arguments=ARGUMENTS)
        if not _execute(km, START):
            close(now=True)
            raise RuntimeError("the notebook kernel did not start")
    _kept["used"] = True
    return _kept["km"]


def _execute(km: KernelManager, code: str) -> bool:
    """Run ``code`` in the kernel, silently; did it run without an error?"""
    kc = BlockingKernelClient(**km.get_connection_info(session=True), connection_file=km.connection_file, parent=km)
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(code, silent=True, timeout=30, output_hook=lambda m: None)
        return reply["content"]["status"] == "ok"
    except (RuntimeError, TimeoutError):
        return False
    finally:
        kc.stop_channels()


def close(now: bool = False) -> None:
    """Shut the kept kernel down, if there is one: ``now`` kills it (a notebook interrupted in
    the middle of training), otherwise it is asked to exit."""
    km = _kept.get("km")
    _kept.clear()
    if km is not None and km.has_kernel:
        try:
            km.shutdown_kernel(now=now or not km.is_alive())
        except RuntimeError:  # already gone
            pass


atexit.register(close)


@functools.cache
def engine():
    """papermill's nbclient engine, on a kernel it is handed (``km=``) and leaves running."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine
    from papermill.log import logger

    class KeptKernel(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, km=None, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            client = PapermillNotebookClient(nb_man, km=km, kernel_name=kernel_name, log=logger,
                                             log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                                             startup_timeout=start_timeout, timeout=execution_timeout)
            try:
                return client.execute()
            finally:
                if client.kc is not None:  # its channels; the kernel stays
                    client.kc.stop_channels()

    return KeptKernel
