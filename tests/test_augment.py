"""ADA augmentation: each transform against a hand-computed expectation, p = 0 is the identity, gradients
flow, the ADA rule moves p both ways, and a resumed --aug ada run keeps p and ends like a straight one."""
from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from conftest import ROOT, run_cli, tiny_dataset
from networks.convert import export_official_state
from networks.serialize import load_network
from training.augment import BGC, GEOMETRIC, SYM6, AugmentPipe, _downsample2x, _upsample2x, ada_adjust
from networks.stylegan2 import Discriminator, Generator
from training.config import TrainConfig, resolve
from training.loss import Phase, StyleGAN2Loss
from training.loss_scale import LossScaler
from training.training_loop import run_training

PIPE = AugmentPipe(**BGC)
ROW, COL = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
BLOB = np.exp(-((ROW - 6.0) ** 2 + (COL - 9.0) ** 2) / 18.0)                     # smooth, off-centre, flat edges
SMOOTH = tf.constant(np.stack([BLOB, 0.5 * BLOB, -BLOB], -1)[None].astype(np.float32))   # [1, 16, 16, 3]
RAMP = np.tile((np.arange(16) - 7.5)[None, None, :, None] / 8, [1, 16, 1, 3]).astype(np.float32)  # x / 8
NOISE = tf.constant(np.random.RandomState(0).uniform(-1, 1, [2, 16, 16, 3]).astype(np.float32))


def apply(x, **fixed) -> np.ndarray:
    """x through the pipeline with every parameter at identity except `fixed` (the same for every image)."""
    params = PIPE.identity_params(x.shape[0])
    for k, v in fixed.items():
        params[k] = tf.constant(np.broadcast_to(np.asarray(v, np.float32), params[k].shape))
    return PIPE.apply(tf.constant(x), params).numpy()


# The geometric ops resample through the sym6 wavelet (ADA's filter): integer translation is exact; a flip
# or 90-degree rotation matches the mirrored image up to the filter's small asymmetry (smooth images).
def test_xflip_is_the_mirror_image():
    np.testing.assert_allclose(apply(SMOOTH, xflip=1), SMOOTH.numpy()[:, :, ::-1], atol=0.03)


def test_rotate90_turns_a_quarter_and_four_quarters_are_the_identity():
    np.testing.assert_allclose(apply(SMOOTH, rotate90=1), np.rot90(SMOOTH.numpy(), 1, axes=(1, 2)), atol=0.03)
    np.testing.assert_allclose(apply(SMOOTH, rotate90=2), SMOOTH.numpy()[:, ::-1, ::-1], atol=0.03)
    # composed into one matrix and applied once: a quarter (blit) + a quarter + a half (arbitrary rotations)
    full = apply(NOISE, rotate90=1, rotate_pre=np.pi / 2, rotate_post=np.pi)
    np.testing.assert_allclose(full, NOISE.numpy(), atol=1e-4)
    np.testing.assert_allclose(apply(SMOOTH, rotate_pre=np.pi / 2), apply(SMOOTH, rotate90=1), atol=1e-5)


def test_integer_translation_moves_pixels_exactly():
    x = NOISE.numpy()
    np.testing.assert_allclose(apply(x, xint=[3, 0])[:, :, 3:], x[:, :, :-3], atol=1e-5)       # 3 right
    np.testing.assert_allclose(apply(x, xint=[0, -2])[:, :-2], x[:, 2:], atol=1e-5)           # 2 up
    padded = np.pad(x, [[0, 0], [0, 0], [3, 0], [0, 0]], mode="reflect")                     # reflect padding
    np.testing.assert_allclose(apply(x, xint=[3, 0]), padded[:, :, :16], atol=1e-5)


def test_scaling_and_fractional_translation_of_a_ramp():
    np.testing.assert_allclose(apply(RAMP, scale=2.0), RAMP / 2, atol=0.01)                 # zoom 2x: half slope
    np.testing.assert_allclose(apply(RAMP, aniso=2.0), RAMP / 2, atol=0.01)                 # x stretched 2x
    np.testing.assert_allclose(apply(RAMP, xfrac=[0.5, 0])[:, :, 4:12], (RAMP - 0.5 / 8)[:, :, 4:12], atol=1e-3)
    np.testing.assert_allclose(apply(RAMP, xfrac=[0, 0.5]), RAMP, atol=1e-5)                # ramp constant in y


