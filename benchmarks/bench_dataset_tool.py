"""Benchmark: dataset_tool on the 23,707 UTKFace faces (200x200 JPEG in a zip) at --res 128.

    python benchmarks/bench_dataset_tool.py [--source ../shared/data/utkface-aligned-200.zip] [--res 128]

Reports img/s (wall time of the whole build, including listing, labels and checksums) and the peak RSS
of the tool's whole process tree. Goal (issue #2): >= 300 img/s and < 2 GB on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from benchlib import ROOT, PeakRSS

from common.cli import start_tensorflow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "utkface-aligned-200.zip"))
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--encoding", default="raw")
    ap.add_argument("--max-images", type=int, default=None)
    args = ap.parse_args()
    start_tensorflow()
    from dataset_tool.build import CreateConfig, create_dataset
    out = tempfile.mkdtemp(prefix="bench-ds-")
    try:
        cfg = CreateConfig(source=args.source, dest=os.path.join(out, "ds"), res=args.res, labels="utkface",
                           jobs=args.jobs, encoding=args.encoding, max_images=args.max_images, quiet=True)
        with PeakRSS() as rss:
            t0 = time.perf_counter()
            m = create_dataset(cfg, log=lambda *a, **k: None)
            dt = time.perf_counter() - t0
        size = sum(f["bytes"] for lv in m["levels"] for f in lv["files"])
        print(f"dataset_tool: {m['count']} images at {args.res}x{args.res} ({args.encoding}), "
              f"{m['source']['skipped']} skipped, {os.cpu_count()} cores")
        print(f"  wall {dt:.1f} s -> {m['count'] / dt:.0f} img/s; peak RSS (process tree) {rss.peak / 2**30:.2f} GiB; "
              f"output {size / 2**20:.0f} MiB")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
