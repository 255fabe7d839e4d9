"""Training: phases and intervals, Adam corrections, EMA, R1 and path length, resume, strategies, CLI errors."""
from __future__ import annotations

import json
import re
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
from networks.serialize import load_network
from training.loss_scale import LossScaler
from training.stats import Logger
import training.training_loop as training_loop
from training.training_loop import Trainer, run_training


@pytest.fixture(scope="module")
def data8(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("train"), 40)


def tiny(data, outdir, **kw) -> TrainConfig:
    kw = {**dict(cfg="small", batch=4, cbase=64, cmax=16, map=1, kimg=0.032, kimg_per_tick=0.016, snap=1), **kw}
    cfg = TrainConfig(data=str(data), outdir=str(outdir), **kw)
    return resolve(cfg, kw.get("res") or 8, 1)


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
           "seed": tf.constant([1, 2], tf.int64)}
    _, stats = loss.d_step(Phase("Dreg", "D", 16, False, True), real, tf.zeros([2, 0]), rnd)
    r1 = stats["Loss/r1_penalty"].numpy()                                   # |grad_x D(x)|^2 per image
    np.testing.assert_allclose(stats["Loss/D/reg"].numpy(), r1 * 5.0, rtol=1e-6)   # weighted by gamma / 2
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
           "seed": tf.constant([1, 2], tf.int64), "eps": tf.zeros([4, 1, 1, 1])}
    _, stats = loss.g_step(Phase("Greg", "G", 4, False, True), tf.zeros([4, 8, 8, 3]), tf.zeros([4, 0]), rnd)
    lengths = stats["Loss/pl_length"].numpy()
    assert float(loss.pl_mean.numpy()) == pytest.approx(0.01 * lengths.mean(), rel=1e-5)
    # logged as NVIDIA's: pl_penalty unweighted, G/reg times pl_weight (2)
    np.testing.assert_allclose(stats["Loss/pl_penalty"].numpy(), (lengths - 0.01 * lengths.mean()) ** 2, rtol=1e-4)
    np.testing.assert_allclose(stats["Loss/G/reg"].numpy(), 2.0 * stats["Loss/pl_penalty"].numpy(), rtol=1e-6)


@pytest.fixture(scope="module")
def straight(data8, tmp_path_factory):
    """One tiny run of 0.032 kimg (two ticks, a snapshot each; G reg every 4th, D reg every 3rd iteration) and its
    Trainer, shared by the tests that read it."""
    made = []

    class Keep(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training_loop, "Trainer", Keep)
        run = run_training(tiny(data8, tmp_path_factory.mktemp("straight"), g_reg_interval=4, d_reg_interval=3),
                           tf.distribute.OneDeviceStrategy("/cpu:0"))
    return run, made[0]


def test_a_run_trains_with_finite_losses_right_intervals_and_snapshots(straight):
    run, trainer = straight
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
    assert trainer.phase_runs == {"Gmain": 8, "Greg": 2, "Dmain": 8, "Dreg": 3}    # iterations 0..7


def test_resume_continues_exactly(data8, straight, tmp_path):
    first = run_training(tiny(data8, tmp_path / "b", kimg=0.016, g_reg_interval=4, d_reg_interval=3),
                         tf.distribute.OneDeviceStrategy("/cpu:0"))
    resumed_cfg = TrainConfig(outdir=str(tmp_path / "b"), resume="latest", kimg=0.032)
    again = run_training(resumed_cfg, tf.distribute.OneDeviceStrategy("/cpu:0"))
    assert again == first
    log = (first / "log.txt").read_text()
    assert "resumed" in log and "at 0.016 kimg (iteration 4)" in log
    a, b = load_network(straight[0]), load_network(again)
    assert b.metadata["kimg"] == pytest.approx(0.032)
    for net in ("G", "D", "G_ema"):
        wa, wb = weights(getattr(a, net)), weights(getattr(b, net))
        for k in wa:
            np.testing.assert_allclose(wa[k], wb[k], rtol=0, atol=1e-6, err_msg=f"{net}.{k}")


