"""Batched, traced mapping and synthesis for one generator, on float32 numpy arrays of w+ [N, num_ws, w_dim]."""
from __future__ import annotations

import numpy as np

from latent.seeds import class_vector, seed_to_z


class LatentRunner:
    """`map` z -> w+ (truncated), `seeds` -> w+, `synthesize` w+ -> uint8 images; numpy in, numpy out."""

    def __init__(self, G, batch: int = 8, noise_mode: str = "const", class_idx: int | None = None) -> None:
        import tensorflow as tf

        from networks.ops import to_uint8
        from networks.stylegan2 import truncate
        self.G, self.batch, self.noise_mode = G, batch, noise_mode
        self.c1 = class_vector(G.c_dim, class_idx)
        self._map = tf.function(lambda z, c: G.mapping(z, c), reduce_retracing=True, autograph=False)
        self._truncate = lambda ws, psi, cutoff: truncate(ws, G.mapping.w_avg, psi, cutoff)
        self._synth = tf.function(lambda ws: to_uint8(G.synthesis(ws, noise_mode=noise_mode)),
                                  reduce_retracing=True, autograph=False)
        self._synth_float = tf.function(lambda ws: G.synthesis(ws, noise_mode=noise_mode),
                                        reduce_retracing=True, autograph=False)

    def _labels(self, n: int) -> np.ndarray | None:
        return None if self.c1 is None else np.repeat(self.c1, n, axis=0)

    def map(self, z: np.ndarray, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        """z [N, z_dim] -> w+ [N, num_ws, w_dim], truncated towards w_avg by psi on layers [0, cutoff)."""
        out = []
        step = max(self.batch, 64)
        for s in range(0, len(z), step):
            zb = np.asarray(z[s:s + step], np.float32)
            out.append(self._map(zb, self._labels(len(zb))).numpy())
        ws = np.concatenate(out) if out else np.zeros([0, self.G.num_ws, self.G.w_dim], np.float32)
        if psi != 1 and len(ws):
            ws = np.asarray(self._truncate(ws, psi, cutoff), np.float32)
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


def sample_w(runner: LatentRunner, n: int, seed: int = 0) -> np.ndarray:
    """n random w [n, w_dim] (z from a seeded normal)."""
    z = np.random.RandomState(seed).randn(n, runner.G.z_dim).astype(np.float32)
    return runner.map(z)[:, 0]
