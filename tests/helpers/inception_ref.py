"""An independent float64 NumPy transcription of the TorchScript Inception (NCHW, unfused batch norm,
explicit padding and pooling) and of NVIDIA's input protocol (affine_grid + grid_sample resize), used to
check metrics/inception.py. Slow (seconds per image): for a handful of test images only."""
from __future__ import annotations

import numpy as np


def nv_resize(x: np.ndarray, size: int = 299) -> np.ndarray:
    """NVIDIA's resize, written from its definition: theta shift 1/in - 1/out, grid_sample bilinear,
    align_corners=False, border padding. x [C, H, W] float64 -> [C, size, size]."""
    c, h, w = x.shape

    def coords(n_in):
        i = np.arange(size)
        g = (2 * i + 1) / size - 1 + 1 / n_in - 1 / size          # normalised grid coordinate
        p = ((g + 1) * n_in - 1) / 2                              # unnormalise, align_corners=False
        return np.clip(p, 0, n_in - 1)                            # border padding

    py, px = coords(h), coords(w)
    y0 = np.floor(py).astype(int)
    x0 = np.floor(px).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    ty, tx = (py - y0)[:, None], (px - x0)[None, :]
    out = np.empty([c, size, size])
    for ch in range(c):
        a = x[ch]
        out[ch] = ((1 - ty) * ((1 - tx) * a[np.ix_(y0, x0)] + tx * a[np.ix_(y0, x1)])
                   + ty * ((1 - tx) * a[np.ix_(y1, x0)] + tx * a[np.ix_(y1, x1)]))
    return out


def conv_bn_relu(x, p, name):
    w = p[name + ".weight"].astype(np.float64)                    # [O, I, kh, kw]
    stride = int(p[name + ".stride"][0])
    pad = [int(v) for v in p[name + ".padding"]]
    ph, pw = (pad * 2)[:2] if len(pad) == 1 else pad
    x = np.pad(x, [(0, 0), (ph, ph), (pw, pw)])
    o, i, kh, kw = w.shape
    H = (x.shape[1] - kh) // stride + 1
    W = (x.shape[2] - kw) // stride + 1
    y = np.zeros([o, H, W])
    for dy in range(kh):
        for dx in range(kw):
            patch = x[:, dy:dy + stride * H:stride, dx:dx + stride * W:stride]     # [I, H, W]
            y += np.einsum("oi,ihw->ohw", w[:, :, dy, dx], patch)
    y = (y - p[name + ".mean"][:, None, None]) / np.sqrt(p[name + ".var"][:, None, None] + 1e-3)
    y = y + p[name + ".beta"][:, None, None]
    return np.maximum(y, 0)


def max_pool(x, k=3, s=2, pad=0):
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad)], constant_values=-np.inf)
    H = (x.shape[1] - k) // s + 1
    W = (x.shape[2] - k) // s + 1
    return np.max([x[:, dy:dy + s * H:s, dx:dx + s * W:s] for dy in range(k) for dx in range(k)], axis=0)


def avg_pool_exclude_pad(x):
    ones = np.pad(np.ones_like(x[:1]), [(0, 0), (1, 1), (1, 1)])
    xp = np.pad(x, [(0, 0), (1, 1), (1, 1)])
    H, W = x.shape[1:]
    total = sum(xp[:, dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3))
    count = sum(ones[:, dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3))
    return total / count


def features(img_hwc_uint8: np.ndarray, p: dict) -> np.ndarray:
    x = nv_resize(np.transpose(img_hwc_uint8.astype(np.float64), [2, 0, 1]))
    x = (x - 128) / 128
    c = lambda t, n: conv_bn_relu(t, p, n)                         # noqa: E731
    x = c(c(c(x, "conv"), "conv_1"), "conv_2")
    x = max_pool(x)
    x = max_pool(c(c(x, "conv_3"), "conv_4"))
    for m in ("mixed", "mixed_1", "mixed_2"):                      # InceptionA
        x = np.concatenate([c(x, f"{m}.conv"), c(c(x, f"{m}.tower.conv"), f"{m}.tower.conv_1"),
                            c(c(c(x, f"{m}.tower_1.conv"), f"{m}.tower_1.conv_1"), f"{m}.tower_1.conv_2"),
                            c(avg_pool_exclude_pad(x), f"{m}.tower_2.conv")])
    m = "mixed_3"                                                  # InceptionB
    x = np.concatenate([c(x, f"{m}.conv"), c(c(c(x, f"{m}.tower.conv"), f"{m}.tower.conv_1"), f"{m}.tower.conv_2"),
                        max_pool(x)])
    for m in ("mixed_4", "mixed_5", "mixed_6", "mixed_7"):         # InceptionC
        t1 = x
        for k in ("conv", "conv_1", "conv_2", "conv_3", "conv_4"):
            t1 = c(t1, f"{m}.tower_1.{k}")
        x = np.concatenate([c(x, f"{m}.conv"), c(c(c(x, f"{m}.tower.conv"), f"{m}.tower.conv_1"), f"{m}.tower.conv_2"),
                            t1, c(avg_pool_exclude_pad(x), f"{m}.tower_2.conv")])
    m = "mixed_8"                                                  # InceptionD
    t1 = x
    for k in ("conv", "conv_1", "conv_2", "conv_3"):
        t1 = c(t1, f"{m}.tower_1.{k}")
    x = np.concatenate([c(c(x, f"{m}.tower.conv"), f"{m}.tower.conv_1"), t1, max_pool(x)])
    for m, pool in (("mixed_9", avg_pool_exclude_pad), ("mixed_10", lambda t: max_pool(t, 3, 1, 1))):
        a = c(x, f"{m}.tower_conv")
        b = c(c(x, f"{m}.tower_1_conv"), f"{m}.tower_1_conv_1")
        x = np.concatenate([c(x, f"{m}.conv"), c(a, f"{m}.tower_mixed_conv"), c(a, f"{m}.tower_mixed_conv_1"),
                            c(b, f"{m}.tower_1_mixed_conv"), c(b, f"{m}.tower_1_mixed_conv_1"),
                            c(pool(x), f"{m}.tower_2_conv")])
    return x.reshape(2048, -1).mean(1)                             # 8x8 average pool