def test_polyphase_resampling_is_zero_insertion_and_decimation():
    """The warp's 2x up- and downsampling, computed polyphase, against the textbook definitions in numpy, on
    odd and even lengths: upsampling = zeros after every sample, then true convolution with 2 * filter
    (centred, length 2n); downsampling = valid correlation with the filter, every second output from the first."""
    f = np.asarray(SYM6) / np.sum(SYM6)
    x = np.random.RandomState(1).normal(size=[2, 9, 13, 3])
    for axis, n in ((1, 9), (2, 13)):
        zeros = np.zeros_like(np.repeat(x, 2, axis=axis))
        zeros[(slice(None),) * axis + (slice(None, None, 2),)] = x
        up = np.apply_along_axis(lambda v, n=n: np.convolve(v, 2 * f)[5:5 + 2 * n], axis, zeros)
        np.testing.assert_allclose(_upsample2x(tf.constant(x, tf.float32), f, axis).numpy(), up, atol=1e-5)
    for length in (26, 27):
        wide = np.tile(x, [1, 1, 3, 1])[:, :, :length]                                      # [2, 9, 26 or 27, 3]
        down = np.apply_along_axis(lambda v: np.correlate(v, f, "valid")[::2], 2, wide)
        assert down.shape[2] == (length - 10) // 2
        np.testing.assert_allclose(_downsample2x(tf.constant(wide, tf.float32), f, 2).numpy(), down, atol=1e-5)


def test_matches_stylegan2_adas_own_pipeline():
    """The whole bgc pipeline against NVIDIA's stylegan2-ada-pytorch (tests/helpers/make_augment_ref.py): with
    every op at the same known strength (their debug_percentile), outputs and input gradients agree to 5e-5,
    RGB and greyscale, at four percentiles (all four quarter-turns, both flips, reflect padding, rotation,
    scaling, fractional translation and every colour op)."""
    ref = np.load(ROOT / "tests" / "fixtures" / "augment-ref.npz")
    for name in ("rgb", "grey"):
        x = tf.constant(ref[name])                                                        # [N, 24, 32, C]
        for i, q in enumerate(ref["percentiles"]):
            params = PIPE.percentile_params(x.shape[0], float(q), x.shape[1:3])
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = PIPE.apply(x, params)
                dot = tf.reduce_sum(y * ref[name + "_cotangent"])
            np.testing.assert_allclose(y.numpy(), ref[name + "_out"][i], atol=5e-5, err_msg=f"{name} q={q}")
            np.testing.assert_allclose(tape.gradient(dot, x).numpy(), ref[name + "_grad"][i], atol=5e-5,
                                       err_msg=f"{name} gradient q={q}")


def test_colour_transforms():
    x = NOISE.numpy()
    out = apply(x, brightness=0.3)
    np.testing.assert_allclose(out, x + 0.3, atol=1e-6)
    assert out.mean() == pytest.approx(x.mean() + 0.3, abs=1e-5)                            # the mean shifts
    np.testing.assert_allclose(apply(x, contrast=0.5), x * 0.5, atol=1e-6)
    grey = np.tile(np.linspace(-1, 1, 16 * 16, dtype=np.float32).reshape(1, 16, 16, 1), [1, 1, 1, 3])
    np.testing.assert_allclose(apply(grey, lumaflip=1), -grey, atol=1e-6)                    # luma negated
    for theta in (0.7, np.pi, -2.0):
        np.testing.assert_allclose(apply(grey, hue=theta), grey, atol=1e-6)                  # greys stay grey
    hued = apply(x, hue=2 * np.pi / 3)                                                       # 120 degrees:
    np.testing.assert_allclose(hued, x[..., [2, 0, 1]], atol=1e-5)                          # channels cycle
    np.testing.assert_allclose(hued.sum(-1), x.sum(-1), atol=1e-5)                           # luma kept
    flat = apply(x, saturation=0.0)
    np.testing.assert_allclose(flat, np.repeat(x.mean(-1, keepdims=True), 3, -1), atol=1e-6)  # grey
    np.testing.assert_allclose(apply(x, saturation=1.0), x, atol=0)


def test_p0_is_the_identity_bit_for_bit_and_p1_changes_every_image():
    pipe = AugmentPipe(p=0.0, **BGC)
    x = NOISE
    seed = tf.constant([1, 2], tf.int64)
    np.testing.assert_array_equal(pipe(x, seed).numpy(), x.numpy())
    np.testing.assert_array_equal(tf.function(pipe.__call__)(x, seed).numpy(), x.numpy())
    pipe.p.assign(1.0)
    out = pipe(x, seed).numpy()
    assert out.shape == x.shape and np.isfinite(out).all()
    assert np.abs(out - x.numpy()).reshape(2, -1).max(axis=1).min() > 1e-2
    np.testing.assert_array_equal(pipe(x, seed).numpy(), out)                  # the seed decides everything
    gray = AugmentPipe(p=1.0, **BGC)(x[..., :1], seed)                        # greyscale images work too
    assert gray.shape == (2, 16, 16, 1)


