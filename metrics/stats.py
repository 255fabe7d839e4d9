"""Streaming feature statistics and the distances between them: FID (Frechet distance) and KID."""
from __future__ import annotations

import numpy as np
import scipy.linalg


class FeatureStats:
    """Running mean and covariance in float64 (memory bounded: D^2), optionally keeping up to
    `keep` raw features (for KID and precision/recall; None: all of them)."""

    def __init__(self, dim: int | None = None, keep: int | None = 0) -> None:
        self.dim, self.keep = dim, keep              # dim None: taken from the first batch
        self.n = 0
        self.sum = self.sum_outer = None
        self._kept: list[np.ndarray] = []
        self._kept_n = 0

    def append(self, feats: np.ndarray) -> None:
        x = np.asarray(feats, np.float64)                         # [N, D]
        if self.sum is None:
            self.dim = self.dim or x.shape[1]
            self.sum = np.zeros(self.dim, np.float64)
            self.sum_outer = np.zeros([self.dim, self.dim], np.float64)
        self.n += len(x)
        self.sum += x.sum(0)
        self.sum_outer += x.T @ x
        if self.keep is None or self._kept_n < self.keep:
            take = (x if self.keep is None else x[: self.keep - self._kept_n]).astype(np.float32)
            self._kept.append(take)
            self._kept_n += len(take)

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu [D], sigma [D, D]): the unbiased covariance, as numpy.cov and the official code."""
        mu = self.sum / self.n
        cov = (self.sum_outer - self.n * np.outer(mu, mu)) / max(self.n - 1, 1)
        return mu, cov

    def features(self) -> np.ndarray:
        return np.concatenate(self._kept) if self._kept else np.zeros([0, self.dim or 0], np.float32)

    def to_dict(self) -> dict[str, np.ndarray]:
        mu, cov = self.mean_cov()
        return {"mu": mu, "sigma": cov, "n": np.int64(self.n), "features": self.features()}


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), the matrix square root by scipy (real part)."""
    diff = np.square(mu1 - mu2).sum()
    covmean = scipy.linalg.sqrtm(np.dot(sigma1, sigma2))
    if isinstance(covmean, tuple):                                # older SciPy: (sqrtm, error estimate)
        covmean = covmean[0]
    return float(np.real(diff + np.trace(sigma1 + sigma2 - covmean * 2)))


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged over random
    subsets (the official KID estimator)."""
    n = real.shape[1]
    m = min(min(len(real), len(fake)), max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least two features on each side")
    rng = np.random.RandomState(seed)
    t = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(len(fake), m, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)
