"""An encoder for one network: a small CNN that maps an aligned face to the w the network draws it from, in one
forward pass. The projection starts there instead of at w_avg (latent/projector.py), so fewer steps reach the
same pivot.

Training (`train_encoder`), in two stages: (1) the network's own faces, whose w is known: the encoder regresses
w (normalised by the spread of w) from the image; (2) real faces, whose w is not known: the encoder is tuned so
that the network, frozen, redraws each face from the predicted w (pixel distance). The file is a Keras model
(`encoder.keras`) with `encoder.json` beside it: the network it was trained for (refused for any other) and its
figures.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from common.errors import UserError
from common.files import atomic_path, atomic_write


def build_encoder(res: int, channels: int, w_dim: int, width: int = 32):
    """uint8-range images scaled to [-1, 1], [N, res, res, C] -> normalised w offsets [N, w_dim]: a stride-2 conv
    per halving down to 4x4 (channels `width` doubling, at most 8 x width), then one dense layer."""
    import keras
    from keras import layers
    x = inp = keras.Input([res, res, channels], name="image")
    ch, r = width, res
    while r > 4:
        x = layers.Conv2D(ch, 3, padding="same", activation="leaky_relu")(x)
        x = layers.Conv2D(ch, 3, strides=2, padding="same", activation="leaky_relu")(x)
        ch, r = min(ch * 2, 8 * width), r // 2
    x = layers.Conv2D(min(ch, 8 * width) // 2, 1, activation="leaky_relu")(x)           # [N, 4, 4, C]
    x = layers.Flatten()(x)
    out = layers.Dense(w_dim, name="w")(x)
    return keras.Model(inp, out, name="encoder")


class Encoder:
    """A trained encoder for the network `network` (its id): `w(images)` -> w+ [N, num_ws, w_dim]."""

    def __init__(self, model, w_avg: np.ndarray, w_std: float, num_ws: int, network: str, figures: dict | None = None):
        self.model, self.w_avg, self.w_std, self.num_ws = model, np.asarray(w_avg, np.float32), float(w_std), num_ws
        self.network, self.figures = network, figures or {}

    def w(self, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """uint8 [N, R, R, C] -> w+ [N, num_ws, w_dim] (the same w on every layer)."""
        out = []
        for s in range(0, len(images), batch):
            x = np.asarray(images[s:s + batch], np.float32) / 127.5 - 1.0
            out.append(np.asarray(self.model(x, training=False)))
        w = np.concatenate(out) * self.w_std + self.w_avg                      # [N, w_dim]
        return np.repeat(w[:, None], self.num_ws, axis=1).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """encoder.keras and encoder.json beside it (each atomically)."""
        import keras
        path = Path(path)
        bare = keras.models.clone_model(self.model)                       # not compiled: no optimizer state saved
        bare.set_weights(self.model.get_weights())
        with atomic_path(path) as tmp:
            bare.save(tmp)
        info = {"network": self.network, "w_avg": self.w_avg.tolist(), "w_std": self.w_std, "num_ws": self.num_ws,
                **self.figures}
        with atomic_write(path.with_suffix(".json")) as f:
            f.write(json.dumps(info, indent=1))
        return path


def load_encoder(path: str | Path, net_id: str, w_dim: int, num_ws: int) -> Encoder:
    """The encoder at `path` for the network `net_id`; UserError for a damaged file or another network's."""
    import keras
    path = Path(path)
    try:
        info = json.loads(path.with_suffix(".json").read_text())
        model = keras.saving.load_model(path, compile=False)
        w_avg = np.asarray(info["w_avg"], np.float32)
        w_std = float(info["w_std"])
    except Exception as exc:                    # Keras and json raise many types for a damaged file
        raise UserError(f"{path}: not a readable encoder with its encoder.json ({type(exc).__name__}: "
                        f"{str(exc)[:120]})") from None
    made_for = str(info.get("network", ""))
    if made_for.split(":")[-1] != net_id.split(":")[-1]:
        raise UserError(f"{path} was trained for network {made_for}, not {net_id}")
    if w_avg.shape != (w_dim,) or not np.isfinite(w_avg).all() or not np.isfinite(w_std) or w_std <= 0:
        raise UserError(f"{path.with_suffix('.json')}: w_avg or w_std do not fit the network")
    return Encoder(model, w_avg, w_std, num_ws, made_for, {k: v for k, v in info.items()
                                                           if k not in ("w_avg", "w_std", "num_ws", "network")})


