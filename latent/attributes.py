"""Supervised edit directions: a small attribute classifier trained on labelled real faces, used to label
generated faces, and a linear boundary fitted in W (the InterFaceGAN recipe).

    clf = train_attribute_classifier("tfrecords/", "gender")        # labels from the dataset manifest
    d = learn_direction(runner, clf, n=2000)                         # unit direction [w_dim] + held-out score

Attributes name a dataset label field: a scalar field (e.g. UTKFace `age`) is regressed; a two-class field
(`gender`) predicts class 1; `race=2` predicts one class of a many-class field against the rest.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import UserError
from latent.directions import edit_ws

MAX_CLASSIFIER_RES = 64


@dataclass
class AttributeTarget:
    """How to read one attribute from a dataset label row."""
    name: str                       # as given: 'age', 'gender', 'race=2'
    column: int                     # label column holding the value (scalar) or the class indicator
    kind: str                       # 'scalar' (regression) or 'binary'
    scale: float = 1.0              # scalar targets are divided by this (e.g. the maximum age)


def attribute_target(manifest: dict | None, name: str) -> AttributeTarget:
    """Resolve `name` against the label fields that dataset_tool wrote into the dataset manifest."""
    fields = (manifest or {}).get("labels", {}) or {}
    fields = fields.get("fields", []) if isinstance(fields, dict) else []
    if not fields:
        raise UserError("the dataset has no named label fields: create it with --labels (e.g. --labels utkface)")
    base, _, cls = name.partition("=")
    known = {f["name"]: f for f in fields}
    if base not in known:
        raise UserError(f"attribute '{base}' is not a label of this dataset (it has: {', '.join(known)})")
    f = known[base]
    first = f["columns"][0]
    if f["kind"] == "scalar":
        if cls:
            raise UserError(f"'{name}': {base} is a scalar label; use just --attribute {base}")
        return AttributeTarget(name, first, "scalar")
    n = int(f["classes"])
    if not cls:
        if n != 2:
            raise UserError(f"'{base}' has {n} classes: name one, e.g. --attribute {base}=1")
        return AttributeTarget(name, first + 1, "binary")
    if not cls.isdigit() or int(cls) >= n:
        raise UserError(f"'{name}': class must be 0..{n - 1}")
    return AttributeTarget(name, first + int(cls), "binary")


def _pool_to(images: np.ndarray, res: int) -> np.ndarray:
    """Box-filter float images [N, R, R, C] down to [N, res, res, C] (R a multiple of res)."""
    n, r = images.shape[:2]
    if r == res:
        return images
    f = r // res
    return images.reshape(n, res, f, res, f, -1).mean(axis=(2, 4))


def build_classifier(res: int, channels: int = 3):
    """Small CNN: float image [N, res, res, C] in [-1, 1] -> one logit (binary) or value (scalar)."""
    import keras
    from keras import layers
    x = inp = keras.Input([res, res, channels])
    for width in (32, 64, 128):
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    return keras.Model(inp, layers.Dense(1)(x), name="attribute_classifier")


@dataclass
class AttributeClassifier:
    """A trained classifier and what it measured on held-out real faces."""
    model: object
    target: AttributeTarget
    res: int
    heldout: dict = field(default_factory=dict)

    def score(self, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """Float images [N, R, R, C] in [-1, 1] -> [N]: P(class) for binary targets, the value for scalars."""
        out = []
        for s in range(0, len(images), batch):
            x = _pool_to(np.asarray(images[s:s + batch], np.float32), self.res)
            out.append(self.model(x, training=False).numpy()[:, 0])
        y = np.concatenate(out)
        return 0.5 * (1 + np.tanh(y / 2)) if self.target.kind == "binary" else y * self.target.scale  # sigmoid


def train_attribute_classifier(data: str | Path, attribute: str, res: int = MAX_CLASSIFIER_RES,
                               max_images: int = 20000, epochs: int = 5, batch: int = 64, holdout: float = 0.1,
                               seed: int = 0, verbose: int = 0,
                               log: Callable[[str], None] | None = None) -> AttributeClassifier:
    """Train on the dataset's labelled faces at level `res` (capped at 64), hold out a fraction for scoring;
    `log` is told each epoch's loss and time (a few minutes each on a CPU core for 18,000 faces)."""
    import time

    import keras

    from datasets import format as fmt
    from datasets.reader import read_records
    layout = fmt.discover(data)
    target = attribute_target(layout.manifest, attribute)
    res = min(res, MAX_CLASSIFIER_RES)
    if res not in layout.resolutions:
        res = max(r for r in layout.resolutions if r <= MAX_CLASSIFIER_RES)
    images, values = [], []
    for img, label in read_records(data, res):
        images.append(img)
        values.append(label[target.column])
        if len(images) >= max_images:
            break
    x = np.stack(images).astype(np.float32) / 127.5 - 1.0                 # [N, res, res, C]
    y = np.asarray(values, np.float32)
    if len(x) < 20:
        raise UserError(f"only {len(x)} labelled faces in {data}: too few to train an attribute classifier")
    if target.kind == "scalar":
        target.scale = float(max(np.abs(y).max(), 1e-6))
        y = y / target.scale
    order = np.random.RandomState(seed).permutation(len(x))
    n_val = max(int(len(x) * holdout), 10)
    val, trn = order[:n_val], order[n_val:]
    keras.utils.set_random_seed(seed)
    model = build_classifier(res, x.shape[3])
    loss = keras.losses.BinaryCrossentropy(from_logits=True) if target.kind == "binary" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    started = {}
    report = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.update(time=time.monotonic()),
        on_epoch_end=lambda epoch, logs: log(f"classifier epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f} "
                                             f"({time.monotonic() - started['time']:.0f} s)"))
    model.fit(np.concatenate([x[trn], x[trn, :, ::-1]]), np.concatenate([y[trn], y[trn]]), batch_size=batch,
              epochs=epochs, shuffle=True, verbose=verbose, callbacks=[report] if log else [])
    clf = AttributeClassifier(model, target, res)
    pred = clf.score(x[val])
    truth = y[val] * (target.scale if target.kind == "scalar" else 1)
    if target.kind == "binary":
        clf.heldout = {"accuracy": float(np.mean((pred > 0.5) == (truth > 0.5))), "images": int(n_val),
                       "base_rate": float(max(truth.mean(), 1 - truth.mean()))}
    else:
        clf.heldout = {"mae": float(np.mean(np.abs(pred - truth))), "images": int(n_val),
                       "mae_of_mean": float(np.mean(np.abs(truth - truth.mean())))}
    return clf


