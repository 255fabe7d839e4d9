"""Adaptive discriminator augmentation (StyleGAN2-ADA, Karras et al. 2020): the 'bgc' pipeline in TF ops.

Every image D sees goes through the same random, differentiable transform, each part applied with
probability `p` times its multiplier: geometric ops (x-flip, 90-degree rotations, integer translation,
isotropic scaling, rotation, anisotropic scaling, fractional translation) are composed into one 3x3
matrix per image and applied once (reflect padding, 2x upsampling with the orthogonal sym6 wavelet
low-pass, bilinear sampling, 2x downsampling with the same filter, so integer translations are exact and
no new aliasing reaches D); colour ops (brightness, contrast, luma flip, hue rotation, saturation) are
composed into one 4x4 matrix per image. With p = 0 the output is the input, bit for bit.

`sample(n, seed)` draws the per-image parameters (stateless, so a run is reproducible and resumable),
`apply(images, params)` is deterministic: tests pass fixed parameters; `percentile_params(n, q, size)` gives
the transform NVIDIA's `debug_percentile=q` selects (tested against their pipeline's outputs and gradients).
`ada_adjust` is the ADA rule.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

# Low-pass filter of the sym6 wavelet (orthogonal: upsampling then downsampling with it is the identity).
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

# StyleGAN2-ADA's 'bgc' set: blit, geometric and colour transforms, each at multiplier 1.
BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
           lumaflip=1, hue=1, saturation=1)

# Per-image parameters and their identity values (apply() skips an image whose parameters are all identity).
GEOMETRIC = {"xflip": 0.0, "rotate90": 0.0, "xint": (0.0, 0.0), "scale": 1.0, "rotate_pre": 0.0, "aniso": 1.0,
             "rotate_post": 0.0, "xfrac": (0.0, 0.0)}
COLOUR = {"brightness": 0.0, "contrast": 1.0, "lumaflip": 0.0, "hue": 0.0, "saturation": 1.0}
_LUMA = (np.asarray([1, 1, 1, 0]) / np.sqrt(3)).astype(np.float32)       # the grey axis in homogeneous RGB


def _m3(rows) -> tf.Tensor:
    """[n, 3, 3] from a 3x3 nested list of [n] tensors or numbers (at least one a tensor)."""
    n = next(tf.shape(v)[0] for row in rows for v in row if isinstance(v, tf.Tensor))
    cols = [[v if isinstance(v, tf.Tensor) else tf.fill([n], tf.constant(v, tf.float32)) for v in row] for row in rows]
    return tf.stack([tf.stack(row, axis=-1) for row in cols], axis=-2)


def translate2d(tx, ty):
    return _m3([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def scale2d(sx, sy):
    return _m3([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


def rotate2d(theta):
    c, s = tf.cos(theta), tf.sin(theta)
    return _m3([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class AugmentPipe:
    """The ADA augmentation pipeline on NHWC images in [-1, 1]; `p` is a checkpointable tf.Variable."""

    def __init__(self,
                 p: float = 0.0,               # overall probability (multiplied by each op's multiplier)
                 xflip: float = 0,             # probability multiplier: x-flip
                 rotate90: float = 0,          # ... rotation by a random multiple of 90 degrees
                 xint: float = 0,              # ... integer translation
                 scale: float = 0,             # ... isotropic scaling
                 rotate: float = 0,            # ... arbitrary rotation (before and after aniso, P(either) = p)
                 aniso: float = 0,             # ... anisotropic scaling
                 xfrac: float = 0,             # ... fractional translation
                 brightness: float = 0,        # ... brightness (added to all channels)
                 contrast: float = 0,          # ... contrast (all channels scaled)
                 lumaflip: float = 0,          # ... luma flip (reflection across the plane normal to grey)
                 hue: float = 0,               # ... hue rotation (about the grey axis)
                 saturation: float = 0,        # ... saturation (scaling away from the grey axis)
                 xint_max: float = 0.125,      # integer translation range, fraction of the image size
                 scale_std: float = 0.2,       # log2 standard deviation of isotropic scaling
                 rotate_max: float = 1.0,      # rotation range, 1 = full circle
                 aniso_std: float = 0.2,       # log2 standard deviation of anisotropic scaling
                 xfrac_std: float = 0.125,     # standard deviation of fractional translation, fraction of the size
                 brightness_std: float = 0.2,  # standard deviation of brightness
                 contrast_std: float = 0.5,    # log2 standard deviation of contrast
                 hue_max: float = 1.0,         # hue rotation range, 1 = full circle
                 saturation_std: float = 1.0,  # log2 standard deviation of saturation
                 ) -> None:
        self.mult = dict(xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate, aniso=aniso,
                         xfrac=xfrac, brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue,
                         saturation=saturation)
        self.xint_max, self.scale_std, self.rotate_max, self.aniso_std = xint_max, scale_std, rotate_max, aniso_std
        self.xfrac_std, self.brightness_std, self.contrast_std = xfrac_std, brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std
        self.p = tf.Variable(float(p), trainable=False, name="augment_p", dtype=tf.float32,
                             aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.filter = np.asarray(SYM6, np.float64) / np.sum(SYM6)      # [12], sums to 1
        self.static_shapes = False     # True under XLA (--jit on): no data-dependent shapes in apply()
        self._rows_fn = tf.function(self._rows, autograph=False)   # rows(): traced once per shape, for every phase

    # ------------------------------------------------------------------------------------- parameters
    @staticmethod
    def identity_params(n: int) -> dict[str, tf.Tensor]:
        """Parameters that leave n images unchanged: each [n] (translations [n, 2])."""
        out = {}
        for k, v in {**GEOMETRIC, **COLOUR}.items():
            out[k] = tf.fill([n, 2] if isinstance(v, tuple) else [n], tf.constant(np.asarray(v).flat[0], tf.float32))
        return out

    def sample(self, n: int, seed: tf.Tensor, size: tuple[int, int]) -> dict[str, tf.Tensor]:
        """Random parameters of n images of size (H, W), stateless from `seed` [2]; identity where not chosen."""
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 32)      # [32, 2]
        it = iter(range(32))
        uni = lambda shape=(n,): tf.random.stateless_uniform(shape, seeds[next(it)])      # noqa: E731
        nrm = lambda shape=(n,): tf.random.stateless_normal(shape, seeds[next(it)])       # noqa: E731
        p, m, (h, w) = tf.cast(self.p, tf.float32), self.mult, size
        chosen = lambda name, shape=(n,): uni(shape) < m[name] * p                         # noqa: E731
        out = self.identity_params(n)
        if m["xflip"] > 0:
            out["xflip"] = tf.where(chosen("xflip"), tf.floor(uni() * 2), 0.0)
        if m["rotate90"] > 0:
            out["rotate90"] = tf.where(chosen("rotate90"), tf.floor(uni() * 4), 0.0)
        if m["xint"] > 0:
            t = (uni((n, 2)) * 2 - 1) * self.xint_max                                      # [n, 2] fractions
            out["xint"] = tf.where(chosen("xint", (n, 1)), tf.round(t * [[w, h]]), 0.0)    # [n, 2] pixels
        if m["scale"] > 0:
            out["scale"] = tf.where(chosen("scale"), _exp2(nrm() * self.scale_std), 1.0)
        if m["rotate"] > 0:
            p_rot = 1 - tf.sqrt(tf.clip_by_value(1 - m["rotate"] * p, 0.0, 1.0))         # P(pre or post) = p
            for key in ("rotate_pre", "rotate_post"):
                theta = (uni() * 2 - 1) * np.pi * self.rotate_max
                out[key] = tf.where(uni() < p_rot, theta, 0.0)
        if m["aniso"] > 0:
            out["aniso"] = tf.where(chosen("aniso"), _exp2(nrm() * self.aniso_std), 1.0)
        if m["xfrac"] > 0:
            t = nrm((n, 2)) * self.xfrac_std
            out["xfrac"] = tf.where(chosen("xfrac", (n, 1)), t * [[w, h]], 0.0)            # [n, 2] pixels
        if m["brightness"] > 0:
            out["brightness"] = tf.where(chosen("brightness"), nrm() * self.brightness_std, 0.0)
        if m["contrast"] > 0:
            out["contrast"] = tf.where(chosen("contrast"), _exp2(nrm() * self.contrast_std), 1.0)
        if m["lumaflip"] > 0:
            out["lumaflip"] = tf.where(chosen("lumaflip"), tf.floor(uni() * 2), 0.0)
        if m["hue"] > 0:
            out["hue"] = tf.where(chosen("hue"), (uni() * 2 - 1) * np.pi * self.hue_max, 0.0)
        if m["saturation"] > 0:
            out["saturation"] = tf.where(chosen("saturation"), _exp2(nrm() * self.saturation_std), 1.0)
        return out

    def percentile_params(self, n: int, q: float, size: tuple[int, int]) -> dict[str, tf.Tensor]:
        """The parameters StyleGAN2-ADA's `debug_percentile=q` gives: every enabled op applied, each uniform
        draw at its q-quantile, each normal draw at erfinv(2q - 1) (NVIDIA's choice: the q-quantile of
        N(0, 1/2), not of N(0, 1)), the post-rotation 0, for n images of size (H, W). A known transform, for
        comparing with NVIDIA's pipeline and for looking at what each strength does. Eager only."""
        h, w = size
        m, out = self.mult, self.identity_params(n)
        u = 2 * q - 1                                                                    # uniform(-1, 1) at q
        z = float(tf.math.erfinv(tf.constant(u, tf.float32)))                            # as NVIDIA's, float32
        full = lambda v, shape=(n,): tf.fill(shape, tf.constant(v, tf.float32))         # noqa: E731
        if m["xflip"] > 0:
            out["xflip"] = full(np.floor(q * 2))
        if m["rotate90"] > 0:
            out["rotate90"] = full(np.floor(q * 4))
        if m["xint"] > 0:
            t = u * self.xint_max
            out["xint"] = tf.tile(tf.round(tf.constant([[t * w, t * h]], tf.float32)), [n, 1])
        if m["scale"] > 0:
            out["scale"] = full(2 ** (z * self.scale_std))
        if m["rotate"] > 0:
            out["rotate_pre"] = full(u * np.pi * self.rotate_max)
        if m["aniso"] > 0:
            out["aniso"] = full(2 ** (z * self.aniso_std))
        if m["xfrac"] > 0:
            out["xfrac"] = tf.tile(tf.constant([[z * self.xfrac_std * w, z * self.xfrac_std * h]], tf.float32), [n, 1])
        if m["brightness"] > 0:
            out["brightness"] = full(z * self.brightness_std)
        if m["contrast"] > 0:
            out["contrast"] = full(2 ** (z * self.contrast_std))
        if m["lumaflip"] > 0:
            out["lumaflip"] = full(np.floor(q * 2))
        if m["hue"] > 0:
            out["hue"] = full(u * np.pi * self.hue_max)
        if m["saturation"] > 0:
            out["saturation"] = full(2 ** (z * self.saturation_std))
        return out

    # ------------------------------------------------------------------------------------- matrices
    @staticmethod
    def geometric_matrix(params: dict[str, tf.Tensor]) -> tf.Tensor:
        """[n, 3, 3]: output pixel -> input pixel, in pixels about the image centre (ADA's order)."""
        g = tf.eye(3)[None] * tf.ones_like(params["scale"])[:, None, None]
        g = g @ scale2d(1 - 2 * params["xflip"], 1.0)
        g = g @ rotate2d(np.pi / 2 * params["rotate90"])
        g = g @ translate2d(-params["xint"][:, 0], -params["xint"][:, 1])
        g = g @ scale2d(1 / params["scale"], 1 / params["scale"])
        g = g @ rotate2d(params["rotate_pre"])
        g = g @ scale2d(1 / params["aniso"], params["aniso"])
        g = g @ rotate2d(params["rotate_post"])
        g = g @ translate2d(-params["xfrac"][:, 0], -params["xfrac"][:, 1])
        return g

    @staticmethod
    def colour_matrix(params: dict[str, tf.Tensor]) -> tf.Tensor:
        """[n, 4, 4]: homogeneous RGB in -> out."""
        n = tf.shape(params["brightness"])[0]
        eye = tf.eye(4, batch_shape=[n])                                                 # [n, 4, 4]
        v = tf.constant(_LUMA)
        vv = tf.tensordot(v, v, axes=0)[None]                                             # [1, 4, 4]
        e3 = tf.constant(np.diag([1, 1, 1, 0]).astype(np.float32))[None]                # the RGB block
        offset = tf.constant(np.pad(np.ones([3, 1], np.float32), [[0, 1], [3, 0]]))[None]  # column 3, rows 0-2
        c = eye + offset * params["brightness"][:, None, None]                           # translate3d(b, b, b)
        c = (eye + e3 * (params["contrast"][:, None, None] - 1)) @ c                     # scale3d(c, c, c)
        c = (eye - 2 * vv * params["lumaflip"][:, None, None]) @ c                      # Householder reflection
        theta = params["hue"][:, None, None]
        vx = tf.constant([[0, -_LUMA[2], _LUMA[1], 0], [_LUMA[2], 0, -_LUMA[0], 0],
                          [-_LUMA[1], _LUMA[0], 0, 0], [0, 0, 0, 0]], tf.float32)[None]  # cross-product matrix
        rot = eye + (tf.cos(theta) - 1) * (e3 - vv) + tf.sin(theta) * vx                # Rodrigues about v
        c = rot @ c
        sat = params["saturation"][:, None, None]
        c = (vv + (eye - vv) * sat) @ c
        return c

    # ------------------------------------------------------------------------------------- application
    def apply(self, images: tf.Tensor, params: dict[str, tf.Tensor]) -> tf.Tensor:
        """Transform [n, H, W, C] images with given parameters; images whose parameters are all identity
        come back unchanged (bit for bit). Differentiable with respect to the images."""
        dtype = images.dtype
        x = tf.cast(images, tf.float32)                                                  # [n, H, W, C]
        x = self._transform_chosen(x, params, GEOMETRIC, lambda xs, ps: self._warp(xs, self.geometric_matrix(ps)))
        x = self._transform_chosen(x, params, COLOUR, lambda xs, ps: self._recolour(xs, self.colour_matrix(ps)))
        return tf.cast(x, dtype)

    def _transform_chosen(self, x: tf.Tensor, params: dict[str, tf.Tensor], names: dict, fn) -> tf.Tensor:
        """fn(images, params) on only the images of x [n, H, W, C] whose `names` parameters are not all identity
        (gathered, transformed, scattered back: none at p = 0, few at a small p); the rest pass unchanged. Under
        XLA (`static_shapes`) every image is transformed and the unchosen ones are discarded."""
        keep = self._is_identity(params, names)                                          # [n] bool
        if self.static_shapes:
            return tf.where(keep[:, None, None, None], x, fn(x, params))
        idx = tf.where(tf.logical_not(keep))                                             # [k, 1] int64
        chosen = fn(tf.gather_nd(x, idx), {k: tf.gather_nd(v, idx) for k, v in params.items()})   # [k, H, W, C]
        return tf.tensor_scatter_nd_update(x, idx, chosen)

    def rows(self, images: tf.Tensor, seed: tf.Tensor, total: int, start: tf.Tensor) -> tf.Tensor:
        """Augment [n, H, W, C] images, rows [start, start + n) of a batch of `total` whose parameters are drawn
        from `seed` [2] (a replica's share of the global batch). One tf.function: inside training steps its graph
        and gradients are built once per image shape and shared by every phase that calls it (Gmain, Dmain's
        reals and fakes, Dreg), not rebuilt in each (about 1,700 ops per call), with the same ops and results."""
        return self._rows_fn(images, seed, total, start)

    def _rows(self, images: tf.Tensor, seed: tf.Tensor, total: int, start: tf.Tensor) -> tf.Tensor:
        n = tf.shape(images)[0]
        params = self.sample(total, seed, images.shape[1:3])
        return self.apply(images, {k: v[start:start + n] for k, v in params.items()})

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Augment [n, H, W, C] images with parameters drawn from `seed` [2]."""
        return self.apply(images, self.sample(tf.shape(images)[0], seed, images.shape[1:3]))

    @staticmethod
    def _is_identity(params: dict[str, tf.Tensor], names: dict) -> tf.Tensor:
        same = []
        for k, v in names.items():
            eq = tf.equal(params[k], np.asarray(v, np.float32))
            same.append(tf.reduce_all(eq, axis=1) if isinstance(v, tuple) else eq)
        return tf.reduce_all(tf.stack(same, axis=1), axis=1)                            # [n]

    def _recolour(self, x: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
        """x [n, H, W, C] (C = 3 or 1), c [n, 4, 4] -> [n, H, W, C]."""
        ch = x.shape[-1]
        if ch == 3:
            return tf.einsum("nij,nhwj->nhwi", c[:, :3, :3], x) + c[:, None, None, :3, 3]
        if ch == 1:
            m = tf.reduce_mean(c[:, :3, :], axis=1)                                     # [n, 4]
            return x * tf.reduce_sum(m[:, :3], axis=1)[:, None, None, None] + m[:, None, None, 3:]
        raise ValueError(f"augmentation needs RGB or greyscale images, not {ch} channels")

    def _warp(self, x: tf.Tensor, g_inv: tf.Tensor) -> tf.Tensor:
        """Geometric transform of x [n, H, W, C] by g_inv [n, 3, 3] (output -> input, centred pixels)."""
        h, w = x.shape[1], x.shape[2]
        f, half = self.filter, len(self.filter) // 4                                     # 12 taps, pad 3
        cx, cy = (w - 1) / 2, (h - 1) / 2
        # reflect padding: enough to cover every output corner plus the filter's support (ADA's margin)
        corners = tf.constant([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], tf.float32)   # [4, 3]
        cp = tf.einsum("nij,kj->nki", g_inv, corners)[:, :, :2]                          # [n, 4, xy]
        cp = tf.reshape(cp, [-1, 2])
        lo = tf.reduce_max(-cp, axis=0) - [cx, cy] + 2 * half                            # [2] x0, y0
        hi = tf.reduce_max(cp, axis=0) - [cx, cy] + 2 * half                             # [2] x1, y1
        lo = tf.cast(tf.math.ceil(tf.clip_by_value(lo, 0.0, [w - 1.0, h - 1.0])), tf.int32)
        hi = tf.cast(tf.math.ceil(tf.clip_by_value(hi, 0.0, [w - 1.0, h - 1.0])), tf.int32)
        if self.static_shapes:                      # XLA: the largest margin there can be, the same values inside it
            lo = hi = tf.constant([w - 1, h - 1], tf.int32)
        x = _reflect(_reflect(x, 1, lo[1], hi[1]), 2, lo[0], hi[0])                      # [n, Hp, Wp, C]
        # 2x upsampling: zero insertion, then the filter (gain 2 per axis), true convolution; in two phases
        xla = self.static_shapes
        x = _upsample2x(_upsample2x(x, f, axis=2, xla=xla), f, axis=1, xla=xla)          # [n, 2Hp, 2Wp, C]
        # output grid: the image plus `half` pixels each side, at twice the resolution
        ho, wo = (h + 2 * half) * 2, (w + 2 * half) * 2
        uy, ux = tf.meshgrid(tf.range(ho, dtype=tf.float32) - (ho - 1) / 2,
                             tf.range(wo, dtype=tf.float32) - (wo - 1) / 2, indexing="ij")  # [ho, wo]
        # in upsampled centred pixels: T(-1/2) S(2) T(pad shift) g_inv S(1/2) T(1/2) (the filter's half-sample delay)
        pad_shift = tf.cast(lo - hi, tf.float32) / 2                                     # [2]
        ox, oy = (ux + 0.5) / 2, (uy + 0.5) / 2                                          # original-scale pixels
        pts = tf.stack([ox, oy, tf.ones_like(ox)], axis=-1)                              # [ho, wo, 3]
        src = tf.einsum("nij,hwj->nhwi", g_inv, pts)[..., :2] + pad_shift               # [n, ho, wo, 2]
        src = src * 2 - 0.5
        hi_, wi_ = tf.shape(x)[1], tf.shape(x)[2]
        sx = src[..., 0] + (tf.cast(wi_, tf.float32) - 1) / 2                            # input column index
        sy = src[..., 1] + (tf.cast(hi_, tf.float32) - 1) / 2                            # input row index
        x = _bilinear(x, sx, sy)                                                          # [n, ho, wo, C]
        # 2x downsampling with the filter (correlation), cropping the extra border
        x = x[:, 1:-1, 1:-1, :]                                                           # [n, 2H + 10, 2W + 10, C]
        return _downsample2x(_downsample2x(x, f, axis=1, xla=xla), f, axis=2, xla=xla)   # [n, H, W, C]


def _shape(x: tf.Tensor) -> list:
    """x's dimensions: Python ints where static, scalar tensors where not."""
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape)]


