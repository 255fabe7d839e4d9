"""Fetch onnxruntime-web's runtime files for `run_generator.py --export_web` (from npm's registry, hash-checked),
into the Python environment's share/ folder. Run by `make` at install time; nothing fetches them later."""
from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository root

from common.errors import UserError  # noqa: E402
from networks import webruntime  # noqa: E402

if __name__ == "__main__":
    try:
        print(f"onnxruntime-web {webruntime.VERSION}: {webruntime.fetch()}")
    except (UserError, OSError) as exc:
        print(f"error: onnxruntime-web could not be fetched ({exc}); --export_web will say so", file=sys.stderr)
        sys.exit(1)
