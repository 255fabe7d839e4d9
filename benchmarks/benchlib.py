"""Helpers for the benchmark scripts: repo root on sys.path, process-tree RSS sampling, FLOP counts.

(Named benchlib, not common: `common` is the project's base package.)
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _tree_rss(pid: int) -> int:
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for child in f.read().split():
                total += _tree_rss(int(child))
    except (OSError, ValueError):
        pass
    return total


class PeakRSS:
    """Samples the RSS of this process plus all its descendants every 0.1 s; `.peak` in bytes."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, _tree_rss(os.getpid()))

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss(os.getpid()))


def matmul_peak_gflops(n: int = 2048, reps: int = 10) -> float:
    """The machine's float32 matmul rate in GFLOP/s, measured with TensorFlow ([n, n] x [n, n], after a warm-up)."""
    import time

    import tensorflow as tf
    a = tf.random.normal([n, n])
    mm = tf.function(lambda: tf.matmul(a, a))
    mm().numpy()
    t0 = time.perf_counter()
    for _ in range(reps):
        mm().numpy()
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def conv_flops(weight, pixels: int) -> float:
    """2 x multiply-adds of a conv ([k, k, I, O]) or dense ([I, O]) weight applied at `pixels` positions."""
    return 2.0 * float(np.prod(weight.shape)) * pixels


def g_gflop_per_image(G) -> float:
    """Forward GFLOPs (2 x multiply-adds) of G's synthesis convolutions and mapping layers, per image."""
    total = 0.0
    for res in G.synthesis.resolutions:
        block = getattr(G.synthesis, f"b{res}")
        for name in ("conv0", "conv1", "torgb"):
            layer = getattr(block, name, None)
            if layer is None:
                continue
            pixels = (res // 2) ** 2 if name == "conv0" else res ** 2   # a stride-2 transposed conv works at input res
            total += conv_flops(layer.weight, pixels)
    total += sum(conv_flops(v, 1) for v in G.mapping.weights if len(v.shape) == 2)
    return total / 1e9


def d_gflop_per_image(D) -> float:
    """Forward GFLOPs of D's convolutions and dense layers, per image (stride-2 convs at output resolution)."""
    total = 0.0
    for res in D.resolutions:
        block = getattr(D, f"b{res}")
        for name in ("fromrgb", "conv0", "conv1", "skip"):
            layer = getattr(block, name, None)
            if layer is None:
                continue
            total += conv_flops(layer.weight, (res // layer.down) ** 2)
    total += conv_flops(D.b4.conv.weight, 4 * 4) + conv_flops(D.b4.fc.weight, 1) + conv_flops(D.b4.out.weight, 1)
    return total / 1e9


def train_gflop_per_image(G, D) -> float:
    """GFLOPs per real image of the two main phases, counting a backward pass as twice its forward pass.

    G main: G forward + backward, D forward + input gradient (D's weight gradients are not needed):
    3 G + 2 D. D main: G forward, D forward + backward on fakes and on reals: G + 6 D. The lazy
    regularisation phases are not counted (REFERENCE §4 counts the same way: 47 GFLOP/img at res 64).
    """
    return 4 * g_gflop_per_image(G) + 8 * d_gflop_per_image(D)


def random_dataset(folder: str, res: int, n: int = 64) -> str:
    """A dataset of `n` random res x res PNGs built with every level into folder/ds; returns its path."""
    from PIL import Image

    from dataset_tool.build import CreateConfig, create_dataset
    src = os.path.join(folder, "src")
    os.makedirs(src)
    rng = np.random.RandomState(0)
    for i in range(n):
        Image.fromarray(rng.randint(0, 256, (res, res, 3), dtype=np.uint8)).save(f"{src}/{i}.png")
    dest = os.path.join(folder, "ds")
    create_dataset(CreateConfig(source=src, dest=dest, res=res, quiet=True), log=lambda *a, **k: None)
    return dest


def timed_rate(ticks: list[dict]) -> tuple[float, int]:
    """(img/s, images) of training ticks (stats.jsonl rows) after the first, which traces the steps."""
    secs = sum(t["Timing/sec_per_tick"] for t in ticks[1:])
    imgs = round(sum(t["Progress/kimg"] - p["Progress/kimg"] for p, t in zip(ticks, ticks[1:])) * 1000)
    return imgs / secs, imgs