def _slice(x: tf.Tensor, axis: int, start: int, size, xla: bool = False) -> tf.Tensor:
    """x[..., start:start + size, ...] along `axis` (size may be a tensor). `xla`: as a strided slice, because
    under XLA the gradient of tf.slice is an op that has no gradient itself, so R1 through the augmentation (a
    gradient of a gradient) could not be built with --jit on; elsewhere tf.slice, whose gradients run 3.5x
    faster on CPU (benchmarks/bench_augment.py)."""
    if xla:
        index = [slice(None)] * x.shape.rank
        index[axis] = slice(start, start + size)
        return x[tuple(index)]
    begin, sizes = [0] * x.shape.rank, [-1] * x.shape.rank
    begin[axis], sizes[axis] = start, size
    return tf.slice(x, begin, sizes)


def _reflect(x: tf.Tensor, axis: int, before, after) -> tf.Tensor:
    """x padded along `axis` by reflection without repeating the edge (tf.pad's REFLECT; before, after < the
    size), as a gather, which unlike MirrorPad also takes an empty batch."""
    n = tf.shape(x)[axis]
    i = tf.abs(tf.range(-before, n + after))                                              # reflected at 0
    return tf.gather(x, (n - 1) - tf.abs((n - 1) - i), axis=axis)                        # ... and at n - 1


