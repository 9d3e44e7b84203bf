"""The verdict's two profiles, offline and offline-controls, as declared before they run: each loads,
names only registered methods and their options, holds the seeds and sparsities the verdict asks
of it, and fits the 2-hour budget by its own dry run (`sweep --dry-run --jobs 2`: at most 100
minutes, from the measured seconds per epoch)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from initprune import pruners
from initprune.lab import profiles, sweep
from initprune.report.claims import regime

PROFILES = ("offline", "offline-controls")
TESTED = (0.95, 0.98, 0.99)
CELL = ("fashion_mnist", "lenet300")


@pytest.fixture(scope="module")
def loaded():
    return {name: profiles.load_profile(name) for name in PROFILES}


def _points(executions):
    return [p for ex in executions for p in ex.points]


@pytest.mark.parametrize("name", PROFILES)
def test_the_profile_names_only_registered_methods_and_their_options(loaded, name):
    for p in _points(loaded[name]):
        assert p.method in pruners.PRUNERS.names()
        assert set(p.options) <= set(pruners.option_names(p.method))
        assert p.training["compute"] == "auto"


def _primary(points, epochs=8):
    """{(method, regime, line options, sparsity): seeds} of the verdict's cell at E."""
    seeds: Counter = Counter()
    for p in points:
        if (p.dataset, p.arch) == CELL and p.epochs == epochs and p.ablation == "none":
            line = tuple(sorted((k, v) for k, v in p.options.items() if k in ("schedule", "movement")))
            seeds[p.method, regime(p.method, p.options), line, p.sparsity] += 1
    return seeds


def test_offline_tests_every_paper_method_with_12_seeds_in_both_regimes_at_e8_and_k4(loaded):
    executions = loaded["offline"]
    points = _points(executions)
    seeds = _primary(points)
    schedules = [(("movement", "relative"), ("schedule", s)) for s in ("linear", "geometric", "cubic")]
    for reg in ("uniform", "free"):
        for s in TESTED:
            assert seeds["random", reg, (), s] == 12
            assert seeds["kstarts", reg, (), s] == 12
            for line in schedules:
                assert seeds["dissipating", reg, line, s] == 12
                assert seeds["combined", reg, line, s] == 12
            for m in ("random", "kstarts"):  # descriptive, 3 seeds
                assert seeds[m, reg, (), 0.8] == seeds[m, reg, (), 0.9] == 3
    assert seeds["dense", "uniform", (), 0.0] == 12
    assert {p.options["k"] for p in points if "k" in p.options} == {4}
    assert {ex.tested for ex in executions if (ex.params["dataset"], ex.params["arch"]) == CELL} == {TESTED}


CONTROLS = [("gradual_random", {}), ("gradual_magnitude", {}), ("kstarts_gradual_random", {}),
            ("dissipating", {"movement": "absolute"}), ("snip", {}), ("grasp", {}), ("synflow", {}),
            ("magnitude", {})]


@pytest.mark.parametrize("reg", ["uniform", "free"])
def test_offline_controls_has_8_seeds_of_every_secondary_rival_at_the_tested_sparsities(loaded, reg):
    points = [p for p in _points(loaded["offline-controls"]) if (p.dataset, p.arch) == CELL and p.ablation == "none"]
    for method, options in CONTROLS:
        for s in TESTED:
            found = [p for p in points if p.method == method and p.sparsity == s and p.epochs == 8
                     and regime(p.method, p.options) == reg and options.items() <= p.options.items()]
            assert len(found) == 8, (method, reg, s)
            assert all(p.options.get("schedule", "cubic") == "cubic" for p in found)
    matched = Counter((regime(p.method, p.options), p.sparsity) for p in points
                      if p.method == "random" and p.epochs == 11)
    assert matched == {(r, s): 8 for r in ("uniform", "free") for s in TESTED}


def test_the_replications_are_descriptive(loaded):
    for ex in loaded["offline-controls"]:
        cell = (ex.params["dataset"], ex.params["arch"])
        if cell != CELL or ex.params["epochs"] == 16:
            assert ex.tested == (), ex.label


@pytest.mark.parametrize("name", PROFILES)
def test_the_dry_run_estimates_at_most_100_minutes_with_2_jobs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # nothing finished
    lines = []
    assert sweep.sweep(name, jobs=2, dry_run=True, echo=lines.append) == 0
    estimate = lines[-1]
    assert "unmeasured" not in estimate and "unknown" not in estimate, estimate
    found = re.match(r"estimate: about (\d+) min with --jobs 2|estimate: about ([\d.]+) h with --jobs 2", estimate)
    assert found, estimate
    minutes = int(found[1]) if found[1] else float(found[2]) * 60
    assert minutes <= 100, estimate
