"""One IPython kernel kept by a process between the notebooks it runs (a local sweep's driver
and pool workers).

Why: a fresh kernel costs every execution about 5 s on this project's 2-core machine (0.7 s to
start, 3.6 s to import torch, MLflow and matplotlib again, 1 s to shut down), more than the
training of a small grid cell. A kept kernel runs each notebook as a fresh one would:

- IPython's own reset before every notebook but the first: an empty namespace, cells numbered
  from In [1], figures closed, the working folder the sweep's; imported modules stay (that is the
  saving), and nothing in initprune keeps state between calls (seeds come from generators,
  thread counts are set per point);
- its environment and working folder are the ones a fresh kernel would get: a task with other
  ones gets a new kernel;
- a notebook that fails, is interrupted or loses its kernel takes the kernel down with it: the
  next one starts fresh;
- the kernel goes when the process ends (``close``, at exit), and on its own within a second or
  two if the process is killed (ipykernel watches its parent's pid).
"""

from __future__ import annotations

import atexit
import os

from jupyter_client.manager import KernelManager

ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]  # its start-up warnings are noise on a sweep's stderr
RESET = """get_ipython().reset(new_session=True)
__import__("os").chdir({cwd!r})
if "matplotlib.pyplot" in __import__("sys").modules:
    __import__("sys").modules["matplotlib.pyplot"].close("all")
__import__("gc").collect()"""

_kept: dict = {}  # "key": (environment, folder), "km": its KernelManager, "used": ran a notebook


def acquire(cwd: str) -> KernelManager:
    """The kept kernel, clean for a new notebook run in ``cwd`` with this process's environment:
    reset if it ran one before, a new one if there is none (or it died, or the environment or
    folder changed, or the reset failed)."""
    key = (tuple(sorted(os.environ.items())), cwd)
    if _kept and (_kept["key"] != key or not _kept["km"].is_alive()):
        close()
    if _kept and _kept["used"] and not _reset(_kept["km"], cwd):
        close()
    if not _kept:
        km = KernelManager(kernel_name="python3")
        km.start_kernel(cwd=cwd, extra_arguments=ARGUMENTS)
        _kept.update(key=key, km=km, used=False)
    _kept["used"] = True
    return _kept["km"]


def _reset(km: KernelManager, cwd: str) -> bool:
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(RESET.format(cwd=cwd), silent=True, timeout=60, output_hook=lambda m: None)
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
