"""Projection of a real image into the generator's latent space (the official StyleGAN2 recipe).

Start at w_avg; Adam (lr 0.1, cosine ramp-down over the last 25 %, ramp-up over the first 5 %); Gaussian
noise added to w, decaying to zero over the first 75 %; the per-layer noise maps optimised too, with the
multi-scale autocorrelation penalty (weight 1e5) and renormalised after every step. Optimises W (one w for
all layers) or W+ (one per layer).

Distance: the official projector uses LPIPS/VGG16 features, whose weights are not available offline here.
`pixel` is the mean squared error of the images in [-1, 1]; `inception` adds the squared distance of the
FID Inception pool_3 features (normalised by their count). The distance used is reported with every result.

The result file `projected_w.npz` (`save_projection` / `load_projected`): `w` [N, num_ws, w_dim], the
optimised noise maps `noise00`, `noise01`, ... (so the latent reproduces the projected face exactly),
`distance`, `steps` and `w_plus`. After pivotal tuning (latent/tuning.py) also `network` (the id of the network
projected into, whose directions edit it) and `tuned`: the file name of the tuned generator beside it
(`tuned.keras`), which every command that reads the projection then draws it with.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from common.errors import UserError
from common.files import atomic_path
from latent.runner import LatentRunner, sample_w

DISTANCES = ("pixel", "inception")
# The P-space prior's weight for a pivot that pivotal tuning follows: on real photos the edits of the tuned
# reconstructions then act nearly as on sampled faces (age +12.8 years against +8.1 without, +16.0 on random faces)
# for 1.5 dB of the tuned PSNR (docs/experiments/pivotal-tuning.md). A plain projection keeps 0: nothing after it
# wins the fidelity back.
PIVOT_W_PRIOR = 0.01


def default_w_prior(tune_steps: int) -> float:
    """The prior's weight when none is given: PIVOT_W_PRIOR for a pivot that tuning follows, else 0."""
    return PIVOT_W_PRIOR if tune_steps else 0.0


@dataclass
class ProjectConfig:
    steps: int = 1000                   # optimisation steps
    w_plus: bool = False                # optimise one w per layer (W+) instead of one w (W)
    distance: str = "pixel"             # pixel | inception (see module docstring)
    initial_lr: float = 0.1             # Adam learning rate at its peak
    lr_rampdown: float = 0.25           # fraction of steps of the final cosine ramp-down
    lr_rampup: float = 0.05             # fraction of steps of the initial linear ramp-up
    initial_noise_factor: float = 0.05  # w noise at step 0, in units of the w standard deviation
    noise_ramp: float = 0.75            # fraction of steps over which the w noise decays to 0
    reg_noise_weight: float = 1e5       # weight of the noise-map autocorrelation penalty
    w_prior: float = 0.0                # weight of the P-space prior on w (0: none; see p_space_prior)
    w_avg_samples: int = 10000          # samples for the w mean and standard deviation
    seed: int = 0
    record_every: int = 10              # keep a progress frame every this many steps


@dataclass
class Projection:
    w: np.ndarray                       # [num_ws, w_dim]
    image: np.ndarray                   # uint8 [H, W, C] synthesised from w with the optimised noise
    frames: list = field(default_factory=list)   # uint8 progress images
    losses: list = field(default_factory=list)   # (step, distance, noise penalty)
    distance: str = "pixel"
    noise: list = field(default_factory=list)    # the optimised noise maps (float32 [res, res] per layer)


def p_space_prior(w_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean [w_dim], whitening [w_dim, w_dim]) of the sampled w's pre-activations: w with the mapping network's
    last activation (leaky ReLU, slope 0.2, gain sqrt 2) undone, which is close to Gaussian (Zhu et al. 2020,
    "Improved StyleGAN Embedding: Where are the Good Latents?", the P_N space). The squared length of
    (x - mean) @ whitening is the Mahalanobis distance of a w's pre-activation x from the sampled ones."""
    x = _undo_lrelu(np.asarray(w_samples, np.float64))
    mean = x.mean(0)
    evals, evecs = np.linalg.eigh(np.cov(x, rowvar=False))
    return mean.astype(np.float32), (evecs / np.sqrt(np.maximum(evals, 1e-8))).astype(np.float32)


