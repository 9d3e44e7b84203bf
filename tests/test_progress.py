"""A sweep's progress: one bar over its points on a terminal, a periodic line elsewhere."""

import io
import sys
import time

import pytest

from initprune.lab import store, sweep


class Terminal(io.StringIO):
    def isatty(self):
        return True


def trained_in_the_store(tasks, jobs=1, **_):
    """An executor whose tasks log their points to the store as a notebook would, without a kernel:
    the progress sees only the store, as with every executor."""
    runs = store.points()
    for task in tasks:
        ex = task.execution
        run_id, _ = runs.start_attempt(ex.notebook, ex.params["dataset"], ex.params["arch"],
                                       task.profile, ex.cell, task.sweep)
        for point in ex.points:
            point_run = runs.open_point(point, run_id)
            time.sleep(0.4)
            runs.finish(point_run, run_id)
        runs.end(run_id, "FINISHED")
        yield {"label": ex.label, "error": None, "seconds": 0.8, "run_id": run_id, "attempt": 1}


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('progress')}/mlflow.db"  # one store: building one takes seconds


@pytest.fixture
def profile(database, tmp_path, monkeypatch, request):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", database)
    monkeypatch.setitem(sweep.executors.EXECUTORS._entries, "local", trained_in_the_store)
    path = tmp_path / "two.yaml"
    seed = len(request.node.name)  # each test its own points, so that none is already finished
    path.write_text("executions:\n  - {notebook: random, dataset: digits, arch: mlp, sparsities: [0.5, 0.9], "
                    f"seeds: [{seed}], epochs: 1}}\n")
    return str(path)


def test_the_sweep_runs_on_the_executor_the_registry_holds(profile, monkeypatch):
    """The fake executor above is what these tests' sweeps run (a fixture that patched the name
    ``executors.local`` silently ran the real pool once the registry held the function itself)."""
    calls = []
    monkeypatch.setitem(sweep.executors.EXECUTORS._entries, "local",
                        lambda tasks, **settings: calls.append(settings) or trained_in_the_store(tasks))
    assert sweep.sweep(profile, progress_to=io.StringIO(), poll=0.2, echo=lambda *_: None) == 0
    assert calls == [{"jobs": 1, "address": None, "scheduler": None, "retries": 3}]


def test_a_terminal_shows_one_bar_over_the_points_and_a_line_per_execution(profile):
    out = Terminal()
    assert sweep.sweep(profile, progress_to=out, poll=0.2, echo=lambda *_: None) == 0
    text = out.getvalue()
    assert "2/2 points" in text and "elapsed" in text
    assert "0/2 points" in text  # the bar was drawn before any point finished
    assert "finished random digits/mlp" in text
    assert "about" in text and "left" in text  # an estimate once a point finished


def test_without_a_terminal_a_line_comes_every_period_not_a_bar(profile):
    out = io.StringIO()
    assert sweep.sweep(profile, progress_to=out, every=0.3, poll=0.1, echo=lambda *_: None) == 0
    lines = out.getvalue().splitlines()
    periodic = [line for line in lines if line.startswith("points ")]
    assert len(periodic) >= 2, lines  # the period's lines and the last one
    assert periodic[-1].startswith("points 2/2, ") and periodic[-1].endswith(" elapsed")
    assert any("left" in line for line in periodic[:-1])
    assert "|" not in out.getvalue()  # no bar


def test_what_is_left_comes_from_the_cells_own_points_else_the_mean_over_cells():
    progress = sweep.Progress.__new__(sweep.Progress)
    progress.cell_of = {("a", 0): "A", ("a", 1): "A", ("b", 0): "B", ("b", 1): "B"}
    progress.left_by_cell = {"A": 2, "B": 2}
    progress.seconds, progress.running = {}, 1
    assert progress.left() is None
    progress.seconds = {("a", 0): 10.0}
    assert progress.left() == pytest.approx(10 + 2 * 10)  # B has none finished: A's mean
    progress.seconds = {("a", 0): 10.0, ("b", 0): 30.0}
    progress.running = 2
    assert progress.left() == pytest.approx((10 + 30) / 2)


