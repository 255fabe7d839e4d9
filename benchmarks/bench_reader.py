"""Benchmark: training/dataset.py read throughput (decode + float conversion + flip + batch) on CPU.

    python benchmarks/bench_reader.py [--images 2000]

Builds a synthetic dataset of random 256x256 JPEG faces-sized images (all levels), then times
make_dataset at 64x64 and 256x256, batch 32, mirror on. Goal (issue #2): >= 5,000 img/s at 64 and
>= 500 img/s at 256 on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
from benchlib import PeakRSS

from common.cli import start_tensorflow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--encoding", default="raw")
    args = ap.parse_args()
    start_tensorflow()
    from PIL import Image

    from dataset_tool.build import CreateConfig, create_dataset
    from datasets.reader import make_dataset
    tmp = tempfile.mkdtemp(prefix="bench-reader-")
    try:
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        rng = np.random.RandomState(0)
        base = rng.randint(0, 256, size=(256, 256, 3), dtype=np.uint8)
        for i in range(args.images):
            Image.fromarray(np.roll(base, i, axis=1)).save(os.path.join(src, f"{i:05d}.png"), compress_level=1)
        create_dataset(CreateConfig(source=src, dest=os.path.join(tmp, "ds"), res=256, encoding=args.encoding,
                                    quiet=True), log=lambda *a, **k: None)
        for res in (64, 256):
            ds = make_dataset(os.path.join(tmp, "ds"), res=res, batch_size=32, mirror=True)
            it = iter(ds)
            for _ in range(20):                       # warm-up: pipeline start, shuffle buffer fill
                next(it)
            with PeakRSS() as rss:
                t0 = time.perf_counter()
                for _ in range(args.batches):
                    batch = next(it)[0]
                _ = batch.numpy()
                dt = time.perf_counter() - t0
            print(f"reader {res}x{res} ({args.encoding}): {args.batches * 32 / dt:,.0f} img/s "
                  f"(batch 32, mirror, float32 [-1, 1]); peak RSS {rss.peak / 2**30:.2f} GiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