def _undo_lrelu(w):
    """The inverse of the mapping's last activation lrelu(x, 0.2) * sqrt(2) (networks.ops.LRELU_GAIN), for numpy
    arrays and tensors alike: y where y >= 0, y / 0.2 = 5y below."""
    y = w / np.sqrt(2.0)
    return y + 2 * (y - abs(y))


def noise_variables(G) -> list:
    """The constant noise map of every synthesis conv layer (these are optimised, as in the official code)."""
    out = []
    for res in G.synthesis.resolutions:
        block = getattr(G.synthesis, f"b{res}")
        for name in ("conv0", "conv1"):
            if hasattr(block, name):
                out.append(getattr(block, name).noise_const)
    return out


def _noise_penalty(tf, maps):
    """Squared autocorrelation at shifts of one pixel, summed over scales down to 8x8."""
    reg = 0.0
    for v in maps:
        x = v[None, :, :, None]                                            # [1, H, W, 1]
        while True:
            reg += tf.square(tf.reduce_mean(x * tf.roll(x, 1, axis=2))) + \
                tf.square(tf.reduce_mean(x * tf.roll(x, 1, axis=1)))
            if x.shape[1] <= 8:
                break
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    return reg


def project(G, target: np.ndarray, cfg: ProjectConfig | None = None, detector=None, progress=None,
            on_step: Callable[[int, float, np.ndarray | None], None] | None = None,
            w_start: np.ndarray | None = None) -> Projection:
    """Find w (or w+) whose image matches `target` (uint8 [R, R, C] at the network's resolution), starting from
    `w_start` ([num_ws, w_dim], e.g. an encoder's guess) or else from w_avg.
    `on_step(step, distance, frame)` is called after every step (frame: the current image every
    `cfg.record_every` steps and at the last, else None); an exception it raises stops the projection."""
    import tensorflow as tf

    from networks.ops import to_uint8
    cfg = cfg or ProjectConfig()
    if cfg.distance not in DISTANCES:
        raise UserError(f"--distance {cfg.distance} must be one of {', '.join(DISTANCES)}")
    R = G.img_resolution
    if target.shape != (R, R, G.img_channels):
        raise UserError(f"target is {target.shape}, the network makes {R}x{R}x{G.img_channels} images")
    if G.c_dim:
        raise UserError("projection into conditional networks is not supported")
    w_samples = sample_w(LatentRunner(G, batch=1000), cfg.w_avg_samples, cfg.seed)        # [n, w_dim]
    w_avg = w_samples.mean(0, keepdims=True)                              # [1, w_dim]
    w_std = float(np.sqrt(np.sum((w_samples - w_avg) ** 2) / cfg.w_avg_samples))

    layers = G.num_ws if cfg.w_plus else 1
    start = w_avg[:, None] if w_start is None else np.asarray(w_start, np.float32)[None, :1]
    w_opt = tf.Variable(np.repeat(start, layers, axis=1))                # [1, layers, w_dim]
    noise = [v.value for v in noise_variables(G)]                        # the backing tf.Variables
    for v in noise:
        v.assign(tf.random.stateless_normal(v.shape, [cfg.seed, 1]))
    params = [w_opt] + noise
    m = [tf.Variable(tf.zeros_like(p)) for p in params]
    s2 = [tf.Variable(tf.zeros_like(p)) for p in params]
    target_f = tf.constant(target[None].astype(np.float32) / 127.5 - 1.0)    # [1, R, R, C]
    target_feat = None
    if cfg.distance == "inception":
        if detector is None:
            raise UserError("--distance inception needs the FID Inception network")
        target_feat = tf.constant(detector(target[None]))

    prior_mean = prior_whiten = None
    if cfg.w_prior > 0:
        prior_mean, prior_whiten = (tf.constant(a) for a in p_space_prior(w_samples))

    def image_distance(img):
        d = tf.reduce_mean(tf.square(img - target_f))
        if target_feat is not None:
            uint = (img + 1.0) * 127.5                                     # detector expects 0..255 values
            rgb = uint if G.img_channels == 3 else tf.repeat(uint, 3, axis=3)
            mh, mw = (tf.constant(a) for a in detector.net.resize_for(R, R))
            feat = detector.net.features_float(rgb, mh, mw)
            d += tf.reduce_mean(tf.square(feat - target_feat))
        return d

    @tf.function(autograph=False)
    def step(t_step, lr, w_noise_scale):
        with tf.GradientTape() as tape:
            tape.watch(noise)                                             # not trainable for Keras
            w_noise = tf.random.stateless_normal(tf.shape(w_opt), [cfg.seed, t_step]) * w_noise_scale
            ws = w_opt + w_noise
            if not cfg.w_plus:
                ws = tf.repeat(ws, G.num_ws, axis=1)                      # [1, num_ws, w_dim]
            img = G.synthesis(ws, noise_mode="const")                     # [1, R, R, C]
            dist = image_distance(img)
            reg = _noise_penalty(tf, noise)
            loss = dist + cfg.reg_noise_weight * reg
            if prior_whiten is not None:                                  # mean squared whitened coordinate
                x = tf.reshape(_undo_lrelu(w_opt), [-1, w_opt.shape[-1]]) - prior_mean
                loss += cfg.w_prior * tf.reduce_mean(tf.square(tf.matmul(x, prior_whiten)))
        grads = tape.gradient(loss, params)
        t = tf.cast(t_step, tf.float32) + 1.0
        for p, g, mv, sv in zip(params, grads, m, s2):                   # Adam (0.9, 0.999, 1e-8)
            mv.assign(0.9 * mv + 0.1 * g)
            sv.assign(0.999 * sv + 0.001 * tf.square(g))
            p.assign_sub(lr * (mv / (1 - 0.9 ** t)) / (tf.sqrt(sv / (1 - 0.999 ** t)) + 1e-8))
        for v in noise:                                                   # renormalise the noise maps
            v.assign(v - tf.reduce_mean(v))
            v.assign(v * tf.math.rsqrt(tf.reduce_mean(tf.square(v))))
        return dist, reg, to_uint8(img)[0]

    out = Projection(w=np.zeros(0), image=np.zeros(0), distance=cfg.distance)
    for i in range(cfg.steps):
        t = i / cfg.steps
        w_noise_scale = w_std * cfg.initial_noise_factor * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2
        ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown)
        ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
        ramp *= min(1.0, t / cfg.lr_rampup)
        dist, reg, img = step(tf.constant(i, tf.int32), tf.constant(cfg.initial_lr * ramp, tf.float32),
                              tf.constant(w_noise_scale, tf.float32))
        report_step(out, i, cfg.steps, cfg.record_every, dist, reg, img, on_step, progress)
    w = w_opt.numpy()[0]
    out.w = w if cfg.w_plus else np.repeat(w, G.num_ws, axis=0)           # [num_ws, w_dim]
    out.image = to_uint8(G.synthesis(out.w[None], noise_mode="const")).numpy()[0]
    out.noise = [v.numpy() for v in noise]
    return out


