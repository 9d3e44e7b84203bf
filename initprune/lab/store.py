"""The MLflow store: where it is, checking that it can be used, creating it once.

The store is ``sqlite:///<root>/mlruns/mlflow.db`` with artifacts in ``<root>/mlruns/artifacts``,
in the lab's root (``root.py``); ``MLFLOW_TRACKING_URI`` overrides it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import logging
import os
import re
from pathlib import Path

from ..errors import InitpruneError
from ..spec import SCHEME
from . import auth, root
from .points import IDENTITY_TAG, Points, scheme_of

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# the lab's root as the report reads it at import (its findings, figures/ and README); the lab
# itself asks ``root.root()`` when it needs the folder, which outside a clone says so in one line
ROOT = root.find() or Path(__file__).resolve().parents[2]


def experiment() -> str:
    """The experiment every run goes to; read at each call, so that a worker serving several
    sweeps follows the one whose task it runs."""
    return os.environ.get("INITPRUNE_EXPERIMENT") or "initprune"


def default_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the sqlite store in the lab root's ``mlruns/``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root.root() / 'mlruns' / 'mlflow.db'}"


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a sqlite store (``mlruns/artifacts``); a server keeps its own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
    return None


def client(uri: str | None = None):
    from mlflow import MlflowClient

    _quiet()
    return MlflowClient(uri or default_uri())


def _quiet() -> None:
    """MLflow configures its loggers when imported: quieten them after."""
    import mlflow  # noqa: F401

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # it logs each database error with a traceback, then raises it: the error raised is what we report
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def check_store(uri: str | None = None) -> str:
    """Fail at once, in one line, where the store cannot be used: a tracking server that does not
    answer within seconds, a sqlite folder that cannot be written, a damaged database. Every
    command that tracks passes here (through ``ensure_store``), and one that tracks later (``run``)
    may call it before it trains anything. Returns the URI."""
    uri = uri or default_uri()
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    elif uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            open(db.parent / ".initprune.lock", "a").close()  # the write probe
        except OSError as err:
            raise InitpruneError(f"cannot write the MLflow store in {db.parent} ({err.strerror}); "
                                 "free space or fix its permissions, or set MLFLOW_TRACKING_URI") from None
        if db.exists():
            _check_intact(db)
    return uri


def _check_server(uri: str, timeout: float = 5) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as answer:
            answer.read()
    except OSError as err:
        raise InitpruneError(f"no MLflow tracking server answers at {uri} ({getattr(err, 'reason', err)}); "
                             "start one with `make server`") from None
    auth.check_access(uri, timeout)  # its credentials: MLFLOW_TRACKING_USERNAME/PASSWORD, else the file's


def _check_intact(db: Path) -> None:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
            problem = con.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.OperationalError:  # busy or unreadable, not damaged: MLflow says what it is
        return
    except sqlite3.DatabaseError as err:  # not a database, or malformed
        problem = str(err)
    if problem != "ok":
        raise _damaged(db, problem)
    _check_schema(db)


def _check_schema(db: Path) -> None:
    """Refuse, untouched, a store of another MLflow schema than the installed MLflow's: one a newer
    MLflow migrated (a revision this one does not know; MLflow itself would advise `mlflow db
    upgrade`, which cannot go there), or one of an older MLflow, which that command upgrades."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as con:
            found = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:  # busy, or no such table yet (a store being built): MLflow says what it is
        return
    if not found:
        return
    revisions, head = _mlflow_schema()
    if found[0] not in revisions:
        import mlflow

        raise InitpruneError(f"the MLflow store {db} was written by a newer MLflow (schema revision {found[0]}, "
                             f"unknown to MLflow {mlflow.__version__} here); upgrade MLflow (pip install -U "
                             "mlflow) or set MLFLOW_TRACKING_URI to another store")
    if found[0] != head:
        raise InitpruneError(f"the MLflow store {db} has an older MLflow schema; back it up, then upgrade it with "
                             f"`mlflow db upgrade sqlite:///{db}`")


