"""Benchmark: full training iterations (Gmain, Greg/4, Dmain, Dreg/16) on CPU, img/s of real images consumed.

    python benchmarks/bench_training.py [--setting ref64|small32|narrow32|utk64|f256] [--iters 48] [--aug-p 0.2]
        [--warmup 16] [--jit] [--replicas 2] [--phase-times] [--mixed-precision bf16|fp16]

ref64: res 64, channel_base 8192, channel_max 256, batch 16, 2 mapping layers (REFERENCE §4: NVIDIA's
stylegan2-ada-pytorch does 2.69 img/s on this machine kind; goal 1.3x = 3.5 img/s). small32: the `small`
preset at 32x32. narrow32: the same with 64 channels throughout (the README's ADA comparison). f256: config F
at 256, batch 4. Iterations are timed after a warm-up of `--warmup` (16; the first traces every phase).
`--aug-p P` also times the same setting with ADA's pipeline at a fixed p (`--aug fixed --p P`) in the same
process and prints the ratio to the run without augmentation. `--remapping off` turns grappler's remapper
(op fusions such as Conv2D + BiasAdd + LeakyRelu) off for the process, to measure what it contributes;
`--phase-times` prints the time of each compiled phase step (mean of 8 calls after warm-up).
`--mixed-precision bf16|fp16` also times the same setting with the 4 highest resolutions of G and D in that
dtype (as `run_training.py --mixed-precision`) in the same process and prints the ratio to float32: on CPUs
with AMX or AVX512_BF16, oneDNN runs bfloat16 convolutions natively.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from benchlib import matmul_peak_gflops, random_dataset, timed_rate, train_gflop_per_image

from common.cli import start_tensorflow

SETTINGS = {
    "ref64": dict(res=64, cbase=8192, cmax=256, batch=16, map=2),
    "small32": dict(res=32, cbase=8192, cmax=256, batch=16, map=2),
    "narrow32": dict(res=32, cbase=2048, cmax=64, batch=16, map=2),
    "utk64": dict(res=64, cbase=4096, cmax=128, batch=16, map=2),
    "f256": dict(res=256, cbase=32768, cmax=512, batch=4, map=8),
}


def time_training(setting: str, iters: int, aug: str, p: float | None, jit: str = "off",
                  replicas: int = 1, mixed_precision: str = "off", warm: int = 16) -> tuple[float, object]:
    """img/s of `iters` training iterations after a warm-up of `warm` on random data, and the Trainer."""
    import tensorflow as tf

    from training.config import TrainConfig, resolve
    from training.stats import Logger
    from training.training_loop import Trainer
    s = SETTINGS[setting]
    tmp = tempfile.mkdtemp(prefix="bench-train-")
    try:
        data = random_dataset(tmp, s["res"])
        total = warm + iters
        cfg = TrainConfig(data=data, outdir=f"{tmp}/runs", cfg="small", batch=s["batch"], cbase=s["cbase"],
                          cmax=s["cmax"], map=s["map"], kimg=total * s["batch"] / 1000,
                          kimg_per_tick=warm * s["batch"] / 1000, snap=10**6, aug=aug, p=p, jit=jit,
                          mixed_precision=mixed_precision)
        cfg = resolve(cfg, s["res"], replicas)
        run = Path(tmp) / "run"
        run.mkdir()
        strategy = (tf.distribute.OneDeviceStrategy("/cpu:0") if replicas == 1 else
                    tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)]))
        trainer = Trainer(cfg, strategy, run)
        t0 = time.perf_counter()
        trainer.train(Logger(run), resumed=True)
        wall = time.perf_counter() - t0
        ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        rate, imgs = timed_rate(ticks)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    label = ("no augmentation" if aug == "off" else f"ADA pipeline at fixed p = {p}")
    label += (", XLA" if jit == "on" else "") + (f", {mixed_precision} in the top {cfg.fp16_res} resolutions"
                                                 if mixed_precision != "off" else "")
    print(f"training {setting} ({s}), {label}: {rate:.2f} img/s over {int(imgs)} images after warm-up "
          f"(wall {wall:.0f} s incl. tracing); phases {trainer.phase_runs}")
    return rate, trainer


def phase_times(trainer) -> dict[str, float]:
    """Milliseconds per call of each phase's compiled step, on zeros of the training shape (already traced)."""
    import tensorflow as tf
    res, batch = trainer.cfg.res, trainer.cfg.batch
    real, c = tf.zeros([batch, res, res, trainer.channels], tf.uint8), tf.zeros([batch, trainer.c_dim])
    out = {}
    for phase in trainer.phases:
        step = trainer._step(phase, (res, False))
        for _ in range(2):
            step(real, c, trainer._randomness(res, phase))[1].numpy()
        rnds = [trainer._randomness(res, phase) for _ in range(8)]
        t0 = time.perf_counter()
        for rnd in rnds:
            finite = step(real, c, rnd)[1]
        finite.numpy()
        out[phase.name] = (time.perf_counter() - t0) / 8 * 1000
    return out


