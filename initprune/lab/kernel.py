"""One IPython kernel kept by a process between the notebooks it runs (a local sweep's driver
and pool workers).

Why: a fresh kernel costs every execution about 5 s on this project's 2-core machine (0.7 s to
start, 3.6 s to import torch, MLflow and matplotlib again, 1 s to shut down), more than the
training of a small grid cell. A kept kernel runs each notebook as a fresh one would:

- before every notebook but the first: IPython's own reset (an empty namespace, cells numbered
  from In [1]), the environment and working folder the kernel started with (whatever a notebook
  set in ``os.environ`` undone), torch's, numpy's and Python's global generators seeded anew as a
  new process's are (whatever state a notebook left them in is gone), CUDA's cached memory freed,
  figures closed and matplotlib's backend back to the kernel's. Imported modules stay (that is the
  saving); nothing in initprune keeps state between calls (seeds come from generators, thread
  counts are set per point). A notebook that registered a method, model or dataset of its own
  (defined in the notebook) leaves the kernel to no one;
- torch's global state as a fresh kernel has it, recorded the moment a notebook first imports
  torch (``FRESH``; a notebook that never imports torch does not pay for it): a notebook that
  left any of it otherwise (default dtype or device, grad, inference or anomaly mode,
  deterministic algorithms, thread counts, float32 matmul precision, cudnn, TF32 and mkldnn
  flags, autocast, a torch function or dispatch mode still entered) or replaced a function,
  class or public name of torch, torch.nn, torch.nn.functional, torch.nn.init or an initprune
  module (a monkeypatch) leaves the kernel to no one: the next notebook would train in float64
  under a float32 identity, or not train at all;
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
# run in the kernel as it starts, as a module of its own (a reset empties the notebook's namespace):
# a fresh kernel's torch, recorded the moment torch has been imported (no line of the notebook runs
# in between; torch is not imported for it), and the attributes of each of initprune's modules the
# moment it has been. ``changed()``: what differs now
FRESH = """import functools, importlib.abc, os, sys, types, warnings

TORCH = ("torch", "torch.nn", "torch.nn.functional", "torch.nn.init")
state, modules, failed, missing = {}, {}, [], object()


def torch_state(torch):
    b = torch.backends
    get = {"default dtype": torch.get_default_dtype, "default device": torch.get_default_device,
           "grad": torch.is_grad_enabled, "inference mode": torch.is_inference_mode_enabled,
           "anomaly": torch.is_anomaly_enabled, "anomaly nan": torch.is_anomaly_check_nan_enabled,
           "deterministic": torch.are_deterministic_algorithms_enabled,
           "deterministic warn only": torch.is_deterministic_algorithms_warn_only_enabled,
           "threads": torch.get_num_threads, "interop threads": torch.get_num_interop_threads,
           "float32 matmul precision": torch.get_float32_matmul_precision,
           "function modes": torch._C._len_torch_function_stack, "dispatch modes": torch._C._len_torch_dispatch_stack,
           "autocast cache": torch.is_autocast_cache_enabled, "warn always": torch.is_warn_always_enabled}
    for device in ("cpu", "cuda"):
        get[f"autocast {device}"] = lambda d=device: (torch.is_autocast_enabled(d), torch.get_autocast_dtype(d))
    for flag in ("cudnn.enabled", "cudnn.benchmark", "cudnn.deterministic", "cudnn.allow_tf32", "cudnn.fp32_precision",
                 "cuda.matmul.allow_tf32", "cuda.matmul.allow_fp16_reduced_precision_reduction",
                 "cuda.matmul.allow_bf16_reduced_precision_reduction", "cuda.matmul.fp32_precision",
                 "mkldnn.enabled", "mkldnn.deterministic", "mkldnn.matmul.fp32_precision", "fp32_precision"):
        get[flag] = lambda path=flag.split("."): functools.reduce(getattr, path, b)
    with warnings.catch_warnings():  # a flag torch has deprecated still counts
        warnings.simplefilter("ignore")
        return {name: value(f) for name, f in get.items()}


def value(get):
    try:
        return get()
    except Exception as err:  # what this torch lacks, it lacks every time
        return type(err).__name__


