"""Training statistics: reported where they arise, accumulated on the device, read once per tick, and
written to one place (log.txt and stdout, stats.jsonl, TensorBoard).

The compiled phase steps return per-step means (`Loss/G/loss`, `Loss/r1_penalty`, ...); `StatsCollector`
keeps those tensors without reading them (no device-to-host copy per step, which would stall a GPU) and
reduces everything in one transfer at the end of the tick.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf


class StatsCollector:
    """Accumulates scalar tensors by name; `collect()` returns their means as floats and starts over."""

    def __init__(self) -> None:
        self._values: dict[str, list[tf.Tensor]] = {}

    def report(self, stats: dict[str, tf.Tensor]) -> None:
        """Add one value per name (scalars, left on the device)."""
        for name, value in stats.items():
            self._values.setdefault(name, []).append(value)

    def collect(self) -> dict[str, float]:
        """Means since the last collect, as Python floats (one device-to-host transfer)."""
        if not self._values:
            return {}
        names = sorted(self._values)
        means = tf.stack([tf.reduce_mean(tf.cast(tf.stack(self._values[n]), tf.float32)) for n in names]).numpy()
        self._values = {}
        return {n: float(v) for n, v in zip(names, means)}


class Logger:
    """One place for what a run reports: log.txt + stdout, stats.jsonl and TensorBoard (steps in images)."""

    def __init__(self, run: Path) -> None:
        self.log = open(run / "log.txt", "a")
        self.jsonl = open(run / "stats.jsonl", "a")
        self.writer = tf.summary.create_file_writer(str(run))

    def print(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def stats(self, kimg: float, stats: dict[str, float]) -> None:
        self.jsonl.write(json.dumps({"kimg": kimg, **stats}) + "\n")
        self.jsonl.flush()
        self.scalars(kimg, stats)

    def scalars(self, kimg: float, values: dict[str, float]) -> None:
        with self.writer.as_default():
            for k, v in values.items():
                tf.summary.scalar(k, v, step=int(round(kimg * 1000)))
        self.writer.flush()

    def image(self, name: str, grid: np.ndarray, kimg: float) -> None:
        with self.writer.as_default():
            tf.summary.image(name, grid[None], step=int(round(kimg * 1000)))
        self.writer.flush()

    def close(self) -> None:
        self.log.close()
        self.jsonl.close()
        self.writer.close()
