"""Who can write to `server` (and `ui`, the same MLflow app): with authentication, the default,
only a client with the generated credentials; with --no-auth, anyone who reaches the port.

Real servers on free 127.0.0.1 ports over temporary stores, one per mode for the whole module;
the credentials go to a temporary file (INITPRUNE_CREDENTIALS), never the user's own."""

import base64
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from clusters import HOST, Services, free_port, one_line_error, wait_until

from initprune.lab import auth

API = "/api/2.0/mlflow"


def start(services: Services, store, credentials, *flags) -> str:
    port = free_port()
    store.mkdir(parents=True, exist_ok=True)
    services.start(f"server-{port}", [sys.executable, "-m", "initprune", "server", "--store", str(store),
                                      "--host", HOST, "--port", str(port), *flags],
                   {"INITPRUNE_CREDENTIALS": str(credentials), "PYTHONUNBUFFERED": "1"})
    uri = f"http://{HOST}:{port}"
    wait_until(lambda: urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200, "the MLflow server", 300)
    return uri


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    running = Services(tmp_path_factory.mktemp("logs"))
    yield running
    running.stop()  # always: the servers and their workers


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    return tmp_path_factory.mktemp("home") / "config" / "initprune" / "mlflow-credentials"


@pytest.fixture(scope="module")
def secured(services, tmp_path_factory, credentials):
    return start(services, tmp_path_factory.mktemp("secured"), credentials)


@pytest.fixture(scope="module")
def open_server(services, tmp_path_factory, credentials):
    return start(services, tmp_path_factory.mktemp("open"), credentials, "--no-auth")


