"""Test-wide environment, for pytest and nbval alike (notebook kernels inherit it): no network,
MLflow and figures in a temporary folder, never the user's mlruns/ or figures/."""

import os
import tempfile

_tmp = tempfile.mkdtemp(prefix="initprune-tests-")
os.environ["INITPRUNE_OFFLINE"] = "1"
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_tmp}/mlflow.db"
os.environ["INITPRUNE_FIGURES"] = f"{_tmp}/figures"
os.environ["MPLBACKEND"] = "Agg"