@functools.cache
def _mlflow_schema() -> tuple[set[str], str]:
    """The schema revisions of the installed MLflow's migrations, and the newest."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    migrations = ScriptDirectory.from_config(_get_alembic_config("sqlite://"))
    return {r.revision for r in migrations.walk_revisions()}, migrations.get_current_head()


def _damaged(db, problem: str) -> InitpruneError:
    return InitpruneError(f"the MLflow store {db} is damaged ({problem.splitlines()[0]}); restore it from a "
                          f"backup, or move it aside (mv {db} {db}.damaged) and a new one is created")


def store_error(err, uri: str | None = None) -> InitpruneError | None:
    """A full disk or a damaged database, from wherever it surfaced, as one line that names the
    store and what to do; None for any other error."""
    if not uri:
        try:
            uri = default_uri()
        except InitpruneError:  # no store to name outside a clone: the error is someone else's
            uri = ""
    where = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else uri
    text = str(err)
    filename = getattr(err, "filename", None)  # a file the store writes, not any file at all
    ours = uri.startswith("sqlite:///") and filename and Path(filename).is_relative_to(Path(where).parent)
    if "database or disk is full" in text or (getattr(err, "errno", None) == errno.ENOSPC and ours):
        return InitpruneError(f"no space left on the disk of the MLflow store {where}: free space there, then "
                              "run the same command again (what finished is kept)")
    refused = re.search(r"error code (401|403) != 200", text)
    if refused and not uri.startswith("sqlite:///"):  # a server with authentication, wherever it surfaced
        source = f"{auth.USER} and {auth.PASSWORD}" if os.environ.get(auth.PASSWORD) else None
        return auth.refused(uri, int(refused.group(1)), source)
    if "database disk image is malformed" in text or "file is not a database" in text:
        return _damaged(where, text.split(") ", 1)[-1])  # without SQLAlchemy's (sqlite3.Error) prefix
    return None


def ensure_store(uri: str | None = None) -> tuple[object, str]:
    """Check the store, then create the database and the experiment once, before any parallel
    writer starts. Returns (client, experiment id)."""
    uri = check_store(uri)
    if not uri.startswith("sqlite:///"):
        return _open(uri)
    db = Path(uri[len("sqlite:///"):])
    with open(db.parent / ".initprune.lock", "a") as lock:
        # a new database is built by migrations, which two processes must not run at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not db.exists():
            _create(db, uri)
        try:
            return _open(uri)
        except Exception as err:
            problem = store_error(err, uri)
            if problem is None:
                raise
            raise problem from None


def _create(db: Path, uri: str) -> None:
    """Build a new database beside its name and rename it into place once complete, so that a disk
    that fills meanwhile leaves no half-built store behind for the next try to stumble on."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    _quiet()
    new = db.with_name(db.name + ".new")
    leftovers = [new.with_name(new.name + end) for end in ("", "-journal", "-wal", "-shm")]
    for path in leftovers:  # what a creation killed half-way left (we hold the lock)
        path.unlink(missing_ok=True)
    try:
        SqlAlchemyStore(f"sqlite:///{new}", artifact_root(uri))
        os.replace(new, db)
    except Exception as err:
        for path in leftovers:
            path.unlink(missing_ok=True)
        raise store_error(err, uri) or InitpruneError(
            f"cannot create the MLflow store {db} ({str(err).splitlines()[0]}); set MLFLOW_TRACKING_URI "
            "to another store") from None
    finally:  # release the new file's connection: from now on the store is opened by its own name
        engine = getattr(SqlAlchemyStore, "_engine_map", {}).pop(f"sqlite:///{new}", None)
        if engine is not None:
            engine.dispose()


def _open(uri: str) -> tuple[object, str]:
    c = client(uri)
    name = experiment()
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            exp_id = c.create_experiment(name, artifact_location=artifact_root(uri),
                                         tags={"mlflow.experimentKind": "custom_model_development",
                                               IDENTITY_TAG: SCHEME})
        except Exception:  # another process created it first
            exp_id = c.get_experiment_by_name(name).experiment_id
    else:
        exp_id = exp.experiment_id
        scheme = scheme_of(exp.tags.get(IDENTITY_TAG))
        if scheme is None or scheme > int(SCHEME):  # a newer initprune's: not this one's to retire
            where = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else uri
            raise InitpruneError(f"experiment '{name}' of the MLflow store {where} is kept under run identity scheme "
                                 f"{exp.tags[IDENTITY_TAG]}, newer than this initprune's ({SCHEME}); upgrade initprune "
                                 "to use it, or set INITPRUNE_EXPERIMENT or MLFLOW_TRACKING_URI to another store")
        if scheme < int(SCHEME):
            Points(c, exp_id).migrate()
    return c, exp_id


def points(uri: str | None = None) -> Points:
    """The point store at ``uri`` (default: ``default_uri``), checked, created once and migrated."""
    return Points(*ensure_store(uri))
