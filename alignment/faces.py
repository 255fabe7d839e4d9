"""Face alignment by facial landmarks, as NVIDIA aligned FFHQ: eye centres and mouth corners give an oriented
square (the "quad"), which is cut out of the photo with FFHQ's shrink, border, reflection padding and blur,
supersampled and resized to the output size.

Landmarks come from MTCNN (the `mtcnn` package: MIT licence, its weights inside the 1.9 MB wheel, runs on the
TensorFlow we already use; `../shared/REFERENCE.md` §11 has the alternatives and why they lost). MTCNN gives
exactly the five points the recipe needs: both eye centres, the nose tip and both mouth corners.

    faces = detect_faces(photo)                       # every face, largest first, with its landmarks
    crop = align(photo, faces[0], size=256)           # [256, 256, 3] uint8, FFHQ framing
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from common.images import BadImage

DETECT_SIDE = 640             # photos are searched at this longest side (landmarks scaled back) ...
DETECT_MIN_SCALE = 0.4        # ... but never shrunk further: a face 64 px wide stays above MTCNN's 20-px minimum
DETECT_QUICK_SIDE = 320       # the largest face alone is first looked for at this side (detect_faces)
MIN_EYE_DISTANCE = 16.0        # px between the eye centres in the photo: below this a face is too small to align
MIN_CONFIDENCE = 0.9           # MTCNN's face probability


@dataclasses.dataclass(frozen=True)
class Framing:
    """Where the face lands in the crop. By default FFHQ's recipe, with its values: the square's half-width is
    max(eye_scale * |eye-to-eye|, mouth_scale * |eye-to-mouth|) and its centre is the eyes' midpoint moved
    `center_shift` of the way to the mouth. A framing measured on a dataset's aligned faces (`measure_framing`)
    has `points` instead: where the eye centres and mouth corners lie in its crops, as fractions of the side
    ((x, y) for eye left, eye right, mouth left, mouth right); a face is then fitted onto them by the
    rotation, scale and shift that match its four points best (least squares)."""

    eye_scale: float = 2.0
    mouth_scale: float = 1.8
    center_shift: float = 0.1
    name: str = "ffhq"
    points: tuple[tuple[float, float], ...] | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @staticmethod
    def from_dict(d: dict) -> "Framing":
        points = d.get("points")
        if points is not None:
            points = tuple((float(x), float(y)) for x, y in points)
            if len(points) != 4:
                raise ValueError("a framing's points are four (x, y) pairs")
        framing = Framing(float(d.get("eye_scale", 2.0)), float(d.get("mouth_scale", 1.8)),
                          float(d.get("center_shift", 0.1)), str(d.get("name", "custom")), points)
        values = [framing.eye_scale, framing.mouth_scale, framing.center_shift, *np.ravel(points or [])]
        if not np.all(np.isfinite(values)):
            raise ValueError("it holds NaN or infinite numbers")
        if not (0 < framing.eye_scale <= 10 and 0 < framing.mouth_scale <= 10 and abs(framing.center_shift) <= 1):
            raise ValueError("its scales must lie in (0, 10] and its center_shift in [-1, 1]")
        if points is not None and not all(-1 <= v <= 2 for v in np.ravel(points)):
            raise ValueError("its points are fractions of the crop's side, between -1 and 2")
        return framing


FFHQ = Framing()


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, w, h), MTCNN's confidence and the five landmarks in photo pixels."""

    box: tuple[float, float, float, float]
    confidence: float
    landmarks: np.ndarray          # [5, 2] (x, y): left eye, right eye, nose, mouth left, mouth right (as seen)

    @property
    def eye_distance(self) -> float:
        return float(np.hypot(*(self.landmarks[1] - self.landmarks[0])))

    def to_dict(self) -> dict:
        names = ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")
        return {"box": [round(float(v), 2) for v in self.box], "confidence": round(float(self.confidence), 4),
                "landmarks": {n: [round(float(v), 2) for v in p] for n, p in zip(names, self.landmarks)}}


_DETECTOR = None


