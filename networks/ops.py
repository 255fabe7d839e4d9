"""Building-block ops of StyleGAN2 in keras.ops (NHWC): FIR resampling and the modulated convolution.

The FIR filter is the [1, 3, 3, 1] outer product normalised to sum 1, applied as a depthwise convolution
(the official upfirdn2d: upsample by zero insertion, pad, convolve, keep every `down`-th sample).
"""
from __future__ import annotations

import numpy as np
import keras
from keras import ops

LRELU_GAIN = float(np.sqrt(2.0))


def setup_filter(taps=(1, 3, 3, 1)) -> np.ndarray:
    """2-D separable FIR filter from 1-D taps, normalised to sum 1: [k, k] float32."""
    f = np.asarray(taps, np.float64)
    f = np.outer(f, f)
    return (f / f.sum()).astype(np.float32)


def upfirdn2d(x, f: np.ndarray, up: int = 1, down: int = 1, pad=(0, 0, 0, 0), gain: float = 1.0):
    """Upsample (zero insertion), pad [x0, x1, y0, y1], FIR-filter (true convolution) and downsample.

    x: [N, H, W, C] -> [N, (H*up + y0 + y1 - k)//down + 1, ..., C].
    """
    c = x.shape[-1]
    if up > 1:
        x = zero_insert(x, up)                                     # [N, H*up, W*up, C]
    x0, x1, y0, y1 = pad
    if any(p < 0 for p in pad):
        raise ValueError("negative padding is not used by StyleGAN2")
    x = ops.pad(x, [[0, 0], [y0, y1], [x0, x1], [0, 0]])
    kernel = (f[::-1, ::-1] * gain).astype(np.float32)
    kernel = np.tile(kernel[:, :, None, None], [1, 1, c, 1])        # [k, k, C, 1]
    return ops.depthwise_conv(x, ops.cast(kernel, x.dtype), strides=down, padding="valid")


def zero_insert(x, up: int):
    """[N, H, W, C] -> [N, H*up, W*up, C] with x at every up-th pixel, zeros between. Built from tensors of at
    most four dimensions (a zero block beside the data, then a reshape that interleaves them), so every
    exporter maps it to builtin ops (LiteRT has no 6-D Pad)."""
    n, h, w, c = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2], x.shape[-1]
    x = ops.concatenate([x, ops.zeros_like(ops.tile(x, [1, 1, 1, up - 1]))], axis=3)    # [N, H, W, up*C]
    x = ops.reshape(x, [n, h, 1, w * up * c])                                           # a row: pixels, zeros
    x = ops.concatenate([x, ops.zeros_like(ops.tile(x, [1, 1, up - 1, 1]))], axis=2)    # [N, H, up, W*up*C]
    return ops.reshape(x, [n, h * up, w * up, c])


