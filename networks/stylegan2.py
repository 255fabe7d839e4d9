"""StyleGAN2 (config F) generator and discriminator as Keras 3 subclassed models, NHWC, keras.ops only.

Layers are named and nested exactly as the official state dict (`mapping.fc0.weight`,
`synthesis.b64.conv1.affine.bias`, `b32.fromrgb.weight`, `b4.out.bias`), so `official_state(model)`
maps every weight one to one. Weights are stored as the official code stores them (equalized learning
rate: N(0, 1/lr_multiplier) at init, scaled by lr_multiplier/sqrt(fan_in) at run time); only layouts differ
(dense [in, out] instead of [out, in]; conv [kh, kw, in, out] instead of [out, in, kh, kw]).
"""
from __future__ import annotations

import numpy as np
import keras
from keras import ops

from networks.ops import LRELU_GAIN, conv_down, modulated_conv2d, setup_filter, stateless_normal_rows, upsample2d

PACKAGE = "stylegan2"
SQRT_HALF = float(np.sqrt(0.5))
NOISE_MODES = ("random", "const", "none")


def _normal(stddev: float = 1.0) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev)


def normalize_2nd_moment(x, eps: float = 1e-8):
    """x * rsqrt(mean(x^2 over features) + eps): [N, C] -> [N, C]."""
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=1, keepdims=True) + eps)


FP16_CLAMP = 256.0          # conv_clamp of networks trained in float16 (StyleGAN2-ADA's value)


def bias_act(x, b, act: str = "linear", gain: float = 1.0, clamp: float | None = None, fp16_guard: bool = True):
    """x + b, then leaky ReLU (slope 0.2) and the activation's gain (sqrt 2 for lrelu) times `gain`, then
    clipped to +-clamp * gain (StyleGAN2-ADA's conv_clamp). clamp None: no clamp, except FP16_CLAMP * gain
    in float16 when `fp16_guard` (a float16 network saved without conv_clamp would otherwise overflow)."""
    x = x + ops.cast(b, x.dtype)
    if act == "lrelu":
        x = ops.leaky_relu(x, negative_slope=0.2)
    act_gain = gain * LRELU_GAIN if act == "lrelu" else gain
    x = x if act_gain == 1.0 else x * act_gain
    if clamp is None and fp16_guard and keras.backend.standardize_dtype(x.dtype) == "float16":
        clamp = FP16_CLAMP
    if clamp is not None:
        x = ops.clip(x, -clamp * gain, clamp * gain)
    return x


class Module(keras.layers.Layer):
    """Base layer that knows its own weights' official names (`official_params`). Every weight is created in
    `__init__` (all shapes are known there), so a module is built from the start: Keras never traces a call to
    build it, and blocks a progressive stage does not run yet raise no "unbuilt state" warnings. Inputs keep
    their dtype (no autocast)."""

    def __init__(self, **kwargs) -> None:
        # autocast=False: Keras' Layer.__call__ would otherwise cast float16 / bfloat16 inputs back to the
        # layer's float32 policy, so reduced-precision blocks would silently run in float32. Each module
        # casts what it computes itself (block_dtype); weights are float32 variables cast at use.
        super().__init__(autocast=False, **kwargs)
        self.built = True

    def official_params(self) -> dict[str, keras.Variable]:
        """Own weights by their official local name."""
        return {}


def official_state(model: keras.layers.Layer, prefix: str = "") -> dict[str, keras.Variable]:
    """Every weight of `model` under its official state-dict name, e.g. 'synthesis.b8.conv0.weight'."""
    out = {}
    if isinstance(model, Module):
        for name, var in model.official_params().items():
            out[prefix + name] = var
    for name, child in vars(model).items():
        if isinstance(child, keras.layers.Layer) and not name.startswith("_"):
            out.update(official_state(child, f"{prefix}{name}."))
    return out


