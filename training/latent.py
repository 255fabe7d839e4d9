"""Latent-space tools: w from seeds, style mixing, interpolation walks, and unsupervised edit directions.

Everything works on w+ arrays `[N, num_ws, w_dim]` (float32 numpy), so a projected or edited latent can be
fed to any of them. Layer index i of w+ drives the features at resolution 2 ** (2 + i // 2) (the StyleGAN
convention: two layers per resolution), which defines the coarse (4-8 px), middle (16-32 px) and fine
(64 px and up) style groups.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from training.generate import class_vector, seed_to_z
from training.util import UserError

STYLE_GROUPS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}


def layer_resolution(i: int) -> int:
    """Resolution (pixels) whose features w+ layer i modulates."""
    return 2 ** (2 + i // 2)


def parse_styles(spec: str, num_ws: int) -> list[int]:
    """'coarse' | 'middle' | 'fine' | '0-6' | '0,2,4-5' -> sorted w+ layer indices (errors name the problem)."""
    spec = str(spec).strip().lower()
    if spec in STYLE_GROUPS:
        lo, hi = STYLE_GROUPS[spec]
        layers = [i for i in range(num_ws) if lo <= layer_resolution(i) <= hi]
        if not layers:
            raise UserError(f"--styles {spec}: this network ({num_ws} w layers) has no {spec} layers")
        return layers
    layers: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"bad --styles '{spec}': use coarse, middle, fine, or layer ranges like 0-6 or 0,2,4-5")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo or hi >= num_ws:
            raise UserError(f"--styles '{part}' is outside the network's layers 0-{num_ws - 1}")
        layers.update(range(lo, hi + 1))
    if not layers:
        raise UserError("--styles is empty")
    return sorted(layers)


class LatentRunner:
    """Batched, traced mapping and synthesis for one generator (float32 numpy in, numpy out)."""

    def __init__(self, G, batch: int = 8, noise_mode: str = "const", class_idx: int | None = None) -> None:
        import tensorflow as tf

        from training.serialize import to_uint8
        self.G, self.batch, self.noise_mode = G, batch, noise_mode
        self.c1 = class_vector(G.c_dim, class_idx)
        self._map = tf.function(lambda z, c: G.mapping(z, c), reduce_retracing=True)
        self._synth = tf.function(lambda ws: to_uint8(G.synthesis(ws, noise_mode=noise_mode)),
                                  reduce_retracing=True)
        self._synth_float = tf.function(lambda ws: G.synthesis(ws, noise_mode=noise_mode), reduce_retracing=True)

    def _labels(self, n: int):
        return None if self.c1 is None else np.repeat(self.c1, n, axis=0)

    def map(self, z: np.ndarray, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        """z [N, z_dim] -> w+ [N, num_ws, w_dim], truncated towards w_avg by psi on layers [0, cutoff)."""
        out = []
        for s in range(0, len(z), max(self.batch, 64)):
            zb = np.asarray(z[s:s + max(self.batch, 64)], np.float32)
            out.append(self._map(zb, self._labels(len(zb))).numpy())
        ws = np.concatenate(out) if out else np.zeros([0, self.G.num_ws, self.G.w_dim], np.float32)
        if psi != 1:
            w_avg = self.G.mapping.w_avg.numpy()
            layers = slice(0, cutoff)
            ws[:, layers] = w_avg + (ws[:, layers] - w_avg) * psi
        return ws

    def seeds(self, seeds: list[int], psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        """Seeds -> w+ [N, num_ws, w_dim] with the official seed -> z convention."""
        z = np.concatenate([seed_to_z(s, self.G.z_dim) for s in seeds])
        return self.map(z, psi, cutoff)

    def synthesize(self, ws: np.ndarray, progress=None) -> np.ndarray:
        """w+ [N, num_ws, w_dim] -> uint8 images [N, H, W, C], in batches."""
        out = []
        for s in range(0, len(ws), self.batch):
            out.append(self._synth(np.asarray(ws[s:s + self.batch], np.float32)).numpy())
            if progress is not None:
                progress.update(len(out[-1]))
        return np.concatenate(out)

    def synthesize_float(self, ws: np.ndarray) -> np.ndarray:
        """w+ -> float images [N, H, W, C] in about [-1, 1]."""
        return np.concatenate([self._synth_float(np.asarray(ws[s:s + self.batch], np.float32)).numpy()
                               for s in range(0, len(ws), self.batch)])


# ------------------------------------------------------------------------------------------ style mixing
def mix_styles(row_ws: np.ndarray, col_ws: np.ndarray, layers: list[int]) -> np.ndarray:
    """Every row's w+ with `layers` taken from every column's w+: [R, C, num_ws, w_dim]."""
    mixed = np.repeat(row_ws[:, None], len(col_ws), axis=1).copy()      # [R, C, num_ws, w_dim]
    mixed[:, :, layers] = col_ws[None, :, layers]
    return mixed


def style_mix_grid(row_imgs: np.ndarray, col_imgs: np.ndarray, mixed: np.ndarray) -> np.ndarray:
    """The official figure: blank corner, column sources on top, row sources on the left, mixes inside.

    row_imgs [R, H, W, C], col_imgs [C', H, W, C], mixed [R, C', H, W, C] -> uint8 [(R+1)H, (C'+1)W, C].
    """
    R, C = mixed.shape[:2]
    H, W, ch = row_imgs.shape[1:]
    grid = np.zeros([(R + 1) * H, (C + 1) * W, ch], np.uint8)
    for c in range(C):
        grid[:H, (c + 1) * W:(c + 2) * W] = col_imgs[c]
    for r in range(R):
        grid[(r + 1) * H:(r + 2) * H, :W] = row_imgs[r]
        for c in range(C):
            grid[(r + 1) * H:(r + 2) * H, (c + 1) * W:(c + 2) * W] = mixed[r, c]
    return grid


# ------------------------------------------------------------------------------------------ interpolation
def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between a and b (last axis), falling back to linear when they are parallel."""
    an = a / np.linalg.norm(a, axis=-1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip(np.sum(an * bn, axis=-1, keepdims=True), -1.0, 1.0))
    so = np.sin(omega)
    safe = np.where(so < 1e-6, 1.0, so)
    out = np.where(so < 1e-6, (1 - t) * a + t * b,
                   np.sin((1 - t) * omega) / safe * a + np.sin(t * omega) / safe * b)
    return out.astype(a.dtype)


def walk(keys: np.ndarray, frames: int, loop: bool = False, spherical: bool = False) -> np.ndarray:
    """Interpolate through key latents [K, ...]: `frames` per segment, -> [T, ...].

    Without `loop` the walk ends exactly on the last key (T = (K - 1) * frames + 1); with `loop` it returns
    towards the first key and stops one step short of it, so the clip repeats seamlessly (T = K * frames).
    """
    if len(keys) < 2:
        raise UserError("interpolation needs at least two seeds (e.g. --seeds 0-5)")
    if frames < 1:
        raise UserError(f"--frames {frames} must be at least 1")
    pts = list(keys) + ([keys[0]] if loop else [])
    out = []
    for a, b in zip(pts[:-1], pts[1:]):
        for f in range(frames):
            t = f / frames
            out.append(slerp(a, b, t) if spherical else ((1 - t) * a + t * b).astype(a.dtype))
    if not loop:
        out.append(pts[-1])
    return np.stack(out)


def write_video(path: str | Path, frames: np.ndarray, fps: float = 30.0) -> None:
    """uint8 frames [T, H, W, 3] -> MP4 (OpenCV, mp4v), written under a temporary name then renamed."""
    import cv2
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    T, H, W = frames.shape[:3]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    if not writer.isOpened():
        raise UserError(f"cannot write {path}: OpenCV has no MP4 encoder here (the GIF is still written)")
    for f in frames:
        writer.write(cv2.cvtColor(f if f.shape[2] == 3 else np.repeat(f, 3, axis=2), cv2.COLOR_RGB2BGR))
    writer.release()
    tmp.replace(path)


def write_gif(path: str | Path, frames: np.ndarray, fps: float = 30.0) -> None:
    """uint8 frames [T, H, W, C] -> looping GIF (Pillow), written under a temporary name then renamed."""
    from PIL import Image
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    imgs = [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f) for f in frames]
    imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:], duration=int(round(1000 / fps)), loop=0)
    tmp.replace(path)