def _detector():
    """MTCNN, its three networks run as traced TensorFlow functions (shapes relaxed after the first few, so
    every pyramid level and photo size shares them): half the time of its eager Keras calls, the same faces."""
    global _DETECTOR
    if _DETECTOR is None:
        import os
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
        from mtcnn import MTCNN
        _DETECTOR = MTCNN(device="CPU:0")
        for stage in _DETECTOR.stages:              # mtcnn 1.0.0 (pinned) keeps each network in `_model`
            stage._model = tf.function(stage._model, reduce_retracing=True, autograph=False)
    return _DETECTOR


class _ViewBox:
    """An MTCNN stage that proposes REFINE_BOX in every image of the batch (in place of P-net and R-net)."""

    id, name = 0, "view-box"

    def __call__(self, bboxes_batch=None, images_normalized=None, images_oshapes=None, **kwargs) -> np.ndarray:
        n, h, w = images_normalized.shape[:3]
        x0, y0, x1, y1 = REFINE_BOX
        return np.array([[i, x0 * w, y0 * h, x1 * w, y1 * h, 1.0] for i in range(n)], np.float64)


_REFINER = None


def _refiner():
    """MTCNN with only its last stage (O-net: landmarks and a face score) on REFINE_BOX of each image."""
    global _REFINER
    if _REFINER is None:
        from mtcnn import MTCNN
        from mtcnn.stages import StageONet
        onet = next(s for s in _detector().stages if isinstance(s, StageONet))
        _REFINER = MTCNN(stages=[_ViewBox(), onet], device="CPU:0")
    return _REFINER


def detect_faces(photo: np.ndarray, largest: bool = False) -> list[Face]:
    """Every face MTCNN finds in `photo` (uint8 [H, W, C]) above MIN_CONFIDENCE, largest eye distance first.
    Large photos are searched shrunk (DETECT_SIDE, DETECT_MIN_SCALE): MTCNN's time grows with the pixels
    searched, and mtcnn 1.0.0 cannot raise its minimum face size instead. `largest`: only the largest face is
    wanted, so the photo is first searched at DETECT_QUICK_SIDE, where large faces are found at a third of
    the cost, and searched fully only when that finds none (smaller faces may then be left out)."""
    rgb = np.repeat(photo, 3, axis=2) if photo.shape[2] == 1 else photo
    h, w = rgb.shape[:2]
    if largest and max(h, w) > 1.5 * DETECT_QUICK_SIDE:
        faces = _detect_at(rgb, DETECT_QUICK_SIDE / max(h, w))
        if faces:
            return faces
    return _detect_at(rgb, min(1.0, max(DETECT_MIN_SCALE, DETECT_SIDE / max(h, w))))


def _detect_at(rgb: np.ndarray, scale: float) -> list[Face]:
    """The faces of uint8 RGB `rgb` searched at `scale` (box-shrunk), in its pixels, largest first."""
    h, w = rgb.shape[:2]
    small = rgb if scale == 1.0 else np.asarray(
        Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX))
    sx, sy = (small.shape[1] / w, small.shape[0] / h) if scale != 1.0 else (1.0, 1.0)    # the sizes were rounded
    back = lambda xy: (np.asarray(xy, np.float64) + 0.5) / [sx, sy] - 0.5      # noqa: E731 - pixel centres
    faces = [Face((*back(f.box[:2]), f.box[2] / sx, f.box[3] / sy), f.confidence, back(f.landmarks))
             for f in _detect(small)]
    return sorted(faces, key=lambda f: -f.eye_distance)


def _detect(rgb: np.ndarray) -> list[Face]:
    """MTCNN on uint8 RGB [H, W, 3] as it is: faces above MIN_CONFIDENCE."""
    return [_face(f) for f in _detector().detect_faces(np.ascontiguousarray(rgb))
            if f["confidence"] >= MIN_CONFIDENCE]


def _face(found: dict) -> Face:
    """One of MTCNN's results as a Face."""
    k = found["keypoints"]
    points = np.array([k["left_eye"], k["right_eye"], k["nose"], k["mouth_left"], k["mouth_right"]], np.float64)
    return Face(tuple(float(v) for v in found["box"]), float(found["confidence"]), points)