def _upsample2x(x: tf.Tensor, f: np.ndarray, axis: int, xla: bool = False) -> tf.Tensor:
    """2x along `axis` (1 rows, 2 columns) of x [n, H, W, C]: zeros inserted after every sample, then a true
    convolution with 2 * f (len(f) = 12, centred: pad 6 before, 5 after), keeping the length 2n. Computed
    polyphase: the even and odd outputs are 6-tap sums of shifted input slices, interleaved; linear in the
    size (a dense matrix would be quadratic, a convolution half multiplies by the inserted zeros)."""
    taps = 2 * np.asarray(f, np.float64)[::-1]                                            # correlation taps
    shape = _shape(x)
    n = shape[axis]
    pads = [[0, 0]] * 4
    pads[axis] = [3, 3]
    xp = tf.pad(x, pads)                                                                   # x[m + d] = xp[m + d + 3]
    even = tf.add_n([float(taps[2 * j]) * _slice(xp, axis, j, n, xla) for j in range(6)])       # y[2m]
    odd = tf.add_n([float(taps[2 * j - 1]) * _slice(xp, axis, j, n, xla) for j in range(1, 7)])  # y[2m + 1]
    shape[axis] = 2 * n
    return tf.reshape(tf.stack([even, odd], axis=axis + 1), shape)


