"""Decoding any common photo into uint8 RGB/L, square crop + anti-aliased resize, and the box-filter levels.

Runs in worker processes: numpy and Pillow only (OpenCV only for --align, imported lazily).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

RESIZE_FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
}
ALPHA_BACKGROUND = (255, 255, 255)   # transparent pixels are composited onto white


class BadImage(Exception):
    """The file cannot be used as an image; the message is the reason listed in skipped.txt."""


def open_image(data: bytes) -> Image.Image:
    """Fully decode `data` (so truncation is detected here) and apply its EXIF orientation."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:  # Pillow raises many types for bad files
        raise BadImage(f"cannot decode: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block does not make the pixels unusable
        pass
    return img


def to_array(img: Image.Image, channels: int = 3) -> np.ndarray:
    """Convert any Pillow mode to uint8 [H, W, C] with C = `channels` (1 or 3).

    16-bit and 32-bit integer images are scaled from 0..65535; alpha is composited onto ALPHA_BACKGROUND;
    CMYK, palette, YCbCr, ... are converted by Pillow.
    """
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode != "F" or arr.max() > 255.0:
            arr = arr * (255.0 / 65535.0)
        img = Image.fromarray(np.rint(arr).clip(0, 255).astype(np.uint8), mode="L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        img = Image.alpha_composite(background, rgba)
    target = "L" if channels == 1 else "RGB"
    if img.mode != target:
        img = img.convert(target)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def crop_resize(arr: np.ndarray, res: int, resize_filter: str = "lanczos") -> tuple[np.ndarray, bool]:
    """Center-crop [H, W, C] to a square and resize to res x res; returns (image, whether it was upscaled)."""
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    arr = arr[top:top + s, left:left + s]
    if s == res:
        return np.ascontiguousarray(arr), False
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    img = img.resize((res, res), RESIZE_FILTERS[resize_filter])
    out = np.asarray(img, dtype=np.uint8)
    return (out[:, :, None] if out.ndim == 2 else out), s < res


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


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header after EXIF rotation, or None if unreadable. Cheap: no decode."""
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        orientation = img.getexif().get(0x0112, 1)
        return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    except Exception:
        return None

