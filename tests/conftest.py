import pytest

from toys import toy_data, toy_model


@pytest.fixture(autouse=True, scope="session")
def private_credentials(tmp_path_factory):
    """The MLflow credentials a test's `server` generates, and its clients read, are a temporary
    file's, never the user's own (~/.config/initprune)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INITPRUNE_CREDENTIALS", str(tmp_path_factory.mktemp("credentials") / "mlflow-credentials"))
        yield


@pytest.fixture
def toy():
    return toy_model()


@pytest.fixture
def data():
    return toy_data()
