"""FFHQ-style crop of raw photos with OpenCV's bundled Haar cascades (face, then eyes inside it).

FFHQ's recipe uses eyes and mouth from 68 landmarks; with eyes only, the mouth is placed at the typical
distance below the eye line (1.1 x eye distance). The crop is square, rotated so the eye line is level,
centred slightly below the eyes and 4x the eye-to-eye distance wide (FFHQ: 2x the larger of 2x eye distance
and 1.8x eye-to-mouth distance). A face without detectable eyes falls back to eye positions estimated
from the face box.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from common.images import BadImage

_CASCADES: dict[str, object] = {}


def _cascade(name: str):
    if name not in _CASCADES:
        import cv2
        _CASCADES[name] = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    return _CASCADES[name]


def find_eyes(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(left_eye, right_eye) centres as float [x, y] in image coordinates for the largest face, or None."""
    faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(max(16, min(gray.shape) // 10),) * 2)
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    roi = gray[y:y + h // 2 + h // 8, x:x + w]
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(roi, scaleFactor=1.1, minNeighbors=5,
                                                           minSize=(max(4, w // 10),) * 2)
    centres = [np.array([x + ex + ew / 2, y + ey + eh / 2]) for ex, ey, ew, eh in eyes]
    left = [c for c in centres if c[0] < x + w / 2]
    right = [c for c in centres if c[0] >= x + w / 2]
    if left and right:
        return max(left, key=lambda c: c[0]), min(right, key=lambda c: c[0])
    return np.array([x + 0.3 * w, y + 0.38 * h]), np.array([x + 0.7 * w, y + 0.38 * h])


def align_face(arr: np.ndarray) -> np.ndarray:
    """Crop the largest face in `arr` ([H, W, C] uint8) FFHQ-style; raises BadImage('no face found')."""
    gray = arr[:, :, 0] if arr.shape[2] == 1 else (arr @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    eyes = find_eyes(gray)
    if eyes is None:
        raise BadImage("no face found (--align)")
    left, right = eyes
    eye_avg = (left + right) / 2
    eye_vec = right - left
    dist = float(np.hypot(*eye_vec))
    x_axis = eye_vec / max(dist, 1e-6)
    y_axis = np.array([-x_axis[1], x_axis[0]])           # points down the face
    center = eye_avg + y_axis * (0.1 * 1.1 * dist)
    half = 2.0 * dist
    quad = np.stack([center - x_axis * half - y_axis * half, center - x_axis * half + y_axis * half,
                     center + x_axis * half + y_axis * half, center + x_axis * half - y_axis * half])
    size = int(np.clip(round(2 * half), 8, 4096))
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    out = img.transform((size, size), Image.Transform.QUAD, tuple(quad.flatten()), Image.Resampling.BILINEAR)
    out = np.asarray(out, dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out
