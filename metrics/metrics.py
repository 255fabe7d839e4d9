"""Metric protocols: which images, how many, and where the real statistics are cached.

Names follow the official tools: `fid50k_full` (50k generated vs every real image, no flip), `fid10k`
(10k vs 10k), `kid50k_full`, `kid50k`; any `fidNk[_full]` / `kidNk[_full]` works (small N for quick
checks on a CPU, e.g. `fid2k`; such numbers are biased upwards and are not comparable with papers).
Generated images: z ~ N(0, I), psi 1, random noise, labels drawn from the dataset for conditional networks.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrics.stats import FeatureStats, frechet_distance, kernel_inception_distance
from training.util import UserError

DETECTOR = "inception-2015-12-05 pool_3 (TTUR/StyleGAN2 graph), NVIDIA resize protocol"
NOT_YET = {"ppl2_wend", "ppl_zfull", "ppl_wfull", "pr50k3", "pr50k3_full", "is50k"}


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str                      # fid | kid
    num_gen: int                   # generated images
    num_real: int | None           # real images (None: all of them)


def parse_metrics(text: str) -> list[MetricSpec]:
    """'fid50k_full,kid50k_full' -> specs; errors name the bad entry."""
    out = []
    for name in filter(None, (s.strip() for s in str(text).split(","))):
        if name in NOT_YET:
            raise UserError(f"metric {name} is not implemented yet (available: fidNk, fidNk_full, kidNk, kidNk_full)")
        m = re.fullmatch(r"(fid|kid)(\d+)k(_full)?", name)
        if not m or int(m[2]) == 0:
            raise UserError(f"unknown metric '{name}': use e.g. fid50k_full, fid10k, kid50k_full (or fid2k for a "
                            "quick CPU check)")
        n = int(m[2]) * 1000
        out.append(MetricSpec(name, m[1], n, None if m[3] else n))
    if not out:
        raise UserError("no metrics given (e.g. --metrics fid50k_full)")
    return out


class Detector:
    """The FID Inception network, loaded once; id = sha256 of its converted weights (cache key part)."""

    def __init__(self, weights_path: str | None = None, batch: int = 32) -> None:
        from metrics.inception import InceptionFeatures, load_weights
        w = load_weights(weights_path)
        h = hashlib.sha256()
        for k in sorted(w):
            h.update(k.encode())
            h.update(np.ascontiguousarray(w[k]).tobytes())
        self.id = h.hexdigest()[:16]
        self.net = InceptionFeatures(w, batch=batch)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.net(images)


def _dataset_fingerprint(data: str | Path, res: int) -> str:
    from dataset_tool import format as fmt
    layout = fmt.discover(data)
    files = layout.files(res)
    parts = [json.dumps(layout.manifest or {}, sort_keys=True, default=str)]
    parts += [f"{f.name}:{f.stat().st_size}" for f in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_key(data: str | Path, res: int, num_real: int | None, detector_id: str) -> str:
    """Real statistics are shared by every metric with the same dataset, level, count, flip and detector."""
    return hashlib.sha256(f"{_dataset_fingerprint(data, res)}|res{res}|n{num_real}|noflip|{detector_id}"
                          .encode()).hexdigest()[:20]


def real_stats(data: str | Path, res: int, num_real: int | None, detector: Detector,
               cache_dir: Path | None = None, progress=None) -> dict:
    """mu, sigma, features and labels of the dataset's images at level `res` (the first `num_real`, or all),
    cached in `cache_dir`."""
    from training.dataset import read_records
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"real-{cache_key(data, res, num_real, detector.id)}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
    stats = FeatureStats(keep=10 ** 9)
    labels, batch = [], []

    def flush():
        stats.append(detector(np.stack(batch)))
        if progress is not None:
            progress.update(len(batch))
        batch.clear()

    for img, label in read_records(data, res):
        batch.append(img)
        labels.append(label)
        if len(batch) == 64:
            flush()
        if num_real is not None and len(labels) >= num_real:
            break
    if batch:
        flush()
    if stats.n < 2:
        raise UserError(f"{data} has {stats.n} image(s) at {res}x{res}: too few for statistics")
    out = {**stats.to_dict(), "labels": np.asarray(labels, np.float32)}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(path)
    return out


def generated_stats(G, num: int, detector: Detector, labels: np.ndarray | None = None, batch: int = 16,
                    seed: int = 123, progress=None) -> dict:
    """mu, sigma and features of `num` images from G (psi 1, random noise)."""
    import tensorflow as tf

    from training.serialize import to_uint8
    rng = np.random.RandomState(seed)

    @tf.function(reduce_retracing=True)
    def run(z, c):
        return to_uint8(G(z, c, noise_mode="random"))

    stats = FeatureStats(keep=num)
    for s in range(0, num, batch):
        n = min(batch, num - s)
        z = rng.randn(n, G.z_dim).astype(np.float32)
        c = None
        if G.c_dim:
            if labels is None or len(labels) == 0:
                raise UserError("the network is conditional but the dataset has no labels to sample from")
            c = labels[rng.randint(len(labels), size=n)].astype(np.float32)
        imgs = run(z, c).numpy()
        stats.append(detector(imgs))
        if progress is not None:
            progress.update(n)
    return stats.to_dict()


def compute_metrics(specs: list[MetricSpec], G, data: str | Path, detector: Detector, cache_dir: Path | None = None,
                    batch: int = 16, progress_factory=None):
    """Yield one result row (for jsonl logs) per metric of G against the dataset. Real statistics (with
    their features, for KID) are computed once per real-image count and cached on disk; generated ones
    once per generated count."""
    from dataset_tool import format as fmt
    res = G.img_resolution
    if res not in fmt.discover(data).resolutions:
        raise UserError(f"{data} has no {res}x{res} level for this {res}x{res} network")
    pf = progress_factory or (lambda total, desc: None)
    reals: dict = {}
    gens: dict = {}
    for spec in specs:
        t0 = time.time()
        if spec.num_real not in reals:
            reals[spec.num_real] = real_stats(data, res, spec.num_real, detector, cache_dir,
                                              pf(spec.num_real, "real features"))
        real = reals[spec.num_real]
        if spec.num_gen not in gens:
            gens[spec.num_gen] = generated_stats(G, spec.num_gen, detector, real.get("labels"), batch,
                                                 progress=pf(spec.num_gen, "generated features"))
        gen = gens[spec.num_gen]
        if spec.kind == "fid":
            value = frechet_distance(gen["mu"], gen["sigma"], real["mu"], real["sigma"])
        else:
            value = kernel_inception_distance(real["features"], gen["features"])
        yield {"metric": spec.name, "value": value, "num_gen": spec.num_gen, "num_real": int(real["n"]),
               "seconds": round(time.time() - t0, 1), "detector": DETECTOR, "detector_id": detector.id,
               "resize": "TF1 bilinear to 299x299 (NVIDIA protocol), (x - 128) / 128"}