class PseudoTerminal:
    """A pseudo-terminal that nobody sized (0 x 0, as under `script` without a terminal): the
    stream a bar is drawn on, and what was drawn, read as it comes."""

    def __init__(self):
        import os
        import pty
        import threading

        self.master, slave = pty.openpty()
        self.stream = os.fdopen(slave, "w")
        self.chunks = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        import os

        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def text(self) -> str:
        import os

        self.stream.flush()
        time.sleep(0.3)  # what is in flight
        self.stream.close()
        self.reader.join(5)
        os.close(self.master)
        return b"".join(self.chunks).decode(errors="replace")


def test_a_bar_is_drawn_on_a_pseudo_terminal_that_says_it_is_0_columns_wide(profile, monkeypatch):
    terminal = PseudoTerminal()
    assert terminal.stream.isatty()
    monkeypatch.setattr(sys, "stdout", terminal.stream)  # the command's: tqdm asks sys.stdout's size itself
    assert sweep.sweep(profile, poll=0.2, echo=lambda *_: None) == 0
    text = terminal.text()
    assert "0/2 points" in text and "2/2 points" in text, text
    assert "|" in text and "finished random digits/mlp" in text


# a run's bar over its epochs: on a terminal, and in a notebook one per cell

def test_run_on_a_terminal_shows_one_bar_over_its_epochs():
    import os
    import pty
    import subprocess

    master, slave = pty.openpty()  # 0 columns wide, as under `script` without a terminal
    proc = subprocess.Popen([sys.executable, "-m", "initprune", "run", "--method", "random", "--dataset", "digits",
                             "--arch", "mlp", "--epochs", "3", "--no-tracking"], stdin=slave, stdout=slave,
                            stderr=slave, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the run ended: its side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(300) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "training:" in text and "0/3 epochs" in text and "3/3 epochs" in text, text
    assert "epoch 1/3" not in text  # no bar per epoch
    assert text.rstrip().splitlines()[-2].startswith("random digits/mlp"), text  # the run's line, after the bar


def test_a_notebook_cell_shows_one_bar_whatever_runs_and_epochs_it_trains(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    cells = ['import initprune\nresults = initprune.api.compare(["dense", "random"], sparsity=0.9, epochs=8)',
             "import torch\nfrom initprune import data\ndigits = data.load('digits')\nfor seed in range(2):\n"
             "    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))\n"
             "    initprune.fit(model, train=digits.train, test=digits.test, method='random', sparsity=0.5, epochs=8)\n"
             "print('done')"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in notebook.cells:
        widgets = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert len(widgets) == 1, cell.outputs  # one bar per cell, reset by each run (JupyterLab shows 50 outputs)
        assert len(cell.outputs) <= 3, cell.outputs
    assert any("done" in o.get("text", "") for o in notebook.cells[1].outputs)


# `make lab-check`: what a reader of the page cannot see fails it

def lab_check():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lab_browser.py"
    spec = importlib.util.spec_from_file_location("lab_browser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown(source="x = 1", outputs=1, images=0, **page):
    return {"prompt": "[2]:", "source": source, "text": "", "error": False, "outputs": outputs, "trimmed": False,
            "hidden": False, "images": images, **page}


def test_lab_check_fails_a_cell_whose_outputs_are_hidden_or_whose_figure_is_not_shown():
    problems = lab_check().problems
    assert problems(shown()) == []
    assert problems(shown("figures.learning_curves(table, sparsity);", images=1)) == []
    assert problems(shown("import initprune", outputs=0)) == []  # a cell that shows nothing by design
    # explore.ipynb's second cell before: 55 outputs, the table behind "Show more outputs"
    assert "55 outputs" in problems(shown(outputs=55, trimmed=True))[0]
    assert problems(shown(outputs=51))  # past the limit, whatever the page's markup
    assert "collapsed" in problems(shown(hidden=True))[0]
    assert "no image" in problems(shown("figures.layer_density(results);", outputs=0))[0]
    assert "no image" in problems(shown("plt.plot([1, 2])", outputs=1))[0]
    assert "error" in problems(shown(error=True))[0]
