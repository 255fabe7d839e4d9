"""Small helpers shared by the command-line tools: one-line errors, progress bars, atomic writes.

Nothing here imports TensorFlow, so worker processes and `--help` stay light.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, TextIO


class UserError(Exception):
    """A problem with what the user asked for; reported as one line and a non-zero exit, no traceback."""


def cli_main(main: Callable[[list[str]], int | None]) -> None:
    """Run an absl `main(argv)` so that UserError (and Ctrl-C) end with one clear line and exit code 2/130."""
    from absl import app, logging

    def wrapped(argv: list[str]) -> int | None:
        logging.set_verbosity(logging.WARNING)   # TF's checkpoint saver logs at INFO through absl
        try:
            return main(argv)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    app.run(wrapped, argv=normalize_flag_names(sys.argv))


def normalize_flag_names(argv: list[str]) -> list[str]:
    """Accept `--max-images 5` as well as absl's `--max_images 5` (only the name part, never values)."""
    out = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            arg = "--" + name.replace("-", "_") + eq + value
        out.append(arg)
    return out


def tune_malloc() -> bool:
    """Keep freed memory in the process instead of handing it back to the kernel (glibc only).

    glibc serves large blocks (every activation of a training step: 32 MiB for 16 x 64 x 64 x 128 floats)
    with fresh mmap'd pages and unmaps them on free, so each step page-faults and zeroes the same gigabytes
    again: about 25k faults per G step at 64x64, 2-5 % of training speed on 2 cores. With mmap off and a 1 GiB trim
    threshold the heap keeps those pages for the next step (RSS of a real run unchanged). Set
    STYLEGAN2_MALLOC=default to leave malloc alone. Returns whether the settings were applied.
    """
    if os.environ.get("STYLEGAN2_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    import ctypes
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):                  # musl and other C libraries: nothing to tune
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))


def start_tensorflow() -> None:
    """Prepare the process for TensorFlow (call before importing it): `tune_malloc()`, and hide TF's C++
    start-up chatter unless the user asked for it.

    TF_CPP_MIN_LOG_LEVEL=2 hides info/warning logs; the lines TF's C++ code writes before its logging is
    initialised (CUDA probing on machines without a GPU) are hidden by silencing stderr while TF imports
    and enumerates devices. Set TF_CPP_MIN_LOG_LEVEL=0 to see everything.
    """
    tune_malloc()
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class Progress:
    """A dependency-free progress bar: count/total, rate, ETA. Writes to stderr, redraws at most 4x/s."""

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


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Write to a temporary file beside `path`, then rename over it: readers never see a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
