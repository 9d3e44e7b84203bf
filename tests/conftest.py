import pytest

from toys import toy_data, toy_model


@pytest.fixture
def toy():
    return toy_model()


@pytest.fixture
def data():
    return toy_data()