# ------------------------------------------------------------------------------------------- layers
class FullyConnected(Module):
    """Dense layer with equalized learning rate: y = act(x @ (W * lr/sqrt(in)) + b * lr)."""

    def __init__(self,
                 in_features: int,            # input width
                 out_features: int,           # output width
                 activation: str = "linear",  # linear | lrelu
                 lr_multiplier: float = 1.0,  # learning-rate multiplier (0.01 in the mapping network)
                 bias_init: float = 0.0,      # initial bias (1 for the style affines)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation, self.lr_multiplier = activation, lr_multiplier
        self.weight = self.add_weight(name="weight", shape=(in_features, out_features),
                                      initializer=_normal(1.0 / lr_multiplier))
        self.bias = self.add_weight(name="bias", shape=(out_features,),
                                    initializer=keras.initializers.Constant(bias_init))
        self.weight_gain = lr_multiplier / np.sqrt(in_features)

    def official_params(self):
        return {"weight": self.weight, "bias": self.bias}

    def call(self, x):                                                     # [N, in] -> [N, out]
        w = ops.cast(self.weight, x.dtype) * self.weight_gain
        return bias_act(ops.matmul(x, w), self.bias * self.lr_multiplier, self.activation)


class Conv2dLayer(Module):
    """Discriminator convolution with equalized lr, optional FIR-filtered 2x downsampling."""

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 bias: bool = True,
                 activation: str = "linear",
                 down: int = 1,                # 1 or 2
                 conv_clamp: float | None = None,   # clip the output to +-conv_clamp * gain (None: no clamp)
                 fp16_guard: bool = True,      # False: not even the float16 guard (StyleGAN2-ADA's resnet skip)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation, self.down = activation, down
        self.conv_clamp, self.fp16_guard = conv_clamp, fp16_guard
        self.weight = self.add_weight(name="weight", shape=(kernel_size, kernel_size, in_channels, out_channels),
                                      initializer=_normal())
        self.bias = self.add_weight(name="bias", shape=(out_channels,), initializer="zeros") if bias else None
        self.weight_gain = 1.0 / np.sqrt(in_channels * kernel_size ** 2)
        self.filter = setup_filter()

    def official_params(self):
        return {"weight": self.weight, **({"bias": self.bias} if self.bias is not None else {})}

    def call(self, x, gain: float = 1.0):                                 # [N, H, W, I] -> [N, H/down, W/down, O]
        w = ops.cast(self.weight, x.dtype) * self.weight_gain
        x = conv_down(x, w, self.filter) if self.down == 2 else ops.conv(x, w, padding="same")
        b = self.bias if self.bias is not None else ops.zeros([w.shape[-1]], x.dtype)
        return bias_act(x, b, self.activation, gain, clamp=self.conv_clamp, fp16_guard=self.fp16_guard)


class SynthesisLayer(Module):
    """Modulated 3x3 conv (optionally 2x up) + per-pixel noise + bias + lrelu."""

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 w_dim: int,
                 resolution: int,              # output resolution (pixels)
                 up: int = 1,                  # 1 or 2
                 kernel_size: int = 3,
                 fused_modconv: bool = False,  # grouped conv with per-sample weights instead of scaled activations
                 conv_clamp: float | None = None,   # clip the output to +-conv_clamp (None: no clamp)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.resolution, self.up, self.fused_modconv = resolution, up, fused_modconv
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0, name="affine")
        self.weight = self.add_weight(name="weight", shape=(kernel_size, kernel_size, in_channels, out_channels),
                                      initializer=_normal())
        self.bias = self.add_weight(name="bias", shape=(out_channels,), initializer="zeros")
        self.noise_const = self.add_weight(name="noise_const", shape=(resolution, resolution),
                                           initializer=_normal(), trainable=False)
        self.noise_strength = self.add_weight(name="noise_strength", shape=(), initializer="zeros")
        self.filter = setup_filter()

    def official_params(self):
        return {"weight": self.weight, "bias": self.bias, "noise_const": self.noise_const,
                "noise_strength": self.noise_strength}

    def call(self, x, w, noise_mode: str = "random", noise=None):      # x [N, H, W, I], w [N, w_dim]
        """noise [N, R, R, 1]: this layer's random noise (noise_mode 'random'; drawn by SynthesisNetwork)."""
        styles = self.affine(w)                                           # [N, I]
        x = modulated_conv2d(x, ops.cast(self.weight, x.dtype), styles, demodulate=True, up=self.up == 2,
                             fused=self.fused_modconv, f=self.filter)    # [N, R, R, O]
        strength = ops.cast(self.noise_strength, x.dtype)
        if noise_mode == "random":
            if noise is None:
                raise ValueError(f"{self.name}: noise_mode 'random' needs the noise drawn by the synthesis network")
            x = x + ops.cast(noise, x.dtype) * strength
        elif noise_mode == "const":
            x = x + ops.cast(self.noise_const, x.dtype)[None, :, :, None] * strength
        return bias_act(x, self.bias, "lrelu", clamp=self.conv_clamp)


