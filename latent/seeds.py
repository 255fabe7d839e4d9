"""Seeds and classes with the official conventions (seed -> z, one-hot class), and batched generation."""
from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from common.errors import UserError


MAX_SEEDS = 1_000_000      # seeds one command accepts (each is an image, a row or a key frame)


def parse_seeds(text: str) -> list[int]:
    """'0-99', '1,5,7' or mixed '0,3,10-20' -> list of ints (order kept, ranges inclusive)."""
    seeds: list[int] = []
    ranges = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"bad seed list '{text}': '{part}' is not N or N-M (e.g. 0-99 or 1,5,7 or 0,3,10-20)")
        lo, hi = int(m[1]), int(m[2]) if m[2] else int(m[1])
        if hi < lo:
            raise UserError(f"bad seed range '{part}': the end is before the start")
        if hi >= 2 ** 32:
            raise UserError(f"seed {hi} is too large (seeds are 0..4294967295)")
        ranges.append((lo, hi))
    count = sum(hi - lo + 1 for lo, hi in ranges)            # counted before any list is made
    if count > MAX_SEEDS:
        raise UserError(f"--seeds {text} names {count:,} seeds; at most {MAX_SEEDS:,} per command (split the range)")
    for lo, hi in ranges:
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise UserError("no seeds given (e.g. --seeds 0-99)")
    return seeds


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """The official mapping: np.random.RandomState(seed).randn(1, z_dim), as float32 [1, z_dim]."""
    return np.random.RandomState(seed).randn(1, z_dim).astype(np.float32)


def class_vector(c_dim: int, class_idx: int | None) -> np.ndarray | None:
    """One-hot label [1, c_dim] for conditional networks; errors for a mismatch between network and flag."""
    if c_dim == 0:
        if class_idx is not None:
            raise UserError("--class was given but the network is unconditional")
        return None
    if class_idx is None:
        raise UserError(f"the network is conditional ({c_dim} classes): pass --class 0..{c_dim - 1}")
    if not 0 <= class_idx < c_dim:
        raise UserError(f"--class {class_idx} is out of range 0..{c_dim - 1}")
    c = np.zeros([1, c_dim], np.float32)
    c[0, class_idx] = 1
    return c


def generate_seeds(G, seeds: list[int], psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "const",
                   class_idx: int | None = None, batch: int = 8) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (seed, uint8 [H, W, C]) for each seed, generating in batches."""
    import tensorflow as tf

    from networks.ops import to_uint8
    c1 = class_vector(G.c_dim, class_idx)

    @tf.function(reduce_retracing=True, autograph=False)
    def run(z, c):
        return to_uint8(G(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode))

    for start in range(0, len(seeds), batch):
        chunk = seeds[start:start + batch]
        z = np.concatenate([seed_to_z(s, G.z_dim) for s in chunk])
        c = np.repeat(c1, len(chunk), axis=0) if c1 is not None else None
        images = run(tf.constant(z), None if c is None else tf.constant(c)).numpy()
        yield from zip(chunk, images)
