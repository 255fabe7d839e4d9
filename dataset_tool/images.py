"""The box-filter levels of a dataset image and their record encoding. Decoding, cropping and resizing are
`common.images` (one reader for every command).

Runs in worker processes: numpy and Pillow only (OpenCV only for --align, imported lazily).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image



def box_levels(top: np.ndarray) -> list[np.ndarray]:
    """All levels from `top` ([R, R, C] uint8) down to 4x4, each the 2x2 box average of the one above.

    The cascade runs in float64 and every level is rounded on its own (np.rint, ties to even), so level
    r-k equals rint(mean of each 2^k x 2^k block of `top`) exactly, as the official tools intend.
    """
    levels = [top]
    x = top.astype(np.float64)
    while x.shape[0] > 4:
        x = (x[0::2, 0::2] + x[0::2, 1::2] + x[1::2, 0::2] + x[1::2, 1::2]) * 0.25   # [H/2, W/2, C]
        levels.append(np.rint(x).clip(0, 255).astype(np.uint8))
    return levels


def encode_level(arr: np.ndarray, encoding: str) -> bytes:
    """Record payload for one level: raw uint8 CHW bytes (official) or a PNG of the HWC image."""
    if encoding == "raw":
        return np.ascontiguousarray(arr.transpose(2, 0, 1)).tobytes()   # [C, H, W]
    buf = io.BytesIO()
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()