class ToRGBLayer(Module):
    """Modulated 1x1 conv without demodulation, style scaled by 1/sqrt(in), + bias."""

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 w_dim: int,
                 fused_modconv: bool = False,
                 conv_clamp: float | None = None,   # clip the output to +-conv_clamp (None: no clamp)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.fused_modconv, self.conv_clamp = fused_modconv, conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0, name="affine")
        self.weight = self.add_weight(name="weight", shape=(1, 1, in_channels, out_channels), initializer=_normal())
        self.bias = self.add_weight(name="bias", shape=(out_channels,), initializer="zeros")
        self.weight_gain = 1.0 / np.sqrt(in_channels)

    def official_params(self):
        return {"weight": self.weight, "bias": self.bias}

    def call(self, x, w):                                                 # [N, H, W, I] -> [N, H, W, C]
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, ops.cast(self.weight, x.dtype), styles, demodulate=False, fused=self.fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


# ------------------------------------------------------------------------------------------- generator
class MappingNetwork(Module):
    """z (and c) -> w: 2nd-moment normalisation, label embedding, `num_layers` lrelu FC layers (lr x0.01)."""

    def __init__(self,
                 z_dim: int = 512,             # latent z size (0: labels only, as in the conditional D)
                 c_dim: int = 0,               # label size (0: unconditional)
                 w_dim: int = 512,             # intermediate latent w size
                 num_ws: int | None = 18,      # broadcast w to this many layers (None: return [N, w_dim])
                 num_layers: int = 8,
                 lr_multiplier: float = 0.01,
                 w_avg_beta: float | None = 0.995,   # EMA decay of w_avg while training (None: no tracking)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if c_dim > 0 else 0
        features = [z_dim + embed_features] + [w_dim] * num_layers
        if c_dim > 0:
            self.embed = FullyConnected(c_dim, embed_features, name="embed")
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnected(features[i], features[i + 1], activation="lrelu",
                                                   lr_multiplier=lr_multiplier, name=f"fc{i}"))
        if num_ws is not None and w_avg_beta is not None:
            self.w_avg = self.add_weight(name="w_avg", shape=(w_dim,), initializer="zeros", trainable=False,
                                         aggregation="mean")

    def official_params(self):
        return {"w_avg": self.w_avg} if hasattr(self, "w_avg") else {}

    def call(self, z, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
             update_w_avg: bool = False):
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z))                         # [N, z_dim]
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c)))             # [N, w_dim]
        x = ops.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)                                # [N, w_dim]
        if update_w_avg and hasattr(self, "w_avg"):
            batch_mean = ops.mean(ops.cast(x, "float32"), axis=0)
            self.w_avg.assign(batch_mean + (self.w_avg - batch_mean) * self.w_avg_beta)
        if self.num_ws is None:
            return x
        ws = ops.repeat(x[:, None, :], self.num_ws, axis=1)               # [N, num_ws, w_dim]
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return ws
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)


def truncate(ws, w_avg, psi: float, cutoff: int | None = None):
    """w_avg + psi * (w - w_avg) on layers [0, cutoff) (all layers when cutoff is None)."""
    w_avg = ops.cast(w_avg, ws.dtype)
    t = w_avg + (ws - w_avg) * psi
    if cutoff is None:
        return t
    layer = ops.arange(ws.shape[1])[None, :, None]
    return ops.where(layer < cutoff, t, ws)