# ------------------------------------------------------------------------------------------ directions
def affine_layers(G) -> list:
    """The style-affine FC layers in w+ order: conv layers and ToRGB layers of every synthesis block."""
    out = []
    for res in G.synthesis.resolutions:
        block = getattr(G.synthesis, f"b{res}")
        for name in ("conv0", "conv1", "torgb"):
            if hasattr(block, name):
                out.append((f"synthesis.b{res}.{name}.affine", getattr(block, name).affine))
    return out


def sefa_directions(G) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form directions (SeFa): eigenvectors of A A^T, A the column-normalised concatenation of all
    style-affine weights [w_dim, sum of channels].

    Returns (directions [w_dim, w_dim] unit rows, largest eigenvalue first; eigenvalues [w_dim]).
    """
    A = np.concatenate([np.asarray(fc.weight.numpy(), np.float64) for _, fc in affine_layers(G)], axis=1)
    A = A / np.linalg.norm(A, axis=0, keepdims=True)                     # [w_dim, K]
    values, vectors = np.linalg.eigh(A @ A.T)                             # ascending
    order = np.argsort(values)[::-1]
    return vectors[:, order].T.astype(np.float32), values[order].astype(np.float32)


def sample_w(runner: LatentRunner, n: int, seed: int = 0) -> np.ndarray:
    """n random w [n, w_dim] (z from a seeded normal)."""
    z = np.random.RandomState(seed).randn(n, runner.G.z_dim).astype(np.float32)
    return runner.map(z)[:, 0]


def ganspace_directions(w: np.ndarray, k: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal components of sampled w [n, w_dim] (GANSpace): (directions [k, w_dim] unit rows,
    standard deviations [k] along them, mean [w_dim])."""
    mean = w.mean(0)
    _, s, vt = np.linalg.svd(w - mean, full_matrices=False)
    k = min(k, vt.shape[0])
    return vt[:k].astype(np.float32), (s[:k] / np.sqrt(max(len(w) - 1, 1))).astype(np.float32), mean


def direction_scales(directions: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Standard deviation of sampled w [n, w_dim] along each unit direction [k, w_dim] -> [k]: the unit in
    which edit strengths are given (--edit age=-3..3 moves three standard deviations either way)."""
    return ((w - w.mean(0)) @ directions.T).std(0).astype(np.float32)


def edit_ws(ws: np.ndarray, direction: np.ndarray, strengths: np.ndarray) -> np.ndarray:
    """w+ [N, num_ws, w_dim] moved by each strength along `direction` [w_dim] (in w units), on every layer
    -> [N, S, num_ws, w_dim]."""
    return ws[:, None] + strengths[None, :, None, None] * direction[None, None, None, :]


def parse_edit(spec: str) -> tuple[str, int | None, float, float]:
    """'age=-3..3' or 'sefa:0=-5..5' -> (name, component or None, lo, hi)."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)(?::(\d+))?\s*=\s*(-?\d+(?:\.\d*)?)\s*\.\.\s*(-?\d+(?:\.\d*)?)\s*", spec)
    if not m:
        raise UserError(f"bad --edit '{spec}': use NAME=LO..HI, e.g. age=-3..3 or sefa:0=-5..5")
    return m[1], None if m[2] is None else int(m[2]), float(m[3]), float(m[4])