REFINE_SIZE = 128             # side of the upright views in which landmarks are found again (refine_face)
# Where MTCNN's O-net is shown the face in such a view (x0, y0, x1, y1 as fractions of the side): the square
# around the median final box of MTCNN's full search on 40 upright data/faces views (x 0.227-0.758,
# y 0.219-0.918), as MTCNN squares the boxes it passes to O-net. The view places every face alike, so the full
# search (pyramid, P-net, R-net: 90 % of the time) is not needed to find it again.
REFINE_BOX = (0.142, 0.219, 0.842, 0.919)
REFINE_VIEWS = ((1.0, 0.0), (0.94, 4.0), (1.06, -4.0), (0.97, -4.0), (1.03, 4.0))   # (scale, degrees) of each view
REFINE_PASSES = 3             # each pass frames its views by the landmarks of the one before (less jitter)


def refine_face(photo: np.ndarray, face: Face, passes: int = REFINE_PASSES) -> Face:
    """The landmarks found again in upright, FFHQ-framed REFINE_SIZE views of `face` (REFINE_VIEWS: slightly
    scaled and turned), mapped back to the photo and averaged; then again from those (`passes`). MTCNN was
    trained on upright faces of typical size: seen this way, a tilted, small or large face gets the
    landmarks of the same face upright, and the average over views cuts their jitter (figures in
    benchmarks/bench_align.py). Returns `face` itself when no view shows a face near its centre."""
    quad = face_quad(face)
    small, to_small = _shrunk(photo, float(np.hypot(*(quad[3] - quad[0]))) / 1.06, REFINE_SIZE)   # once for all
    for _ in range(passes):
        points = _refined_points(small, to_small, face_quad(face))
        if points is None:
            break
        face = Face(face.box, face.confidence, points)
    return face


def _refined_points(small: np.ndarray, to_small, quad: np.ndarray) -> np.ndarray | None:
    """One pass of `refine_face`: the five landmarks [5, 2] in photo pixels, or None."""
    centre = quad.mean(axis=0)
    views = []
    for scale, degrees in REFINE_VIEWS:
        t = np.radians(degrees)
        turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) * scale
        views.append((quad - centre) @ turn.T + centre)
    crops = [_view(small, to_small(v), REFINE_SIZE) for v in views]
    found = _refiner().detect_faces(crops, threshold_onet=MIN_CONFIDENCE)     # one O-net call for every view
    middle = np.array([REFINE_SIZE / 2, REFINE_SIZE / 2])
    estimates = []
    for view, faces in zip(views, found):
        near = [_face(f) for f in faces if f["confidence"] >= MIN_CONFIDENCE]
        near = [f for f in near if np.hypot(*(f.landmarks[:2].mean(axis=0) - middle)) < REFINE_SIZE / 4]
        if near:
            best = min(near, key=lambda f: np.hypot(*(f.landmarks[:2].mean(axis=0) - middle)))
            uv = (best.landmarks + 0.5) / REFINE_SIZE                                     # [5, 2] in [0, 1]
            estimates.append(view[0] + uv[:, :1] * (view[3] - view[0]) + uv[:, 1:] * (view[1] - view[0]))
    return np.mean(estimates, axis=0) if estimates else None


def _shrunk(photo: np.ndarray, side: float, size: int):
    """(RGB photo box-shrunk so that a quad of `side` px spans at least 1.5 x `size` px, the map of photo
    points into it)."""
    import cv2
    rgb = np.repeat(photo, 3, axis=2) if photo.shape[2] == 1 else photo
    k = max(1, int(side / size / 1.5))
    if k == 1:
        return rgb, lambda q: q
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    sx, sy = small.shape[1] / w, small.shape[0] / h
    return small, lambda q: (q + 0.5) * [sx, sy] - 0.5