class SynthesisBlock(Module):
    """One resolution of the skip generator: [const | conv0 (2x up)] -> conv1 -> torgb, RGB skip upsampled."""

    def __init__(self,
                 in_channels: int,             # 0 for the first (4x4, constant input) block
                 out_channels: int,
                 w_dim: int,
                 resolution: int,
                 img_channels: int = 3,
                 fused_modconv: bool = False,
                 block_dtype: str = "float32",  # float16 / bfloat16: compute this block in reduced precision
                 conv_clamp: float | None = None,   # clip every layer's output to +-conv_clamp (None: no clamp)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.in_channels, self.resolution, self.block_dtype = in_channels, resolution, block_dtype
        layer = dict(fused_modconv=fused_modconv, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = self.add_weight(name="const", shape=(resolution, resolution, out_channels),
                                         initializer=_normal())
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, **layer, name="conv0")
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, **layer, name="conv1")
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, **layer, name="torgb")
        self.num_conv = 1 if in_channels == 0 else 2
        self.filter = setup_filter()

    def official_params(self):
        return {"const": self.const} if self.in_channels == 0 else {}

    def call(self, x, img, ws, noise_mode: str = "random", rgb_weight=None, noise=(None, None)):
        """ws [N, num_conv + 1, w_dim]; noise: the random noise of each conv layer, [N, R, R, 1] each."""
        dtype = self.block_dtype
        if self.in_channels == 0:
            n = ops.shape(ws)[0]
            x = ops.repeat(ops.cast(self.const, dtype)[None], n, axis=0)  # [N, 4, 4, C]
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode, noise=noise[0])
        else:
            x = self.conv0(ops.cast(x, dtype), ws[:, 0], noise_mode=noise_mode, noise=noise[0])   # [N, R, R, C]
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode, noise=noise[1])
        if img is not None:
            img = upsample2d(img, self.filter)                            # [N, R, R, 3], float32
        y = ops.cast(self.torgb(x, ws[:, self.num_conv]), "float32")
        if rgb_weight is not None:                                        # progressive growing: fade in / out
            y = y * rgb_weight
        return x, (img + y if img is not None else y)


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // res, channel_max)


def lod_resolution(img_resolution: int, lod: float) -> int:
    """Progressive growing: the highest resolution that contributes at level of detail `lod` (0 = full):
    img_resolution >> floor(lod). Above it every block's RGB weight is 0."""
    return img_resolution >> int(np.floor(float(lod) + 1e-9))


def lod_fading(lod: float) -> bool:
    """Progressive growing: True while a resolution fades in (lod not an integer)."""
    return float(lod) - np.floor(float(lod) + 1e-9) > 1e-9


def fade_weight(img_resolution: int, res: int, lod):
    """Weight of resolution `res` at `lod`: clip(log2(R) - lod - log2(res) + 1, 0, 1); 1 for every resolution
    below the current one, the fade-in fraction for the newest, 0 above."""
    w = float(np.log2(img_resolution) - np.log2(res) + 1.0) - lod
    return float(np.clip(w, 0.0, 1.0)) if isinstance(w, float) else ops.clip(w, 0.0, 1.0)


PRECISIONS = (None, "float16", "bfloat16")


def block_dtypes(resolutions: list[int], img_resolution: int, mixed_precision: str | None,
                 num_res: int = 4) -> dict[int, str]:
    """Compute dtype of each block: `mixed_precision` for the `num_res` highest resolutions, never 4x4 (as
    StyleGAN2-ADA's num_fp16_res), float32 for the others (and for all when mixed_precision is None)."""
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed_precision {mixed_precision!r} must be one of {PRECISIONS}")
    low = 2 ** max(int(np.log2(img_resolution)) + 1 - num_res, 3)
    return {r: mixed_precision if mixed_precision and r >= low else "float32" for r in resolutions}


