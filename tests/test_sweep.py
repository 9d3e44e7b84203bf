"""The smoke sweep end to end in a temporary MLflow store: runs, skipping, failure and retry."""

import contextlib
import os
import sqlite3
import tarfile
from pathlib import Path

import pytest

from initprune import cli
from initprune.errors import InitpruneError
from initprune.lab import grid, profiles
from initprune.lab.store import ensure_store
from initprune.report.assembly import figures_dir


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def runs(uri, kind, status=None):
    c, exp_id = ensure_store(uri)
    found = c.search_runs([exp_id], f"tags.kind = '{kind}'", max_results=1000)
    return [r for r in found if status is None or r.info.status == status]


def test_smoke_sweep_logs_every_point_once_and_a_rerun_trains_nothing(store, capsys):
    assert cli.main(["sweep", "--profile", "smoke"]) == 0
    expected = {(p.hash(), p.seed) for ex in profiles.load_profile("smoke") for p in ex.points}
    points = runs(store, "point", "FINISHED")
    assert len(points) == len(expected) == 14  # the unablated SNIP point is shared by two executions
    assert {(r.data.tags["config_hash"], int(r.data.tags["seed"])) for r in points} == expected
    assert {r.data.tags["method"] for r in points} == {"dense", "random", "kstarts", "dissipating", "combined",
                                                       "magnitude", "snip", "grasp", "synflow", "posttrain"}
    assert {r.data.tags["ablation"] for r in points} == {"none", "shuffle", "reinit", "invert", "rewind"}
    assert len({r.data.tags["pid"] for r in points}) == 1  # one kernel kept for the six notebooks
    parents = runs(store, "execution", "FINISHED")
    assert len(parents) == 6
    assert all(r.data.tags["mlflow.parentRunId"] in {p.info.run_id for p in parents} for r in points)
    c, _ = ensure_store(store)
    for parent in parents:
        assert {"git_commit", "profile", "method", "dataset", "arch"} <= set(parent.data.tags)
        assert [a.path for a in c.list_artifacts(parent.info.run_id)] == [f"{parent.data.tags['method']}.ipynb"]
    kstarts = next(r for r in points if r.data.tags["method"] == "kstarts")
    assert len(c.get_metric_history(kstarts.info.run_id, "test_accuracy")) == 2  # one per epoch
    assert "kstarts.winner" in kstarts.data.metrics and "kept.1.weight" in kstarts.data.metrics
    assert kstarts.data.params["option.k"] == "2"
    capsys.readouterr()

    assert cli.main(["sweep", "--profile", "smoke"]) == 0
    assert "0 executions finished, 0 failed, 6 skipped" in capsys.readouterr().out
    assert len(runs(store, "point")) == len(expected)  # nothing trained again

    assert cli.main(["figures"]) == 0
    assert (figures_dir() / "claims.md").exists()
    assert runs(store, "figures", "FINISHED")


