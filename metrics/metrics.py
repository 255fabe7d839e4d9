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
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrics.stats import FeatureStats, frechet_distance, kernel_inception_distance
from common.errors import UserError
from common.files import CACHE, append_jsonl
from latent.walk import slerp

DETECTOR = "inception-2015-12-05 pool_3 (TTUR/StyleGAN2 graph), NVIDIA resize protocol"
NOT_YET = {"is50k"}
STAND_IN = ("FID Inception pool_3 features as a stand-in for the official VGG16/LPIPS features (whose weights "
            "are not available offline): not comparable with published numbers")
PPL = {  # name -> (space, sampling, crop), as the official tools
    "ppl_zfull": ("z", "full", True), "ppl_wfull": ("w", "full", True), "ppl_zend": ("z", "end", True),
    "ppl_wend": ("w", "end", True), "ppl2_wend": ("w", "end", False)}


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str                      # fid | kid | pr | ppl
    num_gen: int                   # generated images (ppl: sample pairs)
    num_real: int | None           # real images (None: all of them)
    nhood: int = 3                 # pr: neighbourhood size k
    variant: str = ""              # ppl: the official variant (ppl2_wend, ppl_zfull, ...)


MAX_KIMAGES = 1000           # thousands of images one metric may generate (fid50k is the standard)


def parse_metrics(text: str) -> list[MetricSpec]:
    """'fid50k_full,kid50k_full' -> specs; errors name the bad entry."""
    out = []
    for name in filter(None, (s.strip() for s in str(text).split(","))):
        if name in NOT_YET:
            raise UserError(f"metric {name} is not implemented (it needs Inception's classifier head, which the "
                            "available weights do not include)")
        counts = [int(n) for n in re.findall(r"(\d+)k", name)]
        if any(not 1 <= n <= MAX_KIMAGES for n in counts):
            raise UserError(f"metric {name}: its count must be 1k to {MAX_KIMAGES}k images")
        ppl = re.fullmatch(r"(ppl2?_[zw](?:full|end))(?:_(\d+)k)?", name)
        if ppl and ppl[1] in PPL:
            out.append(MetricSpec(name, "ppl", int(ppl[2] or 50) * 1000, 0, variant=ppl[1]))
            continue
        pr = re.fullmatch(r"pr(\d+)k(\d+)(_full)?", name)
        if pr and int(pr[1]) > 0 and int(pr[2]) > 0:
            n = int(pr[1]) * 1000
            out.append(MetricSpec(name, "pr", n, None if pr[3] else n, nhood=int(pr[2])))
            continue
        m = re.fullmatch(r"(fid|kid)(\d+)k(_full)?", name)
        if not m or int(m[2]) == 0:
            raise UserError(f"unknown metric '{name}': use e.g. fid50k_full, fid10k, kid50k_full, pr50k3_full, "
                            "ppl2_wend (or fid2k, ppl2_wend_1k for a quick CPU check)")
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

    def float_features(self, images: np.ndarray) -> np.ndarray:
        """Float images [N, H, W, 3] with values 0..255 (not quantised) -> features [N, 2048]."""
        mh, mw = self.net.resize_for(*images.shape[1:3])
        return np.concatenate([self.net.features_float(images[s:s + 32], mh, mw).numpy()
                               for s in range(0, len(images), 32)])


