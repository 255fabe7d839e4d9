"""Raw test photos made from the repo's face crops (data/faces): a face rotated, scaled and placed in a canvas."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

FACES = sorted((Path(__file__).resolve().parents[2] / "data" / "faces").glob("*.jpg"))


def face(i: int) -> np.ndarray:
    """uint8 [200, 200, 3]: the i-th face crop of data/faces."""
    return np.asarray(Image.open(FACES[i]).convert("RGB"))


def place(photo: np.ndarray, angle: float = 0.0, scale: float = 1.0, at: tuple[int, int] = (300, 300),
          canvas: tuple[int, int] = (600, 600), background: int = 128) -> np.ndarray:
    """`photo` rotated by `angle` degrees and scaled about its centre, centred at `at` in a larger canvas."""
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += [at[0] - w / 2, at[1] - h / 2]
    return cv2.warpAffine(photo, m, canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(background,) * 3)