def test_only_the_chosen_images_are_transformed_each_as_on_its_own():
    """In a batch where some images drew no op, those pass bit for bit and each other image comes out as it does
    alone (the pipeline transforms just the chosen ones); the XLA form (every image transformed, the unchosen
    discarded) and the gradients agree."""
    pipe = AugmentPipe(p=1.0, **BGC)
    x = tf.concat([NOISE, NOISE[::-1]], axis=0)                                     # [4, 16, 16, 3]
    params = pipe.sample(4, tf.constant([5, 6], tf.int64), (16, 16))
    none = AugmentPipe.identity_params(4)
    # image 0: no op; 1: geometric ops only; 2: colour ops only; 3: both
    drawn = lambda k: np.array([0, 1, 0, 1] if k in GEOMETRIC else [0, 0, 1, 1], bool)   # noqa: E731
    mixed = {k: tf.where(drawn(k).reshape([4] + [1] * (v.shape.rank - 1)), v, none[k]) for k, v in params.items()}
    out = pipe.apply(x, mixed).numpy()
    np.testing.assert_array_equal(out[0], x[0].numpy())
    for i in (1, 2, 3):
        alone = pipe.apply(x[i:i + 1], {k: v[i:i + 1] for k, v in mixed.items()}).numpy()[0]
        np.testing.assert_allclose(out[i], alone, rtol=0, atol=1e-5)
        assert np.abs(out[i] - x[i].numpy()).max() > 1e-2
    np.testing.assert_array_equal(pipe.apply(x, none).numpy(), x.numpy())          # none chosen: no work, no error

    compiled = {static: tf.function(pipe.apply, jit_compile=static) for static in (False, True)}  # traced once each

    def grad(static: bool, prm: dict) -> tuple[np.ndarray, np.ndarray]:
        pipe.static_shapes = static
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = compiled[static](x, prm)
            loss = tf.reduce_sum(y * tf.cos(y))
        return y.numpy(), tape.gradient(loss, x).numpy()

    for prm in (mixed, none):
        (y0, g0), (y1, g1) = grad(False, prm), grad(True, prm)
        np.testing.assert_allclose(y1, y0, rtol=0, atol=1e-5)
        np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-5)

    # R1 through the augmentation under XLA (--jit on): a gradient of the input gradient w.r.t. D's weights
    weight = tf.Variable(tf.ones([16, 16, 3]))

    @tf.function(jit_compile=True)
    def r1_grad(xv: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(xv)
                logits = tf.reduce_sum(tf.tanh(pipe.apply(xv, mixed) * weight))
            penalty = tf.reduce_sum(tf.square(inner.gradient(logits, xv)))
        return outer.gradient(penalty, weight)

    pipe.static_shapes = True
    g = r1_grad(x).numpy()
    assert np.isfinite(g).all() and np.abs(g).max() > 0


def test_gradients_flow_to_the_input():
    pipe = AugmentPipe(p=1.0, **BGC)
    x = tf.Variable(NOISE)
    with tf.GradientTape() as tape:
        y = pipe(x, tf.constant([3, 4], tf.int64))
        loss = tf.reduce_sum(y * tf.cos(y))
    g = tape.gradient(loss, x).numpy()
    assert np.isfinite(g).all() and (np.abs(g).reshape(2, -1).max(axis=1) > 1e-3).all()


class ToyD:
    """A discriminator whose logit is the image mean times `sign`: reals of +0.5 look real when sign > 0."""

    def __init__(self, sign: float) -> None:
        self.sign = sign

    def __call__(self, img, c=None):
        return tf.reduce_mean(img, axis=[1, 2, 3])[:, None] * self.sign                 # [n, 1]


@pytest.mark.parametrize("sign,direction", [(1.0, 1), (-1.0, -1)])
def test_p_moves_up_when_d_is_overconfident_on_reals_and_down_otherwise(sign, direction):
    G = Generator(z_dim=4, w_dim=4, img_resolution=16, channel_base=64, channel_max=8, mapping_layers=1)
    pipe = AugmentPipe(p=0.5, **BGC)
    loss = StyleGAN2Loss(G, ToyD(sign), global_batch=4, augment=pipe)
    real = tf.fill([4, 16, 16, 3], 0.5)
    rnd = {"z": tf.random.normal([4, 4]), "z2": tf.random.normal([4, 4]), "cutoff": tf.constant(G.num_ws),
           "aug_seed": tf.constant([5, 6], tf.int64), "seed": tf.constant([1, 2], tf.int64)}
    _, stats = loss.d_step(Phase("Dmain", "D", 1, True, False), real, tf.zeros([4, 0]), rnd)
    rt = float(tf.reduce_mean(stats["Loss/signs/real"]))
    assert rt == direction                                                   # every real scored the same way
    step = 4 * 4 / (500 * 1000)
    assert float(ada_adjust(pipe.p, rt, 0.6, 4, 4, 500)) == pytest.approx(0.5 + direction * step)
    # the R1 pass's reals count in r_t too (as ADA; p = 0 here so that no colour op flips the toy D's sign);
    # a combined main + reg phase counts its reals once
    pipe.p.assign(0.0)
    _, reg = loss.d_step(Phase("Dreg", "D", 16, False, True), real, tf.zeros([4, 0]), rnd)
    np.testing.assert_array_equal(reg["Loss/signs/real"], [direction] * 4)
    _, both = loss.d_step(Phase("Dboth", "D", 1, True, True), real, tf.zeros([4, 0]), rnd)
    assert both["Loss/signs/real"].shape == (4,)
    # r_t is reported without augmentation too (a diagnostic for runs with --aug off)
    _, plain = StyleGAN2Loss(G, ToyD(sign), global_batch=4).d_step(Phase("Dmain", "D", 1, True, False), real,
                                                                   tf.zeros([4, 0]), rnd)
    np.testing.assert_array_equal(plain["Loss/signs/real"], [direction] * 4)
    assert float(ada_adjust(0.0, -1.0, 0.6, 64, 4, 500)) == 0.0                 # floored at 0
    # not capped at 1 (NVIDIA's code): a p that went past 1 needs as many steps to come back
    assert float(ada_adjust(1.0, 1.0, 0.6, 64, 4, 500)) == pytest.approx(1.0 + 64 * 4 / 500_000)
    # 500 kimg of adjustments every 4 iterations of 64 images take p from 0 to 1
    p = 0.0
    for _ in range(round(500_000 / (64 * 4))):
        p = float(ada_adjust(p, 1.0, 0.6, 64, 4, 500))
    assert p == pytest.approx(1.0, abs=1e-3)


def test_float16_discriminator_r1_through_the_augmentation():
    """Mixed precision: R1 of a float16 D, loss-scaled, through the pipeline (p = 1), is finite and matches
    float32; with p fixed nothing changes p."""
    def nets(precision):
        keras.utils.set_random_seed(0)
        return (Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=1),
                Discriminator(img_resolution=16, channel_base=256, channel_max=16, mbstd_group_size=1,
                              mixed_precision=precision))
    real = tf.constant(np.random.RandomState(0).uniform(-1, 1, [2, 16, 16, 3]).astype(np.float32))
    rnd = {"z": tf.zeros([2, 8]), "z2": tf.zeros([2, 8]), "cutoff": tf.constant(1), "eps": tf.zeros([2, 1, 1, 1]),
           "aug_seed": tf.constant([7, 8], tf.int64)}
    r1 = {}
    for precision, scaler in ((None, None), ("float16", LossScaler(enabled=True))):
        G, D = nets(precision)
        pipe = AugmentPipe(p=1.0, **BGC)
        loss = StyleGAN2Loss(G, D, global_batch=2, r1_gamma=1.0, style_mixing_prob=0.0, scaler=scaler, augment=pipe)
        _, stats = loss.d_step(Phase("Dreg", "D", 16, False, True), real, tf.zeros([2, 0]), rnd)
        r1[precision] = stats["Loss/r1_penalty"].numpy()
        assert float(pipe.p.numpy()) == 1.0
    assert np.isfinite(r1["float16"]).all() and r1[None].min() > 0
    np.testing.assert_allclose(r1["float16"], r1[None], rtol=5e-2)