def attributes(module):
    \"\"\"What a monkeypatch replaces: every function, class and module, and every public name; a
    module's private flags and caches are its own business (the registry's plugins loaded once).\"\"\"
    return {name: v for name, v in vars(module).items()
            if not name.startswith("_") or callable(v) or isinstance(v, types.ModuleType)}


def same(now, was, home):
    \"\"\"The value a module had, or its package's own wrapper of it (importing torch._dynamo
    wraps torch.manual_seed).\"\"\"
    code = getattr(now, "__code__", None)
    return now is was or (getattr(now, "__wrapped__", None) is was and code is not None
                          and code.co_filename.startswith(home))


def record(module):
    try:
        names = TORCH if module.__name__ == "torch" else (module.__name__,)
        for name in names:
            if name in sys.modules:
                home = os.path.dirname(sys.modules[name.partition(".")[0]].__file__) + os.sep
                modules[name] = (sys.modules[name], attributes(sys.modules[name]), home)
        if module.__name__ == "torch":
            state.update(torch_state(module))
    except Exception as err:  # never the notebook's import: the kernel is not kept instead
        failed.append(f"{module.__name__} not recorded ({err})")


def watched(name):
    return name in ("torch", "initprune") or name.startswith("initprune.")


class Recorder(importlib.abc.Loader):
    \"\"\"A watched module's own loader, which records the module once it has run.\"\"\"
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # the module sees only its own
        self.loader.exec_module(module)
        record(module)


class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if not watched(name):
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = Recorder(spec.loader)
                return spec
        return None


def changed():
    \"\"\"What differs from the kernel as it was fresh: [] if nothing.\"\"\"
    out = list(failed)
    if state:
        now = torch_state(sys.modules["torch"])
        out += [f"{name} {was!r} -> {now[name]!r}" for name, was in state.items() if now[name] != was]
    for name, (module, was, home) in modules.items():
        if sys.modules.get(name) is not module:
            out.append(f"module {name} replaced")
        out += [f"{name}.{a}" for a, v in was.items() if not same(vars(module).get(a, missing), v, home)]
        # a package's exports served on first use (initprune._FROM) are never kept on it: one there was assigned
        out += [f"{name}.{a} assigned" for a in getattr(module, "_FROM", ()) if a in vars(module) and a not in was]
    return out


for name in [n for n in sys.modules if watched(n)]:  # imported before any notebook: fresh
    record(sys.modules[name])
sys.meta_path.insert(0, Finder())"""
START = f"""import sys, types
get_ipython()._initprune_environ = dict(__import__('os').environ)
_fresh = sys.modules["_initprune_fresh"] = types.ModuleType("_initprune_fresh")
exec({FRESH!r}, vars(_fresh))
del sys, types, _fresh"""
RESET = """import os, sys
_ip = get_ipython()
if "initprune" in sys.modules:  # a method, model or dataset a notebook registered is the next one's too
    from initprune import data, models, pruners, registry
    _own = [name for r in (pruners.PRUNERS, models.MODELS, data.DATASETS) for name, entry in r._entries.items()
            if registry._origin(entry)[0] == "__main__"]
    if _own:
        raise RuntimeError(f"the last notebook registered {{_own}}")
_changed = sys.modules["_initprune_fresh"].changed()  # torch's state, or a module monkeypatched
if _changed:
    raise RuntimeError(f"the last notebook changed {{_changed}}")
os.environ.clear()
os.environ.update(_ip._initprune_environ)
os.chdir({cwd!r})
__import__("random").seed()  # the global generators seeded from the system, as in a new process
if "numpy" in sys.modules:
    sys.modules["numpy"].random.seed()
if "torch" in sys.modules:
    sys.modules["torch"].seed()  # the CPU's and every GPU's
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


def arguments(cwd: str, env: dict) -> dict:
    """papermill's arguments for a notebook run in the kept kernel (``acquire``) by a task that set
    ``env``, on its engine (``engine``)."""
    from papermill.engines import papermill_engines

    papermill_engines.register("initprune-kept", engine())
    return {"progress_bar": False, "engine_name": "initprune-kept", "km": acquire(cwd, env)}


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
