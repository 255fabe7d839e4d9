"""Command-line start-up shared by every script: one-line errors, flag-name spelling, process tuning."""
from __future__ import annotations

import os
import sys
from typing import Callable

from common.errors import UserError


def cli_main(main: Callable[[list[str]], int | None]) -> None:
    """Run an absl `main(argv)` so that UserError (and Ctrl-C) end with one clear line and exit code 2/130, and
    a full disk (ENOSPC, EDQUOT, EFBIG, EROFS) with one line and exit code 1, and a path the file system refuses
    (a symlink loop, a name too long, /proc) with one line and exit code 2. Every writer writes under a
    temporary name and renames (common.files), so what a full disk interrupts is removed, never left half."""
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
        except (OSError, RuntimeError, UnicodeError) as exc:
            from common.files import no_space_message, path_error_message
            message = no_space_message(exc)        # a full disk, a quota, a read-only file system: exit 1
            if message is not None:
                print(f"error: {message}", file=sys.stderr)
                sys.exit(1)
            message = path_error_message(exc)      # a path the file system refuses: bad input, exit 2
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    def finished(argv: list[str]) -> int | None:
        code = wrapped(argv)
        leave_without_teardown(code or 0)
        return code

    app.run(finished, argv=normalize_flag_names(sys.argv), flags_parser=parse_flags)


def leave_without_teardown(code: int) -> None:
    """End a command that finished: the atexit handlers run and the output is flushed as at any exit, then the
    process leaves without the interpreter's and TensorFlow's teardown (destroying every traced function and
    thread pool: 0.7 s after a generator run, 2.5 s after a training run, measured on 2 cores). Everything a
    command writes is closed by then (common.files writes under temporary names and renames). Skipped, for a
    normal exit, while a non-daemon thread still runs (it would be cut off)."""
    import atexit
    import threading
    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with our one-line error and exit code 2 (absl prints two lines and exits 1) for an
    unknown flag, a value that does not parse, one outside the flag's bounds (`lower_bound` where defined,
    e.g. `--batch 0`), and NaN or infinity given for any number. Returns the remaining arguments."""
    import math
    from absl import flags
    values = flags.FLAGS
    try:
        rest = values(argv)
    except flags.Error as exc:
        fail(f"{' '.join(str(exc).split())} (--help lists the flags)")
    for name in list(values):
        flag = values[name]
        if flag.present and isinstance(flag.value, float) and not math.isfinite(flag.value):
            fail(f"--{name} {flag.value}: must be a finite number")
    return rest


def fail(message: str, code: int = 2):
    """Print `error: message` (one line) and exit with `code`."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


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
    again: about 25k faults per G step at 64x64, 2-5 % of training speed on 2 cores. With mmap off and a 1 GiB
    trim threshold the heap keeps those pages for the next step (RSS of a real run unchanged). Set
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


TF_LOG_LEVEL = "3"        # TF_CPP_MIN_LOG_LEVEL unless the user sets it: only fatal C++ lines


def start_tensorflow() -> None:
    """Prepare the process for TensorFlow (call before importing it): `tune_malloc()`, and keep TensorFlow's
    C++ log lines (`I0000 ...`, `E0000 ... util.cc:131] oneDNN supports DT_UINT8 only on platforms with
    AVX-512`, grappler's `remapper failed`) away from the user unless asked for.

    Two sources, both silenced here: (1) the lines TF's C++ code writes while it loads, before absl's logging
    is initialised (CUDA probing on machines without a GPU) ignore every setting, so stderr is silenced while
    TF imports and enumerates devices; (2) everything logged after that honours TF_CPP_MIN_LOG_LEVEL, set to 3
    (fatal only) unless the user set it. Errors that matter still reach the user: a failing op or an
    out-of-memory raises a Python exception, which the commands turn into their one-line `error:`; a fatal
    C++ error still prints. TF_CPP_MIN_LOG_LEVEL=0 (or 1, 2) shows TensorFlow's lines again (README,
    "TensorFlow's own log lines").
    """
    tune_malloc()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" or "tensorflow" in sys.modules:
        return
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


__all__ = ["UserError", "cli_main", "fail", "normalize_flag_names", "parse_flags", "start_tensorflow", "tune_malloc"]


def define_flags(fields, flag_values=None) -> None:
    """An absl flag per dataclass field (its name, default, and from `field.metadata`: help, choices, lower and
    upper bounds), so that a config class is the one definition of a command's options. The type comes from the
    field's annotation: bool, int, float, or str (an enum when it has choices)."""
    from absl import flags
    flags.disclaim_key_flags()            # the flags are the calling script's own (its --help, its key flags)
    fv = {"flag_values": flag_values if flag_values is not None else flags.FLAGS}
    for f in fields:
        kind = str(f.type).split("|")[0].strip()
        meta = f.metadata
        bounds = {k: v for k, v in (("lower_bound", meta.get("lower")), ("upper_bound", meta.get("upper")))
                  if v is not None}
        if meta.get("choices"):
            flags.DEFINE_enum(f.name, f.default, meta["choices"], meta["help"], **fv)
        elif kind == "bool":
            flags.DEFINE_boolean(f.name, f.default, meta["help"], **fv)
        elif kind == "int":
            flags.DEFINE_integer(f.name, f.default, meta["help"], **bounds, **fv)
        elif kind == "float":
            flags.DEFINE_float(f.name, f.default, meta["help"], **bounds, **fv)
        elif kind == "str":
            flags.DEFINE_string(f.name, f.default, meta["help"], **fv)
        else:
            raise TypeError(f"option {f.name}: no flag type for {f.type}")