def fit_linear_direction(w: np.ndarray, scores: np.ndarray, kind: str, holdout: float = 0.2,
                         seed: int = 0) -> tuple[np.ndarray, dict]:
    """Linear boundary (binary: logistic regression on score above its median) or regression (scalar) of scores on
    w [n, w_dim]. Returns (unit normal [w_dim] pointing towards higher scores, held-out figures)."""
    n = len(w)
    order = np.random.RandomState(seed).permutation(n)
    n_val = max(int(n * holdout), 2)
    val, trn = order[:n_val], order[n_val:]
    mean, std = w[trn].mean(0), w[trn].std(0) + 1e-8
    xs = (w - mean) / std                                                  # standardised features
    if kind == "binary":
        # As InterFaceGAN, split by the classifier's score rank (here at the median), not at P = 0.5: the
        # boundary then exists even when a small network's faces lean to one class.
        y = (scores > np.median(scores[trn])).astype(np.float64)
        if y[trn].min() == y[trn].max():
            raise UserError("the classifier gave every generated face the same score: no boundary to fit")
        coef, bias = np.zeros(w.shape[1]), 0.0
        lam = 1e-2
        for _ in range(500):                                               # gradient descent, L2-regularised
            p = 0.5 * (1 + np.tanh((xs[trn] @ coef + bias) / 2))          # sigmoid
            coef -= 0.5 * (xs[trn].T @ (p - y[trn]) / len(trn) + lam * coef)
            bias -= 0.5 * float(np.mean(p - y[trn]))
        pred = (xs[val] @ coef + bias) > 0
        figures = {"heldout_accuracy": float(np.mean(pred == (y[val] > 0.5))),
                   "heldout_base_rate": float(max(y[val].mean(), 1 - y[val].mean()))}
    else:
        y = scores.astype(np.float64)
        a = xs[trn]
        coef = np.linalg.solve(a.T @ a + 1.0 * np.eye(a.shape[1]), a.T @ (y[trn] - y[trn].mean()))
        pred = xs[val] @ coef + y[trn].mean()
        figures = {"heldout_r": float(np.corrcoef(pred, y[val])[0, 1]),
                   "heldout_mae": float(np.mean(np.abs(pred - y[val])))}
    direction = coef / std                                                 # back to w coordinates
    direction = (direction / np.linalg.norm(direction)).astype(np.float32)
    return direction, {**figures, "samples": int(n), "heldout": int(n_val)}