@pytest.fixture(scope="module")
def data8(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("aug"), 24)


def tiny(data, outdir, **kw) -> TrainConfig:
    kw = {**dict(cfg="small", batch=4, cbase=64, cmax=16, map=1, kimg=0.032, kimg_per_tick=0.016, snap=1,
                 aug="ada", ada_kimg=0.1, pl_weight=0.0, g_reg_interval=4, d_reg_interval=4), **kw}
    return resolve(TrainConfig(data=str(data), outdir=str(outdir), **kw), 8, 1)


def test_trainer_p_follows_d_on_reals_and_resume_keeps_it(data8, tmp_path):
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    straight = run_training(tiny(data8, tmp_path / "a", target=0.01), one)   # any D above the floor moves p
    stats = [json.loads(line) for line in (straight / "stats.jsonl").read_text().splitlines()]
    step = 4 * 4 / 100
    ps = [s["Progress/augment"] for s in stats]
    assert all(np.isfinite(s["Loss/signs/real"]) and "Progress/rt" in s for s in stats)
    for s, prev in zip(stats, [0.0] + ps):                                    # 4 iterations per tick = 1 step
        assert s["Progress/augment"] == pytest.approx(max(prev + np.sign(s["Progress/rt"] - 0.01) * step, 0))
    assert "augmentation ada" in (straight / "log.txt").read_text()
    # a copy of the run stopped at its first checkpoint (0.016 kimg), resumed to 0.032: p and weights as straight
    run = tmp_path / "b" / straight.name
    shutil.copytree(straight, run)
    ckpts = run / "checkpoints"
    for f in ckpts.glob("ckpt-32.*"):
        f.unlink()
    state = tf.train.get_checkpoint_state(str(ckpts))
    tf.compat.v1.train.update_checkpoint_state(str(ckpts), "ckpt-16", all_model_checkpoint_paths=["ckpt-16"],
                                               all_model_checkpoint_timestamps=state.all_model_checkpoint_timestamps[:1],
                                               last_preserved_timestamp=state.last_preserved_timestamp)
    again = run_training(TrainConfig(outdir=str(tmp_path / "b"), resume="latest", kimg=0.032), one)
    assert again == run and "at 0.016 kimg (iteration 4)" in (run / "log.txt").read_text()
    resumed = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert resumed["Progress/augment"] == ps[-1] and resumed["Progress/rt"] == stats[-1]["Progress/rt"]
    a, b = load_network(straight), load_network(again)
    for net in ("G", "D"):
        wa, wb = export_official_state(getattr(a, net)), export_official_state(getattr(b, net))
        for k in wa:
            np.testing.assert_allclose(wa[k], wb[k], rtol=0, atol=1e-6, err_msg=f"{net}.{k}")