def _view(photo: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """A quick RGB view of `quad` at size x size for detection: the photo box-shrunk to about the view's scale,
    then one affine warp (pixel (u, v) of the view is photo point quad[0] + (u + 0.5) / size * (quad[3] -
    quad[0]) + (v + 0.5) / size * (quad[1] - quad[0]), as in `align_quad`)."""
    import cv2
    rgb, to_small = _shrunk(photo, float(np.hypot(*(quad[3] - quad[0]))), size)
    quad = to_small(quad)
    ex, ey = (quad[3] - quad[0]) / size, (quad[1] - quad[0]) / size
    m = np.array([[ex[0], ey[0], quad[0][0] + 0.5 * (ex[0] + ey[0])],
                  [ex[1], ey[1], quad[0][1] + 0.5 * (ex[1] + ey[1])]], np.float64)
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def face_quad(face: Face, framing: Framing = FFHQ) -> np.ndarray:
    """The oriented square [4, 2] (top-left, bottom-left, bottom-right, top-right corners as seen) that the
    crop maps to the output: FFHQ's construction from eye centres and mouth corners."""
    eye_l, eye_r, _, mouth_l, mouth_r = face.landmarks
    if framing.points is not None:
        return _fitted_quad(np.array([eye_l, eye_r, mouth_l, mouth_r]), np.array(framing.points))
    eye_avg, eye_to_eye = (eye_l + eye_r) / 2, eye_r - eye_l
    mouth_avg = (mouth_l + mouth_r) / 2
    eye_to_mouth = mouth_avg - eye_avg
    # x: along the eye line, tilted by the eye-to-mouth line's normal (both give the face's roll)
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x = x / np.hypot(*x)
    x = x * max(framing.eye_scale * np.hypot(*eye_to_eye), framing.mouth_scale * np.hypot(*eye_to_mouth))
    y = np.array([-x[1], x[0]])                                   # x turned 90 degrees: down the face
    c = eye_avg + framing.center_shift * eye_to_mouth
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def _fitted_quad(photo_points: np.ndarray, crop_points: np.ndarray) -> np.ndarray:
    """The quad whose unit square holds `crop_points` [4, 2] (fractions of the side) where the photo has
    `photo_points` [4, 2]: the least-squares similarity crop -> photo, applied to the square's corners."""
    # photo = [[a, -b], [b, a]] @ crop + t: linear in (a, b, tx, ty)
    x, y = crop_points[:, 0], crop_points[:, 1]
    rows = np.concatenate([np.stack([x, -y, np.ones_like(x), np.zeros_like(x)], 1),
                           np.stack([y, x, np.zeros_like(x), np.ones_like(x)], 1)])
    a, b, tx, ty = np.linalg.lstsq(rows, np.concatenate([photo_points[:, 0], photo_points[:, 1]]), rcond=None)[0]
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])        # TL, BL, BR, TR as in face_quad
    return corners @ np.array([[a, b], [-b, a]]) + [tx, ty]


def measure_framing(images, name: str, size: int = 256, limit: int = 200) -> tuple[Framing, int]:
    """The framing of a set of aligned face crops (uint8 [H, W, C] arrays, iterated until `limit` faces were
    measured): the median position of each eye centre and mouth corner, as fractions of the side, over the
    crops where one face is found (each upscaled to `size` first: MTCNN needs faces of 20 px and more).
    Returns (framing, faces measured)."""
    found = []
    for img in images:
        h, w = img.shape[:2]
        big = np.asarray(Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).resize(
            (size, round(size * h / w)), Image.Resampling.LANCZOS))
        big = big[:, :, None] if big.ndim == 2 else big
        faces = detect_faces(big)
        if len(faces) != 1:
            continue
        points = refine_face(big, faces[0]).landmarks[[0, 1, 3, 4]] / [size, size * h / w]
        found.append(points)
        if len(found) >= limit:
            break
    if not found:
        raise BadImage("no face found in the images to measure a framing on")
    median = np.median(np.array(found), axis=0)
    return Framing(name=name, points=tuple((round(float(x), 4), round(float(y), 4)) for x, y in median)), len(found)


def save_framing(path, framing: Framing, info: dict | None = None) -> None:
    """framing.json: the framing and how it was measured (written atomically)."""
    import json
    from common.files import atomic_write
    with atomic_write(path) as f:
        f.write(json.dumps({"framing": framing.to_dict(), **(info or {})}, indent=2) + "\n")


