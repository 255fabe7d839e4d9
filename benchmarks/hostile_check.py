"""A check kept apart from the suite: hostile input that tests/test_bad_input.py does not list, each command run as a
user runs it. Each case must end with exit code 2 and one `error:` line, no traceback, and leave the files as they
were; the report says which do not.

    python benchmarks/hostile_check.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NET = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32"


def world(w: Path) -> None:
    (w / "src").mkdir(parents=True)
    rng = np.random.RandomState(0)
    for i in range(6):
        Image.fromarray(rng.randint(0, 256, (16, 16, 3), dtype=np.uint8)).save(w / "src" / f"{i}.png")
    subprocess.run([sys.executable, str(ROOT / "dataset_tool/create.py"), str(w / "src"), str(w / "ds"), "--quiet"],
                   check=True, capture_output=True)
    (w / "empty").mkdir()
    (w / "text.png").write_text("not a png\n")
    (w / "zero.npz").write_bytes(b"")
    (w / "dirs").mkdir()
    np.save(w / "dirs" / "age.npy", np.zeros([2, 3, 4], np.float32))          # a 3-D array is no direction
    Image.new("RGB", (1, 1)).save(w / "tiny.png")


CASES = [
    ["dataset_tool/create.py", "{w}/empty", "{w}/out"],                          # a folder with no images
    ["dataset_tool/create.py", "{w}/src", "{w}/out", "--res", "0"],
    ["dataset_tool/create.py", "{w}/src", "{w}/out", "--labels", "{w}/text.png"],
    ["dataset_tool/extract.py", "{w}/ds", "{w}/png", "--res", "1024"],            # a level the dataset lacks
    ["run_generator.py", "--network", str(NET), "--seeds", "0", "--trunc", "-0.5"],
    ["run_generator.py", "--network", str(NET), "--seeds", ",,,"],
    ["run_generator.py", "--network", str(NET), "--projected-w", "{w}/zero.npz"],
    ["run_generator.py", "--network", str(NET), "--seeds", "0", "--edit", "age=-1..1", "--directions", "{w}/dirs"],
    ["run_generator.py", "--network", str(NET), "--mode", "project", "--target", "{w}/text.png", "--outdir", "{w}/p"],
    ["run_generator.py", "--network", str(NET), "--mode", "project", "--target", "{w}/tiny.png", "--outdir", "{w}/p"],
    ["run_generator.py", "--network", "{w}/ds", "--seeds", "0"],                  # a dataset is not a network
    ["run_training.py", "--data", "{w}/ds", "--outdir", "{w}/runs", "--res", "32"],
    ["run_training.py", "--data", "{w}/src", "--outdir", "{w}/runs"],            # photos, not a dataset
    ["run_metrics.py", "--network", str(NET), "--data", "{w}/src"],
    ["run_explorer.py", "--network", str(NET), "--host", "999.1.1.1"],
    ["run_explorer.py", "--network", str(NET), "--directions", "{w}/text.png"],
]


def digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if not p.is_symlink()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", default=None, help="keep the test tree here")
    args = ap.parse_args()
    w = Path(args.keep or tempfile.mkdtemp(prefix="hostile-"))
    world(w)
    bad = 0
    for case in CASES:
        argv = [a.replace("{w}", str(w)) for a in case]
        before = digest(w)
        r = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, CUDA_VISIBLE_DEVICES="-1"))
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        ok = (r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
              and "Traceback" not in r.stderr and digest(w) == before)
        bad += not ok
        shown = " ".join(case).replace(str(NET), "NET")
        print(f"{'ok  ' if ok else 'FAIL'} {shown}\n     exit {r.returncode}: {(lines or [''])[-1][:160]}"
              + ("" if ok else f" ({len(lines)} lines)"))
    if not args.keep:
        shutil.rmtree(w, ignore_errors=True)
    print(f"{len(CASES) - bad} of {len(CASES)} handled as they should be")


if __name__ == "__main__":
    main()
