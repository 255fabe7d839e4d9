"""onnxruntime-web, the runtime of the page `run_generator.py --export_web` writes: three files of its npm package,
fetched once at install time (`make`, or scripts/fetch_onnxruntime_web.py) and checked against a pinned hash.
No TensorFlow here: the install step imports this module."""
from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

from common.errors import UserError

VERSION = "1.30.0"
TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
SHA256 = "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71"      # of the tarball, as npm serves it
FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def runtime_dir() -> Path:
    """$STYLEGAN2_ORT_WEB, else share/onnxruntime-web-VERSION in the Python environment (.venv)."""
    env = os.environ.get("STYLEGAN2_ORT_WEB")
    return Path(env) if env else Path(sys.prefix) / "share" / f"onnxruntime-web-{VERSION}"


def check_runtime() -> Path:
    """The folder holding the runtime's files; UserError saying how to fetch them when one is missing."""
    folder = runtime_dir()
    if any(not (folder / f).is_file() for f in FILES):
        raise UserError(f"--export_web needs onnxruntime-web {VERSION}, not found in {folder}: run "
                        f"`{sys.executable} scripts/fetch_onnxruntime_web.py` once (`make` does)")
    return folder


def fetch(folder: Path | None = None, timeout: float = 120) -> Path:
    """Download the npm tarball, check its sha256, keep FILES in `folder` (default runtime_dir())."""
    folder = folder or runtime_dir()
    if all((folder / f).is_file() for f in FILES):
        return folder
    with urllib.request.urlopen(TARBALL, timeout=timeout) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise UserError(f"{TARBALL}: sha256 {digest}, expected {SHA256}; not used")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name in FILES:
            blob = tar.extractfile(f"package/dist/{name}").read()
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(blob)
            tmp.replace(folder / name)
    return folder