def test_options():
    assert resolve(TrainConfig(data="x"), 8, 1, num_images=2000).aug == "ada"
    assert resolve(TrainConfig(data="x"), 8, 1, num_images=70000).aug == "off"
    assert resolve(TrainConfig(data="x"), 8, 1).aug == "off"                  # size unknown: off
    assert resolve(TrainConfig(data="x", aug="fixed", p=0.3), 8, 1).p == 0.3
    for kw, msg in ((dict(aug="fixed"), "needs --p"), (dict(aug="ada", p=0.2), "only for --aug fixed"),
                    (dict(aug="sometimes"), "--aug sometimes must be one of ada, fixed, off"),
                    (dict(target=1.5), "--target")):
        with pytest.raises(UserError, match=msg):
            resolve(TrainConfig(data="x", **kw), 8, 1)


def test_every_phase_shares_one_trace_of_the_augmentation(data8, tmp_path):
    """The augmentation is one tf.function that Gmain, Dmain (reals and fakes) and Dreg call: after an iteration
    that ran all four phases it was traced once, not once per call (its ~1,700 ops built four times)."""
    from training.stats import Logger
    from training.training_loop import Trainer
    trainer = Trainer(tiny(data8, tmp_path, kimg=0.004, kimg_per_tick=0.004), tf.distribute.OneDeviceStrategy("/cpu:0"),
                      tmp_path)
    trainer.train(Logger(tmp_path), resumed=True)
    assert trainer.phase_runs == {"Gmain": 1, "Dmain": 1, "Dreg": 1}                  # (no path length reg.)
    assert trainer.augment._rows_fn.experimental_get_tracing_count() == 1


def test_mirrored_two_devices_equals_one_device_with_ada(data8, tmp_path):
    """Two replicas on two logical CPUs end with the same weights, G_ema and p as one device (the whole
    training step under MirroredStrategy: the split batch, per-example loss scaling, globally drawn latents,
    augmentation parameters and path-length noise, r_t averaged over replicas). This is the project's
    mirrored == one-device test; with --aug off the same step simply skips the augmentation."""
    r = run_cli(str(ROOT / "tests" / "helpers" / "train_compare.py"), str(data8), str(tmp_path), "one_device,mirrored2",
                "ada", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    outs = {kind: np.load(tmp_path / f"{kind}.npz") for kind in ("one_device", "mirrored2")}
    assert 0 < outs["one_device"]["augment_p"] < 1 and outs["one_device"]["augment_p"] != np.float32(0.2)   # p moved
    for k in outs["one_device"].files:
        np.testing.assert_allclose(outs["mirrored2"][k], outs["one_device"][k], rtol=0, atol=2e-4, err_msg=k)
