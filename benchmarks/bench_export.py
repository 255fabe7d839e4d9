"""Benchmark: the exported generator in each runtime next to the Keras generator (networks/export.py).

    python benchmarks/bench_export.py --network utkface-64 [--fid utkface64 --num 10000]
    python benchmarks/bench_export.py --config-f-1024                 # NVIDIA's config F at 1024, random weights

For each format (Keras, LiteRT float32 / float16 / int8, ONNX): file size, img/s on this machine's cores (the
same batch for all, constant noise, after two warm-up calls), parity with the Keras generator on 16 seeds (largest
difference in uint8 levels, and the mean), and with --fid the FID of `--num` images (psi 1, constant noise,
z ~ RandomState(123)) against the first `--num` real images of the dataset, as fid10k is computed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import start_tensorflow  # noqa: E402


def litert_runner(path: Path):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count())
    runner = interpreter.get_signature_runner("generate")
    return lambda z, psi: runner(z=z, psi=np.array(psi, np.float32))["images"]


def onnx_runner(path: Path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda z, psi: session.run(["images"], {"z": z, "psi": np.array(psi, np.float32)})[0]


def keras_runner(G):
    import tensorflow as tf

    from networks.ops import to_uint8
    fn = tf.function(lambda z, psi: to_uint8(G(z, None, truncation_psi=psi, noise_mode="const")), autograph=False)
    return lambda z, psi: fn(tf.constant(z), tf.constant(psi, tf.float32)).numpy()


def img_per_s(run, z: np.ndarray, reps: int) -> float:
    run(z, 1.0)
    run(z, 1.0)
    t0 = time.perf_counter()
    for _ in range(reps):
        run(z, 1.0)
    return len(z) * reps / (time.perf_counter() - t0)


def fid(run, G, data: str, num: int, batch: int) -> float:
    from metrics.metrics import Detector, real_stats
    from metrics.stats import FeatureStats, frechet_distance
    from common.files import CACHE
    detector = Detector()
    real = real_stats(data, G.img_resolution, num, detector, CACHE / "metrics")
    rng = np.random.RandomState(123)
    stats = FeatureStats(keep=num)
    for s in range(0, num, batch):
        z = rng.randn(min(batch, num - s), G.z_dim).astype(np.float32)
        stats.append(detector(run(z, 1.0)))
    gen = stats.to_dict()
    return frechet_distance(gen["mu"], gen["sigma"], real["mu"], real["sigma"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", default="utkface-64")
    ap.add_argument("--config-f-1024", action="store_true", help="config F at 1024 with random weights instead")
    ap.add_argument("--batch", type=int, default=None, help="images per call (default 8, 1 at 1024)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--fid", default=None, help="dataset for the FID of each variant")
    ap.add_argument("--num", type=int, default=10000)
    ap.add_argument("--formats", default="keras,tflite,tflite-float16,tflite-int8,onnx")
    args = ap.parse_args()
    start_tensorflow()
    from networks.export import export_litert, export_onnx
    from networks.serialize import load_network
    from networks.stylegan2 import Generator
    if args.config_f_1024:
        G = Generator(img_resolution=1024)
        G(np.zeros([1, G.z_dim], np.float32), noise_mode="const")
        label = "config F 1024 (random weights)"
    else:
        G = load_network(args.network).G_ema
        label = args.network
    batch = args.batch or (1 if G.img_resolution >= 512 else 8)
    reps = args.reps or (2 if G.img_resolution >= 512 else 10)
    z = np.random.RandomState(0).randn(batch, G.z_dim).astype(np.float32)
    seeds_z = np.random.RandomState(1).randn(16, G.z_dim).astype(np.float32)
    keras_run = keras_runner(G)
    ref = np.concatenate([keras_run(seeds_z[i:i + batch], 0.7) for i in range(0, 16, batch)]).astype(int)
    print(f"{label}: {G.img_resolution}x{G.img_resolution}, batch {batch}, {os.cpu_count()} cores")
    print("| format | file | img/s | x Keras | parity: max / mean levels |" + (" fid |" if args.fid else ""))
    print("|---|---|---|---|---|" + ("---|" if args.fid else ""))
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            t0 = time.time()
            if fmt == "keras":
                run, size = keras_run, None
            elif fmt.startswith("tflite"):
                q = fmt.split("-")[1] if "-" in fmt else "none"
                path = Path(tmp) / f"{fmt}.tflite"
                size = export_litert(G, path, q)
                run = litert_runner(path)
            else:
                path = Path(tmp) / "g.onnx"
                size = export_onnx(G, path)
                run = onnx_runner(path)
            convert = time.time() - t0
            speed = img_per_s(run, z, reps)
            base = base or speed
            out = np.concatenate([run(seeds_z[i:i + batch], 0.7) for i in range(0, 16, batch)]).astype(int)
            diff = np.abs(out - ref)
            row = (f"| {fmt} | {'-' if size is None else f'{size / 1e6:.1f} MB'} | {speed:.2f} | {speed / base:.2f} | "
                   f"{diff.max()} / {diff.mean():.3f} |")
            if args.fid:
                row += f" {fid(run, G, args.fid, args.num, 16 if G.img_resolution <= 256 else 2):.2f} |"
            print(row + f"  (export {convert:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