def upsample2d(x, f: np.ndarray):
    """2x FIR upsampling with gain 4: [N, H, W, C] -> [N, 2H, 2W, C]."""
    k = f.shape[0]
    return upfirdn2d(x, f, up=2, pad=((k + 1) // 2, (k - 2) // 2) * 2, gain=4.0)


def _up_pads(k: int, fw: int) -> tuple[int, int, int, int]:
    """Blur padding after a stride-2 transposed conv of a k x k kernel (official conv2d_resample, up=2)."""
    p0 = k // 2 + (fw + 1) // 2 - (k - 1)
    p1 = k // 2 + (fw - 2) // 2 - (k - 2)
    return (p0, p1, p0, p1)


def conv_down(x, w, f: np.ndarray):
    """Official conv2d_resample with down=2: FIR blur then strided conv. w: [kh, kw, I, O] (correlation)."""
    kw, fw = w.shape[0], f.shape[0]
    p0, p1 = kw // 2 + (fw - 1) // 2, kw // 2 + (fw - 2) // 2
    if kw == 1:        # 1x1: downsample first, then convolve
        x = upfirdn2d(x, f, down=2, pad=(p0, p1, p0, p1))
        return ops.conv(x, w, strides=1, padding="valid")
    x = upfirdn2d(x, f, pad=(p0, p1, p0, p1))
    return ops.conv(x, w, strides=2, padding="valid")


def conv_up(x, w, f: np.ndarray):
    """Official conv2d_resample with up=2: transposed conv, stride 2, then FIR blur with gain 4.

    x: [N, H, W, I], w: [k, k, I, O] -> [N, 2H, 2W, O]. The transposed conv is the adjoint of correlation
    with w, as torch.conv_transpose2d with weight w^T [I, O, k, k].
    """
    k = w.shape[0]
    x = ops.conv_transpose(x, ops.transpose(w, [0, 1, 3, 2]), strides=2, padding="valid")   # [N, 2H+k-2, ..., O]
    return upfirdn2d(x, f, pad=_up_pads(k, f.shape[0]), gain=4.0)                           # [N, 2H, 2W, O]


def modulated_conv2d(x, weight, styles, demodulate: bool = True, up: bool = False, fused: bool = False,
                     f: np.ndarray | None = None):
    """StyleGAN2 modulated convolution (before noise and bias).

    x: [N, H, W, I]; weight: [k, k, I, O]; styles: [N, I] -> [N, H', W', O] with H' = 2H if up else H.
    Demodulation: d[n, o] = rsqrt(sum_{i,kh,kw} (weight * styles[n, i])^2 + 1e-8).
    fused=False scales activations (one batch-shared convolution); fused=True folds the batch into the
    groups of one grouped convolution with per-sample weights. Both compute the same function.
    """
    k, _, cin, cout = weight.shape
    dtype = x.dtype
    dcoefs = None
    if demodulate:
        # Styles and demodulation in float32; under float16 both are first normalised (the result is the
        # same function: demodulation undoes per-sample and per-output scales) so products cannot overflow.
        weight, styles = ops.cast(weight, "float32"), ops.cast(styles, "float32")
        if keras.backend.standardize_dtype(dtype) == "float16":
            weight = weight * (1.0 / np.sqrt(cin * k * k)) / ops.max(ops.abs(weight), axis=[0, 1, 2], keepdims=True)
            styles = styles / ops.max(ops.abs(styles), axis=1, keepdims=True)
        wsq = ops.sum(ops.square(weight), axis=[0, 1])                            # [I, O]
        dcoefs = ops.cast(ops.rsqrt(ops.matmul(ops.square(styles), wsq) + 1e-8), dtype)   # [N, O]
    weight, styles = ops.cast(weight, dtype), ops.cast(styles, dtype)
    if not fused:
        x = x * styles[:, None, None, :]                                          # [N, H, W, I]
        x = conv_up(x, weight, f) if up else ops.conv(x, weight, strides=1, padding="same")
        return x * dcoefs[:, None, None, :] if demodulate else x                 # [N, H', W', O]
    n = ops.shape(x)[0]
    h, w_ = ops.shape(x)[1], ops.shape(x)[2]
    wmod = weight[None] * styles[:, None, None, :, None]                          # [N, k, k, I, O]
    if demodulate:
        wmod = wmod * dcoefs[:, None, None, None, :]
    xg = ops.reshape(ops.transpose(x, [1, 2, 0, 3]), [1, h, w_, -1])             # [1, H, W, N*I]
    filt = ops.reshape(ops.transpose(wmod, [1, 2, 3, 0, 4]), [k, k, cin, -1])       # [k, k, I, N*O]
    if up:
        # Transposed stride-2 conv = zero insertion, padding k-1, correlation with the flipped kernel.
        # (keras.ops has no grouped transposed conv, and TF's is not implemented on CPU.)
        xg = upfirdn2d(xg, np.ones([1, 1], np.float32), up=2, pad=(k - 1, k - 2) * 2)   # [1, 2H+k, 2W+k, N*I]
        y = ops.conv(xg, ops.flip(filt, axis=[0, 1]), strides=1, padding="valid")       # [1, 2H+1, 2W+1, N*O]
        y = upfirdn2d(y, f, pad=_up_pads(k, f.shape[0]), gain=4.0)                      # [1, 2H, 2W, N*O]
        h, w_ = h * 2, w_ * 2
    else:
        y = ops.conv(xg, filt, strides=1, padding="same")                               # [1, H, W, N*O]
    return ops.transpose(ops.reshape(y, [h, w_, n, cout]), [2, 0, 1, 3])            # [N, H', W', O]


def stateless_normal_rows(seeds, size: int, dtype: str = "float32"):
    """One N(0, 1) vector of `size` per row of `seeds` (int32 [N, 2]): [N, size]. Row i depends only on
    seeds[i] (a counter-based generator: Philox on TensorFlow, threefry on JAX), never on the batch it is in."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        return tf.map_fn(lambda s: tf.random.stateless_normal([size], seed=s, dtype=dtype), seeds,
                         fn_output_signature=tf.TensorSpec([size], dtype))
    if backend == "jax":
        import jax
        keys = jax.random.wrap_key_data(ops.cast(seeds, "uint32"), impl="threefry2x32")
        return jax.vmap(lambda k: jax.random.normal(k, [size], dtype))(keys)
    raise NotImplementedError(f"per-image noise is implemented for the tensorflow and jax backends, not {backend}")


def to_uint8(images):
    """Official float -> uint8: floor(clip(x * 127.5 + 128, 0, 255)). [N, H, W, C] float -> uint8."""
    return ops.cast(ops.floor(ops.clip(images * 127.5 + 128.0, 0.0, 255.0)), "uint8")