def load_framing(path) -> Framing:
    """A framing.json written by `save_framing` (or an alignment.json of create.py --align); UserError if it
    is not one."""
    import json
    from common.errors import UserError
    try:
        return Framing.from_dict(json.loads(open(path).read())["framing"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a framing file ({type(exc).__name__}: {exc}); remake it with "
                        "alignment.faces.measure_framing or delete it to use FFHQ's") from None


def align(photo: np.ndarray, face: Face, size: int, framing: Framing = FFHQ, padding: bool = True) -> np.ndarray:
    """Cut `face` out of `photo` (uint8 [H, W, C]) as FFHQ did; uint8 [size, size, C].

    Steps, as FFHQ's recipe: shrink the photo when the quad is more than twice the output size; crop to the
    quad's bounding box plus a border of 10 % (at least 3 px); where the quad leaves the photo, pad by
    reflection and blend towards a blurred copy and the median colour near the new edges (`padding`);
    sample the quad bilinearly at its own resolution (FFHQ: 4096 px) and resize to `size` anti-aliased."""
    return align_quad(photo, face_quad(face, framing), size, padding)


def align_quad(photo: np.ndarray, quad: np.ndarray, size: int, padding: bool = True) -> np.ndarray:
    """The oriented square `quad` [4, 2] of `photo` as uint8 [size, size, C] (the steps of `align`)."""
    import cv2
    quad = np.array(quad, np.float64)
    qsize = float(np.hypot(*(quad[3] - quad[0])))                    # the square's side: 2 |x|
    img = photo
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        h, w = img.shape[:2]
        img = _resize(img, (max(1, int(np.rint(w / shrink))), max(1, int(np.rint(h / shrink)))))
        quad, qsize = quad / shrink, qsize / shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    h, w = img.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    cx0, cy0, cx1, cy1 = max(x0 - border, 0), max(y0 - border, 0), min(x1 + border, w), min(y1 + border, h)
    if cx1 - cx0 < w or cy1 - cy0 < h:
        img = img[cy0:cy1, cx0:cx1]
        quad = quad - [cx0, cy0]
    h, w = img.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    pad = np.array([max(border - x0, 0), max(border - y0, 0), max(x1 - w + border, 0), max(y1 - h + border, 0)])
    if padding and pad.max() > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        padded = np.pad(img, ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), mode="reflect")   # uint8
        f = padded.astype(np.float32)
        ph, pw = f.shape[:2]
        yy, xx = np.ogrid[:ph, :pw]
        # 0 inside the photo, rising to 1 at the padded edges
        mask = np.maximum(1.0 - np.minimum(xx / pad[0], (pw - 1 - xx) / pad[2]),
                          1.0 - np.minimum(yy / pad[1], (ph - 1 - yy) / pad[3]))[:, :, None].astype(np.float32)
        sigma = qsize * 0.02
        # blurred from the uint8 image: cv2's fixed-point path, 4x faster; it differs by at most half a level
        blurred = cv2.GaussianBlur(padded, (0, 0), sigmaX=sigma, sigmaY=sigma).reshape(f.shape)
        f += (blurred - f) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        f += (np.median(f[::4, ::4], axis=(0, 1)) - f) * np.clip(mask, 0.0, 1.0)   # the median of every 16th pixel
        img = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        quad = quad + pad[:2]
    supersample = int(np.clip(np.rint(qsize), size, 4096))
    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    out = pil.transform((supersample, supersample), Image.Transform.QUAD, tuple((quad + 0.5).flatten()),
                        Image.Resampling.BILINEAR)
    if supersample != size:
        out = out.resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(out, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _resize(img: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """Lanczos (FFHQ's ANTIALIAS), after a box reduction to three times the target (Pillow's reducing_gap:
    several times faster for large shrinks, indistinguishable in the result)."""
    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).resize(wh, Image.Resampling.LANCZOS,
                                                                             reducing_gap=3.0)
    arr = np.asarray(pil, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def align_faces(photo: np.ndarray, size: int, faces: str = "largest", framing: Framing = FFHQ,
                found: list[Face] | None = None) -> list[tuple[np.ndarray, Face]]:
    """(crop, face) for the largest face or every face (`faces` 'largest' | 'all') of `photo` large enough to
    align (MIN_EYE_DISTANCE); BadImage with the reason when there is none. `found`: the photo's
    `detect_faces`, when the caller already has it."""
    found = detect_faces(photo, largest=faces == "largest") if found is None else found
    if not found:
        raise BadImage("no face found (--align)")
    usable = [f for f in found if f.eye_distance >= MIN_EYE_DISTANCE]
    if not usable:
        raise BadImage(f"face too small to align ({found[0].eye_distance:.0f} px between the eyes; at least "
                       f"{MIN_EYE_DISTANCE:.0f}) (--align)")
    if faces == "largest":
        usable = usable[:1]
    refined = [refine_face(photo, f) for f in usable]
    return [(align(photo, f, size, framing), f) for f in refined]
