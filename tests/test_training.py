"""Training: phases and intervals, Adam corrections, EMA, R1 and path length, resume, strategies, CLI errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import keras
import tensorflow as tf

from conftest import ROOT, run_cli, tiny_dataset
from training.config import TrainConfig, resolve
from networks.convert import export_official_state
from training.loss import Phase, StyleGAN2Loss, ema_beta, lazy_adam_params, make_phases
from networks.stylegan2 import Discriminator, Generator
from common.errors import UserError
from networks.serialize import load_network
from training.loss_scale import LossScaler
from training.stats import Logger
from training.training_loop import Trainer, run_training


@pytest.fixture(scope="module")
def data8(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("train"), 40)


def tiny(data, outdir, **kw) -> TrainConfig:
    kw = {**dict(cfg="small", batch=4, cbase=64, cmax=16, map=1, kimg=0.032, kimg_per_tick=0.016, snap=1), **kw}
    cfg = TrainConfig(data=str(data), outdir=str(outdir), **kw)
    return resolve(cfg, 8, 1)


def weights(model) -> dict[str, np.ndarray]:
    return export_official_state(model)


def test_lazy_regularisation_adam_corrections_match_stylegan2():
    lr, b1, b2 = lazy_adam_params(0.002, (0.0, 0.99), 4)
    # 0.99 ** (4/5) = 0.991992 (REFERENCE §2 prints 0.99192, a dropped digit; its D value agrees with the formula)
    assert lr == pytest.approx(0.0016) and b1 == 0.0 and b2 == pytest.approx(0.991992, abs=1e-6)
    lr, b1, b2 = lazy_adam_params(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.0018824, abs=1e-7) and b2 == pytest.approx(0.99059, abs=1e-5)
    assert lazy_adam_params(0.002, (0.0, 0.99), None) == (0.002, 0.0, 0.99)


def test_ema_beta():
    assert ema_beta(32, 10.0, 10**9, None) == pytest.approx(0.997784, abs=1e-6)
    assert ema_beta(32, 10.0, 1000, 0.05) == pytest.approx(0.5 ** (32 / 50), rel=1e-9)   # ramped up


def test_phases_as_data():
    names = [(p.name, p.interval) for p in make_phases(4, 16, True, True)]
    assert names == [("Gmain", 1), ("Greg", 4), ("Dmain", 1), ("Dreg", 16)]
    assert [p.name for p in make_phases(None, 1, True, True)] == ["Gboth", "Dboth"]
    assert [p.name for p in make_phases(4, 16, False, True)] == ["Gmain", "Dmain", "Dreg"]


def test_r1_equals_a_numerically_computed_gradient_norm():
    keras.utils.set_random_seed(0)
    D = Discriminator(img_resolution=4, channel_base=32, channel_max=8, mbstd_group_size=1)
    loss = StyleGAN2Loss(Generator(z_dim=4, w_dim=4, img_resolution=4, channel_base=32, channel_max=8,
                                   mapping_layers=1), D, global_batch=2, r1_gamma=10.0)
    real = tf.constant(np.random.RandomState(0).uniform(-1, 1, [2, 4, 4, 3]).astype(np.float32))
    rnd = {"z": tf.zeros([2, 4]), "z2": tf.zeros([2, 4]), "cutoff": tf.constant(1), "eps": tf.zeros([2, 1, 1, 1]),
           "pl_noise": tf.zeros([1, 4, 4, 3])}
    _, stats = loss.d_step(Phase("Dreg", "D", 16, False, True), real, tf.zeros([2, 0]), rnd)
    r1 = stats["Loss/r1_penalty"].numpy()                                   # |grad_x D(x)|^2 per image
    # D is piecewise linear (leaky ReLU), so a difference across a kink is wrong: per input element, use the
    # step whose forward and backward one-sided differences agree best (no kink inside [x - h, x + h]).
    x = real.numpy().astype(np.float64)                                     # [2, 4, 4, 3]
    eye = np.eye(48).reshape(48, 4, 4, 3)                                   # one perturbation per element
    for i in range(2):
        best_gap, best = np.full(48, np.inf), np.zeros(48)
        for h in (1e-3, 3e-4, 1e-4):
            d0 = D(x[i:i + 1].astype(np.float32)).numpy()[0, 0]
            dp = D((x[i] + h * eye).astype(np.float32)).numpy()[:, 0]       # [48]
            dm = D((x[i] - h * eye).astype(np.float32)).numpy()[:, 0]
            fwd, bwd = (dp - d0) / h, (d0 - dm) / h
            gap = np.abs(fwd - bwd)
            take = gap < best_gap
            best_gap[take], best[take] = gap[take], (0.5 * (fwd + bwd))[take]
        assert r1[i] == pytest.approx(np.sum(best ** 2), rel=5e-3)
    assert r1.min() > 1e-3                                                  # a non-trivial gradient was checked


def test_path_length_mean_update():
    G = Generator(z_dim=4, w_dim=4, img_resolution=8, channel_base=32, channel_max=8, mapping_layers=1)
    loss = StyleGAN2Loss(G, None, global_batch=4, pl_decay=0.01, style_mixing_prob=0.0)
    rnd = {"z": tf.random.normal([4, 4]), "z2": tf.random.normal([4, 4]), "cutoff": tf.constant(G.num_ws),
           "pl_noise": tf.random.normal([2, 8, 8, 3]) / 8.0, "eps": tf.zeros([4, 1, 1, 1])}
    _, stats = loss.g_step(Phase("Greg", "G", 4, False, True), tf.zeros([4, 8, 8, 3]), tf.zeros([4, 0]), rnd)
    lengths = stats["Loss/pl_length"].numpy()
    assert float(loss.pl_mean.numpy()) == pytest.approx(0.01 * lengths.mean(), rel=1e-5)
    np.testing.assert_allclose(stats["Loss/pl_penalty"].numpy(), 2.0 * (lengths - 0.01 * lengths.mean()) ** 2,
                               rtol=1e-4)


def test_a_run_trains_with_finite_losses_right_intervals_and_snapshots(data8, tmp_path):
    cfg = tiny(data8, tmp_path, g_reg_interval=4, d_reg_interval=3)
    run = run_training(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"))
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert len(stats) == 2 and stats[-1]["Progress/kimg"] == pytest.approx(0.032)
    for s in stats:
        for k in ("Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/pl_penalty"):
            assert np.isfinite(s[k]), k
    for name in ("reals.png", "fakes_init.png", "fakes000000.032.png", "log.txt", "training_options.json"):
        assert (run / name).exists(), name
    assert "tick 2" in (run / "log.txt").read_text()
    bundle = load_network(run)
    assert bundle.G is not None and bundle.D is not None and bundle.metadata["kimg"] == pytest.approx(0.032)
    assert list(run.glob("events.out.tfevents.*"))


def test_phase_counts_follow_intervals(data8, tmp_path):
    cfg = tiny(data8, tmp_path, g_reg_interval=4, d_reg_interval=3)
    trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path)
    trainer.train(Logger(tmp_path), resumed=False)
    assert trainer.phase_runs == {"Gmain": 8, "Greg": 2, "Dmain": 8, "Dreg": 3}    # iterations 0..7


def test_resume_continues_exactly(data8, tmp_path):
    straight = run_training(tiny(data8, tmp_path / "a", kimg=0.032), tf.distribute.OneDeviceStrategy("/cpu:0"))
    first = run_training(tiny(data8, tmp_path / "b", kimg=0.016), tf.distribute.OneDeviceStrategy("/cpu:0"))
    resumed_cfg = TrainConfig(outdir=str(tmp_path / "b"), resume="latest", kimg=0.032)
    again = run_training(resumed_cfg, tf.distribute.OneDeviceStrategy("/cpu:0"))
    assert again == first
    log = (first / "log.txt").read_text()
    assert "resumed" in log and "at 0.016 kimg (iteration 4)" in log
    a, b = load_network(straight), load_network(again)
    assert b.metadata["kimg"] == pytest.approx(0.032)
    for net in ("G", "D", "G_ema"):
        wa, wb = weights(getattr(a, net)), weights(getattr(b, net))
        for k in wa:
            np.testing.assert_allclose(wa[k], wb[k], rtol=0, atol=1e-6, err_msg=f"{net}.{k}")


@pytest.mark.parametrize("args,message", [
    (["--res", "16"], "no 16x16 level"),
    (["--batch", "6"], "divisible by the minibatch-stddev group"),
    (["--cfg", "small", "--gamma", "-1"], "must not be negative"),
])
def test_cli_errors_are_one_line(data8, tmp_path, args, message):
    r = run_cli("run_training.py", "--data", str(data8), "--outdir", str(tmp_path), "--dry-run", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_cli_dry_run_and_missing_data(data8, tmp_path):
    r = run_cli("run_training.py", "--data", str(data8), "--cfg", "small", "--dry-run")
    assert r.returncode == 0, r.stderr
    opts = json.loads(r.stdout)
    assert opts["res"] == 8 and opts["batch"] == 16 and opts["gamma"] == pytest.approx(0.0002 * 64 / 16)
    r = run_cli("run_training.py")
    assert r.returncode == 2 and "--data" in r.stderr
    r = run_cli("run_training.py", "--resume", "latest", "--outdir", str(tmp_path))
    assert r.returncode == 2 and "no run with a checkpoint" in r.stderr




def _free_ports(n: int) -> list[int]:
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multiworker_two_local_processes_end_with_identical_weights(data8, tmp_path):
    import os
    import subprocess
    import sys
    ports = _free_ports(2)
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
        procs.append(subprocess.Popen(
            [sys.executable, "run_training.py", "--data", str(data8), "--outdir", str(tmp_path), "--cfg", "small",
             "--batch", "8", "--cbase", "64", "--cmax", "8", "--map", "1", "--kimg", "0.016", "--kimg-per-tick",
             "0.008", "--snap", "1", "--strategy", "multiworker"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    assert "on 2 replica(s)" in outs[0]
    chief = load_network(next(tmp_path.glob("0*-*")))                        # the chief writes the run folder
    other = load_network(next((tmp_path / ".worker1").glob("0*-*")))          # the other worker keeps its own
    assert chief.metadata["kimg"] == pytest.approx(0.016)
    for net in ("G", "D", "G_ema"):
        for a, b in zip(getattr(chief, net).weights, getattr(other, net).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{net}.{a.path}")
    r = run_cli("run_training.py", "--data", str(data8), "--outdir", str(tmp_path), "--strategy", "multiworker")
    assert r.returncode == 2 and "needs TF_CONFIG" in r.stderr


def test_float16_blocks_with_loss_scaling_match_float32_through_the_nested_tapes():
    def nets(precision):
        keras.utils.set_random_seed(0)
        G = Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=1,
                      mixed_precision=precision)
        D = Discriminator(img_resolution=16, channel_base=256, channel_max=16, mbstd_group_size=1,
                          mixed_precision=precision)
        return G, D

    G, D = nets(None)
    loss = StyleGAN2Loss(G, D, global_batch=4, r1_gamma=1.0, style_mixing_prob=0.0)
    rng = np.random.RandomState(0)
    real = tf.constant(rng.uniform(-1, 1, [4, 16, 16, 3]).astype(np.float32))
    rnd = {"z": tf.constant(rng.randn(4, 8).astype(np.float32)), "z2": tf.zeros([4, 8]), "cutoff": tf.constant(1),
           "eps": tf.zeros([4, 1, 1, 1]), "pl_noise": tf.constant(rng.randn(2, 16, 16, 3).astype(np.float32) / 16)}
    c = tf.zeros([4, 0])

    def run():
        _, d = loss.d_step(Phase("Dreg", "D", 16, False, True), real, c, rnd)
        _, g = loss.g_step(Phase("Greg", "G", 4, False, True), real, c, rnd)
        return d["Loss/r1_penalty"].numpy(), g["Loss/pl_length"].numpy()

    r1_32, pl_32 = run()
    G, D = nets("float16")                                                  # the same weights (same seed)
    assert [r for r in G.synthesis.resolutions if getattr(G.synthesis, f"b{r}").block_dtype == "float16"] == [4, 8, 16]
    assert [r for r in D.resolutions if getattr(D, f"b{r}").block_dtype == "float16"] == [16, 8]
    loss = StyleGAN2Loss(G, D, global_batch=4, r1_gamma=1.0, style_mixing_prob=0.0, scaler=LossScaler(enabled=True))
    assert float(loss.scaler.loss_scale.numpy()) == 2.0 ** 10
    r1_16, pl_16 = run()
    np.testing.assert_allclose(r1_16, r1_32, rtol=3e-2)
    np.testing.assert_allclose(pl_16, pl_32, rtol=3e-2)
    assert G(rnd["z"]).dtype == "float32" and D(real).dtype == "float32"      # outputs stay float32


def test_mixed_precision_run_keeps_and_checkpoints_its_loss_scale(data8, tmp_path):
    run = run_training(tiny(data8, tmp_path, mixed_precision="fp16"), tf.distribute.OneDeviceStrategy("/cpu:0"))
    last = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert last["Progress/loss_scale"] == 1024.0 and last["Progress/nonfinite_total"] == 0
    assert np.isfinite(last["Loss/G/loss"]) and np.isfinite(last["Loss/D/loss"])
    with pytest.raises(UserError, match="mixed-precision"):
        resolve(TrainConfig(data=str(data8), mixed_precision="fp8"), 8, 1)


MALLOC_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from common.cli import start_tensorflow, tune_malloc
import common.cli
calls = []
common.cli.tune_malloc = lambda: calls.append(1) or True
start_tensorflow()
print(int(tune_malloc()), len(calls))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
@pytest.mark.parametrize("env,applied", [(None, 1), ("default", 0)])
def test_every_script_tunes_malloc_unless_told_not_to(env, applied):
    """start_tensorflow() (called by every script before TensorFlow loads) tunes malloc; STYLEGAN2_MALLOC=default
    leaves glibc's settings alone."""
    environ = {k: v for k, v in os.environ.items() if k != "STYLEGAN2_MALLOC"}
    if env:
        environ["STYLEGAN2_MALLOC"] = env
    res = subprocess.run([sys.executable, "-c", MALLOC_PROBE, str(ROOT)], capture_output=True, text=True, env=environ)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(applied), "1"]
    for script in ("run_training.py", "run_generator.py", "run_metrics.py", "dataset_tool/create.py"):
        assert "start_tensorflow()" in (ROOT / script).read_text(), script


def test_snapshot_names_are_unique_and_sort_by_kimg():
    from pathlib import Path

    from networks.serialize import snapshot_kimg
    names = ["network-snapshot-000008.016.keras", "network-snapshot-000008.keras", "network-snapshot-000004.keras"]
    assert [snapshot_kimg(Path(n)) for n in sorted(names, key=lambda n: snapshot_kimg(Path(n)))] == [4.0, 8.0, 8.016]
