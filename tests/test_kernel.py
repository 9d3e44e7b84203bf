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
from initprune.lab.tasks import _environ, _kept_kernel, load_papermill

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
                                   **_kept_kernel(papermill, str(cwd), env or {}))
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
