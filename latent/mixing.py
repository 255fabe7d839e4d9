"""Style mixing: which w+ layers form the coarse / middle / fine groups, mixing, and the official figure.

Layer index i of w+ drives the features at resolution 2 ** (2 + i // 2) (two layers per resolution), which
defines the coarse (4-8 px), middle (16-32 px) and fine (64 px and up) style groups.
"""
from __future__ import annotations

import re

import numpy as np

from common.errors import UserError

STYLE_GROUPS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}


def layer_resolution(i: int) -> int:
    """Resolution (pixels) whose features w+ layer i modulates."""
    return 2 ** (2 + i // 2)


def parse_styles(spec: str, num_ws: int) -> list[int]:
    """'coarse' | 'middle' | 'fine' | '0-6' | '0,2,4-5' -> sorted w+ layer indices (errors name the problem)."""
    spec = str(spec).strip().lower()
    if spec in STYLE_GROUPS:
        lo, hi = STYLE_GROUPS[spec]
        layers = [i for i in range(num_ws) if lo <= layer_resolution(i) <= hi]
        if not layers:
            raise UserError(f"--styles {spec}: this network ({num_ws} w layers) has no {spec} layers")
        return layers
    layers: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"bad --styles '{spec}': use coarse, middle, fine, or layer ranges like 0-6 or 0,2,4-5")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo or hi >= num_ws:
            raise UserError(f"--styles '{part}' is outside the network's layers 0-{num_ws - 1}")
        layers.update(range(lo, hi + 1))
    if not layers:
        raise UserError("--styles is empty")
    return sorted(layers)


def mix_styles(row_ws: np.ndarray, col_ws: np.ndarray, layers: list[int]) -> np.ndarray:
    """Every row's w+ with `layers` taken from every column's w+: [R, C, num_ws, w_dim]."""
    mixed = np.repeat(row_ws[:, None], len(col_ws), axis=1).copy()      # [R, C, num_ws, w_dim]
    mixed[:, :, layers] = col_ws[None, :, layers]
    return mixed


def style_mix_grid(row_imgs: np.ndarray, col_imgs: np.ndarray, mixed: np.ndarray) -> np.ndarray:
    """The official figure: blank corner, column sources on top, row sources on the left, mixes inside.

    row_imgs [R, H, W, C], col_imgs [C', H, W, C], mixed [R, C', H, W, C] -> uint8 [(R+1)H, (C'+1)W, C].
    """
    R, C = mixed.shape[:2]
    H, W, ch = row_imgs.shape[1:]
    grid = np.zeros([(R + 1) * H, (C + 1) * W, ch], np.uint8)
    for c in range(C):
        grid[:H, (c + 1) * W:(c + 2) * W] = col_imgs[c]
    for r in range(R):
        grid[(r + 1) * H:(r + 2) * H, :W] = row_imgs[r]
        for c in range(C):
            grid[(r + 1) * H:(r + 2) * H, (c + 1) * W:(c + 2) * W] = mixed[r, c]
    return grid