def call(uri: str, endpoint: str, body: dict | None = None, login: tuple[str, str] | None = None) -> tuple[int, dict]:
    """(status, JSON answer) of one REST call, as curl would make it: POST with a body, else GET."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{uri}{API}/{endpoint}", data=data, headers={"Content-Type": "application/json"})
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, {}


def a_run(uri: str, login) -> str:
    status, exp = call(uri, "experiments/create", {"name": f"auth-{free_port()}"}, login)
    assert status == 200, status
    status, run = call(uri, "runs/create", {"experiment_id": exp["experiment_id"]}, login)
    assert status == 200, status
    return run["run"]["info"]["run_id"]


def lifecycle(uri: str, run_id: str, login) -> str:
    status, run = call(uri, f"runs/get?run_id={run_id}", login=login)
    assert status == 200, status
    return run["run"]["info"]["lifecycle_stage"]


def test_the_credentials_are_generated_private_and_named_where_the_server_starts(secured, credentials, services):
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials.parent.stat().st_mode) == 0o700
    user, password = auth.read(credentials)
    assert user and len(password) >= 24
    logs = "".join(services.log(name.stem) for name in services.log_dir.glob("server-*.log"))
    assert f"password in {credentials}" in logs
    assert password not in logs  # said where it is, never what it is


def test_without_credentials_nothing_can_be_written_or_deleted(secured, credentials):
    login = auth.read(credentials)
    run_id = a_run(secured, login)
    # what `runuser -u nobody -- curl -X POST .../runs/delete` does: no credentials, or guessed ones
    for guess in (None, (login[0], "not-the-password"), ("admin", "password1234")):
        assert call(secured, "runs/delete", {"run_id": run_id}, guess)[0] == 401
        assert call(secured, "experiments/create", {"name": "forged"}, guess)[0] == 401
        assert call(secured, "runs/create", {"experiment_id": "0"}, guess)[0] == 401
    assert lifecycle(secured, run_id, login) == "active"  # nothing was deleted
    upload = urllib.request.Request(f"{secured}/api/2.0/mlflow-artifacts/artifacts/{run_id}/forged.txt",
                                    data=b"forged", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(upload, timeout=30)
    assert refused.value.code == 401  # nor can an artifact be uploaded
    assert call(secured, "experiments/get-by-name?experiment_name=forged", login=login)[0] == 404
    # with the generated credentials the same call works
    assert call(secured, "runs/delete", {"run_id": run_id}, login)[0] == 200
    assert lifecycle(secured, run_id, login) == "deleted"


def test_initprune_commands_read_the_credentials_file(secured, credentials, monkeypatch):
    from initprune.lab import store

    monkeypatch.setenv("INITPRUNE_CREDENTIALS", str(credentials))
    monkeypatch.delenv(auth.USER, raising=False)
    monkeypatch.delenv(auth.PASSWORD, raising=False)
    monkeypatch.setenv("INITPRUNE_EXPERIMENT", "auth-commands")
    c, exp_id = store.ensure_store(secured)  # through MLflow's own client, as every command goes
    assert (os.environ[auth.USER], os.environ[auth.PASSWORD]) == auth.read(credentials)  # as the workers get them
    run = c.create_run(exp_id)
    c.log_param(run.info.run_id, "written", "yes")
    assert c.get_run(run.info.run_id).data.params == {"written": "yes"}


def test_a_sweep_with_the_credentials_file_runs_and_logs(secured, credentials, tmp_path):
    profile = tmp_path / "tiny.yaml"
    profile.write_text("executions:\n  - {notebook: random, sparsities: [0.5], seeds: [0], epochs: 1}\n")
    env = {k: v for k, v in os.environ.items() if k not in (auth.USER, auth.PASSWORD)}
    env |= {"MLFLOW_TRACKING_URI": secured, "INITPRUNE_CREDENTIALS": str(credentials),
            "INITPRUNE_EXPERIMENT": "auth-sweep", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "initprune", "sweep", "--profile", str(profile), "--jobs", "2"],
                          env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done: 1 executions finished, 0 failed" in proc.stdout, proc.stdout


@pytest.mark.parametrize("case", ["wrong", "missing"])
def test_a_wrong_or_missing_credential_is_one_line(secured, credentials, tmp_path, case):
    env = {k: v for k, v in os.environ.items() if k not in (auth.USER, auth.PASSWORD)}
    env |= {"MLFLOW_TRACKING_URI": secured, "INITPRUNE_CREDENTIALS": str(tmp_path / "none")}
    if case == "wrong":
        env |= {auth.USER: auth.read(credentials)[0], auth.PASSWORD: "not-the-password"}
    profile = tmp_path / "tiny.yaml"
    profile.write_text("executions:\n  - {notebook: random, sparsities: [0.5], seeds: [0], epochs: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "initprune", "sweep", "--profile", str(profile), "--dry-run"],
                          env=env, capture_output=True, text=True, timeout=120)
    words = ["refused the credentials in MLFLOW_TRACKING_USERNAME", "401"] if case == "wrong" else \
        ["wants a user name and password (401) and none is set", "MLFLOW_TRACKING_PASSWORD"]
    one_line_error(proc, f"the MLflow server at {secured}", *words)


def test_no_auth_lets_anyone_on_this_host_write_and_says_so(open_server, services):
    status, exp = call(open_server, "experiments/create", {"name": "anyone"})  # no credentials at all
    assert status == 200
    status, run = call(open_server, "runs/create", {"experiment_id": exp["experiment_id"]})
    assert call(open_server, "runs/delete", {"run_id": run["run"]["info"]["run_id"]})[0] == 200
    port = open_server.rsplit(":", 1)[1]
    said = services.log(f"server-{port}")
    assert "MLflow authentication: off (--no-auth): anyone on this host can write" in said
    assert not list(services.log_dir.parent.glob("open*/mlflow-auth.*"))  # no auth database for it


# the credentials file itself, without a server

def test_credentials_are_created_0600_whatever_the_umask_and_reused(tmp_path, monkeypatch):
    path = tmp_path / "config" / "mlflow-credentials"
    before = os.umask(0)
    try:
        user, password, created = auth.ensure(path)
    finally:
        os.umask(before)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.ensure(path) == (user, password, False)  # a later start reuses them
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left beside it


def test_credentials_others_can_read_are_refused(tmp_path):
    path = tmp_path / "mlflow-credentials"
    auth.ensure(path)
    path.chmod(0o644)
    with pytest.raises(auth.InitpruneError, match="can be read by others"):
        auth.ensure(path)


def test_a_new_credentials_file_replaces_the_admin_password_of_an_existing_auth_database(tmp_path, monkeypatch):
    import sqlite3

    from werkzeug.security import check_password_hash, generate_password_hash

    db = tmp_path / auth.DATABASE
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, password_hash TEXT, is_admin BOOL)")
        con.execute("INSERT INTO users VALUES (1, 'initprune', ?, 1)", (generate_password_hash("an old password"),))
    con.close()
    monkeypatch.setenv("INITPRUNE_CREDENTIALS", str(tmp_path / "new-credentials"))
    env, said = auth.server_environment(tmp_path)
    with sqlite3.connect(db) as con:
        stored = con.execute("SELECT password_hash FROM users").fetchone()[0]
    con.close()
    assert check_password_hash(stored, env["MLFLOW_AUTH_ADMIN_PASSWORD"])
    assert f"password in {tmp_path / 'new-credentials'} (new, mode 600)" in said


# what `server` and `ui` start, without starting it

REAL_POPEN = subprocess.Popen


class FakeServer:
    """MLflow's server recorded, not started: a process that exits at once stands in for it (so
    that its session can be ended as MLflow's would); any other process (MLflow's imports run
    some) runs."""

    def __new__(cls, command, *args, **kwargs):
        if command[1:3] != ["-m", "mlflow"]:
            return REAL_POPEN(command, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, command, env=None, **kwargs):
        started.append((command, env))
        self.process = REAL_POPEN([sys.executable, "-c", "pass"], **kwargs)
        self.pid = self.process.pid

    def poll(self):
        return self.process.poll()

    def wait(self, timeout=None):
        return self.process.wait(timeout)


started: list = []


class Healthy:
    status = 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("flags", [[], ["--no-auth"]])
def test_ui_and_server_start_mlflow_with_the_login_or_say_who_can_write(tmp_path, monkeypatch, capsys, flags):
    from initprune import cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("INITPRUNE_CREDENTIALS", str(tmp_path / "credentials"))
    for name in ("MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD",
                 "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)  # only MLflow's environment may have them
    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Healthy())
    started.clear()
    assert cli.main(["ui", "--port", str(free_port()), *flags]) == 0
    (command, env), = started
    ui_said = capsys.readouterr().out
    assert cli.main(["server", "--store", str(tmp_path), "--port", str(free_port()), *flags]) == 0
    (server_command, server_env) = started[1]
    server_said = capsys.readouterr().out
    for said, argv, environ in ((ui_said, command, env), (server_said, server_command, server_env)):
        if flags:
            assert "--app-name" not in argv
            assert "MLflow authentication: off (--no-auth): anyone on this host can write" in said
            assert not (tmp_path / "credentials").exists()
        else:
            assert argv[argv.index("--app-name") + 1] == "basic-auth"
            user, password = auth.read(tmp_path / "credentials")
            assert f"password in {tmp_path / 'credentials'}" in said and password not in said
            assert password not in " ".join(argv)  # /proc/PID/cmdline is world-readable; the environment is not
            assert environ["MLFLOW_AUTH_ADMIN_PASSWORD"] == password
            assert "MLFLOW_AUTH_ADMIN_PASSWORD" not in os.environ  # in MLflow's environment, not this process's
            assert stat.S_IMODE((tmp_path / auth.DATABASE).stat().st_mode) == 0o600
            assert stat.S_IMODE((tmp_path / auth.CONFIG).stat().st_mode) == 0o600