def _downsample2x(x: tf.Tensor, f: np.ndarray, axis: int, xla: bool = False) -> tf.Tensor:
    """Valid correlation of x [n, H, W, C] with f (12 taps) along `axis`, every second output from the first:
    (n - 10) // 2 outputs. Polyphase: the even and odd input samples each meet 6 of the taps."""
    pairs = _shape(x)
    half = pairs[axis] // 2                                                                # (n - 10) // 2 + 5
    pairs[axis:axis + 1] = [half, 2]
    xr = tf.reshape(_slice(x, axis, 0, 2 * half, xla), pairs)                             # [..., half, 2, ...]
    ev, od = tf.unstack(xr, axis=axis + 1)                                                 # x[2i], x[2i + 1]
    out = half - 5
    return tf.add_n([float(f[2 * j]) * _slice(ev, axis, j, out, xla)
                     + float(f[2 * j + 1]) * _slice(od, axis, j, out, xla) for j in range(6)])


def _bilinear(x: tf.Tensor, sx: tf.Tensor, sy: tf.Tensor) -> tf.Tensor:
    """Sample x [n, H, W, C] at fractional (column sx, row sy) [n, h, w]; zero outside. -> [n, h, w, C]."""
    n, hgt, wid, ch = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2], x.shape[3]
    x0, y0 = tf.floor(sx), tf.floor(sy)
    fx, fy = sx - x0, sy - y0
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    wid64 = tf.cast(wid, tf.int64)
    base = (tf.range(tf.cast(n, tf.int64)) * tf.cast(hgt, tf.int64) * wid64)[:, None, None]   # [n, 1, 1]; int64:
    idx, wts = [], []                                                                    # n * H * W can pass 2^31
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < wid) & (yi >= 0) & (yi < hgt)                     # [n, h, w]
            idx.append(base + tf.cast(tf.clip_by_value(yi, 0, hgt - 1), tf.int64) * wid64
                       + tf.cast(tf.clip_by_value(xi, 0, wid - 1), tf.int64))
            wts.append(wx * wy * tf.cast(inside, x.dtype))
    val = tf.gather(tf.reshape(x, [-1, ch]), tf.stack(idx, axis=-1))                    # [n, h, w, 4, C]
    return tf.reduce_sum(val * tf.stack(wts, axis=-1)[..., None], axis=3)               # [n, h, w, C]


def ada_adjust(p, rt, target: float, batch: int, interval: int, ada_kimg: float) -> tf.Tensor:
    """ADA's rule: p moves by sign(rt - target) * batch * interval / (ada_kimg * 1000), floored at 0, so p can go
    from 0 to 1 in ada_kimg thousand images. As in NVIDIA's code p is not capped at 1: above 1 every op is always
    applied, and a p that went past 1 takes correspondingly longer to come back down once D stops overfitting.
    p, rt: float32 scalars (tensors or numbers)."""
    step = batch * interval / (ada_kimg * 1000)
    return tf.maximum(tf.cast(p, tf.float32) + tf.sign(tf.cast(rt, tf.float32) - target) * step, 0.0)


def _exp2(x: tf.Tensor) -> tf.Tensor:
    return tf.pow(2.0, x)
