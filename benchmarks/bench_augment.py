"""Benchmark: ADA's augmentation pipeline ('bgc', by default every op applied: p = 1) forward and backward on CPU,
ours and, with --reference, NVIDIA's stylegan2-ada-pytorch at the same setting.

    python benchmarks/bench_augment.py [--res 64] [--batch 16] [--iters 10] [--p 1]
    /path/to/torch/python benchmarks/bench_augment.py --reference /path/to/stylegan2-ada-pytorch [--res 64]

One call = augment a batch of random images at p (new random parameters each call) and take the gradient of
a scalar of the output with respect to the input, as D's losses do through the pipeline. Prints augmented img/s
(the mean of `--iters` calls after 2 warm-up calls). In training every image D sees is augmented: at p = 1
that is 2 x batch per Dmain (reals and fakes), batch per Gmain and per R1 step, so divide by about 3 to compare
with the training benchmark's img/s. At a small p (where ADA runs spend long) only the images an op was
drawn for are transformed.
Run the two lines one after the other on an otherwise idle machine and take their ratio.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from benchlib import ROOT  # noqa: F401  (repo root on sys.path)

BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
           lumaflip=1, hue=1, saturation=1)


def ours(res: int, batch: int, iters: int, p: float = 1.0) -> float:
    from common.cli import start_tensorflow
    start_tensorflow()
    import tensorflow as tf

    from training.augment import AugmentPipe
    pipe = AugmentPipe(p=p, **BGC)
    x = tf.constant(np.random.RandomState(0).uniform(-1, 1, [batch, res, res, 3]).astype(np.float32))

    @tf.function
    def step(seed):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = pipe(x, seed)
            loss = tf.reduce_sum(tf.square(y))
        return tape.gradient(loss, x)

    def call(i):
        step(tf.constant([i, 0], tf.int64)).numpy()
    return timed(call, iters, batch)


def reference(repo: str, res: int, batch: int, iters: int, p: float = 1.0) -> float:
    import torch
    sys.path.insert(0, repo)
    from training.augment import AugmentPipe       # NVIDIA's
    pipe = AugmentPipe(**BGC)
    pipe.p.copy_(torch.tensor(p))
    x = torch.from_numpy(np.random.RandomState(0).uniform(-1, 1, [batch, 3, res, res]).astype(np.float32))

    def call(i):
        xt = x.detach().requires_grad_(True)
        loss = pipe(xt).square().sum()
        torch.autograd.grad(loss, [xt])
    return timed(call, iters, batch)


def timed(call, iters: int, batch: int) -> float:
    for i in range(2):
        call(i)
    t0 = time.perf_counter()
    for i in range(iters):
        call(i + 2)
    return iters * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--p", type=float, default=1.0, help="augmentation probability (ADA runs spend long at small p)")
    ap.add_argument("--reference", default=None, help="a checkout of NVIDIA's stylegan2-ada-pytorch (run with torch)")
    args = ap.parse_args()
    if args.reference:
        import torch
        rate = reference(args.reference, args.res, args.batch, args.iters, args.p)
        who = f"reference (stylegan2-ada-pytorch, torch {torch.__version__}, {torch.get_num_threads()} threads)"
    else:
        rate = ours(args.res, args.batch, args.iters, args.p)
        who = "ours"
    print(f"{who}: bgc at p = {args.p:g}, res {args.res}, batch {args.batch}, forward + input gradient: "
          f"{rate:.1f} img/s")


if __name__ == "__main__":
    main()
