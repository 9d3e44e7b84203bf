"""The report's training cost (docs/method.md, "Cost"): absolute FLOPs over one dense training of
the cell's reference epochs, never over the run's own epochs; "n/a" for runs stored without them."""

import pytest

from initprune.errors import InitpruneError
from initprune.lab import results
from initprune.report import cost, figures

EPOCH = 1e6  # one dense epoch's FLOPs of the toy model


def row(method, sparsity, seed, epochs, flops=None, relative=None, seconds=None):
    """A run that trained ``epochs`` epochs at ``flops`` per epoch in FLOPs of one dense epoch
    (None: stored without absolute FLOPs, only the old cost relative to its own epochs)."""
    c = {"training": relative if relative is not None else flops or 1.0, "inference": 1 - sparsity}
    if flops is not None:
        c.update(training_flops=flops * epochs * EPOCH, dense_epoch_flops=EPOCH)
    return {"method": method, "dataset": "digits", "arch": "mlp", "seed": seed, "sparsity_target": sparsity,
            "sparsity_actual": sparsity, "test_accuracy": 0.8, "val_accuracy": 0.8, "epochs": epochs, "history": [],
            "layers": {}, "extra": {}, "options": {}, "variant": "{}", "run_id": f"{method}{sparsity}{seed}{epochs}",
            "cost": c, "training_seconds": seconds}


def test_random_trained_longer_costs_more_and_dense_is_one():
    table = results.to_table([row("dense", 0.0, 0, 6, flops=1.0), row("random", 0.9, 0, 6, flops=0.1),
                              row("random", 0.9, 1, 9, flops=0.1)])  # 1.5x the epochs
    assert list(cost.training(table)) == pytest.approx([1.0, 0.1, 0.15])
    # the old cost normalised by the run's own epochs would read 0.1 for both random runs
    assert list(table["cost"].map(lambda c: c["training"])) == pytest.approx([1.0, 0.1, 0.1])


def test_a_declared_reference_wins_over_the_dense_points_epochs():
    table = results.to_table([row("dense", 0.0, 0, 6, flops=1.0), row("random", 0.9, 0, 6, flops=0.1)])
    table = table.assign(reference_epochs=[12, 12])
    assert list(cost.training(table)) == pytest.approx([0.5, 0.05])


def test_runs_stored_without_absolute_flops_show_cost_na_and_seconds_beside():
    table = results.to_table([row("dense", 0.0, 0, 6, flops=1.0, seconds=12.0),
                              row("random", 0.9, 0, 6, relative=0.1, seconds=2.5)])
    assert cost.training(table)[1] != cost.training(table)[1]  # NaN: never the old relative value
    [(_, frame)] = figures.cost_cells(table)
    frame = frame.set_index("method")
    assert frame.loc["random", "training cost"] == "n/a" and frame.loc["dense", "training cost"] == "1"
    assert frame.loc["random", "training seconds"] == "2.5" and frame.loc["dense", "training seconds"] == "12"


def test_a_cell_without_dense_points_or_a_declaration_has_no_cost():
    table = results.to_table([row("random", 0.9, 0, 6, flops=0.1)])
    assert cost.reference_epochs(table) == {}
    assert cost.training(table)[0] != cost.training(table)[0]


def test_a_profile_declares_reference_epochs_outside_the_cells_identity(tmp_path):
    from initprune.lab import profiles

    def write(reference):
        extra = "" if reference is None else f", reference_epochs: {reference}"
        path = tmp_path / "p.yaml"
        path.write_text(f"defaults: {{dataset: digits, arch: mlp, epochs: 1, seeds: [0], sparsities: [0.9]{extra}}}\n"
                        "executions:\n  - {notebook: random}\n")
        return profiles.load_profile(str(path))

    [plain], [declared] = write(None), write(4)
    assert plain.reference_epochs is None and declared.reference_epochs == 4
    assert plain.cell == declared.cell  # not part of the cell's identity, as tested_sparsities
    with pytest.raises(InitpruneError, match="'reference_epochs' must be a positive whole number"):
        write(0)
