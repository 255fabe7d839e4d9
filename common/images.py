"""Image grids and encoding: contact sheets, PNGs with metadata, GIF and MP4 clips (each written atomically)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from common.errors import UserError
from common.files import atomic_path


def _pil(arr: np.ndarray) -> Image.Image:
    """uint8 [H, W, C] (C = 1 or 3) -> Pillow image."""
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def contact_sheet(images: list[np.ndarray], cols: int | None = None) -> Image.Image:
    """One image tiling uint8 [H, W, C] arrays row-major, `cols` wide (default: about square)."""
    n = len(images)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h, w, c = images[0].shape
    sheet = np.zeros([rows * h, cols * w, c], np.uint8)
    for i, img in enumerate(images):
        sheet[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w] = img
    return _pil(sheet)


def save_png(path: str | Path, image: np.ndarray, info: dict | None = None) -> None:
    """uint8 [H, W, C] -> PNG with text metadata (seed, psi, network id ...)."""
    meta = PngImagePlugin.PngInfo()
    for k, v in (info or {}).items():
        meta.add_text(k, str(v))
    with atomic_path(path) as tmp:
        _pil(image).save(tmp, format="PNG", pnginfo=meta)


def write_gif(path: str | Path, frames: np.ndarray, fps: float = 30.0) -> None:
    """uint8 frames [T, H, W, C] -> looping GIF (Pillow)."""
    imgs = [_pil(f) for f in frames]
    with atomic_path(path) as tmp:
        imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:], duration=int(round(1000 / fps)),
                     loop=0)


def write_video(path: str | Path, frames: np.ndarray, fps: float = 30.0) -> None:
    """uint8 frames [T, H, W, C] -> MP4 (OpenCV, mp4v)."""
    import cv2
    T, H, W = frames.shape[:3]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
        if not writer.isOpened():
            raise UserError(f"cannot write {path}: OpenCV has no MP4 encoder here (the GIF is still written)")
        for f in frames:
            writer.write(cv2.cvtColor(f if f.shape[2] == 3 else np.repeat(f, 3, axis=2), cv2.COLOR_RGB2BGR))
        writer.release()
