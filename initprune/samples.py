"""A few test reconstructions kept with each reconstruction run, for the report's picture of them.

The store keeps no model (a point's artifacts are its ``result.json``), so a figure that shows what
an autoencoder reconstructs cannot make its outputs afterwards. ``run`` therefore keeps, for a
reconstruction run only, the first ``COUNT`` test images (in test-set order: the same for every
run of the dataset) as the model sees them reconstructed, and the sweep logs them beside the
result as ``ARTIFACT`` (float16: about 25 kB for 8 MNIST images). The result JSON is unchanged.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn

COUNT = 8  # test images per run
ARTIFACT = "reconstructions.npz"  # {"targets": (COUNT, *shape), "outputs": (COUNT, *shape)}, float16, in [0, 1]


@torch.no_grad()
def reconstructions(model: nn.Module, data, count: int = COUNT) -> dict[str, np.ndarray]:
    """The first ``count`` test inputs as the reconstruction's targets (in [0, 1]) and the trained
    ``model``'s outputs for them, float16, on the CPU; the model's mode is left as it was."""
    x = data.test[0][:count]
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        out = model(x.to(device=param.device, dtype=param.dtype)).float().cpu().reshape(x.shape)
    finally:
        model.train(was_training)
    return {"targets": data.target(x).float().numpy().astype(np.float16),
            "outputs": out.clamp(0.0, 1.0).numpy().astype(np.float16)}


def encode(arrays: dict[str, np.ndarray]) -> bytes:
    """The arrays as the bytes of an ``.npz`` file."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def decode(raw: bytes) -> dict[str, np.ndarray]:
    """An ``ARTIFACT`` file's arrays; never unpickles."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as found:
        return {k: found[k] for k in found.files}