def report_step(out, i: int, steps: int, record_every: int, dist, other, img, on_step=None, progress=None) -> None:
    """After step i of an optimisation (projection or tuning): keep a frame and the losses in `out` every
    `record_every` steps and at the last, tell `on_step(step, distance, frame or None)` and the progress bar."""
    frame = None
    if i % record_every == 0 or i == steps - 1:
        frame = img.numpy()
        out.frames.append(frame)
        out.losses.append((i, float(dist), float(other)))
    if on_step is not None:
        on_step(i, float(dist), frame)
    if progress is not None:
        progress.update(1, extra=f"dist {float(dist):.4f}")


def apply_noise(G, maps: list[np.ndarray]) -> None:
    """Install projected noise maps as the network's constant noise (so w reproduces the projected face)."""
    variables = noise_variables(G)
    if len(maps) != len(variables) or any(tuple(m.shape) != tuple(v.shape) for m, v in zip(maps, variables)):
        raise UserError("the projected noise maps do not fit this network")
    for m, v in zip(maps, variables):
        v.assign(m)


# ------------------------------------------------------------------------------------------ projected_w.npz
@dataclass
class ProjectedLatents:
    """The contents of a projected_w.npz: w+ [N, num_ws, w_dim] and the optimised noise maps (may be empty)."""
    path: str
    w: np.ndarray
    noise: list = field(default_factory=list)
    network: str = ""                    # the id of the network it was projected into ('' in older files)
    tuned: Path | None = None            # the tuned generator beside it (pivotal tuning), if any

    def apply_to(self, G) -> None:
        """Check that the latents fit G and install their noise maps (so they reproduce the projection)."""
        if self.w.shape[1:] != (G.num_ws, G.w_dim):
            raise UserError(f"--projected-w holds w of shape {self.w.shape[1:]}, the network needs "
                            f"{(G.num_ws, G.w_dim)}")
        if self.noise:
            apply_noise(G, self.noise)


