"""Benchmark: progressive growing, img/s of full training iterations at each stage of a 64x64 run from 8x8,
against the fixed-resolution 64x64 step of the same network, measured in one process.

    python benchmarks/bench_progressive.py [--setting utk64|ref64] [--iters 32]

Stages: 8x8, fading 16 in, 16x16, fading 32 in, 32x32, fading 64 in, and the full 64x64 stage (lod 0), then
the plain (non-progressive) trainer at 64x64. Each stage is entered by placing the image counter in it
(--lod-training-kimg = --lod-transition-kimg = 1000), traced in a warm-up tick of 16 iterations, then timed.
Goal (issue #14): 8x8 at least 8x and 16x16 at least 4x faster than full resolution.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from benchlib import random_dataset, timed_rate   # (benchlib puts the repo root on sys.path)
from common.cli import start_tensorflow  # noqa: E402

SETTINGS = {
    "utk64": dict(res=64, cbase=4096, cmax=128, batch=16, map=2),    # the shipped-model network (#15)
    "ref64": dict(res=64, cbase=8192, cmax=256, batch=16, map=2),    # REFERENCE §4's 64x64 setting
}
PHASE_KIMG = 1000.0                 # training and transition length of each stage in the benchmark schedule
STAGES = [("8x8", 0.5), ("fade 16", 1.5), ("16x16", 2.5), ("fade 32", 3.5), ("32x32", 4.5), ("fade 64", 5.5),
          ("64x64 (lod 0)", 6.5)]   # (name, position in units of PHASE_KIMG)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", default="utk64", choices=sorted(SETTINGS))
    ap.add_argument("--iters", type=int, default=32)
    args = ap.parse_args()
    start_tensorflow()
    import tensorflow as tf

    from training.config import TrainConfig, resolve
    from training.stats import Logger
    from training.training_loop import Trainer
    s = SETTINGS[args.setting]
    b, warm = s["batch"], 16
    tmp = tempfile.mkdtemp(prefix="bench-prog-")
    try:
        data = random_dataset(tmp, s["res"])
        results = []
        for progressive in (True, False):
            cfg = resolve(TrainConfig(data=data, outdir=f"{tmp}/runs", cfg="small", batch=b, cbase=s["cbase"],
                                      cmax=s["cmax"], map=s["map"], kimg_per_tick=warm * b / 1000, snap=10**6,
                                      aug="off", progressive=progressive, lod_initial_res=8,
                                      lod_training_kimg=PHASE_KIMG, lod_transition_kimg=PHASE_KIMG), s["res"], 1)
            run = Path(tmp) / f"run-{progressive}"
            run.mkdir()
            trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), run)
            logger = Logger(run)
            row = 0
            for name, pos in (STAGES if progressive else [("64x64 fixed (no growing)", 0.0)]):
                start = int(pos * PHASE_KIMG * 1000) // b * b
                trainer.state.nimg = start
                trainer.state.iteration = start // b
                trainer.cfg = cfg.__class__(**{**cfg.to_dict(), "kimg": (start + (warm + args.iters) * b) / 1000})
                trainer.train(logger, resumed=True)
                rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
                rate, row = timed_rate(rows[row:])[0], len(rows)        # this stage's ticks only
                results.append((name, rate))
                print(f"{name:<26s} {rate:7.2f} img/s", flush=True)
            logger.close()
        full = results[-1][1]
        print(f"\n{args.setting} {s}, {args.iters} timed iterations per stage (after {warm} of tracing)")
        print("| stage | img/s | x fixed 64x64 |\n|---|---|---|")
        for name, rate in results:
            print(f"| {name} | {rate:.2f} | {rate / full:.2f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