def score_faces(runner, clf: AttributeClassifier, ws: np.ndarray, progress=None) -> np.ndarray:
    """The classifier's scores [N] of the faces of w+ [N, num_ws, w_dim], rendered and scored a batch at a time."""
    scores = []
    for s in range(0, len(ws), runner.batch):
        scores.append(clf.score(runner.synthesize_float(ws[s:s + runner.batch])))
        if progress is not None:
            progress.update(len(scores[-1]))
    return np.concatenate(scores)


def learn_direction(runner, clf: AttributeClassifier, n: int = 2000, psi: float = 1.0, seed: int = 0,
                    progress=None, cutoff: int | None = None) -> tuple[np.ndarray, dict, np.ndarray]:
    """Sample n faces (truncated by psi on layers [0, cutoff)), score them with the classifier, fit the
    direction in W. Returns (unit direction [w_dim], figures, sampled w [n, w_dim])."""
    z = np.random.RandomState(seed).randn(n, runner.G.z_dim).astype(np.float32)
    ws = runner.map(z, psi, cutoff)                                        # [n, num_ws, w_dim]
    scores = score_faces(runner, clf, ws, progress)                        # [n]
    direction, figures = fit_linear_direction(ws[:, 0], scores, clf.target.kind, seed=seed)
    figures["score_mean"], figures["score_std"] = float(scores.mean()), float(scores.std())
    return direction, figures, ws[:, 0]


def edit_strength(runner, clf: AttributeClassifier, direction: np.ndarray, scale: float, ws: np.ndarray,
                  lo: float = -3.0, hi: float = 3.0, progress=None) -> dict:
    """What an edit does in the classifier's eyes: each w+ [N, num_ws, w_dim] moved to lo and to hi standard
    deviations (`scale`, in w units) along `direction`, both faces scored (one batch at a time).

    Scalar attributes: the mean and median change of the score (in the label's unit: years for age) and the
    share of faces whose score went up. Binary: the share of faces the classifier puts on the other side of
    P = 0.5 at hi than at lo, towards the class (`flipped`, the edit's sense) and away from it (`flipped_back`)."""
    moved = edit_ws(ws, direction, np.asarray([lo, hi], np.float32) * scale).reshape(-1, *ws.shape[1:])
    scores = score_faces(runner, clf, moved, progress).reshape(len(ws), 2)      # [N, (lo, hi)]
    change = scores[:, 1] - scores[:, 0]                                        # [N]
    out = {"lo": float(lo), "hi": float(hi), "faces": int(len(ws)), "mean_change": float(change.mean()),
           "median_change": float(np.median(change)), "share_increased": float(np.mean(change > 0)),
           "mean_at_lo": float(scores[:, 0].mean()), "mean_at_hi": float(scores[:, 1].mean())}
    if clf.target.kind == "binary":
        at_lo, at_hi = scores[:, 0] > 0.5, scores[:, 1] > 0.5
        out["flipped"] = float(np.mean(~at_lo & at_hi))
        out["flipped_back"] = float(np.mean(at_lo & ~at_hi))
    return out


def describe_strength(attribute: str, kind: str, s: dict) -> str:
    """One line for the log: what the classifier saw an edit from s['lo'] to s['hi'] do."""
    head = f"edit {s['lo']:g}..{s['hi']:g} std on {s['faces']} held-out seeds:"
    if kind == "binary":
        return (f"{head} {100 * s['flipped']:.1f} % of faces cross the classifier's boundary into '{attribute}' "
                f"({100 * s['flipped_back']:.1f} % the other way; P('{attribute}') {s['mean_at_lo']:.2f} -> "
                f"{s['mean_at_hi']:.2f} on average)")
    return (f"{head} the classifier's {attribute} moves by {s['mean_change']:+.2f} on average (median "
            f"{s['median_change']:+.2f}; {s['mean_at_lo']:.2f} -> {s['mean_at_hi']:.2f}), up for "
            f"{100 * s['share_increased']:.1f} % of faces")