@pytest.mark.parametrize("args,message", [
    (["--res", "16"], "no 16x16 level"),
    (["--batch", "6"], "divisible by the minibatch-stddev group"),
    (["--cfg", "small", "--gamma", "-1"], "flag --gamma=-1: -1.0 is not a non-negative number"),
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




def test_every_worker_reads_its_own_input_pipeline_with_or_without_a_chief():
    """Each task of a TF_CONFIG cluster gets a distinct input pipeline index (its shard of the records): with
    a chief, the chief is 0 and worker i is i + 1, not i (which would read the chief's shard twice)."""
    from training.distribute import pipeline_index
    two = {"worker": ["a:1", "b:1"]}
    assert [pipeline_index("worker", i, two) for i in range(2)] == [(0, 2), (1, 2)]
    chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    assert [pipeline_index("chief", 0, chief)] + [pipeline_index("worker", i, chief) for i in range(2)] == [
        (0, 3), (1, 3), (2, 3)]


def _free_ports(n: int) -> list[int]:
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _two_workers(data8, outdir, *extra: str) -> list[str]:
    """run_training.py as two local workers of one MultiWorkerMirroredStrategy over loopback; their outputs."""
    ports = _free_ports(2)
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
        procs.append(subprocess.Popen(
            [sys.executable, "run_training.py", "--data", str(data8), "--outdir", str(outdir), "--cfg", "small",
             "--batch", "8", "--cbase", "64", "--cmax", "8", "--map", "1", "--kimg-per-tick", "0.008", "--snap", "1",
             "--strategy", "multiworker", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    return outs


def test_multiworker_two_local_processes_end_with_identical_weights_and_resume_in_their_own_places(data8, tmp_path):
    outs = _two_workers(data8, tmp_path, "--kimg", "0.016")
    assert "on 2 replica(s)" in outs[0]
    run = next(tmp_path.glob("0*-*"))                                        # the chief writes the run folder
    own = tmp_path / ".worker1" / run.name                                   # the other worker keeps its own
    chief, other = load_network(run), load_network(own)
    assert chief.metadata["kimg"] == pytest.approx(0.016)
    for net in ("G", "D", "G_ema"):
        for a, b in zip(getattr(chief, net).weights, getattr(other, net).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{net}.{a.path}")
    before = sorted(p.name for p in run.rglob("*"))
    # --resume RUN: both workers restore the chief's checkpoint; each writes only in its own place
    outs = _two_workers(data8, tmp_path, "--kimg", "0.032", "--resume", str(run))
    assert all("resumed" in out and "at 0.016 kimg" in out for out in outs), outs
    assert (run / "log.txt").read_text().count("resumed") == 1               # worker 1 did not log into it
    assert (own / "log.txt").read_text().count("resumed") == 1
    new = sorted(set(p.name for p in run.rglob("*")) - set(before))
    assert "network-snapshot-000000.032.keras" in new and not [n for n in new if "worker" in n]
    chief, other = load_network(run), load_network(own)
    assert chief.metadata["kimg"] == other.metadata["kimg"] == pytest.approx(0.032)
    for a, b in zip(chief.G_ema.weights, other.G_ema.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"G_ema.{a.path}")
    r = run_cli("run_training.py", "--data", str(data8), "--outdir", str(tmp_path), "--strategy", "multiworker")
    assert r.returncode == 2 and "needs TF_CONFIG" in r.stderr


def test_noise_is_independent_per_layer_image_and_replica_and_replica_count_invariant(data8, tmp_path):
    """The noise a real phase draws (tapped from G's forward pass inside the D main step under a 2-replica
    MirroredStrategy and one device): every layer, image and replica gets its own N(0, 1) noise, the two
    replicas together draw exactly what one device draws for the whole batch, and the next phase draws anew."""
    out = tmp_path / "noise.npz"
    r = run_cli(str(ROOT / "tests" / "helpers" / "noise_probe.py"), str(data8), str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    f = np.load(out)
    layers = sorted({int(k.split(".")[1]) for k in f.files})
    assert len(layers) == 3                                                 # b4.conv1, b8.conv0, b8.conv1 at 8x8
    mirrored = [f[f"mirrored2.{i}"] for i in layers]                        # [2 replicas, 4 images, r, r, 1]
    assert [m.shape for m in mirrored] == [(2, 4, 4, 4, 1), (2, 4, 8, 8, 1), (2, 4, 8, 8, 1)]
    flat = np.concatenate([m.reshape(8, -1) for m in mirrored], axis=1)     # [8 images, 144 values]
    assert abs(flat.mean()) < 0.1 and abs(flat.std() - 1) < 0.1              # N(0, 1)
    corr = np.corrcoef(flat)                                                # images against each other
    assert np.abs(corr[~np.eye(8, dtype=bool)]).max() < 0.35               # no two images share noise
    assert not np.allclose(mirrored[1], mirrored[2])                        # conv0 and conv1 of b8 differ
    assert not np.allclose(mirrored[0], mirrored[1][..., :4, :4, :])        # 8x8 does not start with the 4x4 values
    assert np.abs(np.corrcoef(mirrored[1].ravel(), mirrored[2].ravel())[0, 1]) < 0.2
    for i in layers:                                                        # replicas split one global draw
        one = f[f"one_device.{i}"]                                          # [1, 8, r, r, 1]
        np.testing.assert_array_equal(f[f"mirrored2.{i}"].reshape(one.shape), one)
        assert not np.allclose(f[f"next.{i}"], one)                         # the next phase draws new noise


def _traced_convs(trainer, phase, res: int) -> dict[tuple[str, str], int]:
    """(op, dtype) -> count of the convolutions in the traced step of `phase` (nested functions included)."""
    import collections
    real, c = tf.zeros([trainer.cfg.batch, res, res, 3]), tf.zeros([trainer.cfg.batch, 0])
    graph = trainer._step(phase, (res, False)).get_concrete_function(real, c, trainer._randomness(res, phase)).graph
    gdef = graph.as_graph_def()
    nodes = list(gdef.node) + [n for f in gdef.library.function for n in f.node_def]
    return dict(collections.Counter((n.op, tf.dtypes.as_dtype(n.attr["T"].type).name) for n in nodes
                                    if n.op == "Conv2D"))


@pytest.mark.parametrize("precision,dtype", [("fp16", "float16"), ("bf16", "bfloat16")])
def test_reduced_precision_really_runs_in_the_traced_training_step(tmp_path, precision, dtype):
    """At 16x16 with the top 4 resolutions in reduced precision (never 4x4, as StyleGAN2-ADA: G's b8 and b16,
    D's b16 and b8), the traced G and D main steps hold these forward Conv2D ops: Gmain 4 in G (conv1 and
    torgb of b8, b16), 7 in D's reduced blocks (b16: fromrgb, skip, conv0, conv1; b8: skip, conv0, conv1) and
    2 from the backward pass of G's transposed up-convolutions (b8.conv0, b16.conv0), all in `dtype`; G's b4
    (conv1, torgb) and D's head (b4.conv) stay float32. Dmain: G's 4 and D's 7 twice (fakes and reals) in
    `dtype`; G's b4 and the head twice in float32. Keras autocasting float16 inputs back to float32 in every
    layer would show 0 reduced-precision convs."""
    data = tiny_dataset(tmp_path, 8, res=16)
    counts = {}
    for prec in ("off", precision):
        cfg = tiny(data, tmp_path, res=16, cbase=256, mixed_precision=prec)
        trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path)
        counts[prec] = {p.name: _traced_convs(trainer, p, 16) for p in trainer.phases if p.main}
    assert counts["off"] == {"Gmain": {("Conv2D", "float32"): 16}, "Dmain": {("Conv2D", "float32"): 22}}
    assert counts[precision] == {"Gmain": {("Conv2D", dtype): 13, ("Conv2D", "float32"): 3},
                                 "Dmain": {("Conv2D", dtype): 18, ("Conv2D", "float32"): 4}}


def test_float16_training_stays_close_to_float32_for_several_iterations(tmp_path):
    """Eight iterations from the same weights and data, float16 (top 4 resolutions, loss scaling) against
    float32. Per-weight agreement is the wrong yardstick here: Adam's first steps move a weight by about lr
    whatever its gradient's size, so float16 rounding (2^-11 relative) that flips a tiny gradient's sign moves
    that weight by 2 lr. What must hold is that float16 follows float32's trajectory: its distance from the
    float32 weights is a small fraction of the distance float32 training moved them (measured 0.067;
    asserted below 0.25), and float16 did run (the distance is not 0)."""
    data = tiny_dataset(tmp_path, 16, res=16)
    start, end = {}, {}
    for prec in ("off", "fp16"):
        cfg = tiny(data, tmp_path / prec, res=16, cbase=256, kimg=0.032, kimg_per_tick=0.032, mixed_precision=prec,
                   noise_mode="const")
        run = tmp_path / prec / "run"
        run.mkdir(parents=True)
        trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), run)
        start[prec] = np.concatenate([w.numpy().ravel() for w in trainer.G.trainable_weights])
        trainer.train(Logger(run), resumed=True)
        end[prec] = np.concatenate([w.numpy().ravel() for w in trainer.G.trainable_weights])
    np.testing.assert_array_equal(start["fp16"], start["off"])              # the same initial weights
    moved = np.linalg.norm(end["off"] - start["off"])
    apart = np.linalg.norm(end["fp16"] - end["off"])
    assert 0 < apart < 0.25 * moved, (apart, moved)


def test_jit_compiles_each_phase_with_xla_and_computes_the_same_gradients(data8, tmp_path):
    """--jit on: each phase's forward and backward pass is one XLA cluster (a function marked
    _XlaMustCompile in the traced step), and from the same weights, rows and randomness it computes the
    gradients of the plain step to 1e-4 of their scale. Greg is the exception that XLA makes: its stateless
    normal generator turns the same seed into other numbers (measured: philox too), so the path-length noise
    is another draw, and Greg's gradients are only checked to be finite and not zero. On CPU XLA is 6x slower
    (benchmarks/bench_training.py --jit), so it is off by default. To keep the suite short, Dmain (D on
    fakes and reals: the pieces of Gmain and Dreg) is only checked to be marked, and the plain step's absence
    of the mark on one phase (each XLA compile costs 10-20 s here)."""
    trainers = {}
    for jit in ("off", "on"):
        (tmp_path / jit).mkdir()
        trainers[jit] = Trainer(tiny(data8, tmp_path / jit, jit=jit, noise_mode="const"),
                                tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path / jit)
    real = tf.constant(np.random.RandomState(0).randint(0, 256, [4, 8, 8, 3]), tf.uint8)
    c = tf.zeros([4, 0])

    def marked(trainer, phase, rnd) -> bool:
        traced = tf.function(trainer.gradients_fn(phase)).get_concrete_function(real, c, rnd).graph.as_graph_def()
        return any(f.attr["_XlaMustCompile"].b for f in traced.library.function)

    assert {p.name for p in trainers["off"].phases} == {"Gmain", "Greg", "Dmain", "Dreg"}
    for phase in trainers["off"].phases:
        rnd = trainers["off"]._randomness(8, phase)
        assert marked(trainers["on"], phase, rnd), phase.name
        if phase.name == "Dreg":
            assert not marked(trainers["off"], phase, rnd)
        if phase.name == "Dmain":
            continue
        grads = {jit: trainer.strategy.run(trainer.gradients_fn(phase), args=(real, c, rnd))[0]
                 for jit, trainer in trainers.items()}
        if phase.name == "Greg":           # another noise draw: finite and not zero (its size varies by 2-3x)
            flat = np.concatenate([g.numpy().ravel() for g in grads["on"]])
            assert np.isfinite(flat).all() and np.abs(flat).max() > 0
            continue
        for a, b, v in zip(grads["off"], grads["on"], trainers["off"].G.trainable_weights
                           if phase.net == "G" else trainers["off"].D.trainable_weights):
            scale = float(np.abs(a.numpy()).max()) + 1e-12
            assert np.abs(a.numpy() - b.numpy()).max() <= 1e-4 * scale, (phase.name, v.path)


def test_a_non_finite_step_changes_no_weight_and_no_running_statistic(data8, tmp_path):
    """A NaN injected into one G regularisation step: the step is skipped, G's weights, w_avg and the
    path-length mean keep their values bit for bit, and the next finite step updates them again."""
    trainer = Trainer(tiny(data8, tmp_path), tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path)
    greg = next(p for p in trainer.phases if p.name == "Greg")
    real, c = tf.zeros([4, 8, 8, 3]), tf.zeros([4, 0])
    step = trainer._step(greg, (8, False))
    step(real, c, trainer._randomness(8, greg))                               # pl_mean moves off 0
    snap = lambda: [v.numpy().copy() for v in [*trainer.G.trainable_weights, *trainer.running_stats()]]  # noqa: E731
    before = snap()
    bad = trainer._randomness(8, greg)
    bad["z"] = tf.fill(tf.shape(bad["z"]), float("nan"))
    _, finite = step(real, c, bad)
    assert float(finite) == 0.0
    for a, b in zip(before, snap()):
        np.testing.assert_array_equal(a, b)
    _, finite = step(real, c, trainer._randomness(8, greg))
    assert float(finite) == 1.0 and float(trainer.loss.pl_mean.numpy()) != float(before[-2])
    assert np.isfinite(trainer.loss.pl_mean.numpy()) and np.isfinite(trainer.G.mapping.w_avg.numpy()).all()


def test_an_injected_overflow_is_survived_and_logged(data8, tmp_path):
    """A run whose G regularisation step overflows once (a NaN injected into its latents) keeps training: the
    iteration is counted and logged, the path-length mean stays finite, the run ends at its kimg."""
    trainer = Trainer(tiny(data8, tmp_path, g_reg_interval=2), tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path)
    draw, calls = trainer._randomness, []

    def inject(res, phase):
        rnd = draw(res, phase)
        calls.append(phase.name)
        if phase.name == "Greg" and calls.count("Greg") == 2:
            rnd["z"] = tf.fill(tf.shape(rnd["z"]), float("inf"))
        return rnd
    trainer._randomness = inject
    logger = Logger(tmp_path)
    trainer.train(logger, resumed=False)
    logger.close()
    log = (tmp_path / "log.txt").read_text()
    assert "skipped 1 iteration(s) with non-finite gradients this tick (1 in all)" in log
    stats = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["Progress/nonfinite_total"] == 1 and stats[-1]["Progress/kimg"] == pytest.approx(0.032)
    assert np.isfinite(stats[-1]["Progress/pl_mean"]) and stats[-1]["Progress/pl_mean"] > 0


def test_the_loss_scale_is_capped():
    from training.loss_scale import MAX_LOSS_SCALE
    scaler = LossScaler(enabled=True, initial=MAX_LOSS_SCALE / 2, growth_steps=1)
    for _ in range(3):
        scaler.update(tf.constant(1.0))
    assert float(scaler.loss_scale.numpy()) == MAX_LOSS_SCALE
    scaler.update(tf.constant(0.0))
    assert float(scaler.loss_scale.numpy()) == MAX_LOSS_SCALE / 2


def test_tf32_follows_the_option(data8, tmp_path):
    """--tf32 off (the default, as StyleGAN2-ADA) turns TensorFlow's TensorFloat-32 default off; on keeps it."""
    try:
        for value, enabled in (("on", True), ("off", False)):
            Trainer(tiny(data8, tmp_path, tf32=value), tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path)
            assert tf.config.experimental.tensor_float_32_execution_enabled() is enabled
        assert TrainConfig().tf32 == "off"
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(False)


def test_bench_training_times_mixed_precision_against_float32():
    """`benchmarks/bench_training.py --mixed-precision bf16`, as a user runs it: both arms train and the ratio is
    printed (how the README's bf16 figure on an AMX CPU was measured)."""
    r = run_cli("benchmarks/bench_training.py", "--setting", "narrow32", "--warmup", "1", "--iters", "1",
                "--mixed-precision", "bf16")
    assert r.returncode == 0, r.stderr[-2000:]
    arms = re.findall(r"^training narrow32 .*?(, bf16 in the top 4 resolutions)?: ([\d.]+) img/s", r.stdout, re.M)
    assert [a[0] for a in arms] == ["", ", bf16 in the top 4 resolutions"] and all(float(a[1]) > 0 for a in arms)
    ratio = re.search(r"^--mixed-precision bf16: ([\d.]+) x the img/s of float32$", r.stdout, re.M)
    assert ratio and abs(float(ratio.group(1)) - float(arms[1][1]) / float(arms[0][1])) < 0.01
    starts = re.findall(r"^training 32x32 from .*$", r.stdout, re.M)        # the training loop's own first line
    assert len(starts) == 2 and "bf16" not in starts[0] and starts[1].endswith("; bf16 in the 4 highest resolutions")


def test_every_training_option_is_one_definition_in_train_config():
    """run_training.py's flags are made from TrainConfig's option() fields: the same names, defaults, choices and
    bounds, so a flag and the option it sets cannot drift apart; parsed values are typed."""
    import dataclasses
    from absl import flags
    from common.cli import define_flags
    from training.config import TrainConfig, command_line_options
    fv = flags.FlagValues()
    define_flags(command_line_options(), fv)
    fv(["run_training.py"])
    names = [f.name for f in command_line_options()]
    assert set(names) == set(fv) and {"data", "res", "aug", "resume", "freezed", "dry_run"} <= set(names)
    defaults = TrainConfig()
    for name in names:
        assert fv[name].value == getattr(defaults, name) and fv[name].help, name
    assert not {"transfer", "keep", "noise_mode"} & set(names)          # set by presets, networks, tests
    fv(["run_training.py", "--res", "64", "--aug", "fixed", "--p", "0.25", "--mirror", "--kimg", "2.5"])
    cfg = TrainConfig(**{n: fv[n].value for n in names})
    assert (cfg.res, cfg.aug, cfg.p, cfg.mirror, cfg.kimg) == (64, "fixed", 0.25, True, 2.5)
    assert dataclasses.asdict(cfg)["res"] == 64
    for bad in (["--res", "2"], ["--aug", "sometimes"], ["--p", "1.5"]):
        try:
            fv(["run_training.py", *bad])
        except flags.IllegalFlagValueError:
            continue
        raise AssertionError(f"{bad} was accepted")