def train_encoder(G, net_id: str, samples: int = 20000, epochs: int = 4, reals: np.ndarray | None = None,
                  real_epochs: int = 1, batch: int = 32, seed: int = 0,
                  log: Callable[[str], None] = print) -> Encoder:
    """Train an encoder for G: `samples` generated faces (constant noise) for `epochs` epochs of w regression,
    then `real_epochs` over `reals` (uint8 [N, R, R, C]) through the frozen synthesis network."""
    import keras
    import tensorflow as tf

    from latent.runner import LatentRunner
    keras.utils.set_random_seed(seed)
    runner = LatentRunner(G, batch=64)
    t0 = time.perf_counter()
    z = np.random.RandomState(seed).randn(samples, G.z_dim).astype(np.float32)
    w = runner.map(z)[:, 0]                                               # [n, w_dim]
    w_avg = w.mean(0)
    w_std = float(np.sqrt(np.mean(np.sum((w - w_avg) ** 2, axis=1)) / G.w_dim))   # per dimension
    images = runner.synthesize(np.repeat(w[:, None], G.num_ws, axis=1))   # uint8 [n, R, R, C]
    log(f"encoder: {samples} generated faces in {time.perf_counter() - t0:.0f} s")
    model = build_encoder(G.img_resolution, G.img_channels, G.w_dim)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    x = images.astype(np.float32) / 127.5 - 1.0
    y = (w - w_avg) / w_std
    n_val = min(1000, samples // 10)
    report = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: log(
        f"encoder epoch {e + 1}/{epochs}: loss {logs['loss']:.4f}, held-out {logs['val_loss']:.4f}"))
    model.fit(x[n_val:], y[n_val:], batch_size=batch, epochs=epochs, validation_data=(x[:n_val], y[:n_val]),
              shuffle=True, verbose=0, callbacks=[report])
    enc = Encoder(model, w_avg, w_std, G.num_ws, net_id)
    if reals is not None and real_epochs:
        opt = keras.optimizers.Adam(1e-4)
        params = model.trainable_weights
        mean, std = tf.constant(w_avg), tf.constant(w_std)

        @tf.function(autograph=False)
        def step(xb):
            with tf.GradientTape() as tape:
                wb = model(xb, training=True) * std + mean                       # [b, w_dim]
                ws = tf.repeat(wb[:, None], G.num_ws, axis=1)
                loss = tf.reduce_mean(tf.square(G.synthesis(ws, noise_mode="const") - xb))
            opt.apply_gradients(zip(tape.gradient(loss, params), params))
            return loss

        order = np.random.RandomState(seed + 1).permutation(len(reals))
        for epoch in range(real_epochs):
            t1, losses = time.perf_counter(), []
            for s in range(0, len(order) - batch + 1, batch):
                xb = reals[order[s:s + batch]].astype(np.float32) / 127.5 - 1.0
                losses.append(float(step(tf.constant(xb))))
            log(f"encoder real-face epoch {epoch + 1}/{real_epochs}: pixel loss {np.mean(losses):.4f} "
                f"({time.perf_counter() - t1:.0f} s)")
    enc.figures["train_seconds"] = time.perf_counter() - t0
    return enc


def read_faces(data: str | Path, res: int, limit: int, skip: int = 0) -> np.ndarray:
    """uint8 [N, res, res, C]: up to `limit` faces of a dataset level, after skipping `skip` records."""
    from datasets.reader import read_records
    out: list[np.ndarray] = []
    records: Iterable = read_records(data, res)
    for i, (img, _) in enumerate(records):
        if i < skip:
            continue
        out.append(img)
        if len(out) >= limit:
            break
    if not out:
        raise UserError(f"no {res}x{res} faces in {data}")
    return np.stack(out)
