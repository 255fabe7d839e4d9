"""A check kept apart from the suite: exported files run in runtimes installed apart from the project.

    python benchmarks/check_exports_apart.py --network utkface-64 [--venv /tmp/runtimes] [--seeds 0-7]

Exports `--network` to LiteRT (float32 and float16) and ONNX with this project, draws the same seeds with
`run_generator.py --noise-mode const`, then creates a fresh virtual environment holding only numpy, pillow,
ai-edge-litert and onnxruntime from PyPI (no TensorFlow, nothing of this repository), and there draws the seeds
from each file (z from NumPy's RandomState(seed), as documented) and compares them with the PNGs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

APART = r'''
import json, sys
import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter
import onnxruntime as ort
folder, seeds, psi, z_dim = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
z = np.concatenate([np.random.RandomState(s).randn(1, z_dim).astype(np.float32) for s in seeds])
png = np.stack([np.asarray(Image.open(f"{folder}/png/seed{s:04d}.png")) for s in seeds]).astype(int)
out = {}
for name in ("g.tflite", "g16.tflite"):
    run = Interpreter(model_path=f"{folder}/{name}").get_signature_runner("generate")
    out[name] = run(z=z, psi=np.array(psi, np.float32))["images"]
session = ort.InferenceSession(f"{folder}/g.onnx", providers=["CPUExecutionProvider"])
out["g.onnx"] = session.run(["images"], {"z": z, "psi": np.array(psi, np.float32)})[0]
print(json.dumps({k: {"max": int(np.abs(v.astype(int) - png).max()), "mean": float(np.abs(v.astype(int) - png).mean())}
                  for k, v in out.items()}))
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", default="utkface-64")
    ap.add_argument("--seeds", default="0-7")
    ap.add_argument("--psi", type=float, default=0.7)
    ap.add_argument("--venv", default=None, help="where to make the separate environment (default: a temporary one)")
    args = ap.parse_args()
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gen = [sys.executable, str(ROOT / "run_generator.py"), "--network", args.network]
        for extra in (["--export", str(work / "g.tflite")], ["--export", str(work / "g16.tflite"), "--quantize",
                      "float16"], ["--export", str(work / "g.onnx")],
                      ["--seeds", args.seeds, "--trunc", str(args.psi), "--noise-mode", "const", "--outdir",
                       str(work / "png")]):
            subprocess.run(gen + extra, check=True, capture_output=True)
        sys.path.insert(0, str(ROOT))
        from networks.locate import find_network
        from networks.serialize import load_network
        z_dim = load_network(find_network(args.network)).G_ema.z_dim
        env = Path(args.venv) if args.venv else work / "runtimes"
        if not (env / "bin" / "python").exists():
            venv.create(env, with_pip=True)
            subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "numpy", "pillow",
                            "ai-edge-litert", "onnxruntime"], check=True)
        versions = subprocess.run([str(env / "bin" / "python"), "-m", "pip", "freeze"], check=True,
                                  capture_output=True, text=True).stdout.split()
        r = subprocess.run([str(env / "bin" / "python"), "-c", APART, str(work), json.dumps(seeds), str(args.psi),
                            str(z_dim)], check=True, capture_output=True, text=True)
        print("runtimes apart:", " ".join(v for v in versions if v.split("==")[0] in
                                          ("ai-edge-litert", "onnxruntime", "numpy", "pillow")))
        for name, d in json.loads(r.stdout.strip().splitlines()[-1]).items():
            print(f"{name}: largest difference {d['max']} level(s), mean {d['mean']:.4f}, seeds {args.seeds}")


if __name__ == "__main__":
    main()
