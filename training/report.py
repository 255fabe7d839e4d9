"""What the training loop reports once per tick, and the guard that stops a run whose gradients stay non-finite."""
from __future__ import annotations

import resource
import time

import tensorflow as tf

from common.errors import UserError
from common.progress import format_seconds


class TickTimer:
    """Wall time, CPU time and images of the current tick; `end(nimg)` gives its timing statistics."""

    def __init__(self, nimg: int) -> None:
        self.run_start = time.time()
        self.start(nimg)

    def start(self, nimg: int) -> None:
        self.nimg, self.wall, self.cpu = nimg, time.time(), time.process_time()

    def total(self) -> float:
        return time.time() - self.run_start

    def end(self, tick: int, nimg: int) -> dict[str, float]:
        """Timing and resource statistics of the tick that ends at `nimg`."""
        seconds = time.time() - self.wall
        kimg = (nimg - self.nimg) / 1000
        return {"Progress/tick": tick, "Progress/kimg": nimg / 1000,
                "Timing/sec_per_tick": seconds, "Timing/sec_per_kimg": seconds / max(kimg, 1e-9),
                "Timing/cpu_sec_per_tick": time.process_time() - self.cpu,  # all cores; unlike wall time, not
                                                                              # inflated by other processes
                "Timing/img_per_sec": kimg * 1000 / max(seconds, 1e-9),
                "Resources/peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def tick_line(stats: dict, total_seconds: float) -> str:
    """The log line of a tick, from its statistics and the time since the loop started."""
    return (f"tick {stats['Progress/tick']:<5d} kimg {stats['Progress/kimg']:<8.1f} "
            f"time {format_seconds(total_seconds):<10s} "
            f"sec/tick {stats['Timing/sec_per_tick']:<7.1f} sec/kimg {stats['Timing/sec_per_kimg']:<7.2f} "
            f"img/s {stats['Timing/img_per_sec']:<7.1f} mem {stats['Resources/peak_rss_gb']:.2f} GB "
            f"G {stats.get('Loss/G/loss', float('nan')):.3f} D {stats.get('Loss/D/loss', float('nan')):.3f}"
            + (f" augment {stats['Progress/augment']:.3f}" if "Progress/augment" in stats else ""))


class NonfiniteGuard:
    """Counts, on the device, the iterations with non-finite gradients and each phase's run of consecutive
    non-finite steps (a phase that runs every 4th iteration and always fails is stopped as surely as one that runs
    every iteration). `check` reads the counters (a device sync, so only every few iterations)."""

    def __init__(self, phases: list[str], limit: int) -> None:
        self.limit = limit
        self.streaks = {p: tf.constant(0.0) for p in phases}
        self.longest = tf.constant(0.0)            # the longest streak since the last check
        self.skipped = tf.constant(0.0)            # non-finite iterations since the last check
        self.bad = tf.constant(0.0)                # whether the current iteration had a non-finite step

    def phase(self, name: str, finite: tf.Tensor) -> None:
        """One phase's step: `finite` 1.0 or 0.0."""
        self.bad = tf.maximum(self.bad, 1.0 - finite)
        self.streaks[name] = (self.streaks[name] + 1.0) * (1.0 - finite)
        self.longest = tf.maximum(self.longest, self.streaks[name])

    def iteration_done(self) -> None:
        self.skipped, self.bad = self.skipped + self.bad, tf.constant(0.0)

    def check(self, kimg: float) -> int:
        """The non-finite iterations since the last check; UserError when a phase failed `limit` times in a row."""
        skipped = int(self.skipped.numpy())
        if self.longest.numpy() >= self.limit:
            raise UserError(f"{int(self.longest.numpy())} consecutive steps of one phase with non-finite gradients "
                            f"at {kimg:.1f} kimg; lower the learning rates or raise --gamma, then --resume from the "
                            "last checkpoint")
        self.longest, self.skipped = tf.reduce_max(tf.stack(list(self.streaks.values()))), tf.constant(0.0)
        return skipped