def _dataset_fingerprint(data: str | Path, res: int) -> str:
    from datasets import format as fmt
    layout = fmt.discover(data)
    files = layout.files(res)
    parts = [json.dumps(layout.manifest or {}, sort_keys=True, default=str)]
    parts += [f"{f.name}:{f.stat().st_size}" for f in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_key(data: str | Path, res: int, num_real: int | None, detector_id: str) -> str:
    """Real statistics are shared by every metric with the same dataset, level, count, flip and detector."""
    return hashlib.sha256(f"{_dataset_fingerprint(data, res)}|res{res}|n{num_real}|noflip|{detector_id}"
                          .encode()).hexdigest()[:20]


def _read_real_stats(path: Path) -> dict | None:
    """A cached real-statistics file, or None (said in one line) when it is damaged: it is then computed again."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        mu, sigma, feats = out["mu"], out["sigma"], out["features"]
        ok = (mu.ndim == 1 and sigma.shape == (len(mu), len(mu)) and feats.ndim == 2 and feats.shape[1] == len(mu)
              and int(out["n"]) == len(feats) >= 2 and np.isfinite(mu).all() and np.isfinite(sigma).all())
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        ok, why = False, f"{type(exc).__name__}: {exc}"
    else:
        why = "its arrays do not fit together"
    if not ok:
        print(f"note: the cached real statistics {path} are damaged ({why}); computing them again", flush=True)
        return None
    return out


def check_enough_reals(data: str | Path, res: int) -> None:
    """At least two images at `res` (statistics need two), counted from the files' framing: before any progress."""
    from datasets import format as fmt
    available = sum(fmt.tfrecord_count(f) for f in fmt.discover(data).files(res))
    if available < 2:
        raise UserError(f"{data} has {available} image(s) at {res}x{res}: too few for statistics")


def real_stats(data: str | Path, res: int, num_real: int | None, detector: Detector,
               cache_dir: Path | None = None, progress=None) -> dict:
    """mu, sigma, features and labels of the dataset's images at level `res` (the first `num_real`, or all),
    cached in `cache_dir`."""
    from datasets.reader import read_records
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"real-{cache_key(data, res, num_real, detector.id)}.npz"
        cached = _read_real_stats(path) if path.is_file() else None
        if cached is not None:
            return cached
    check_enough_reals(data, res)
    stats = FeatureStats(keep=None)
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

    from networks.ops import to_uint8
    rng = np.random.RandomState(seed)

    @tf.function(reduce_retracing=True, autograph=False)
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
                    batch: int = 16, progress_factory=None, generated: dict | None = None):
    """Yield one result row (for jsonl logs) per metric of G against the dataset. Real statistics (with
    their features, for KID) are computed once per real-image count and cached on disk; generated ones
    once per generated count, in `generated` if given: pass the same dict for several datasets to compare
    one set of generated images with each (an unconditional G; a conditional G samples each set's labels)."""
    from datasets import format as fmt
    res = G.img_resolution
    if res not in fmt.discover(data).resolutions:
        raise UserError(f"{data} has no {res}x{res} level for this {res}x{res} network")
    if any(spec.kind != "ppl" for spec in specs):
        check_enough_reals(data, res)
    pf = progress_factory or (lambda total, desc: None)
    reals: dict = {}
    gens: dict = {} if generated is None or G.c_dim else generated
    for spec in specs:
        t0 = time.time()
        if spec.kind == "ppl":
            value = perceptual_path_length(G, detector, spec.variant,
                                           spec.num_gen, batch=batch, progress=pf(spec.num_gen, "path length"))
            yield {"metric": spec.name, "value": value, "num_samples": spec.num_gen, "epsilon": 1e-4,
                   "seconds": round(time.time() - t0, 1), "features": STAND_IN, "detector_id": detector.id}
            continue
        if spec.num_real not in reals:
            reals[spec.num_real] = real_stats(data, res, spec.num_real, detector, cache_dir,
                                              pf(spec.num_real, "real features"))
        real = reals[spec.num_real]
        if spec.num_gen not in gens:
            gens[spec.num_gen] = generated_stats(G, spec.num_gen, detector, real.get("labels"), batch,
                                                 progress=pf(spec.num_gen, "generated features"))
        gen = gens[spec.num_gen]
        if spec.kind == "pr":
            p, r = precision_recall(real["features"], gen["features"], spec.nhood)
            yield {"metric": spec.name, "precision": p, "recall": r, "num_gen": spec.num_gen,
                   "num_real": int(real["n"]), "data": str(data), "seconds": round(time.time() - t0, 1),
                   "features": STAND_IN, "detector_id": detector.id}
            continue
        if spec.kind == "fid":
            value = frechet_distance(gen["mu"], gen["sigma"], real["mu"], real["sigma"])
        else:
            value = kernel_inception_distance(real["features"], gen["features"])
        yield {"metric": spec.name, "value": value, "num_gen": spec.num_gen, "num_real": int(real["n"]),
               "data": str(data), "seconds": round(time.time() - t0, 1), "detector": DETECTOR,
               "detector_id": detector.id, "resize": "TF1 bilinear to 299x299 (NVIDIA protocol), (x - 128) / 128"}


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, batch: int = 4096) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al.): a sample is inside the other set's manifold when it
    lies within the distance to some member's k-th nearest neighbour. Returns (precision, recall)."""
    def kth_radius(x):
        out = []
        sq = np.sum(x.astype(np.float64) ** 2, axis=1)
        for s in range(0, len(x), batch):
            d = _dist(x[s:s + batch], x, sq)
            out.append(np.partition(d, k, axis=1)[:, k])                  # k+1-th smallest: self is 0
        return np.concatenate(out)

    def inside(probes, manifold, radii):
        sq = np.sum(manifold.astype(np.float64) ** 2, axis=1)
        hits = [np.any(_dist(probes[s:s + batch], manifold, sq) <= radii[None, :], axis=1)
                for s in range(0, len(probes), batch)]
        return float(np.mean(np.concatenate(hits)))

    if len(real) <= k or len(fake) <= k:
        raise UserError(f"precision/recall with k={k} needs more than {k} images on each side")
    return inside(fake, real, kth_radius(real)), inside(real, fake, kth_radius(fake))


