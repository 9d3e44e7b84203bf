"""Independent random streams from one seed.

The weights, the masks and the data order must not share a stream: a mask drawn from the very
numbers that drew θ0 would keep the largest weights and call it random.
"""

import hashlib

import torch


def derive(seed: int, purpose: str) -> int:
    """A 63-bit seed for ``purpose`` ("init", "masks", "data"), stable across versions."""
    digest = hashlib.sha256(f"initprune:{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, purpose: str, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive(seed, purpose))
