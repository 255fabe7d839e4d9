"""Interpolation: spherical interpolation and walks through key latents (frames for videos, PPL paths)."""
from __future__ import annotations

import numpy as np

from common.errors import UserError


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation between a and b (last axis), falling back to linear when they are parallel."""
    an = a / np.linalg.norm(a, axis=-1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip(np.sum(an * bn, axis=-1, keepdims=True), -1.0, 1.0))
    so = np.sin(omega)
    safe = np.where(so < 1e-6, 1.0, so)
    out = np.where(so < 1e-6, (1 - t) * a + t * b,
                   np.sin((1 - t) * omega) / safe * a + np.sin(t * omega) / safe * b)
    return out.astype(a.dtype)


def walk(keys: np.ndarray, frames: int, loop: bool = False, spherical: bool = False) -> np.ndarray:
    """Interpolate through key latents [K, ...]: `frames` per segment, -> [T, ...].

    Without `loop` the walk ends exactly on the last key (T = (K - 1) * frames + 1); with `loop` it returns
    towards the first key and stops one step short of it, so the clip repeats seamlessly (T = K * frames).
    """
    if len(keys) < 2:
        raise UserError("interpolation needs at least two seeds (e.g. --seeds 0-5)")
    if frames < 1:
        raise UserError(f"--frames {frames} must be at least 1")
    pts = list(keys) + ([keys[0]] if loop else [])
    out = []
    for a, b in zip(pts[:-1], pts[1:]):
        for f in range(frames):
            t = f / frames
            out.append(slerp(a, b, t) if spherical else ((1 - t) * a + t * b).astype(a.dtype))
    if not loop:
        out.append(pts[-1])
    return np.stack(out)
