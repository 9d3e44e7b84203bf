"""The kernel a local sweep keeps between notebooks runs each one as a fresh kernel would."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from initprune.lab import kernel
from initprune.lab.store import ensure_store
from initprune.lab.tasks import _environ, load_papermill

papermill = load_papermill()


@pytest.fixture(autouse=True)
def no_kernel_left():
    yield
    kernel.close()


def run(tmp_path, cwd, *cells, env=None) -> list[str]:
    """Execute a notebook of ``cells`` in the kept kernel, as a task that sets ``env`` does; each
    cell's printed output."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    with _environ(env or {}):
        papermill.execute_notebook(str(source), str(output), cwd=str(cwd),
                                   **kernel.arguments(str(cwd), env or {}))
    done = nbformat.read(output, as_version=4).cells
    assert [c["execution_count"] for c in done] == list(range(1, len(cells) + 1))  # numbered as a fresh kernel
    return ["".join(o.get("text", "") for o in c["outputs"]).strip() for c in done]


def test_the_next_notebook_sees_nothing_of_the_last_but_its_imports(tmp_path):
    here = tmp_path / "notebooks"
    here.mkdir()
    first = run(tmp_path, here, "import os, sys, torch\nx = 1\nos.chdir('/')\nos.environ['INITPRUNE_LEFT'] = 'yes'\n"
                "print(os.getpid(), torch.initial_seed())",
                "import matplotlib\nbackend = matplotlib.get_backend()\nmatplotlib.use('agg')\n"
                "import matplotlib.pyplot as plt\nplt.figure()\nprint(len(plt.get_fignums()), backend)")
    second = run(tmp_path, here, "import os, sys, torch\nprint(os.getpid(), torch.initial_seed())",
                 "print('x' in dir(), 'plt' in dir(), os.getcwd(), os.environ.get('INITPRUNE_LEFT'))",
                 "import matplotlib\nprint(len(sys.modules['matplotlib.pyplot'].get_fignums()), "
                 "'matplotlib.pyplot' in sys.modules, matplotlib.get_backend())")
    (pid, seed), (figures, backend) = first[0].split(), first[1].split()
    assert figures == "1"
    assert second[0].split()[0] == pid  # the same kernel
    assert second[0].split()[1] != seed  # torch's global generator seeded anew, as in a new process
    assert second[1] == f"False False {here} None"  # no names, folder or environment of the last
    assert second[2] == f"0 True {backend}"  # its figures closed and its backend undone; its imports kept


CHANGES = [  # (what a notebook changes, what shows it, what a fresh kernel shows: None for its own number)
    ("torch.set_default_dtype(torch.float64)", "torch.nn.Linear(2, 2).weight.dtype", "torch.float32"),
    ("torch.set_grad_enabled(False)", "torch.nn.Linear(2, 2)(torch.ones(2)).requires_grad", "True"),
    ("torch.nn.functional.relu = lambda x, inplace=False: x", "torch.nn.functional.relu(torch.tensor(-1.0)).item()",
     "0.0"),
    ("torch.set_num_threads(torch.get_num_threads() + 1)", "torch.get_num_threads()", None),
    ("import initprune.api\ninitprune.api.resolve_device = lambda device: torch.device('cpu')",
     "__import__('initprune.api').api.resolve_device.__module__", "initprune.api"),
]
# the pid, then every observation
LOOK = f"import os, torch\nprint(os.getpid(), {', '.join(observe for _, observe, _ in CHANGES)})"


def test_a_notebook_that_changes_torch_leaves_the_kernel_to_no_one(tmp_path):
    """Issue 29: a notebook ending in float64 made the next train in float64 under a float32 identity.
    Each change in a notebook of its own, one after the other (a kernel for each, not two)."""
    seen = [run(tmp_path, tmp_path, LOOK, change)[0].split() for change, _, _ in CHANGES]
    seen.append(run(tmp_path, tmp_path, LOOK)[0].split())
    first = seen[0][1:]
    assert first == [fresh or first[i] for i, (_, _, fresh) in enumerate(CHANGES)]  # a fresh kernel's values
    for (change, _, _), before, after in zip(CHANGES, seen, seen[1:]):
        assert after[1:] == first, change  # as the first notebook found them
        assert after[0] != before[0], f"{change} left the kernel to the next notebook"  # a new kernel


@pytest.fixture
def fresh():
    """kernel.FRESH run in this process, as the kernel runs it: this process's torch as it is now."""
    import types

    module = types.ModuleType("fresh")
    exec(kernel.FRESH, vars(module))
    yield module
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, module.Finder)]