def test_a_failed_point_is_failed_not_finished_and_is_retried(store, tmp_path, monkeypatch, capsys):
    profile = tmp_path / "two.yaml"
    profile.write_text("executions:\n  - {notebook: random, sparsities: [0.5], seeds: [0, 1], epochs: 1}\n"
                       "  - {notebook: random, sparsities: [0.7], epochs: 1}\n")
    monkeypatch.setenv("INITPRUNE_INJECT_FAILURE", f"random:1:{tmp_path / 'failed-once'}")
    assert cli.main(["sweep", "--profile", str(profile)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "injected failure" in out
    finished = {r.data.params["sparsity"]: r for r in runs(store, "point", "FINISHED")}
    assert [r.data.tags["seed"] for r in finished.values()] == ["0", "0"]
    assert [r.data.tags["seed"] for r in runs(store, "point", "FAILED")] == ["1"]
    assert len(runs(store, "execution", "FAILED")) == 1
    # a notebook that failed takes its kernel down: the next one does not run in what it left
    assert finished["0.5"].data.tags["pid"] != finished["0.7"].data.tags["pid"]

    assert cli.main(["sweep", "--profile", str(profile)]) == 0  # the failure was transient
    assert sorted(r.data.tags["seed"] for r in runs(store, "point", "FINISHED")) == ["0", "0", "1"]
    assert len(runs(store, "point")) == 4  # the seeds 0 were not trained again


def test_a_dataset_that_cannot_be_had_fails_its_execution_and_the_sweep_goes_on(store, tmp_path, capsys):
    profile = tmp_path / "mixed.yaml"
    profile.write_text(
        f"executions:\n  - {{notebook: random, dataset: mnist, arch: lenet300, data_root: '{tmp_path}',"
        " sparsities: [0.5], epochs: 1}\n  - {notebook: random, sparsities: [0.5], epochs: 1}\n")
    assert cli.main(["sweep", "--profile", str(profile)]) == 1
    out = capsys.readouterr().out
    assert "InitpruneError: dataset 'mnist' not found under" in out
    assert "1 executions finished, 1 failed" in out
    assert len(runs(store, "point", "FINISHED")) == 1


def test_dry_run_reports_and_runs_nothing(store, capsys):
    assert cli.main(["sweep", "--profile", "smoke", "--dry-run"]) == 0
    assert "14 points in 6 executions, 0 finished" in capsys.readouterr().out  # the shared SNIP point once
    assert not runs(store, "point")
    assert os.environ["MLFLOW_TRACKING_URI"] == store


def _old_store(tmp_path, monkeypatch, archive: str) -> str:
    """A store an earlier commit wrote (tests/data), moved here: its artifact paths with it."""
    with tarfile.open(Path(__file__).parent / "data" / archive) as tar:
        tar.extractall(tmp_path, filter="data")
    db = tmp_path / "mlflow.db"
    with contextlib.closing(sqlite3.connect(db)) as con:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
            con.execute(f"UPDATE {table} SET {column} = replace({column}, 'file:///tmp/oldstore/', ?)",
                        (tmp_path.as_uri() + "/",))
        con.commit()
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.mark.parametrize("archive", ["store-before-issue-12.tar.gz", "store-before-issue-18.tar.gz"])
def test_a_store_of_the_old_identity_is_kept_and_each_point_trained_again_once(tmp_path, monkeypatch, capsys,
                                                                                archive):
    """tests/data: the smoke sweep's store as commits 1d5c4ac and 2e0ac31 wrote it (notebooks left
    out). Its points were keyed by a hash that left out values equal to the defaults of the day
    and recorded neither device nor threads: the migration keeps them, retired, and each point
    trains once more under its full identity, then never again."""
    uri = _old_store(tmp_path, monkeypatch, archive)
    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as con:
        before = {row[0] for row in con.execute(
            "SELECT run_uuid FROM tags WHERE key = 'kind' AND value = 'point'")}
    assert len(before) == 14

    assert cli.main(["sweep", "--profile", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "14 point(s) of this store were stored under an older run identity" in out
    assert "14 points in 6 executions, 0 finished" in out
    retired = runs(uri, "legacy-point")
    assert {r.info.run_id for r in retired} == before and not runs(uri, "point")
    assert all(r.data.tags["legacy_kind"] == "point" and "config_hash" in r.data.tags for r in retired)
    c, exp_id = ensure_store(uri)  # once: a second look retires nothing more
    assert c.get_experiment(exp_id).tags["initprune.retired"] == "14"

    train = lambda: grid.run_grid("combined", "digits", "mlp", [0.9], [0], 2,  # noqa: E731
                                  options={"k": 2, "prune_epochs": 1}, progress=False)
    first = train()
    assert first[0].run_id not in before and first[0].options["k"] == 2
    assert train()[0].run_id == first[0].run_id  # then read back, never trained again
    assert len(runs(uri, "point", "FINISHED")) == 1 and len(runs(uri, "legacy-point")) == 14


def test_a_store_of_a_newer_identity_scheme_is_refused_in_one_line_and_left_as_it_is(store, capsys):
    """A store that a newer initprune wrote (its scheme a number above ours, "12" against "2": not
    compared as text) is not this version's to retire: even a dry run is refused, nothing rewritten."""
    from initprune.lab import store as lab_store
    from initprune.lab.points import Points
    from initprune.spec import SCHEME

    c, exp_id = ensure_store(store)
    newer = "1" + SCHEME  # numerically above ours, below it as text
    c.set_experiment_tag(exp_id, lab_store.IDENTITY_TAG, newer)
    point = Points(c, exp_id).open_point(grid.expand("random", "digits", "mlp", [0.5], [0], 1)[0])
    c.set_tag(point, "identity", newer)
    c.set_terminated(point, "FINISHED")
    capsys.readouterr()
    assert cli.main(["sweep", "--profile", "smoke", "--dry-run"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "newer" in lines[0] and "upgrade initprune" in lines[0], out + err
    assert "older run identity" not in out
    with pytest.raises(InitpruneError, match=f"identity scheme {newer}"):
        ensure_store(store)
    assert c.get_experiment(exp_id).tags[lab_store.IDENTITY_TAG] == newer  # not rewritten
    assert "initprune.retired" not in c.get_experiment(exp_id).tags
    run = c.get_run(point)
    assert run.data.tags["kind"] == "point" and run.info.status == "FINISHED"  # not retired


def test_a_migration_interrupted_half_way_is_finished_by_the_next_look_and_counts_every_point(tmp_path, monkeypatch,
                                                                                              capsys):
    """The scheme tag is written last and the count is what the store holds: a migration cut
    short (here after 10 of 14 points) leaves the store to be migrated again, not marked done, and
    the next one retires the rest and counts all 14."""
    from initprune.lab import store as lab_store
    from initprune.lab.points import Points

    uri = _old_store(tmp_path, monkeypatch, "store-before-issue-18.tar.gz")
    c = lab_store.client(uri)
    exp_id = c.get_experiment_by_name(lab_store.experiment()).experiment_id
    tagged = []

    class Cut:  # the client, until the 21st tag: 10 points retired, then the process dies
        def __getattr__(self, name):
            return getattr(c, name)

        def set_tag(self, run_id, key, value):
            if len(tagged) == 20:
                raise KeyboardInterrupt
            tagged.append(run_id)
            c.set_tag(run_id, key, value)

    with pytest.raises(KeyboardInterrupt):
        Points(Cut(), exp_id).migrate()
    assert len(set(tagged)) == 10
    assert lab_store.IDENTITY_TAG not in c.get_experiment(exp_id).tags  # not marked migrated
    ensure_store(uri)
    assert "4 point(s) of this store were stored under an older run identity" in capsys.readouterr().out
    tags = c.get_experiment(exp_id).tags
    assert tags["initprune.retired"] == "14" and tags[lab_store.IDENTITY_TAG] == lab_store.SCHEME
    assert len(runs(uri, "legacy-point")) == 14 and not runs(uri, "point")
    assert Points(c, exp_id).migrate() == 0 and c.get_experiment(exp_id).tags["initprune.retired"] == "14"


def test_a_point_another_execution_finishes_between_two_looks_is_read_back_not_trained_again(monkeypatch):
    """The race behind a grid point with two FINISHED runs: the first look finds no FINISHED run,
    the other execution's run FINISHES, and the look for a holder finds none RUNNING either."""
    from types import SimpleNamespace

    from initprune import api
    from initprune.lab.points import Points

    done = SimpleNamespace(info=SimpleNamespace(run_id="theirs"))
    looks = iter([None, done, done])
    deleted = []
    monkeypatch.setattr(Points, "finished", lambda self, config: next(looks))
    monkeypatch.setattr(Points, "holder", lambda self, config, own=None: None)
    monkeypatch.setattr(Points, "open_point", lambda self, config, parent: "ours")
    monkeypatch.setattr(Points, "load", staticmethod(lambda run: {"run_id": run.info.run_id}))
    monkeypatch.setattr(grid, "train", lambda *a: pytest.fail("trained a point that had FINISHED"))
    client = SimpleNamespace(delete_run=deleted.append)
    assert grid.run_points(Points(client, "0"), "parent", [api.RunSpec()], None) == [{"run_id": "theirs"}]
    assert deleted == ["ours"]


def test_a_point_opened_after_its_execution_was_given_up_is_killed_not_trained(monkeypatch):
    """Ctrl-C on Dask: the sweep marks its executions KILLED, but a task it cannot stop may still
    open a point after that clean-up; the point must end KILLED, untrained, not stay RUNNING."""
    from types import SimpleNamespace

    from initprune import api
    from initprune.lab.points import Points, Superseded

    ended = {}
    client = SimpleNamespace(get_run=lambda run_id: SimpleNamespace(info=SimpleNamespace(status="KILLED")),
                             set_tag=lambda *a: None,
                             set_terminated=lambda run_id, status: ended.update({run_id: status}))
    monkeypatch.setattr(api, "run_group", lambda *a, **k: pytest.fail("trained a point of a given-up execution"))
    with pytest.raises(Superseded):
        grid.train(Points(client, "0"), "parent", [api.RunSpec()], ["ours"], None)
    assert ended == {"ours": "KILLED"}


def test_an_optional_execution_whose_data_cannot_be_had_is_left_out_in_one_line(store, tmp_path, capsys):
    """The demo's Fashion-MNIST cell on a machine without the data: the other cells run, and one
    line says which cell was left out and how to get its data."""
    profile = tmp_path / "mixed.yaml"
    profile.write_text(f"""
defaults: {{epochs: 2, seeds: [0], sparsities: [0.9]}}
executions:
  - {{notebook: random, dataset: digits, arch: mlp}}
  - {{notebook: random, dataset: mnist, arch: lenet300, data_root: "{tmp_path / 'empty'}", optional: true}}
""")
    assert cli.main(["sweep", "--profile", str(profile), "--dry-run"]) == 0
    out = capsys.readouterr().out
    left = [line for line in out.splitlines() if line.startswith("left out:")]
    assert len(left) == 1 and "random mnist/lenet300" in left[0] and "mnist" in left[0]
    assert "1 points in 1 executions" in out
    profile.write_text(profile.read_text().replace("optional: true", "optional: 3"))
    with pytest.raises(Exception, match="'optional' must be true or false"):
        profiles.load_profile(str(profile))


def _profile(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return profiles.load_profile(str(path))


def test_a_profile_expands_a_training_setting_like_an_option_into_each_points_identity(tmp_path):
    (ex,) = _profile(tmp_path, "defaults: {compute: [dense, sparse]}\n"
                               "executions: [{notebook: random, sparsities: [0.9, 0.98], seeds: [0, 1], epochs: 1}]\n")
    points = ex.points
    assert len(points) == 8  # two points per (sparsity, seed)
    by = {(p.sparsity, p.seed, p.training["compute"]): p for p in points}
    assert set(by) == {(s, seed, c) for s in (0.9, 0.98) for seed in (0, 1) for c in ("dense", "sparse")}
    for s in (0.9, 0.98):
        dense, sparse = by[s, 0, "dense"], by[s, 0, "sparse"]
        assert dense.hash() != sparse.hash()
        assert dense.hash() == grid.expand("random", "digits", "mlp", [s], [0], 1)[0].hash()  # as without the key
        assert {k: v for k, v in sparse.training.items() if k != "compute"} == {
            k: v for k, v in dense.training.items() if k != "compute"}
    assert ex.parameters["training"] == {"compute": ["dense", "sparse"]}  # the notebook's, beside the specs
    assert "options" not in ex.parameters  # a setting is no method's option
    # per execution over the defaults, and in the notebooks' `training` parameter alike
    one, two = _profile(tmp_path, "defaults: {compute: sparse, seeds: [0], sparsities: [0.9], epochs: 1}\n"
                                  "executions: [{notebook: random, lr: [0.05, 0.1]},\n"
                                  "             {notebook: kstarts, k: 2, training: {compute: dense, lr: 1}}]\n")
    assert sorted((p.training["lr"], p.training["compute"]) for p in one.points) == [(0.05, "sparse"),
                                                                                      (0.1, "sparse")]
    assert [p.training["lr"] for p in two.points] == [1.0] and two.points[0].training["compute"] == "sparse"


@pytest.mark.parametrize("setting,message", [("compute: fast", "compute must be one of: dense, sparse, auto"),
                                             ("lr: [0.1, -1]", "lr must be"),
                                             ("batch_size: [32, 0.5]", "batch_size must be")])
def test_a_bad_training_setting_in_a_profile_is_one_line_naming_the_execution(tmp_path, setting, message):
    with pytest.raises(InitpruneError) as err:
        _profile(tmp_path, f"executions: [{{notebook: random, epochs: 1}}, {{notebook: random, {setting}}}]\n")
    assert str(err.value).startswith("profile p.yaml, execution 2: ")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_training_settings_keep_the_demo_profiles_identities():
    """The stored runs of `make demo` keep theirs: a profile that sets no training setting makes
    the points it made before training settings could be set (pinned here)."""
    made = {p.hash() for ex in profiles.load_profile("demo") for p in ex.points}
    assert {"bfada03846d5",  # dense, digits / mlp, 20 epochs
            "5c30a2c9e1d0",  # kstarts, digits / mlp, s = 0.99
            "dab0f4874803",  # combined (cubic), digits / mlp, s = 0.99
            "4a61a198e97a"} <= made  # combined (cubic), mnist1d / cnn1d, s = 0.95, 15 epochs