def _dist(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] (float64)."""
    a = a.astype(np.float64)
    d2 = np.sum(a ** 2, axis=1)[:, None] + b_sq[None, :] - 2 * a @ b.astype(np.float64).T
    return np.sqrt(np.maximum(d2, 0))


def perceptual_path_length(G, detector, kind: str = "ppl2_wend", num_samples: int = 50000, epsilon: float = 1e-4,
                           batch: int = 16, seed: int = 123, progress=None) -> float:
    """Mean of d(img(t), img(t + eps)) / eps^2 over random paths (outliers outside the 1st-99th percentiles
    dropped), as the official PPL; d is the squared distance of the detector's float features."""
    import tensorflow as tf
    space, sampling, crop = PPL[kind]
    rng = np.random.RandomState(seed)

    @tf.function(reduce_retracing=True, autograph=False)
    def images(a, b, t, c):
        """Both ends of each path step: w space from the endpoints' z (a, b); z space from the z (a, b)
        already interpolated at t and t + epsilon."""
        if space == "w":
            w0, w1 = G.mapping(a, c)[:, :1], G.mapping(b, c)[:, :1]
            w_a = w0 + (w1 - w0) * t[:, None, None]
            w_b = w0 + (w1 - w0) * (t + epsilon)[:, None, None]
            ws = tf.repeat(tf.concat([w_a, w_b], 0), G.num_ws, axis=1)
        else:
            cc = None if c is None else tf.concat([c, c], 0)
            ws = G.mapping(tf.concat([a, b], 0), cc)
        img = G.synthesis(ws, noise_mode="const")                        # [2N, R, R, C]
        if crop:                                                          # the face region, as the official
            r = G.img_resolution // 8
            img = img[:, r * 3:r * 7, r * 2:r * 6]
        if img.shape[1] > 256:
            f = img.shape[1] // 256
            img = tf.nn.avg_pool2d(img, f, f, "VALID")
        img = (img + 1) * 127.5                                           # float 0..255, not quantised
        return tf.repeat(img, 3, axis=3) if img.shape[3] == 1 else img

    dists = []
    for s in range(0, num_samples, batch):
        n = min(batch, num_samples - s)
        z0, z1 = (rng.randn(n, G.z_dim).astype(np.float32) for _ in range(2))
        t = (rng.uniform(size=n) if sampling == "full" else np.zeros(n)).astype(np.float32)
        c = None
        if G.c_dim:
            c = np.eye(G.c_dim, dtype=np.float32)[rng.randint(G.c_dim, size=n)]
        if space == "z":                                                  # slerp on the unit sphere
            z0, z1 = (z / np.linalg.norm(z, axis=1, keepdims=True) for z in (z0, z1))
            z0, z1 = slerp(z0, z1, t[:, None]), slerp(z0, z1, t[:, None] + epsilon)
        img = images(z0, z1, t, c).numpy()
        feats = detector.float_features(img).astype(np.float64)
        dists.append(np.sum((feats[:n] - feats[n:]) ** 2, axis=1) / epsilon ** 2)
        if progress is not None:
            progress.update(n)
    d = np.concatenate(dists)
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    return float(np.mean(d[(d >= lo) & (d <= hi)]))



# ------------------------------------------------------------------------------------------ results
def run_folder(network: Path) -> Path | None:
    """The training run folder whose metric logs a network's results join (it holds training_options.json),
    or None: a loose file, or the shipped model, whose folder in the repository is never written."""
    from networks.locate import shipped_model
    run_dir = network if network.is_dir() else network.parent
    if shipped_model(network) is not None or not (run_dir / "training_options.json").exists():
        return None
    return run_dir


def log_row(run_dir: str | Path, row: dict) -> Path:
    """Append a result row to `<run_dir>/metric-<name>.jsonl` (run_metrics.py and training both log here)."""
    path = Path(run_dir) / f"metric-{row['metric']}.jsonl"
    append_jsonl(path, row)
    return path


def check_metrics(names: str) -> list[MetricSpec]:
    """Validate metric names and that the Inception weights are available, before any work."""
    from metrics.inception import find_weights
    specs = parse_metrics(names)
    find_weights()
    return specs


def snapshot_evaluator(names: str, data: str | Path, cache_dir: Path | None = None):
    """`evaluate(G_ema, snapshot, kimg)` for the training loop: computes `names` against `data`, logs each row
    beside the snapshot and returns the rows. The detector is loaded at the first call."""
    specs = parse_metrics(names)
    detector: list[Detector] = []

    def evaluate(G, snapshot: Path, kimg: float) -> list[dict]:
        if not detector:
            detector.append(Detector())
        rows = []
        for row in compute_metrics(specs, G, data, detector[0], cache_dir or CACHE / "metrics"):
            row = {"kimg": kimg, "snapshot": Path(snapshot).name, **row}
            log_row(Path(snapshot).parent, row)
            rows.append(row)
        return rows

    return evaluate