@pytest.mark.parametrize("change, undo", [
    ("torch.set_default_dtype(torch.float64)", "torch.set_default_dtype(torch.float32)"),
    ("torch.set_default_device('meta')", "torch.set_default_device(None)"),
    ("torch.set_grad_enabled(False)", "torch.set_grad_enabled(True)"),
    ("mode = torch.inference_mode()\nmode.__enter__()", "mode.__exit__(None, None, None)"),
    ("torch.autograd.set_detect_anomaly(True)", "torch.autograd.set_detect_anomaly(False)"),
    ("torch.use_deterministic_algorithms(True)", "torch.use_deterministic_algorithms(False)"),
    ("torch.use_deterministic_algorithms(False, warn_only=True)", "torch.use_deterministic_algorithms(False)"),
    ("n = torch.get_num_threads()\ntorch.set_num_threads(n + 1)", "torch.set_num_threads(n)"),
    ("torch.set_float32_matmul_precision('medium')",  # as the flags it sets were
     "torch.set_float32_matmul_precision('highest')\n"
     "torch.backends.cuda.matmul.fp32_precision = torch.backends.mkldnn.matmul.fp32_precision = 'none'"),
    ("torch.backends.cudnn.benchmark = True", "torch.backends.cudnn.benchmark = False"),
    ("torch.backends.cudnn.deterministic = True", "torch.backends.cudnn.deterministic = False"),
    ("torch.backends.cudnn.allow_tf32 = not torch.backends.cudnn.allow_tf32",
     "torch.backends.cudnn.allow_tf32 = not torch.backends.cudnn.allow_tf32"),
    ("was = torch.backends.cuda.matmul.allow_tf32, torch.backends.cuda.matmul.fp32_precision\n"
     "torch.backends.cuda.matmul.allow_tf32 = not was[0]",  # and the flags it sets, as they were
     "torch.backends.cuda.matmul.allow_tf32, torch.backends.cuda.matmul.fp32_precision = was"),
    ("torch.set_autocast_enabled('cpu', True)", "torch.set_autocast_enabled('cpu', False)"),
    ("torch.set_autocast_dtype('cpu', torch.float16)", "torch.set_autocast_dtype('cpu', torch.bfloat16)"),
    ("was = torch.nn.init.kaiming_uniform_\ntorch.nn.init.kaiming_uniform_ = torch.nn.init.normal_",
     "torch.nn.init.kaiming_uniform_ = was"),
    ("was = torch.manual_seed\ntorch.manual_seed = functools.wraps(was)(lambda seed: was(seed + 1))",
     "torch.manual_seed = was"),
    ("import initprune.pruners\nwas = initprune.pruners.PRUNERS\ninitprune.pruners.PRUNERS = object()",
     "initprune.pruners.PRUNERS = was"),
    ("import initprune\ninitprune.fit = print", "del initprune.fit"),  # an export served on first use
], ids=["dtype", "device", "grad", "inference", "anomaly", "deterministic", "warn-only", "threads", "matmul",
        "cudnn-benchmark", "cudnn-deterministic", "cudnn-tf32", "matmul-tf32", "autocast", "autocast-dtype",
        "nn.init", "wrapped", "initprune", "initprune-export"])
def test_every_part_of_a_fresh_torch_is_compared(fresh, change, undo):
    import functools

    import torch

    assert fresh.changed() == []
    scope = {"torch": torch, "functools": functools}
    exec(change, scope)
    try:
        assert fresh.changed(), f"{change} went unnoticed"
    finally:
        exec(undo, scope)
    assert fresh.changed() == []


def test_torch_is_not_imported_for_a_notebook_that_does_not(tmp_path):
    first = run(tmp_path, tmp_path, "import sys, os\nprint(os.getpid(), 'torch' in sys.modules)")[0]
    second = run(tmp_path, tmp_path, "import sys, os\nprint(os.getpid(), 'torch' in sys.modules)")[0]
    assert first == second and first.endswith(" False")


def test_a_notebook_that_leaves_torch_as_it_found_it_keeps_the_kernel(tmp_path):
    """What initprune does itself (threads set for a fit and put back, plugins loaded once, the
    generators drawn from, no_grad and inference_mode left) changes nothing a fresh kernel has."""
    fit = ("import os, random, numpy, torch, initprune\n"
           "X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))\n"
           "model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))\n"
           "r = initprune.fit(model, (X, y), (X, y), method='random', sparsity=0.5, epochs=1, device='cpu', "
           "threads=torch.get_num_threads() + 1)\n"
           "with torch.no_grad(), torch.inference_mode():\n    model(X)\n"
           "random.random(), numpy.random.rand(), torch.rand(1)\nprint(os.getpid())")
    assert run(tmp_path, tmp_path, fit) == run(tmp_path, tmp_path, fit)  # the same kernel