class SynthesisNetwork(Module):
    """ws [N, num_ws, w_dim] -> images [N, R, R, C] in about [-1, 1] (skip architecture)."""

    def __init__(self,
                 w_dim: int = 512,
                 img_resolution: int = 1024,
                 img_channels: int = 3,
                 channel_base: int = 32768,    # channels at resolution r: min(channel_base / r, channel_max)
                 channel_max: int = 512,
                 fused_modconv: bool = False,
                 mixed_precision: str | None = None,   # float16 / bfloat16 for the top `mixed_precision_res` blocks
                 mixed_precision_res: int = 4,
                 conv_clamp: float | None = None,      # clip every layer's output to +-conv_clamp (None: no clamp)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f"img_resolution {img_resolution} must be a power of two >= 4")
        self.resolutions = [2 ** i for i in range(2, log2 + 1)]
        dtypes = block_dtypes(self.resolutions, img_resolution, mixed_precision, mixed_precision_res)
        self.num_ws = 0
        for res in self.resolutions:
            in_ch = 0 if res == 4 else channels_at(res // 2, channel_base, channel_max)
            block = SynthesisBlock(in_ch, channels_at(res, channel_base, channel_max), w_dim, res, img_channels,
                                   fused_modconv=fused_modconv, block_dtype=dtypes[res], conv_clamp=conv_clamp,
                                   name=f"b{res}")
            setattr(self, f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1                                                  # the last ToRGB
        self.filter = setup_filter()
        # per-image noise seeds when the caller passes none (generation); training passes its own
        self.seed_generator = keras.random.SeedGenerator(name="noise_seed")

    def noise_layers(self, res: int) -> list[int]:
        """Output resolution of each conv layer that runs up to `res`, in order (b4.conv1, b8.conv0, ...)."""
        return [r for r in self.resolutions if r <= res for _ in range(1 if r == 4 else 2)]

    def draw_noise(self, seeds, res: int) -> list:
        """Independent N(0, 1) noise [N, r, r, 1] for every conv layer up to `res`, from per-image seeds
        [N, 2]: one stream per image, split between the layers, so every layer and every image gets its own
        noise and an image's noise depends only on its seed (a batch split over replicas draws the same)."""
        sizes = [r * r for r in self.noise_layers(res)]
        flat = stateless_normal_rows(seeds, sum(sizes))                   # [N, sum r^2]
        out, start = [], 0
        for r, size in zip(self.noise_layers(res), sizes):
            out.append(ops.reshape(flat[:, start:start + size], [-1, r, r, 1]))
            start += size
        return out

    def call(self, ws, noise_mode: str = "random", lod=None, res: int | None = None, noise_seeds=None):
        """Images [N, R, R, C], or [N, res, res, C] when `res` is given.

        noise_seeds (noise_mode 'random'): int32 [N, 2], one seed per image for its per-pixel noise (training
        passes seeds from the run's random stream); None draws them from the network's seed generator.

        lod (progressive growing, 0 = full resolution): the RGB of block r is weighted by `fade_weight`, so
        the newest resolution fades in and the blocks above it add nothing. With `res` (the training step of
        a growing run, lod a tensor) only the blocks up to `res` run and the image is returned there. With a
        Python-float lod and no `res` (a snapshot taken while growing), the blocks above
        `lod_resolution(R, lod)` are skipped and the image is brought to R x R by the skip path's own FIR
        upsampling: the same pixels as running them with weight 0, at the cost of the low resolution."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode {noise_mode!r} must be one of {NOISE_MODES}")
        top = self.resolutions[-1]
        out = top if res is None else res
        if res is None:
            res = lod_resolution(top, lod) if isinstance(lod, (int, float)) else top
        if res not in self.resolutions:
            raise ValueError(f"res {res} is not one of the generator's resolutions {self.resolutions}")
        noise = [None] * len(self.noise_layers(res))
        if noise_mode == "random":
            if noise_seeds is None:
                noise_seeds = keras.random.randint([ops.shape(ws)[0], 2], 0, 2 ** 31 - 1, seed=self.seed_generator,
                                                   dtype="int32")
            noise = self.draw_noise(noise_seeds, res)
        x = img = None
        idx = 0
        for r in self.resolutions:
            if r > res:
                break
            block = getattr(self, f"b{r}")
            weight = None if lod is None else fade_weight(top, r, lod)
            x, img = block(x, img, ws[:, idx:idx + block.num_conv + 1], noise_mode=noise_mode, rgb_weight=weight,
                           noise=noise[idx:idx + block.num_conv])
            idx += block.num_conv
        while img.shape[1] < out:
            img = upsample2d(img, self.filter)                            # [N, 2r, 2r, C]
        return img


@keras.saving.register_keras_serializable(package=PACKAGE)
class Generator(keras.Model):
    """StyleGAN2 generator: `G(z, c)` -> images [N, R, R, C]; `G.mapping` and `G.synthesis` are sub-models."""

    def __init__(self,
                 z_dim: int = 512,             # input latent size
                 c_dim: int = 0,               # label size (0: unconditional)
                 w_dim: int = 512,             # intermediate latent size
                 img_resolution: int = 1024,   # output resolution (power of two, 4..1024)
                 img_channels: int = 3,
                 mapping_layers: int = 8,      # depth of the mapping network
                 mapping_lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995,    # EMA decay of the tracked average w
                 channel_base: int = 32768,    # 32768: config F; 16384: config E
                 channel_max: int = 512,
                 fused_modconv: bool = False,  # modulated-conv implementation (same function; speed only)
                 mixed_precision: str | None = None,   # float16 / bfloat16 for the top blocks (None: float32)
                 mixed_precision_res: int = 4,         # how many of the highest resolutions use it (never 4x4)
                 conv_clamp: float | None = None,      # clip every conv layer's output to +-this (StyleGAN2-ADA)
                 lod: float = 0.0,             # progressive growing: level of detail rendered by default
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._config = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                            img_channels=img_channels, mapping_layers=mapping_layers,
                            mapping_lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta,
                            channel_base=channel_base, channel_max=channel_max, fused_modconv=fused_modconv,
                            mixed_precision=mixed_precision, mixed_precision_res=mixed_precision_res,
                            conv_clamp=conv_clamp)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.lod = float(lod)          # a snapshot taken while growing renders at its lod (saved in the config)
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base, channel_max,
                                          fused_modconv=fused_modconv, mixed_precision=mixed_precision,
                                          mixed_precision_res=mixed_precision_res, conv_clamp=conv_clamp,
                                          name="synthesis")
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, mapping_layers, mapping_lr_multiplier,
                                      w_avg_beta, name="mapping")
        self.built = True                                                 # all weights exist from __init__

    def call(self, z, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
             noise_mode: str = "random", update_w_avg: bool = False, lod=None, noise_seeds=None):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg)                      # [N, num_ws, w_dim]
        if lod is None and self.lod > 0:                                  # a snapshot taken while growing
            lod = self.lod
        return self.synthesis(ws, noise_mode=noise_mode, lod=lod, noise_seeds=noise_seeds)   # [N, R, R, C]

    def get_config(self) -> dict:
        return {**super().get_config(), **self._config, "lod": self.lod}

    @classmethod
    def from_config(cls, config: dict) -> "Generator":
        return cls(**config)


# ------------------------------------------------------------------------------------------- discriminator
class DiscriminatorBlock(Module):
    """Resnet block: [fromrgb] -> conv0 -> conv1 (2x down), skip 1x1 (2x down, no bias), sum x sqrt(0.5)."""

    def __init__(self,
                 in_channels: int,             # 0 for the first (highest-resolution) block: takes the image
                 tmp_channels: int,
                 out_channels: int,
                 img_channels: int = 3,
                 block_dtype: str = "float32",  # float16 / bfloat16: compute this block in reduced precision
                 fromrgb: bool = False,        # a fromRGB layer even when not the first block (progressive growing)
                 conv_clamp: float | None = None,   # clip fromrgb, conv0, conv1 to +-conv_clamp * gain (None: no)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.in_channels, self.block_dtype = in_channels, block_dtype
        if in_channels == 0 or fromrgb:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp,
                                       name="fromrgb")
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp,
                                 name="conv0")
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp,
                                 name="conv1")
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2, fp16_guard=False, name="skip")

    def layers_in_order(self) -> list[Conv2dLayer]:
        """fromrgb (if any), conv0, conv1, skip: StyleGAN2-ADA's layer order (--freezed counts in it)."""
        return [*([self.fromrgb] if hasattr(self, "fromrgb") else []), self.conv0, self.conv1, self.skip]

    def call(self, x, img):                                               # [N, R, R, C] -> [N, R/2, R/2, C']
        dtype = self.block_dtype
        if x is None:                                                     # the image enters here
            x = self.fromrgb(ops.cast(img, dtype))
        else:
            x = ops.cast(x, dtype)
        y = self.skip(x, gain=SQRT_HALF)
        x = self.conv0(x)
        x = self.conv1(x, gain=SQRT_HALF)
        return y + x


def minibatch_stddev(x, group_size: int = 4, num_channels: int = 1):
    """Append the std over groups of samples, averaged over C, H, W, as `num_channels` new channels.

    Groups are strided as in the official code: sample n belongs to group n % (N / G).
    x: [N, H, W, C] -> [N, H, W, C + F].
    """
    n, h, w, c = ops.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
    g = ops.minimum(group_size, n) if group_size else n
    f = num_channels
    y = ops.reshape(x, [g, -1, h, w, f, c // f])                          # [G, n, H, W, F, c]
    y = y - ops.mean(y, axis=0)
    y = ops.sqrt(ops.mean(ops.square(y), axis=0) + 1e-8)                  # [n, H, W, F, c]
    y = ops.mean(y, axis=[1, 2, 4])                                       # [n, F]
    y = ops.tile(y[:, None, None, :], [g, h, w, 1])                       # [N, H, W, F]
    return ops.concatenate([x, y], axis=3)


class DiscriminatorEpilogue(Module):
    """4x4 head: minibatch stddev, conv 3x3, fc, out (projection onto the label embedding if conditional)."""

    def __init__(self,
                 in_channels: int,
                 cmap_dim: int,                # 0: unconditional
                 resolution: int = 4,
                 mbstd_group_size: int = 4,
                 mbstd_num_channels: int = 1,
                 img_channels: int = 0,        # > 0 only for a 4x4 discriminator, which reads the image here
                 conv_clamp: float | None = None,   # clip fromrgb and conv to +-conv_clamp (None: no clamp)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.cmap_dim, self.mbstd_group_size, self.mbstd_num_channels = cmap_dim, mbstd_group_size, mbstd_num_channels
        if img_channels:
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu", conv_clamp=conv_clamp,
                                       name="fromrgb")
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp, name="conv")
        self.fc = FullyConnected(in_channels * resolution ** 2, in_channels, activation="lrelu", name="fc")
        self.out = FullyConnected(in_channels, 1 if cmap_dim == 0 else cmap_dim, name="out")

    def call(self, x, cmap=None, img=None):                               # [N, 4, 4, C] -> [N, 1]
        if x is None:                                                     # a 4x4 image enters here
            x = self.fromrgb(ops.cast(img, "float32"))
        x = ops.cast(x, "float32")                                        # the head always runs in float32
        if self.mbstd_num_channels > 0:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.conv(x)
        x = ops.reshape(ops.transpose(x, [0, 3, 1, 2]), [ops.shape(x)[0], -1])   # flatten in C, H, W order
        x = self.out(self.fc(x))
        if cmap is not None:
            x = ops.sum(x * cmap, axis=1, keepdims=True) * (1.0 / np.sqrt(self.cmap_dim))
        return x


@keras.saving.register_keras_serializable(package=PACKAGE)
class Discriminator(keras.Model):
    """StyleGAN2 resnet discriminator: `D(img, c)` -> logits [N, 1]."""

    def __init__(self,
                 c_dim: int = 0,
                 img_resolution: int = 1024,
                 img_channels: int = 3,
                 channel_base: int = 32768,
                 channel_max: int = 512,
                 mbstd_group_size: int = 4,    # samples per minibatch-stddev group (min with the batch)
                 mbstd_num_channels: int = 1,
                 cmap_dim: int | None = None,  # label-embedding size (default: channels at 4x4)
                 mapping_layers: int = 8,      # depth of the label-embedding mapping (conditional only)
                 mixed_precision: str | None = None,   # float16 / bfloat16 for the top blocks (None: float32)
                 mixed_precision_res: int = 4,         # how many of the highest resolutions use it (never 4x4)
                 conv_clamp: float | None = None,      # clip every conv layer's output (but skip) to +-this
                 progressive: bool = False,    # a fromRGB layer at every resolution (`b32.fromrgb`, as the
                                               # official skip D names them): reads images of any level
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._config = dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                            channel_base=channel_base, channel_max=channel_max, mbstd_group_size=mbstd_group_size,
                            mbstd_num_channels=mbstd_num_channels, cmap_dim=cmap_dim, mapping_layers=mapping_layers,
                            mixed_precision=mixed_precision, mixed_precision_res=mixed_precision_res,
                            conv_clamp=conv_clamp, progressive=progressive)
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.progressive = progressive
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f"img_resolution {img_resolution} must be a power of two >= 4")
        self.resolutions = [2 ** i for i in range(log2, 2, -1)]
        ch = lambda r: channels_at(r, channel_base, channel_max)  # noqa: E731
        dtypes = block_dtypes(self.resolutions, img_resolution, mixed_precision, mixed_precision_res)
        for res in self.resolutions:
            in_ch = ch(res) if res < img_resolution else 0
            setattr(self, f"b{res}", DiscriminatorBlock(in_ch, ch(res), ch(res // 2), img_channels,
                                                        block_dtype=dtypes[res], fromrgb=progressive,
                                                        conv_clamp=conv_clamp, name=f"b{res}"))
        cmap_dim = (ch(4) if cmap_dim is None else cmap_dim) if c_dim > 0 else 0
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None,
                                          num_layers=mapping_layers, w_avg_beta=None, name="mapping")
        self.b4 = DiscriminatorEpilogue(ch(4), cmap_dim, mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels,
                                        img_channels=img_channels if img_resolution == 4 or progressive else 0,
                                        conv_clamp=conv_clamp, name="b4")
        self.built = True

    def call(self, img, c=None, lod=None):                                # [N, r, r, C] -> [N, 1]
        """Logits of images at the full resolution R, or (a progressive D) at any resolution r of the
        network: the image enters through `b{r}.fromrgb`. `lod` (progressive growing, only while r fades
        in): the block at r is blended with the image's 2x2 box average read by the next block's fromRGB,
        by r's fade weight (ProGAN / StyleGAN v1)."""
        r = img.shape[1]
        fade = lod is not None
        if (r != self.img_resolution or fade) and not self.progressive:
            raise ValueError(f"this discriminator reads {self.img_resolution}x{self.img_resolution} images only "
                             f"(got {r}x{r}); build it with progressive=True to read other levels")
        x = None
        for res in self.resolutions:
            if res > r:
                continue
            x = getattr(self, f"b{res}")(x, img)                          # [N, res/2, res/2, C]
            if res == r and fade:
                low_block = getattr(self, f"b{res // 2}")
                low_dtype = getattr(low_block, "block_dtype", "float32")   # b4 (the epilogue) is float32
                low = ops.cast(ops.average_pool(ops.cast(img, "float32"), 2, 2), low_dtype)
                x_low = ops.cast(low_block.fromrgb(low), "float32")       # [N, res/2, res/2, C]
                x = x_low + (ops.cast(x, "float32") - x_low) * fade_weight(self.img_resolution, res, lod)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, cmap, img=img)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._config}

    @classmethod
    def from_config(cls, config: dict) -> "Discriminator":
        return cls(**config)

