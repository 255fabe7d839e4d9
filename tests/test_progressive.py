"""Progressive growing: the schedule, networks that run only the blocks up to the current resolution, the
discriminator's fade, reals at their level, per-stage compiled steps, optimizer resets, exact resume."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import keras
import tensorflow as tf

from conftest import tiny_dataset
from common.errors import UserError
from networks.ops import setup_filter, upsample2d
from networks.serialize import load_network
from networks.stylegan2 import (Discriminator, Generator, fade_weight, lod_fading, lod_resolution,
                                official_state)
from training.config import TrainConfig, progressive_lod, resolve
from training.loss import StyleGAN2Loss
from training.stats import Logger
from training.training_loop import Trainer, run_training


def small_G(res: int = 16) -> Generator:
    keras.utils.set_random_seed(0)
    return Generator(z_dim=8, w_dim=8, img_resolution=res, channel_base=256, channel_max=16, mapping_layers=1)


def small_D(res: int = 16, progressive: bool = True) -> Discriminator:
    keras.utils.set_random_seed(1)
    return Discriminator(img_resolution=res, channel_base=256, channel_max=16, mbstd_group_size=2,
                         progressive=progressive)


def test_progressive_schedule_matches_stylegan_v1():
    lod = lambda k: progressive_lod(k, 64, 8, 600, 600)             # noqa: E731
    assert [lod(k) for k in (0, 600, 900, 1200, 1800, 2100, 3600, 9999)] == [3, 3, 2.5, 2, 2, 1.5, 0, 0]
    assert progressive_lod(50, 16, 4, 10, 0) == 0                    # no transitions: jumps between levels
    assert [lod_resolution(64, x) for x in (3, 2.5, 2, 1.0000000001, 0.9999999999, 0)] == [8, 16, 16, 32, 32, 64]
    assert [lod_fading(x) for x in (3, 2.5, 2, 0.9999999999, 0.25)] == [False, True, False, False, True]
    # the newest resolution's weight is the fade-in fraction; lower ones 1, higher ones 0
    assert [float(fade_weight(64, r, 1.25)) for r in (16, 32, 64)] == [1.0, 0.75, 0.0]
    with pytest.raises(UserError, match="lod-initial-res"):
        resolve(TrainConfig(data="x", progressive=True, lod_initial_res=6), 16, 1)
    # defaults: v1's 600 + 600 kimg; the CPU-sized `small` preset grows over 20 + 20 (measured, README)
    sched = lambda **kw: (lambda c: (c.lod_training_kimg, c.lod_transition_kimg))(      # noqa: E731
        resolve(TrainConfig(data="x", progressive=True, **kw), 64, 1))
    assert sched() == sched(cfg="stylegan2") == (600, 600) and sched(cfg="small") == (20, 20)
    assert sched(cfg="small", lod_training_kimg=5) == (5, 20) and sched(lod_transition_kimg=0) == (600, 0)


def test_generator_runs_only_the_blocks_up_to_the_current_resolution():
    G = small_G()
    ws = G.mapping(np.random.RandomState(0).randn(2, 8).astype(np.float32))
    full = G.synthesis(ws, noise_mode="const").numpy()
    np.testing.assert_array_equal(G.synthesis(ws, noise_mode="const", lod=0.0).numpy(), full)   # lod 0 == plain
    at8_all = G.synthesis(ws, noise_mode="const", lod=tf.constant(1.0)).numpy()   # every block, b16 weighted 0
    at8 = G.synthesis(ws, noise_mode="const", lod=tf.constant(1.0), res=8).numpy()
    assert at8.shape == (2, 8, 8, 3)
    f = setup_filter()
    np.testing.assert_allclose(upsample2d(at8, f).numpy(), at8_all, atol=1e-6)
    # a snapshot at lod 1 renders 16x16 through the skip path's upsampling, with the same pixels
    np.testing.assert_array_equal(G.synthesis(ws, noise_mode="const", lod=1.0).numpy(), upsample2d(at8, f).numpy())
    # the 16x16 block does not run at all: poisoned with NaN, nothing changes
    for v in G.synthesis.b16.weights:
        v.assign(tf.fill(v.shape, np.nan))
    np.testing.assert_array_equal(G.synthesis(ws, noise_mode="const", lod=tf.constant(1.0), res=8).numpy(), at8)
    fading8 = G.synthesis(ws, noise_mode="const", lod=tf.constant(1.5), res=8)      # 8x8 half faded in
    assert np.abs(fading8.numpy() - at8).max() > 1e-3
    np.testing.assert_array_equal(G.synthesis(ws, noise_mode="const", lod=1.5).numpy(), upsample2d(fading8, f).numpy())
    assert np.isnan(G.synthesis(ws, noise_mode="const", lod=0.5).numpy()).all()     # mid-fade it runs
    with pytest.raises(ValueError, match="res 12"):
        G.synthesis(ws, res=12)


def test_first_call_at_a_low_stage_warns_nothing():
    # Keras warns about "unbuilt state" when a layer's first call leaves sublayers uncalled (the blocks above
    # the current resolution); every weight exists from __init__, so fresh networks must stay quiet
    G, D = small_G(), small_D()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = G.synthesis(G.mapping(np.zeros([2, 8], np.float32)), lod=tf.constant(1.0), res=8)   # [2, 8, 8, 3]
        assert D(img).shape == (2, 1)


def test_discriminator_reads_the_current_resolution_and_fades():
    plain, D = small_D(progressive=False), small_D()
    ours, theirs = official_state(D), official_state(plain)
    for name, var in theirs.items():                                  # the progressive D adds fromRGB layers only
        ours[name].assign(var)
    assert sorted(set(ours) - set(theirs)) == ["b4.fromrgb.bias", "b4.fromrgb.weight", "b8.fromrgb.bias",
                                               "b8.fromrgb.weight"]
    rng = np.random.RandomState(0)
    img16 = tf.constant(rng.uniform(-1, 1, [4, 16, 16, 3]).astype(np.float32))
    img8 = tf.constant(rng.uniform(-1, 1, [4, 8, 8, 3]).astype(np.float32))
    np.testing.assert_array_equal(D(img16).numpy(), plain(img16).numpy())          # full resolution == plain
    # at 8x8 the image enters through b8.fromrgb
    expected = D.b4(D.b8(D.b8.fromrgb(img8), None))
    np.testing.assert_allclose(D(img8).numpy(), expected.numpy(), atol=1e-6)
    # fading 16x16 in at lod 0.25: b16's output blended with b8.fromrgb of the 2x2 box average, weight 0.75
    low = D.b8.fromrgb(tf.nn.avg_pool2d(img16, 2, 2, "VALID"))
    x = low + (D.b16(None, img16) - low) * 0.75
    np.testing.assert_allclose(D(img16, lod=0.25).numpy(), D.b4(D.b8(x, None)).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="progressive=True"):
        plain(img8)
    # 16x16 poisoned: reading 8x8 does not touch it
    for v in D.b16.weights:
        v.assign(tf.fill(v.shape, np.nan))
    assert np.isfinite(D(img8).numpy()).all()


def test_reals_stay_at_their_level_and_fade_with_their_box_average():
    G = small_G()
    loss = StyleGAN2Loss(G, None, global_batch=2, r1_gamma=8.0, progressive=True)
    x = tf.constant(np.random.RandomState(1).uniform(-1, 1, [2, 8, 8, 3]).astype(np.float32))
    loss.lod.assign(1.0)
    np.testing.assert_array_equal(loss.process_reals(x).numpy(), x.numpy())          # never upsampled
    loss.lod.assign(1.25)
    low = upsample2d(tf.nn.avg_pool2d(x, 2, 2, "VALID"), setup_filter())
    np.testing.assert_allclose(loss.process_reals(x, fade=True).numpy(), (x + (low - x) * 0.25).numpy(), atol=1e-6)
    # R1 weight follows the pixel count: gamma (8 / 16)^2 at 8x8
    assert loss.r1_gamma_at(8) == 2.0 and loss.r1_gamma_at(16) == 8.0
    assert StyleGAN2Loss(G, None, global_batch=2, r1_gamma=8.0).r1_gamma_at(8) == 8.0


def test_stages_compile_once_each_and_reset_adam(tmp_path):
    data = tiny_dataset(tmp_path, 24, res=16)
    cfg = resolve(TrainConfig(data=str(data), outdir=str(tmp_path / "out"), cfg="small", batch=4, cbase=128,
                              cmax=8, map=1, kimg=0.048, kimg_per_tick=0.048, snap=100, progressive=True,
                              lod_initial_res=8, lod_training_kimg=0.012, lod_transition_kimg=0.012), 16, 1)
    run = tmp_path / "run"
    run.mkdir()
    trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), run)
    for v in [*trainer.G.synthesis.b16.trainable_weights, *trainer.D.b16.trainable_weights]:
        v.assign(tf.fill(v.shape, np.nan))          # at 8x8 these must not run: any use would poison the losses
    logger = Logger(run)
    trainer.cfg = cfg.__class__(**{**cfg.to_dict(), "kimg": 0.012})
    trainer.train(logger, resumed=True)             # 8x8 only (resumed=True: no initial grids, which render 16x16)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert np.isfinite(stats[-1]["Loss/G/loss"]) and np.isfinite(stats[-1]["Loss/D/loss"])
    assert sorted({k[1:] for k in trainer.steps}) == [(8, False)]
    assert trainer.opts["G"].iterations.numpy() == 4                # 3 Gmain + Greg at iteration 0
    for layer in (trainer.G.synthesis.b16, trainer.D.b16):
        layer.set_weights([np.random.RandomState(0).normal(size=w.shape).astype(np.float32) * 0.1
                           for w in layer.get_weights()])
    trainer.cfg = cfg
    trainer.train(logger, resumed=True)             # fade 16x16 in, then 16x16
    logger.close()
    assert sorted({k[1:] for k in trainer.steps}) == [(8, False), (16, False), (16, True)]
    assert {k[0] for k in trainer.steps} == {p.name for p in trainer.phases}
    # Adam was reset at 16 images (the fade starts) and at 24 (it ends): iterations 6-11 since, with Greg at 8
    assert trainer.opts["G"].iterations.numpy() == 7 and trainer.opts["D"].iterations.numpy() == 6
    log = (run / "log.txt").read_text()
    assert "progressive: fading 16x16 in over 8x8 from 0.016 kimg" in log   # lod leaves 1 after 12 images
    assert "progressive: 16x16 from 0.024 kimg" in log and log.count("optimizer state reset") == 2


def test_progressive_run_grows_and_resumes_exactly(tmp_path):
    """4x4, the 8x8 fade-in, 8x8: one level switch of the reader, a snapshot mid-fade and a resume from it (the
    stages of a larger network compile the same way, test_stages_compile_once_each_and_reset_adam)."""
    data = tiny_dataset(tmp_path, 40, res=8)
    grow = dict(progressive=True, lod_initial_res=4, lod_training_kimg=0.016, lod_transition_kimg=0.016,
                kimg_per_tick=0.016, batch=8, cbase=64, cmax=8)
    cfg = lambda out, kimg: resolve(TrainConfig(data=str(data), outdir=str(out), cfg="small", map=1,  # noqa: E731
                                                snap=1, kimg=kimg, **grow), 8, 1)
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    straight = run_training(cfg(tmp_path / "a", 0.056), one)
    log = (straight / "log.txt").read_text()
    assert "reading the 8x8 level" in log and "fading 8x8 in over 4x4" in log
    stats = [json.loads(line) for line in (straight / "stats.jsonl").read_text().splitlines()]
    assert [s["Progress/lod"] for s in stats][0] == 1.0 and stats[-1]["Progress/lod"] == 0.0
    assert all(np.isfinite(s["Loss/G/loss"]) for s in stats)
    first = run_training(cfg(tmp_path / "b", 0.024), one)              # stop mid-fade into 8x8
    mid = load_network(first)                                          # a snapshot renders at its own lod
    assert mid.metadata["lod"] == pytest.approx(0.5) and mid.G_ema.lod == pytest.approx(0.5)
    assert mid.G_ema.get_config()["lod"] == pytest.approx(0.5)                  # saved with the network
    assert mid.G_ema(np.zeros([1, mid.G_ema.z_dim], np.float32)).shape == (1, 8, 8, 3)
    again = run_training(TrainConfig(outdir=str(tmp_path / "b"), resume="latest", kimg=0.056), one)
    a, b = load_network(straight), load_network(again)
    assert again == first and b.metadata["kimg"] == pytest.approx(0.056)
    for net in ("G", "D", "G_ema"):
        for va, vb in zip(getattr(a, net).weights, getattr(b, net).weights):
            np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=0, atol=1e-6, err_msg=f"{net}.{va.path}")
