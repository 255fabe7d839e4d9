"""Benchmark: the upsampling's zero insertion built from 4-D tensors (networks/ops.py: zero_insert, which every
exporter maps to builtin ops) against the 6-D reshape-and-pad it replaced, in one process, alternating.

    python benchmarks/bench_zero_insert.py [--rounds 3]

Times G inference and a G training step (forward and gradient) at 64x64 (channel_base 8192, channel_max 256,
batch 16, as bench_generator.py), and checks both give the same images.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import start_tensorflow  # noqa: E402


def six_d(x, up: int):
    """The replaced form: [N, H, 1, W, 1, C] padded with up-1 zeros after each pixel in both directions."""
    from keras import ops
    n, h, w, c = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2], x.shape[-1]
    x = ops.reshape(x, [n, h, 1, w, 1, c])
    x = ops.pad(x, [[0, 0], [0, 0], [0, up - 1], [0, 0], [0, up - 1], [0, 0]])
    return ops.reshape(x, [n, h * up, w * up, c])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    start_tensorflow()
    import numpy as np
    import tensorflow as tf

    from networks import ops as nops
    from networks.stylegan2 import Generator
    four_d = nops.zero_insert
    G = Generator(img_resolution=64, channel_base=8192, channel_max=256)
    z = tf.random.normal([16, G.z_dim], seed=1)
    variants = {}
    for name, impl in (("4-D (now)", four_d), ("6-D (before)", six_d)):
        nops.zero_insert = impl                      # traced now: each tf.function keeps the form it saw

        @tf.function(autograph=False)
        def infer(z):
            return G(z, noise_mode="const")

        @tf.function(autograph=False)
        def train(z):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.nn.softplus(-tf.reduce_mean(G(z, noise_mode="const"), [1, 2, 3])))
            return tape.gradient(loss, G.trainable_weights)

        images = infer(z).numpy()
        train(z)
        variants[name] = (infer, train, images)
    nops.zero_insert = four_d
    a, b = (v[2] for v in variants.values())
    print(f"largest difference between the two: {np.abs(a - b).max():.2e}")
    times = {name: {"inference": [], "training step": []} for name in variants}
    for _ in range(args.rounds):
        for name, (infer, train, _) in variants.items():
            for label, fn in (("inference", lambda f=infer: f(z).numpy()),
                              ("training step", lambda f=train: f(z)[0].numpy())):
                t0 = time.perf_counter()
                for _ in range(args.reps):
                    fn()
                times[name][label].append(16 * args.reps / (time.perf_counter() - t0))
    for label in ("inference", "training step"):
        now, before = (np.median(times[n][label]) for n in variants)
        print(f"{label}: 4-D {now:.1f} img/s, 6-D {before:.1f} img/s, ratio {now / before:.3f} "
              f"(median of {args.rounds} alternating rounds)")


if __name__ == "__main__":
    main()
