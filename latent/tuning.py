"""Pivotal tuning (PTI, Roich et al. 2021): after a photo is projected into W, the generator's synthesis weights
are fine-tuned so that the pivot w reproduces the photo, while a locality regulariser keeps the images of other
w near the pivot as the untuned network drew them, so that directions learned on the untuned network still edit
the person.

Each step: the pixel distance (mean squared error in [-1, 1]) between G_tuned(w_pivot) and the photo; every
`locality_every` steps, plus `locality_weight` times the same distance between G_tuned(w_r) and G(w_r), with
w_r = w_pivot + alpha (w_z - w_pivot) / |w_z - w_pivot| for a random w_z = mapping(z) (PTI's regulariser,
`locality="pti"`). `locality="edit"` keeps instead what a move from the pivot changes: the distance between
G_tuned(w_r) - G_tuned(w_pivot) and G(w_r) - G(w_pivot), with w_r at a uniform distance up to alpha, the
range of edits. Adam on the synthesis
weights (the mapping network is not used by an edit of a fixed w, and is left as it was). LPIPS, which PTI
also uses, has no offline weights here; the pixel distance is what the tuning minimises.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from common.errors import UserError


@dataclass
class TuneConfig:
    steps: int = 200                    # tuning steps (PTI: 350)
    lr: float = 1e-3                    # Adam learning rate (PTI: 3e-4; 1e-3 reaches its fidelity in fewer steps)
    locality_every: int = 2             # the locality regulariser every N steps (PTI: 1); 0 turns it off
    locality_alpha: float = 30.0        # distance of w_r from the pivot along a random direction (PTI: 30)
    locality_weight: float = 0.1        # weight of the locality term (PTI: 0.1)
    locality: str = "pti"               # pti: G_tuned(w_r) near G(w_r); edit: the change w_r - w_pivot makes kept
                                        # (w_r at a uniform distance up to locality_alpha)
    seed: int = 0
    record_every: int = 10              # keep a progress frame every this many steps


@dataclass
class Tuning:
    G: object                           # the tuned generator (a copy; the network passed in is unchanged)
    image: np.ndarray                   # uint8 [R, R, C]: G_tuned(w_pivot)
    frames: list = field(default_factory=list)     # uint8 progress images
    losses: list = field(default_factory=list)     # (step, distance, locality)
    seconds: float = 0.0


def copy_generator(G):
    """A new generator with G's configuration and weights (noise maps included)."""
    from networks.stylegan2 import Generator
    clone = Generator.from_config(G.get_config())
    clone(np.zeros([1, G.z_dim], np.float32), None if not G.c_dim else np.zeros([1, G.c_dim], np.float32),
          noise_mode="const")
    if len(clone.weights) != len(G.weights):
        raise UserError("cannot copy the generator for tuning: its weights do not match its configuration")
    for a, b in zip(clone.weights, G.weights):
        a.assign(b)
    return clone


def tune(G, w: np.ndarray, target: np.ndarray, cfg: TuneConfig | None = None, progress=None,
         on_step: Callable[[int, float, np.ndarray | None], None] | None = None) -> Tuning:
    """Tune a copy of G so that `w` (the pivot, [num_ws, w_dim]) draws `target` (uint8 [R, R, C]) with constant
    noise. `on_step(step, distance, frame)` after every step (frame every `record_every` steps and at the last,
    else None); an exception it raises stops the tuning."""
    import keras
    import tensorflow as tf

    from latent.projector import report_step
    from networks.ops import to_uint8
    cfg = cfg or TuneConfig()
    if cfg.steps < 0:
        raise UserError(f"--tune_steps {cfg.steps} must not be negative")
    R = G.img_resolution
    if target.shape != (R, R, G.img_channels) or w.shape != (G.num_ws, G.w_dim):
        raise UserError(f"cannot tune: target {target.shape} and pivot {w.shape} do not fit the network")
    start = time.perf_counter()
    tuned = copy_generator(G)
    params = tuned.synthesis.trainable_weights
    opt = keras.optimizers.Adam(learning_rate=cfg.lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    opt.build(params)
    pivot = tf.constant(w[None].astype(np.float32))                     # [1, num_ws, w_dim]
    target_f = tf.constant(target[None].astype(np.float32) / 127.5 - 1.0)   # [1, R, R, C]
    rng = tf.random.Generator.from_seed(cfg.seed)

    if cfg.locality not in ("pti", "edit"):
        raise UserError(f"locality {cfg.locality!r} must be pti or edit")
    base = G.synthesis(pivot, noise_mode="const")                          # the untuned network's pivot image

    def w_ball():
        """w_r: towards a random w from the pivot, alpha away (PTI's ball sample), or up to alpha ('edit')."""
        wz = G.mapping(rng.normal([1, G.z_dim]), None)                   # [1, num_ws, w_dim]
        d = wz - pivot
        length = cfg.locality_alpha * (rng.uniform([]) if cfg.locality == "edit" else 1.0)
        return pivot + length * d / (tf.norm(d[:, 0]) + 1e-8)

    @tf.function(autograph=False)
    def step():
        wr = w_ball()
        ref = G.synthesis(wr, noise_mode="const")                         # the untuned network's image at w_r
        with tf.GradientTape() as tape:
            img = tuned.synthesis(pivot, noise_mode="const")              # [1, R, R, C]
            dist = tf.reduce_mean(tf.square(img - target_f))
            moved = tuned.synthesis(wr, noise_mode="const")
            if cfg.locality == "edit":                                    # the edit's change, not the image
                moved, ref = moved - img, ref - base
            loc = tf.reduce_mean(tf.square(moved - ref))
            loss = dist + cfg.locality_weight * loc
        grads = tape.gradient(loss, params)
        opt.apply_gradients([(g if g is not None else tf.zeros_like(p), p) for g, p in zip(grads, params)])
        return dist, loc, to_uint8(img)[0]

    @tf.function(autograph=False)
    def step_plain():
        with tf.GradientTape() as tape:
            img = tuned.synthesis(pivot, noise_mode="const")
            dist = tf.reduce_mean(tf.square(img - target_f))
        grads = tape.gradient(dist, params)
        opt.apply_gradients([(g if g is not None else tf.zeros_like(p), p) for g, p in zip(grads, params)])
        return dist, tf.constant(0.0), to_uint8(img)[0]

    out = Tuning(G=tuned, image=np.zeros(0))
    for i in range(cfg.steps):
        local = cfg.locality_every > 0 and i % cfg.locality_every == 0
        dist, loc, img = step() if local else step_plain()
        report_step(out, i, cfg.steps, cfg.record_every, dist, loc, img, on_step, progress)
    out.image = to_uint8(tuned.synthesis(pivot, noise_mode="const")).numpy()[0]
    out.seconds = time.perf_counter() - start
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255 ** 2 / max(mse, 1e-12))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two uint8 images [H, W, C] (Wang et al. 2004, 11x11 Gaussian window, as
    tf.image.ssim); a window as large as the image when it is smaller than 11 pixels."""
    import tensorflow as tf
    size = min(11, a.shape[0], a.shape[1])
    return float(tf.image.ssim(tf.constant(a[None], tf.float32), tf.constant(b[None], tf.float32), 255.0,
                               filter_size=size)[0])
