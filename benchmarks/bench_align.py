"""Benchmark: landmark alignment (alignment/faces.py), how alike and how fast.

    python benchmarks/bench_align.py [--faces 10] [--photos 20] [--create 40]

1. Invariance: each of the first --faces photos of data/faces is placed upright in a 600x600 photo and, three
   more times, rotated (+20, -25, +10 degrees), scaled (1.0, 0.8, 1.25) and moved; every version is aligned
   at 128x128 and registered against the upright one with OpenCV's ECC (affine, over the central disc).
   Reports the largest and mean rotation, scale and centre shift between them, with and without the
   refinement in upright views.
2. Speed: --photos photos of 1.6 megapixels (1600x1000, one face) aligned to 256x256 one after the other in
   this process, after a warm-up; photos/s (#32 asks for at least 5 on 2 cores).
3. `create.py --align` end to end on every core (one worker each): --create such photos as JPEG files in a
   temporary folder -> multi-resolution TFRecords at 256x256; photos/s of the whole command, start-up (Python,
   TensorFlow, MTCNN) included, and of the alignment alone (the seconds of the first photo subtracted).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from benchlib import ROOT
from PIL import Image

from alignment import faces as al


def place(photo, angle, scale, at, canvas):
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += [at[0] - w / 2, at[1] - h / 2]
    return cv2.warpAffine(photo, m, canvas, flags=cv2.INTER_LINEAR, borderValue=(128, 128, 128))


def registration(a, b):
    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (a, b))
    n = a.shape[0]
    mask = np.zeros((n, n), np.uint8)
    cv2.circle(mask, (n // 2, n // 2), int(n * 0.31), 255, -1)
    warp = np.eye(2, 3, dtype=np.float32)
    _, warp = cv2.findTransformECC(ga, gb, warp, cv2.MOTION_AFFINE,
                                   (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 300, 1e-6), mask, 5)
    lin, c = warp[:, :2], np.array([n / 2, n / 2], np.float32)
    return (abs(float(np.degrees(np.arctan2(lin[1, 0], lin[0, 0])))), abs(float(np.sqrt(np.linalg.det(lin))) - 1),
            float(np.hypot(*(lin @ c + warp[:, 2] - c))))


def crop(photo, refine):
    faces = al.detect_faces(photo)
    if not faces:
        return None
    face = al.refine_face(photo, faces[0]) if refine else faces[0]
    return al.align(photo, face, 128)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=10)
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--create", type=int, default=40, help="photos for the create.py run (0: skip it)")
    args = ap.parse_args()
    files = sorted((ROOT / "data" / "faces").glob("*.jpg"))
    stride = max(1, len(files) // args.faces)
    photos = [np.asarray(Image.open(f).convert("RGB")) for f in files[::stride][:args.faces]]
    for refine in (True, False):
        rows, missed = [], 0
        for p in photos:
            base = crop(place(p, 0, 1.0, (300, 300), (600, 600)), refine)
            for angle, scale, at in [(20, 1.0, (330, 280)), (-25, 0.8, (280, 320)), (10, 1.25, (300, 300))]:
                c = crop(place(p, angle, scale, at, (600, 600)), refine)
                if base is None or c is None:
                    missed += 1
                    continue
                try:
                    rows.append(registration(base, c))
                except cv2.error:
                    missed += 1
        r = np.array(rows)
        print(f"{'refined' if refine else 'one detection'}: {len(r)} pairs ({missed} without a face or a "
              f"registration): rotation max {r[:, 0].max():.2f} mean {r[:, 0].mean():.2f} deg, scale max "
              f"{100 * r[:, 1].max():.1f} mean {100 * r[:, 1].mean():.1f} %, centre shift max {r[:, 2].max():.2f} "
              f"mean {r[:, 2].mean():.2f} px at 128x128")
    big = [place(p, a, 4.0, (800, 500), (1600, 1000)) for p, a in zip(photos * 4, range(-20, 21, 3))][:args.photos]
    al.align_faces(big[0], 256)                                          # warm-up: MTCNN's graphs
    start = time.perf_counter()
    for b in big:
        al.align_faces(b, 256)
    seconds = time.perf_counter() - start
    print(f"speed: {len(big)} photos of 1600x1000 in {seconds:.1f} s: {len(big) / seconds:.2f} photos/s "
          f"(one process; create.py runs one per core)")
    if args.create:
        create_speed(photos, args.create)


def create_speed(photos: list[np.ndarray], n: int) -> None:
    """Time `create.py --align --res 256` on n raw 1600x1000 JPEG photos, and on one (the start-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for count in (1, n):
            src = tmp / f"raw{count}"
            src.mkdir()
            for i in range(count):
                p = photos[i % len(photos)]
                Image.fromarray(place(p, -20 + (i * 7) % 41, 4.0, (800, 500), (1600, 1000))).save(
                    src / f"{i:04d}.jpg", quality=90)
        seconds = {}
        for count in (1, n):
            start = time.perf_counter()
            r = subprocess.run([sys.executable, str(ROOT / "dataset_tool" / "create.py"), str(tmp / f"raw{count}"),
                                str(tmp / f"out{count}"), "--align", "--res", "256", "--quiet"],
                               capture_output=True, text=True)
            seconds[count] = time.perf_counter() - start
            if r.returncode:
                raise SystemExit(f"create.py failed: {r.stderr[-500:]}")
    print(f"create.py --align: {n} photos of 1600x1000 -> 256x256 TFRecords in {seconds[n]:.1f} s: "
          f"{n / seconds[n]:.2f} photos/s with start-up; {n - 1} more photos than a one-photo run in "
          f"{seconds[n] - seconds[1]:.1f} s: {(n - 1) / (seconds[n] - seconds[1]):.2f} photos/s of alignment")


if __name__ == "__main__":
    main()
