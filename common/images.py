"""Images in and out. In: one reader for every command (any common photo, EXIF-rotated, 16-bit and alpha handled,
to uint8 RGB or L), square crop and anti-aliased resize. Out: contact sheets, PNGs with metadata, GIF and MP4
clips, each written atomically. numpy and Pillow only (it runs in dataset worker processes)."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from common.errors import UserError
from common.files import atomic_path

# ---------------------------------------------------------------------------------------------------- reading
MAX_IMAGE_BYTES = 256 << 20   # one image file: a 100-megapixel photo is well below this
MAX_PIXELS = 100_000_000      # one image, checked from its header before decoding (every command, the explorer)
Image.MAX_IMAGE_PIXELS = MAX_PIXELS   # Pillow refuses at twice this; between, the gate below refuses in one line
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
        with warnings.catch_warnings():            # Pillow warns between its limit and twice it; the gate says it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        w, h = img.size                                                   # from the header: nothing decoded yet
    except Image.DecompressionBombError as exc:                          # over twice the gate: Pillow's own
        pixels = str(exc).split(" pixels")[0].split("(")[-1]
        size = f"{int(pixels) / 1e6:.0f} megapixels" if pixels.isdigit() else "too many pixels"
        raise BadImage(f"{size}; at most {MAX_PIXELS / 1e6:.0f} are read") from None
    except Image.UnidentifiedImageError:
        raise BadImage("not an image format Pillow reads (JPEG, PNG, WebP, BMP, GIF, TIFF, ...)") from None
    except Exception as exc:  # Pillow raises many types for bad files
        raise BadImage(f"cannot decode: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if w * h > MAX_PIXELS:
        raise BadImage(f"{w}x{h} is {w * h / 1e6:.0f} megapixels; at most {MAX_PIXELS / 1e6:.0f} are read")
    try:
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
        if not np.isfinite(arr).all():
            raise BadImage("its pixels hold NaN or infinite values")
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


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header after EXIF rotation, or None if unreadable. Cheap: no decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        w, h = img.size
        orientation = img.getexif().get(0x0112, 1)
        return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    except Exception:
        return None


def read_image(path: str | Path, channels: int = 3, what: str = "image") -> np.ndarray:
    """A photo file as uint8 [H, W, channels], as `create.py` reads it; UserError naming `what` when it is
    missing, too large (MAX_IMAGE_BYTES) or not an image."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UserError(f"{what} {path} is not a file")
        if size > MAX_IMAGE_BYTES:
            raise UserError(f"{what} {path}: {size:,} bytes, above the {MAX_IMAGE_BYTES >> 20} MiB limit for one "
                            "image")
        return to_array(open_image(path.read_bytes()), channels)
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    except BadImage as exc:
        raise UserError(f"{what} {path}: cannot read the image ({exc})") from None


# ---------------------------------------------------------------------------------------------------- writing
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
