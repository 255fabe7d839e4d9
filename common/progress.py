"""A dependency-free progress bar and human-readable durations."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """count/total, rate, ETA on stderr; redraws at most 4x/s on a terminal, every 10 s otherwise."""

    def __init__(self, total: int | None, desc: str = "", unit: str = "img", stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.count = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1, extra: str = "") -> None:
        self.count += n
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw > (0.25 if self._tty else 10.0)):
            self._last_draw = now
            self._draw(extra)

    @property
    def rate(self) -> float:
        return self.count / max(time.perf_counter() - self.start, 1e-9)

    def _draw(self, extra: str = "", final: bool = False) -> None:
        rate = self.rate
        if self.total:
            frac = min(self.count / self.total, 1.0)
            bar = "#" * int(frac * 24)
            eta = (self.total - self.count) / rate if rate > 0 else 0.0
            text = (f"{self.desc} [{bar:<24}] {self.count}/{self.total} {rate:.1f} {self.unit}/s "
                    f"ETA {format_seconds(eta)}")
        else:
            text = f"{self.desc} {self.count} {rate:.1f} {self.unit}/s"
        if extra:
            text += f" {extra}"
        end = "\n" if (final or not self._tty) else ""
        self.stream.write(("\r" if self._tty else "") + text + end)
        self.stream.flush()

    def close(self, extra: str = "") -> float:
        """Draw the final line; return the elapsed seconds."""
        if self.enabled:
            self._draw(extra, final=True)
        return time.perf_counter() - self.start


def format_seconds(seconds: float) -> str:
    """`93784` -> `1d 02h 03m`, `125` -> `2m 05s`."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02d}m"
    return f"{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m"
