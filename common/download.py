"""HTTP(S) downloads that are complete or absent: progress bar, timeouts, size and sha256 checks, one-line errors.

The body is written to a hidden `.NAME.PID.part` file beside the destination and renamed only once every byte
announced (Content-Length, or the expected size) has arrived and the checksum, if known, matches; on any failure
the partial file is removed, so an interrupted download never leaves anything that looks complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from common.errors import UserError
from common.progress import Progress

CHUNK = 1 << 20


def is_url(arg: str) -> bool:
    """True for http:// and https:// addresses."""
    return arg.lower().startswith(("http://", "https://"))


def download(url: str, dest: str | os.PathLike, size: int | None = None, sha256: str | None = None,
             timeout: float = 30.0, hint: str = "", stream: TextIO | None = None, progress: bool = True) -> Path:
    """Fetch `url` into `dest` (atomically); UserError (one line, naming the URL, plus `hint`) on any failure.

    `size` / `sha256`: what the file must be, when known; the server's Content-Length is always checked.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    hint = f"; {hint}" if hint else ""
    request = urllib.request.Request(url, headers={"User-Agent": "stylegan2-tf"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise UserError(f"cannot download {url}: HTTP {exc.code} {exc.reason}{hint}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"cannot download {url}: {reason} (no internet access?){hint}") from None
    for stale in dest.parent.glob(f".{dest.name}.*.part"):      # left by a download that was killed
        pid = stale.name.rsplit(".", 2)[-2]
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            with contextlib.suppress(OSError):
                stale.unlink()
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    received, digest = 0, hashlib.sha256()
    try:
        with response, open(tmp, "wb") as f:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else size
            bar = Progress((expected + 1023) // 1024 if expected else None, desc=f"downloading {dest.name}",
                           unit="KiB", stream=stream, enabled=progress)
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.HTTPException, OSError, socket.timeout) as exc:
                    raise UserError(f"download of {url} failed after {received:,} bytes ({type(exc).__name__})"
                                    f"; nothing was kept{hint}") from None
                if not chunk:
                    break
                f.write(chunk)
                digest.update(chunk)
                bar.update((received + len(chunk)) // 1024 - received // 1024)
                received += len(chunk)
            bar.update((received + 1023) // 1024 - bar.count)           # the last partial KiB
            bar.close(f"{received:,} bytes")
            if expected is not None and received != expected:
                raise UserError(f"download of {url} is truncated ({received:,} of {expected:,} bytes); nothing "
                                f"was kept{hint}")
            if size is not None and received != size:
                raise UserError(f"{url} has {received:,} bytes, expected {size:,}; nothing was kept{hint}")
            if sha256 and digest.hexdigest() != sha256.lower():
                raise UserError(f"{url} does not have the expected sha256 ({digest.hexdigest()[:16]}... instead "
                                f"of {sha256[:16]}...); nothing was kept{hint}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest
