"""Who may write to ``server`` and ``ui``: MLflow's own ``basic-auth`` app, on by default.

The credentials are generated once, a random password, into a file only this user can read
(``~/.config/initprune/mlflow-credentials``, or ``$INITPRUNE_CREDENTIALS``), created with mode
0600 and never wider; later starts reuse it. Its lines are ``MLFLOW_TRACKING_USERNAME=...`` and
``MLFLOW_TRACKING_PASSWORD=...``, the variables MLflow's clients read, so a shell may source it.
The auth database (its users) lives beside the store, ``mlflow-auth.db``.

Every initprune command that talks to a tracking server takes the credentials from those
variables where both are set, else from the file (``use_credentials``), and a sweep hands them to
its workers with the rest of ``MLFLOW_TRACKING_*``. ``--no-auth`` starts MLflow without the app:
then anyone who can reach the port can write.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import secrets
import sqlite3
import stat
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import InitpruneError

USER, PASSWORD = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
USERNAME = "initprune"
DATABASE, CONFIG = "mlflow-auth.db", "mlflow-auth.ini"


def credentials_path() -> Path:
    given = os.environ.get("INITPRUNE_CREDENTIALS")
    if given:
        return Path(given).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "initprune" / "mlflow-credentials"


def read(path: Path | None = None) -> tuple[str, str] | None:
    """(user name, password) from the file, or None where there is no file."""
    path = path or credentials_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise InitpruneError(f"cannot read the MLflow credentials {path} ({err.strerror})") from None
    values = dict(line.strip().split("=", 1) for line in text.splitlines()
                  if "=" in line and not line.lstrip().startswith("#"))
    if not values.get(USER) or not values.get(PASSWORD):
        raise InitpruneError(f"the MLflow credentials {path} lack {USER} or {PASSWORD}; delete the file and "
                             "`python -m initprune server` (or ui) writes new ones")
    return values[USER].strip(), values[PASSWORD].strip()


def ensure(path: Path | None = None) -> tuple[str, str, bool]:
    """The server's credentials: the file's, or new ones written into it. Returns (user, password,
    whether they are new). A file others can read is refused: its password may be known."""
    path = path or credentials_path()
    found = read(path)
    if found is None:
        _create(path, USERNAME, secrets.token_urlsafe(24))
        found = read(path)  # another server may have written it first: its credentials count
        created = True
    else:
        created = False
    info = path.stat()
    if info.st_mode & 0o077 or info.st_uid != os.getuid():
        raise InitpruneError(f"the MLflow credentials {path} can be read by others (mode "
                             f"{stat.S_IMODE(info.st_mode):o}, owner uid {info.st_uid}): delete it and a new "
                             "password is made at the next start")
    return (*found, created)


def _create(path: Path, user: str, password: str) -> None:
    """Never overwriting a file another start made first: that one's credentials count."""
    text = (f"# MLflow credentials of `python -m initprune server` and `ui` (generated; keep private)\n"
            f"{USER}={user}\n{PASSWORD}={password}\n")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private(path, text, replace=False)
    except OSError as err:
        raise InitpruneError(f"cannot write the MLflow credentials {path} ({err.strerror}); set "
                             "INITPRUNE_CREDENTIALS to a file you can write, or pass --no-auth") from None


