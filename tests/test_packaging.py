"""The set-up files agree with each other."""

import subprocess
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_package_with_the_extras_of_pyproject():
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == [f"-e .[{','.join(sorted(project['optional-dependencies']))}]"]
    # nothing else is listed there: pyproject.toml is the one list of dependencies
    assert [d for d in env["dependencies"] if isinstance(d, str)] == [python, "pip"]


def test_pyproject_lists_what_the_issue_asks_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = lambda deps: {d.split(">")[0].split("=")[0].split("[")[0] for d in deps}  # noqa: E731
    assert names(project["dependencies"]) == {
        "torch", "torchvision", "scikit-learn", "numpy", "matplotlib", "tqdm", "pyyaml", "mnist1d", "mlxtend", "scipy"}
    extras = project["optional-dependencies"]
    assert {"jupyterlab", "papermill", "ipykernel", "nbval", "mlflow"} <= names(extras["notebooks"])
    assert {"pytest", "hypothesis", "ruff"} <= names(extras["dev"])


def test_make_setup_installs_every_extra_so_that_the_tests_run_them():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    makefile = (ROOT / "Makefile").read_text().splitlines()
    setup = next(line for line in makefile if "pip install" in line and "-e " in line)
    installed = setup.split("-e '.[")[1].split("]")[0].split(",")
    assert sorted(installed) == sorted(extras)
    assert {"ray", "dask"} <= set(extras)


def test_the_package_ships_every_folder_of_its_layers():
    """A wheel holds initprune/lab/ and initprune/report/ too: setuptools finds every folder of
    the package that pyproject.toml includes, and no folder of the repository beside it."""
    from setuptools import find_packages

    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = set(find_packages(str(ROOT), include=found["include"]))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "initprune").rglob("__init__.py")}
    assert shipped == folders and {"initprune", "initprune.lab", "initprune.report"} <= shipped


def _make_n(*args) -> str:
    """What make would run (nothing is run): the recipes as the Makefile writes them."""
    return subprocess.run(["make", "-n", "-B", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True).stdout


def test_make_lab_takes_its_own_port_and_opens_no_browser():
    """PORT is MLflow's (ui, server); JupyterLab's is LAB_PORT, default 8888, and on a server no
    browser is opened for it."""
    assert "--port=8899 --no-browser" in _make_n("lab", "LAB_PORT=8899", "PORT=5001")
    assert "--port=8888 --no-browser" in _make_n("lab")


def test_make_setup_shows_pips_progress():
    """Several GB install in minutes: the big install is not run --quiet."""
    install = next(line for line in _make_n("setup").splitlines() if "pip install" in line and "-e " in line)
    assert "--quiet" not in install and "progress-bar off" not in install
