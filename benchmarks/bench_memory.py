"""Benchmark: peak memory of one full training iteration (Gmain, Greg, Dmain, Dreg: iteration 0 runs all four)
on CPU, ours and, with --reference, NVIDIA's stylegan2-ada-pytorch at the same setting.

    python benchmarks/bench_memory.py [--res 1024] [--batch 4]
    /path/to/torch/python benchmarks/bench_memory.py --reference /path/to/stylegan2-ada-pytorch [--res 1024]

Config F (`--cfg stylegan2`: channel base 32768, max 512, 8 mapping layers, R1 gamma 10, path length 2, style
mixing 0.9),
float32, as StyleGAN2 at 1024. Ours: the Trainer's compiled phase steps, each called twice (trace, then run)
on random images. Reference:
their G, D and StyleGAN2Loss on device 'cpu' (their custom ops fall back to the reference implementations),
the four phases of one iteration with the optimizers stepping, as their training loop does. Prints the peak
resident memory of the process (sampled every 0.1 s, and the kernel's high-water mark) and the seconds.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchlib import PeakRSS


def ours(res: int, batch: int) -> None:
    from common.cli import start_tensorflow
    start_tensorflow()
    import tensorflow as tf
    from benchlib import random_dataset
    from training.config import TrainConfig, resolve
    from training.training_loop import Trainer
    tmp = tempfile.mkdtemp(prefix="bench-mem-")
    try:
        data = random_dataset(tmp, res, n=8)
        cfg = TrainConfig(data=data, outdir=f"{tmp}/runs", cfg="stylegan2", batch=batch, kimg=batch / 1000,
                          kimg_per_tick=batch / 1000, snap=10**6, aug="off", mirror=False)
        cfg = resolve(cfg, res, 1)
        run = Path(tmp) / "run"
        run.mkdir()
        with PeakRSS() as before:
            trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), run)
        rng = tf.random.Generator.from_seed(0)
        real = tf.cast(rng.uniform([batch, res, res, 3], 0, 256, tf.int32), tf.uint8)    # [N, H, W, C]
        c = tf.zeros([batch, trainer.c_dim])
        t0 = time.perf_counter()
        with PeakRSS() as peak:
            for _ in range(2):                  # the first call of each phase traces it; the second runs as training
                for phase in trainer.phases:    # Gmain, Greg, Dmain, Dreg: what iteration 0 runs
                    trainer._step(phase, (res, False))(real, c, trainer._randomness(res, phase))[1].numpy()
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report("ours (TensorFlow, each phase traced, then run)", res, batch, before.peak, peak.peak, seconds)


def reference(repo: str, res: int, batch: int) -> None:
    sys.path.insert(0, repo)
    import numpy as np
    import torch
    from training.loss import StyleGAN2Loss
    from training.networks import Discriminator, Generator
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device("cpu")
    common = dict(c_dim=0, img_resolution=res, img_channels=3)
    with PeakRSS() as before:
        G = Generator(z_dim=512, w_dim=512, **common, mapping_kwargs=dict(num_layers=8),
                      synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=0,
                                            conv_clamp=None)).train().requires_grad_(False).to(device)
        D = Discriminator(**common, channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None,
                          epilogue_kwargs=dict(mbstd_group_size=4)).train().requires_grad_(False).to(device)
        G_ema = Generator(z_dim=512, w_dim=512, **common, mapping_kwargs=dict(num_layers=8),
                          synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=0,
                                                conv_clamp=None)).eval().requires_grad_(False)
        loss = StyleGAN2Loss(device=device, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, r1_gamma=10,
                             style_mixing_prob=0.9, pl_weight=2)
        opt = {"G": torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99), eps=1e-8),
               "D": torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.0, 0.99), eps=1e-8)}
    real = torch.from_numpy(np.random.RandomState(0).randn(batch, 3, res, res).astype(np.float32))
    c = torch.zeros([batch, 0])
    t0 = time.perf_counter()
    with PeakRSS() as peak:
        for phase, module, reg in (("Gmain", G, 4), ("Greg", G, 4), ("Dmain", D, 16), ("Dreg", D, 16)):
            o = opt["G" if module is G else "D"]
            o.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            z = torch.randn([batch, 512])
            loss.accumulate_gradients(phase=phase, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True,
                                      gain=reg if phase.endswith("reg") else 1)
            module.requires_grad_(False)
            o.step()
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, 0.999))
    seconds = time.perf_counter() - t0
    report(f"reference (stylegan2-ada-pytorch, torch {torch.__version__})", res, batch, before.peak, peak.peak,
           seconds)


def report(who: str, res: int, batch: int, built: int, peak: int, seconds: float) -> None:
    high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{who}: res {res}, batch {batch}: networks built {built / 2**30:.2f} GiB; one iteration (all four "
          f"phases) peak RSS {peak / 2**30:.2f} GiB (kernel high-water mark {high_water / 2**30:.2f} GiB), "
          f"{seconds:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reference", default=None, help="a checkout of NVIDIA's stylegan2-ada-pytorch (run with torch)")
    args = ap.parse_args()
    if args.reference:
        reference(args.reference, args.res, args.batch)
    else:
        ours(args.res, args.batch)


if __name__ == "__main__":
    main()