def _private(path: Path, text: str, replace: bool = True) -> None:
    """Written under a temporary name with mode 0600 from the start, then moved into place: never
    readable by others, never seen half-written. Without ``replace``, a file already there stays."""
    new = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(new, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(new, path)
    finally:
        with contextlib.suppress(OSError):
            new.unlink()


def server_environment(folder: Path) -> tuple[dict, str]:
    """What ``mlflow server|ui --app-name basic-auth`` needs in its environment for a store in
    ``folder``, and the line that tells the user where the credentials are."""
    if importlib.util.find_spec("flask_wtf") is None:
        raise InitpruneError("MLflow's authentication needs Flask-WTF: pip install 'mlflow[auth]' (make setup "
                             "installs it), or pass --no-auth on a single-user machine")
    path = credentials_path()
    user, password, created = ensure(path)
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / DATABASE
    if not database.exists():  # private from the start; SQLite gives its journals the same mode
        with contextlib.suppress(FileExistsError):
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    else:
        _sync_admin(database, user, password)
    # MLflow's auth config; the password is also there, for MLflow versions that read it only
    # from the file, so it is as private as the credentials
    config = folder / CONFIG
    _private(config, "[mlflow]\ndefault_permission = READ\n"
             f"database_uri = sqlite:///{database.resolve()}\nadmin_username = {user}\nadmin_password = {password}\n"
             "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(config),
           "MLFLOW_AUTH_ADMIN_USERNAME": user, "MLFLOW_AUTH_ADMIN_PASSWORD": password,  # never on a command line
           "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or secrets.token_hex(32)}
    line = (f"MLflow authentication: on; user '{user}', password in {path} ({'new, ' if created else ''}mode 600). "
            f"initprune commands on this host read it; elsewhere export {USER} and {PASSWORD} from it")
    return env, line


def _sync_admin(database: Path, user: str, password: str) -> None:
    """MLflow sets the admin's password only when it creates the user: where the credentials file
    was made anew since (deleted, another INITPRUNE_CREDENTIALS), the database is told the new one."""
    from werkzeug.security import check_password_hash, generate_password_hash

    try:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as con, con:
            row = con.execute("SELECT password_hash FROM users WHERE username = ?", (user,)).fetchone()
            if row is not None and not check_password_hash(row[0], password):
                con.execute("UPDATE users SET password_hash = ?, is_admin = 1 WHERE username = ?",
                            (generate_password_hash(password), user))
                print(f"MLflow authentication: user '{user}' of {database} now has the password in "
                      f"{credentials_path()}", flush=True)
    except sqlite3.OperationalError:  # no users yet: MLflow creates the admin
        pass
    except sqlite3.DatabaseError as err:
        raise InitpruneError(f"the MLflow auth database {database} is damaged ({err}); move it aside "
                             f"(mv {database} {database}.damaged) and a new one is made") from None


def off_line(host: str, port: int) -> str:
    who = "anyone on this host" if host in ("127.0.0.1", "localhost", "::1") else f"anyone who reaches {host}:{port}"
    return f"MLflow authentication: off (--no-auth): {who} can write, delete or forge runs and artifacts"


def use_credentials() -> str | None:
    """For a client of a tracking server: the credentials of ``MLFLOW_TRACKING_USERNAME`` and
    ``MLFLOW_TRACKING_PASSWORD`` where both are set, else the file's, put in this process's
    environment (MLflow's clients, and a sweep's workers, read them there). Returns where they
    came from, or None where there are none."""
    if os.environ.get(USER) and os.environ.get(PASSWORD):
        return f"{USER} and {PASSWORD}"
    path = credentials_path()
    found = read(path)
    if found is None:
        return None
    os.environ[USER], os.environ[PASSWORD] = found
    return str(path)


def check_access(uri: str, timeout: float = 5) -> None:
    """One authenticated read on the server, so that a wrong or missing credential fails the
    command at once, in one line, rather than a worker later."""
    source = use_credentials()
    request = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1")
    if source:
        token = base64.b64encode(f"{os.environ[USER]}:{os.environ[PASSWORD]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise refused(uri, err.code, source) from None
    except OSError:  # it answered its health check: anything else is for the command to meet
        pass


def refused(uri: str, code: int, source: str | None = None) -> InitpruneError:
    here = credentials_path()
    if code == 403:
        return InitpruneError(f"the MLflow server at {uri} refused user '{os.environ.get(USER)}' (403 Forbidden): use "
                              f"the credentials `python -m initprune server` wrote on its host ({here} there)")
    if source is None:
        return InitpruneError(f"the MLflow server at {uri} wants a user name and password (401) and none is set: "
                              f"export {USER} and {PASSWORD} from {here} on the server's host, or copy that file here")
    return InitpruneError(f"the MLflow server at {uri} refused the credentials in {source} (401 Unauthorized): "
                          f"use those `python -m initprune server` wrote on its host ({here} there)")
