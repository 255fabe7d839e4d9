"""Benchmark: generator img/s on CPU, fused vs non-fused modulated conv, inference and training passes.

    python benchmarks/bench_generator.py [--quick]

Settings: res 64 (channel_base 8192, channel_max 256, batch 16, const noise) as REFERENCE §4 (reference:
NVIDIA's stylegan2-ada-pytorch at 36.5 img/s on this machine kind), and config F at 256 and 1024 (batch 4).
GFLOP/image counts multiply-adds x2 of the convolutions and dense layers; the machine's matmul peak is
measured here with a large float32 matmul.
"""
from __future__ import annotations

import argparse
import time

from benchlib import g_gflop_per_image, matmul_peak_gflops

from common.cli import start_tensorflow


def timed(fn, reps: int) -> float:
    fn()
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="res 64 only")
    args = ap.parse_args()
    start_tensorflow()
    import tensorflow as tf

    from networks.stylegan2 import Generator
    peak = matmul_peak_gflops()
    print(f"measured float32 matmul peak: {peak:.0f} GFLOP/s")
    settings = [("res 64, cbase 8192, cmax 256", dict(img_resolution=64, channel_base=8192, channel_max=256), 16)]
    if not args.quick:
        settings += [("config F 256", dict(img_resolution=256), 4), ("config F 1024", dict(img_resolution=1024), 4)]
    for label, cfg, batch in settings:
        for fused in ((False, True) if cfg["img_resolution"] <= 64 else (False,)):
            G = Generator(**cfg, fused_modconv=fused)
            z = tf.random.normal([batch, G.z_dim])
            infer = tf.function(lambda z, G=G: G(z, noise_mode="const"))
            reps = 5 if cfg["img_resolution"] <= 64 else 2
            dt = timed(lambda infer=infer, z=z: infer(z).numpy(), reps)
            gf = g_gflop_per_image(G)
            kind = "fused    " if fused else "non-fused"
            line = (f"{label}, batch {batch}, {kind}: inference {batch / dt:7.2f} img/s ({gf:.1f} GFLOP/img, "
                    f"{gf * batch / dt:.0f} GFLOP/s = {gf * batch / dt / peak:.0%} of measured peak, "
                    f"{gf * batch / dt / 230:.0%} of REFERENCE's 230)")
            if cfg["img_resolution"] <= 64 and not fused:   # fused training (XLA grouped conv) takes minutes
                @tf.function
                def train_step(z, G=G):
                    with tf.GradientTape() as tape:
                        loss = tf.reduce_sum(tf.nn.softplus(-tf.reduce_mean(G(z, noise_mode="random"), [1, 2, 3])))
                    return tape.gradient(loss, G.trainable_weights)
                dt2 = timed(lambda step=train_step, z=z: [g.numpy() for g in step(z)[:1]], reps)
                line += f"; forward+backward {batch / dt2:6.2f} img/s"
            print(line, flush=True)


if __name__ == "__main__":
    main()