def ema_ms(trainer, calls: int = 20) -> float:
    """Milliseconds per G_ema update (every device updates its own copy from its own G: no weight travels)."""
    import tensorflow as tf
    beta = tf.constant(0.999)
    trainer.ema_step(beta)
    t0 = time.perf_counter()
    for _ in range(calls):
        trainer.ema_step(beta)
    trainer.G_ema.trainable_weights[0].numpy()
    return (time.perf_counter() - t0) / calls * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", default="ref64", choices=sorted(SETTINGS))
    ap.add_argument("--iters", type=int, default=48)
    ap.add_argument("--warmup", type=int, default=16, help="untimed iterations first (the first traces each phase)")
    ap.add_argument("--aug-p", type=float, default=None, help="also time ADA's pipeline at this fixed p")
    ap.add_argument("--remapping", choices=("on", "off"), default="on", help="grappler's remapper (op fusions)")
    ap.add_argument("--phase-times", action="store_true", help="also time each compiled phase step")
    ap.add_argument("--jit", action="store_true", help="also time the same with --jit on (XLA) and print the ratio")
    ap.add_argument("--replicas", type=int, default=1, help="MirroredStrategy over this many logical CPU devices "
                    "(standing in for GPUs: what the per-replica work costs, not a speed-up on 2 cores)")
    ap.add_argument("--mixed-precision", choices=("bf16", "fp16"), default=None,
                    help="also time the same with this dtype in the 4 highest resolutions and print the ratio")
    args = ap.parse_args()
    if args.replicas > 1:
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.replicas)
    start_tensorflow()
    if args.remapping == "off":
        import tensorflow as tf
        tf.config.optimizer.set_experimental_options({"remapping": False})
    rate, trainer = time_training(args.setting, args.iters, "off", None, replicas=args.replicas, warm=args.warmup)
    if args.phase_times and args.replicas == 1:          # (feeds one device's batch)
        print("phase steps (ms, mean of 8 after 2 warm-up calls): " + ", ".join(
            f"{name} {ms:.1f}" for name, ms in phase_times(trainer).items()) + f"; remapping {args.remapping}")
    if args.replicas > 1 or args.phase_times:
        ema = ema_ms(trainer)
        print(f"G_ema update on {args.replicas} replica(s): {ema:.1f} ms per iteration = "
              f"{ema / (trainer.cfg.batch / rate * 1000):.1%} of an iteration")
    gf = train_gflop_per_image(trainer.G, trainer.D)
    peak = matmul_peak_gflops()
    print(f"main phases {gf:.1f} GFLOP/img -> {gf * rate:.0f} GFLOP/s = {gf * rate / peak:.0%} of the measured "
          f"float32 matmul peak ({peak:.0f} GFLOP/s)")
    if args.jit:
        jit_rate, jit_trainer = time_training(args.setting, args.iters, "off", None, jit="on", warm=args.warmup)
        if args.phase_times:
            print("phase steps with XLA (ms): " + ", ".join(f"{name} {ms:.1f}"
                                                          for name, ms in phase_times(jit_trainer).items()))
        print(f"--jit on (XLA): {jit_rate / rate:.2f} x the img/s without")
    if args.mixed_precision:
        mp_rate, _ = time_training(args.setting, args.iters, "off", None, mixed_precision=args.mixed_precision,
                                   warm=args.warmup)
        print(f"--mixed-precision {args.mixed_precision}: {mp_rate / rate:.2f} x the img/s of float32")
    if args.aug_p is not None:
        aug_rate, _ = time_training(args.setting, args.iters, "fixed", args.aug_p, warm=args.warmup)
        print(f"augmentation at p = {args.aug_p}: {aug_rate / rate:.2f} x the img/s without")


if __name__ == "__main__":
    main()