def test_the_next_notebook_draws_from_generators_seeded_anew(tmp_path):
    """As in a new process: torch's, numpy's and Python's global generators, whatever the last set."""
    import random

    import numpy

    seeded = "import os, random, numpy, torch\nrandom.seed(0)\nnumpy.random.seed(0)\ntorch.manual_seed(0)"
    draw = ("import os, random, numpy, torch\n"
            "print(os.getpid(), random.random(), numpy.random.rand(), torch.rand(1).item())")
    pid = run(tmp_path, tmp_path, f"{seeded}\nprint(os.getpid())")[0]
    drawn = run(tmp_path, tmp_path, draw)[0].split()
    torch_drawn = run(tmp_path, tmp_path, f"{seeded}\nprint(torch.rand(1).item())")[0]
    assert drawn[0] == pid  # the same kernel
    assert float(drawn[1]) != random.Random(0).random()
    assert float(drawn[2]) != numpy.random.RandomState(0).rand()
    assert drawn[3] != torch_drawn


def test_a_kernel_that_dies_in_a_cell_fails_its_notebook_at_once(tmp_path):
    """Not waited for: nbclient notices a dead kernel only through an asynchronous client."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "import test_kernel, pathlib, time\n"
            f"folder = pathlib.Path({str(tmp_path)!r})\n"
            "test_kernel.run(folder, folder, 'print(1)')\n"
            "began = time.perf_counter()\n"
            "try:\n    test_kernel.run(folder, folder, 'import os, signal\\nos.kill(os.getpid(), signal.SIGKILL)')\n"
            "except Exception as err:\n    print(type(err).__name__, round(time.perf_counter() - began))\n"
            "test_kernel.kernel.close()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, seconds = out.stdout.split()[-2:]
    assert name == "DeadKernelError" and int(seconds) < 30


def test_a_notebook_that_registers_its_own_entries_leaves_the_kernel_to_no_one(tmp_path):
    pid = run(tmp_path, tmp_path, "import os\nfrom initprune import models\n"
              "@models.MODELS.register('inline-model')\ndef inline_model(*args, **kwargs):\n    return None\n"
              "print(os.getpid())")[0]
    after = run(tmp_path, tmp_path, "import os\nfrom initprune import models\n"
                "print(os.getpid(), 'inline-model' in models.MODELS)")[0]
    assert after.split()[0] != pid and after.split()[1] == "False"


def test_another_environment_or_folder_gets_another_kernel(tmp_path, monkeypatch):
    pid = run(tmp_path, tmp_path, "import os\nprint(os.getpid(), os.environ.get('INITPRUNE_X'))")[0]
    monkeypatch.setenv("_MLFLOW_TELEMETRY_SESSION_ID", "set by MLflow in this process, not by the task")
    same = run(tmp_path, tmp_path, "import os\nprint(os.getpid(), os.environ.get('INITPRUNE_X'))")[0]
    other = run(tmp_path, tmp_path, "import os\nprint(os.getpid(), os.environ.get('INITPRUNE_X'))",
                env={"INITPRUNE_X": "1"})[0]
    assert same == pid and pid.endswith("None")
    assert other.endswith(" 1") and other.split()[0] != pid.split()[0]
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    third = run(tmp_path, folder, "import os\nprint(os.getpid(), os.getcwd())")[0].split()
    assert third[1] == str(folder) and third[0] != other.split()[0]


def test_a_kernel_that_died_is_replaced_and_close_leaves_none(tmp_path):
    pid = int(run(tmp_path, tmp_path, "import os\nprint(os.getpid())")[0])
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    again = int(run(tmp_path, tmp_path, "import os\nprint(os.getpid())")[0])
    assert again != pid
    kernel.close()
    deadline = time.time() + 10
    while os.path.exists(f"/proc/{again}") and time.time() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{again}") or open(f"/proc/{again}/stat").read().split(")")[1].split()[0] == "Z"


def test_each_pool_worker_keeps_one_kernel_for_all_its_notebooks(tmp_path):
    """Three executions on two workers: two kernels in all (one worker runs two notebooks)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    profile = Path(__file__).parent / "profiles" / "three.yaml"
    out = subprocess.run([sys.executable, "-m", "initprune", "sweep", "--profile", str(profile), "--jobs", "2"],
                         env={**os.environ, "MLFLOW_TRACKING_URI": uri}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    c, exp_id = ensure_store(uri)
    found = c.search_runs([exp_id], "tags.kind = 'point' and attributes.status = 'FINISHED'", max_results=100)
    assert len(found) == 6
    assert len({r.data.tags["pid"] for r in found}) <= 2, "a worker started a second kernel"
