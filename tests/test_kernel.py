"""The kernel a local sweep keeps between notebooks runs each one as a fresh kernel would."""

import os
import signal
import time

import nbformat
import pytest

from initprune.lab import kernel
from initprune.lab.tasks import _kept_kernel, load_papermill

papermill = load_papermill()


@pytest.fixture(autouse=True)
def no_kernel_left():
    yield
    kernel.close()


def run(tmp_path, cwd, *cells) -> list[str]:
    """Execute a notebook of ``cells`` in the kept kernel; each cell's printed output."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    papermill.execute_notebook(str(source), str(output), cwd=str(cwd), **_kept_kernel(papermill, str(cwd)))
    done = nbformat.read(output, as_version=4).cells
    assert [c["execution_count"] for c in done] == list(range(1, len(cells) + 1))  # numbered as a fresh kernel
    return ["".join(o.get("text", "") for o in c["outputs"]).strip() for c in done]


def test_the_next_notebook_sees_nothing_of_the_last_but_its_imports(tmp_path):
    here = tmp_path / "notebooks"
    here.mkdir()
    first = run(tmp_path, here, "import os, sys\nx = 1\nos.chdir('/')\nprint(os.getpid())",
                "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\nplt.figure()\n"
                "print(len(plt.get_fignums()))")
    second = run(tmp_path, here, "import os, sys\nprint(os.getpid())",
                 "print('x' in dir(), 'plt' in dir(), os.getcwd())",
                 "print(len(sys.modules['matplotlib.pyplot'].get_fignums()), 'matplotlib.pyplot' in sys.modules)")
    assert first[1] == "1"
    assert second[0] == first[0]  # the same kernel
    assert second[1] == f"False False {here}"  # no names of the last; the sweep's folder again
    assert second[2] == "0 True"  # its figures closed, its imports kept


def test_another_environment_or_folder_gets_another_kernel(tmp_path, monkeypatch):
    pid = run(tmp_path, tmp_path, "import os\nprint(os.getpid(), os.environ.get('INITPRUNE_X'))")[0]
    monkeypatch.setenv("INITPRUNE_X", "1")
    other = run(tmp_path, tmp_path, "import os\nprint(os.getpid(), os.environ.get('INITPRUNE_X'))")[0]
    assert pid.endswith("None") and other.endswith(" 1") and other.split()[0] != pid.split()[0]
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