def save_projection(path: str | Path, result: Projection, cfg: ProjectConfig, network: str = "",
                    tuned: str = "") -> Path:
    """projected_w.npz: `w` [1, num_ws, w_dim], `distance`, `steps`, `w_plus` and `noiseNN` maps, and with
    pivotal tuning the network's id and the tuned generator's file name beside it (atomically)."""
    extra = dict(network=network, tuned=tuned) if tuned else {}
    with atomic_path(path) as tmp:
        np.savez(tmp, **projection_arrays(result.w, result.noise, result.distance, cfg.steps, cfg.w_plus), **extra)
    return Path(path)


def projection_arrays(w: np.ndarray, noise: list, distance: str, steps: int, w_plus: bool) -> dict:
    """The arrays of a projected_w.npz for one projected w+ [num_ws, w_dim] and its noise maps."""
    return dict(w=w[None], distance=distance, steps=steps, w_plus=w_plus,
                **{f"noise{i:02d}": n for i, n in enumerate(noise)})


MAX_LATENTS = 10000          # w rows one projected_w.npz may hold (the explorer and the CLI write one)
MAX_WS, MAX_W_DIM, MAX_NOISE_SIDE = 64, 4096, 4096


def _npz_headers(path: str | Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of every array in an .npz, read from the .npy headers without decompressing the data."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(f))
            out[info.filename[:-4]] = (tuple(shape), np.dtype(dtype))
    return out


def load_projected(path: str | Path) -> ProjectedLatents:
    """Read a projected_w.npz; a one-line error for a missing or malformed file. Shapes and types are checked
    from the headers before any array is decompressed; w must be finite."""
    what = f"--projected-w {path}"
    if not Path(path).is_file():
        raise UserError(f"{what} does not exist")
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise UserError(f"{what} is a single .npy array, not a projected_w.npz (run_generator.py --mode project "
                            "writes one)")
    try:
        headers = _npz_headers(path)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{what}: not a projected_w.npz with an array 'w' ({exc})") from None
    if "w" not in headers:
        raise UserError(f"{what}: not a projected_w.npz (it has no array 'w')")
    shape, dtype = headers["w"]
    if len(shape) != 3 or not 1 <= shape[0] <= MAX_LATENTS or not 1 <= shape[1] <= MAX_WS \
            or not 1 <= shape[2] <= MAX_W_DIM or dtype.kind != "f":
        raise UserError(f"{what}: 'w' should be real numbers [N, num_ws, w_dim] with 1 <= N <= {MAX_LATENTS}, "
                        f"got {dtype} {list(shape)}")
    for key, (shape, dtype) in headers.items():
        if key.startswith("noise") and (len(shape) != 2 or max(shape, default=0) > MAX_NOISE_SIDE
                                        or dtype.kind != "f"):
            raise UserError(f"{what}: noise map {key!r} should be a real [res, res] array, got {dtype} {list(shape)}")
    try:
        with np.load(path, allow_pickle=False) as z:
            w = z["w"].astype(np.float32)
            noise = [z[k].astype(np.float32) for k in sorted(z.files) if k.startswith("noise")]
            network = str(z["network"]) if "network" in z.files else ""
            tuned_name = str(z["tuned"]) if "tuned" in z.files else ""
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{what}: not a projected_w.npz with an array 'w' ({exc})") from None
    if not np.isfinite(w).all() or not all(np.isfinite(n).all() for n in noise):
        raise UserError(f"{what}: 'w' or a noise map holds NaN or infinite values; project the photo again")
    tuned = None
    if tuned_name:
        if Path(tuned_name).name != tuned_name or not tuned_name.endswith(".keras"):
            raise UserError(f"{what}: its tuned network {tuned_name!r} must be a .keras file name beside it")
        tuned = Path(path).parent / tuned_name
        if not tuned.is_file():
            raise UserError(f"{what} was made with pivotal tuning, but its tuned network {tuned} is missing; keep "
                            "the projection's folder together, or project the photo again")
    return ProjectedLatents(str(path), w, noise, network, tuned)


def load_target(path: str | Path, res: int, channels: int) -> np.ndarray:
    """The face to project, read as `create.py` reads a photo (16-bit, alpha, EXIF rotation): centre square
    crop, Lanczos resize to res x res, uint8 [res, res, channels]."""
    from common.images import crop_resize, read_image
    return crop_resize(read_image(path, channels, what="--target"), res, "lanczos")[0]
