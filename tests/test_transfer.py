"""Starting a run from a trained network (transfer learning): NVIDIA's weights arrive untouched, the
architecture comes from the network, contradictions are one-line errors, Freeze-D, a network without D."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, TF_LOG_LINE, run_cli, tiny_dataset
from common.errors import UserError
from datasets.format import discover
from networks.locate import shipped_file
from networks.serialize import load_network, save_bundle
from networks.stylegan2 import official_state
from training.config import TrainConfig, resolve
from training.training_loop import Trainer, load_transfer_source
from training.transfer import apply_network, continues_run, freeze_layers

PARITY = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32"
PICKLES = ROOT / "tests" / "fixtures" / "nvidia-pickles"


def nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1))


@pytest.fixture(scope="module")
def data32(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("tl32"), 8, res=32)


@pytest.fixture(scope="module")
def data16(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("tl16"), 8, res=16)


def configured(data: Path, bundle, source: str, **kw) -> TrainConfig:
    """What run_training.py builds for `--data data --resume source` (plus flags `kw`), resolved."""
    layout = discover(data)
    cfg = TrainConfig(data=str(data), cfg="small", batch=8, kimg=0.016, kimg_per_tick=0.008, **kw)
    cfg = apply_network(cfg, bundle, source, Path(source), "", layout.resolutions, 3, 0)
    return resolve(cfg, cfg.res, 1, 8)


def test_resume_tells_a_run_from_a_network(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert continues_run("latest") and continues_run(str(tmp_path / "run"))
    assert not continues_run(None) and not continues_run("utkface-64") and not continues_run("ffhq-256")
    assert not continues_run(str(PICKLES / "ada-pytorch-32.pkl")) and not continues_run(str(PARITY))


def test_a_run_from_nvidias_network_starts_with_its_weights_at_kimg_0(data32, tmp_path):
    """Before any step, G_ema renders NVIDIA's reference images and D gives NVIDIA's logits (1e-4), the
    architecture is the network's (z/w 64, 2 mapping layers, channel base 1024, max 64) whatever the preset
    (`small`: map 2, cbase 8192, cmax 256) says, and the run stands at kimg 0 with fresh optimizers."""
    bundle = load_network(PARITY)
    bundle.metadata.update({"kimg": 4.0, "kimg_total": 36.0})   # as a snapshot of a run from a 32-kimg network
    cfg = configured(data32, bundle, str(PARITY))
    assert cfg.transfer["kimg"] == 36.0
    assert (cfg.res, cfg.zdim, cfg.wdim, cfg.map, cfg.cbase, cfg.cmax) == (32, 64, 64, 2, 1024, 64)
    assert cfg.ada_kimg == 100 and cfg.ema_rampup == 0.0                    # StyleGAN2-ADA's transfer settings
    assert cfg.glr == 0.0025 and cfg.batch == 8                             # the preset's hyperparameters
    trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path, start_from=bundle)
    ref = np.load(PARITY / "reference.npz")
    img = trainer.G_ema.synthesis(ref["ws"], noise_mode="const").numpy()
    assert np.abs(img - nhwc(ref["img_const"])).max() < 1e-4
    assert np.abs(trainer.D(nhwc(ref["reals"])).numpy() - ref["d_logits_real"]).max() < 1e-4
    ws = trainer.G.mapping(ref["z"])                                       # G starts as G_ema (none in an npz)
    assert np.abs(ws.numpy() - ref["ws"]).max() < 1e-4
    assert trainer.state.nimg == 0 and int(trainer.opts["G"].iterations.numpy()) == 0
    meta = trainer.snapshot_metadata()                      # the kimg count carries on across runs
    assert (meta["kimg"], meta["kimg_total"]) == (0.0, 36.0)


@pytest.mark.parametrize("kw,message", [
    (dict(res=16), "--res 16 contradicts the network"),
    (dict(cbase=2048), "--cbase 2048 contradicts the network"),
    (dict(map=8), "--map 8 contradicts the network"),
    (dict(cond=True), "--cond: the network"),
    (dict(progressive=True), "--progressive grows a network"),
])
def test_flags_that_contradict_the_network_are_one_line_errors(data32, kw, message):
    bundle = load_network(PARITY)
    with pytest.raises(UserError, match=message) as err:
        configured(data32, bundle, "uncond-32", **kw)
    assert "\n" not in str(err.value)


def test_a_dataset_that_does_not_fit_the_network_is_a_one_line_error(tmp_path):
    bundle = load_network(PARITY)
    cfg = TrainConfig(data="mine")
    with pytest.raises(UserError, match=r"makes 32x32 images, but the dataset mine has no 32x32 level \(it has 8, 16"):
        apply_network(cfg, bundle, "uncond-32", PARITY, "", [8, 16], None, 0)
    with pytest.raises(UserError, match="makes 3-channel images, but the dataset mine holds 1-channel images"):
        apply_network(cfg, bundle, "uncond-32", PARITY, "", [32], 1, 0)
    cond = load_network(PICKLES / "tf1-ada-cond-16.pkl", cache=False)
    with pytest.raises(UserError, match=r"is conditional \(labels of size 4\), but the dataset mine has no labels"):
        apply_network(cfg, cond, "cond", PICKLES, "", [16], 3, 0)
    with pytest.raises(UserError, match="has labels of size 2"):
        apply_network(cfg, cond, "cond", PICKLES, "", [16], 3, 2)
    assert apply_network(cfg, cond, "cond", PICKLES, "", [16], 3, 4).cond      # labels that fit: conditional run


def test_float16_from_a_float32_network_takes_adas_resolutions_and_clamp(data32, data16):
    bundle = load_network(PARITY)                                          # num_fp16_res 0, conv_clamp None
    assert configured(data32, bundle, "p").conv_clamp is None
    cfg = configured(data32, bundle, "p", mixed_precision="fp16")
    assert (cfg.fp16_res, cfg.conv_clamp) == (4, 256.0)
    ada = load_network(PICKLES / "ada-pytorch-clamp-16.pkl", cache=False)  # the network's own clamp is kept
    assert configured(data16, ada, "a", mixed_precision="fp16").conv_clamp == 0.5


def test_freeze_d_counts_layers_as_stylegan2_ada():
    """--freezed N: fromrgb, conv0, conv1, skip of b32, then conv0, conv1, skip of b16 (no fromrgb below the
    top), ...; frozen layers' weights leave D's trainable weights; the head is never frozen."""
    D = load_network(PARITY).D
    n_all = len(D.trainable_weights)
    assert freeze_layers(D, 5) == ["b32.fromrgb", "b32.conv0", "b32.conv1", "b32.skip", "b16.conv0"]
    frozen = {id(v) for name, v in official_state(D).items() if name.startswith(("b32.", "b16.conv0."))}
    assert len(frozen) == 9                                                # 4 biased convs and the skip
    assert {id(v) for v in D.trainable_weights}.isdisjoint(frozen)
    assert len(D.trainable_weights) == n_all - 9
    with pytest.raises(UserError, match=r"--freezed 13: D has 10 layers that can be frozen \(0 to 10\)"):
        freeze_layers(load_network(PARITY).D, 13)


def test_the_shipped_model_brings_its_d_and_a_g_ema_only_network_warns(tmp_path):
    """--resume utkface-64: G and G_ema start as its G_ema and D as its D (shipped for fine-tuning), no warning.
    A G_ema-only export of it (`--ema_only`) says in one warning line that D starts from random weights."""
    bundle = load_network("utkface-64")
    assert bundle.D is not None and bundle.G is None
    data = tiny_dataset(tmp_path, 8, res=64)
    cfg = configured(data, bundle, "utkface-64")
    cfg.transfer["file"] = str(shipped_file("utkface-64"))
    start, notes = load_transfer_source(cfg)
    assert notes == [notes[0]] and notes[0].startswith("starting a new run from the network utkface-64 (keras") \
        and "G (a copy of G_ema: the network has no G) and D copied; kimg 0, fresh optimizers" in notes[0], notes
    trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path, start_from=start)
    for net, src in ((trainer.G, bundle.G_ema), (trainer.G_ema, bundle.G_ema), (trainer.D, bundle.D)):
        for a, b in zip(net.weights, src.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    ema_only = save_bundle(tmp_path / "ema-only.keras", bundle.G_ema)
    cfg = configured(data, load_network(ema_only), str(ema_only))
    _, notes = load_transfer_source(cfg)
    assert notes[1] == (f"warning: {ema_only} has no discriminator (a G_ema-only network): D starts from random "
                        "weights")


def test_cli_fine_tunes_an_nvidia_pickle_with_freeze_d_then_continues_the_run(data16, tmp_path):
    """run_training.py --resume PKL --freezed 2: a new run at kimg 0 whose log and options say where the
    weights came from; after training, the frozen layers hold the pickle's weights and the others moved.
    Then --resume RUN continues that run at its kimg without reading the pickle again."""
    pkl = tmp_path / "theirs.pkl"
    pkl.write_bytes((PICKLES / "ada-pytorch-clamp-16.pkl").read_bytes())
    common = ["--data", str(data16), "--outdir", str(tmp_path / "results"), "--batch", "4", "--cfg", "small",
              "--kimg_per_tick", "0.008", "--snap", "1", "--aug", "off"]
    proc = run_cli("run_training.py", *common, "--resume", str(pkl), "--freezed", "2", "--kimg", "0.008",
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert not TF_LOG_LINE.search(out)
    assert ("starting a new run from the network " + str(pkl) + " (stylegan2-ada-pytorch): G_ema, G and D copied; "
            "kimg 0, fresh optimizers") in out
    assert "--freezed 2: D's layers b16.fromrgb, b16.conv0 are not trained" in out
    assert "training 16x16 from 0.0 kimg" in out
    assert "snapshot at 0.000 kimg: ckpt-0, network-snapshot-000000.keras, fakes000000.png" in out
    run = next((tmp_path / "results").iterdir())
    opts = json.loads((run / "training_options.json").read_text())
    assert opts["transfer"]["source"] == str(pkl) and opts["transfer"]["networks"] == ["G", "D", "G_ema"]
    assert (opts["cbase"], opts["cmax"], opts["zdim"], opts["conv_clamp"], opts["freezed"]) == (256, 16, 16, 0.5, 2)
    assert opts["transfer"]["file"] == str(pkl.resolve())
    src = {k: v.numpy() for k, v in official_state(load_network(pkl, cache=False).D).items()}
    after = {k: v.numpy() for k, v in official_state(load_network(run).D).items()}
    for key in src:
        frozen = key.startswith(("b16.fromrgb.", "b16.conv0."))
        assert np.array_equal(src[key], after[key]) == frozen, key
    start = load_network(run / "network-snapshot-000000.keras")          # kimg 0: the pickle itself
    theirs = load_network(pkl, cache=False)
    for mine, ref in ((start.D, theirs.D), (start.G_ema, theirs.G_ema)):
        ref_state = {k: v.numpy() for k, v in official_state(ref).items()}
        assert all(np.array_equal(v.numpy(), ref_state[k]) for k, v in official_state(mine).items())

    pkl.unlink()                                        # a continued run no longer needs the pickle
    proc = run_cli("run_training.py", "--resume", str(run), "--kimg", "0.016", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert f"resumed {run} at 0.008 kimg" in out and "starting a new run" not in out
    assert "snapshot at 0.000 kimg" not in out                    # kimg 0 belongs to the start from the network
    assert "--freezed 2: D's layers b16.fromrgb, b16.conv0 are not trained" in out
    after2 = {k: v.numpy() for k, v in official_state(load_network(run).D).items()}
    assert np.array_equal(after2["b16.conv0.weight"], src["b16.conv0.weight"])
    assert not np.array_equal(after2["b16.conv1.weight"], after["b16.conv1.weight"])


def test_a_higher_res_grows_nvidias_network_its_blocks_kept_and_the_new_ones_fading_in(tmp_path):
    """--res 64 from NVIDIA's 32x32 network: a progressive run from lod 1 (32x32) with no training at 32, whose
    G_ema renders NVIDIA's reference images at 32x32 (brought to 64 by the skip path's upsampling) and whose D
    gives NVIDIA's logits on 32x32 reals (1e-4); only the 64x64 blocks (and D's unused lower fromRGBs) are new."""
    from networks.ops import upsample2d, setup_filter
    data64 = tiny_dataset(tmp_path / "d", 8, res=64)
    bundle = load_network(PARITY)
    cfg = configured(data64, bundle, "uncond-32", res=64)
    assert (cfg.res, cfg.progressive, cfg.lod_initial_res, cfg.lod_training_kimg) == (64, True, 32, 0.0)
    assert cfg.transfer["grown_from"] == 32 and cfg.lod_transition_kimg == 20
    trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path, start_from=bundle)
    assert trainer.schedule.lod(0) == 1.0 and trainer.schedule.stage(0) == (32, False)
    assert trainer.schedule.stage(8) == (64, True)
    assert {k.split(".")[1] if k.startswith("synthesis.") else k.split(".")[0]
            for k in trainer.new_weights} == {"b64", "b16", "b8", "b4"}
    assert all(k.startswith("synthesis.b64.") or k.startswith("b64.") or ".fromrgb." in k
               for k in trainer.new_weights)
    ref = np.load(PARITY / "reference.npz")
    ws = np.concatenate([ref["ws"], ref["ws"][:, -2:]], axis=1)            # 2 more ws for the 64x64 block
    low = trainer.G_ema.synthesis(ws, noise_mode="const", lod=1.0, res=32).numpy()
    assert np.abs(low - nhwc(ref["img_const"])).max() < 1e-4
    full = trainer.G_ema.synthesis(ws, noise_mode="const", lod=1.0).numpy()      # what fakes_init.png shows
    assert full.shape[1:3] == (64, 64)
    assert np.abs(full - upsample2d(low, setup_filter()).numpy()).max() < 1e-5
    assert np.abs(trainer.D(nhwc(ref["reals"])).numpy() - ref["d_logits_real"]).max() < 1e-4


def test_cli_grows_a_network_then_a_grown_snapshot_fine_tunes(data16, tmp_path):
    """run_training.py --resume PKL --res 32 on a 32x32 dataset: the log says what grows; the kimg-0 snapshot is
    the pickle's G_ema (its faces at 16x16 brought to 32); the fade-in ends at 0.008 kimg and the last snapshot
    renders all 32x32 blocks. That snapshot then starts a fine-tune at 32x32 (its D's lower fromRGBs left out)."""
    pkl = PICKLES / "ada-pytorch-clamp-16.pkl"
    data32 = tiny_dataset(tmp_path / "d", 8, res=32)
    common = ["--data", str(data32), "--outdir", str(tmp_path / "results"), "--batch", "4", "--cfg", "small",
              "--kimg_per_tick", "0.008", "--snap", "1", "--aug", "off"]
    proc = run_cli("run_training.py", *common, "--resume", str(pkl), "--res", "32", "--lod_transition_kimg",
                   "0.008", "--kimg", "0.016", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert not TF_LOG_LINE.search(out)
    assert ("growing the network from 16x16 to 32x32: G's and D's blocks up to 16x16 come from it; the new ones "
            "(b32) fade in over 0.008 kimg from kimg 0") in out
    assert "progressive: 16x16 from 0.000 kimg (lod 1.000)" in out
    run = next((tmp_path / "results").iterdir())
    opts = json.loads((run / "training_options.json").read_text())
    assert (opts["res"], opts["progressive"], opts["lod_initial_res"], opts["transfer"]["grown_from"]) == \
        (32, True, 16, 16)
    theirs = load_network(pkl, cache=False)
    start = load_network(run / "network-snapshot-000000.keras")
    assert start.G_ema.lod == 1.0 and start.G_ema.get_config()["img_resolution"] == 32
    z = np.random.RandomState(0).randn(2, theirs.G_ema.z_dim).astype(np.float32)
    mine = start.G_ema(z, noise_mode="const", lod=1.0)                       # [2, 32, 32, 3]
    ref = theirs.G_ema(z, noise_mode="const")                                # [2, 16, 16, 3]
    assert mine.shape[1] == 32
    assert np.abs(start.G_ema.synthesis(start.G_ema.mapping(z), noise_mode="const", lod=1.0, res=16).numpy()
                  - ref.numpy()).max() < 1e-4
    end = load_network(run / "network-snapshot-000000.016.keras")
    assert end.G_ema.lod == 0.0 and end.D.get_config()["progressive"]

    bundle = load_network(run / "network-snapshot-000000.016.keras")           # a grown network, fine-tuned
    cfg = configured(data32, bundle, "grown")
    assert cfg.res == 32 and not cfg.progressive and "grown_from" not in cfg.transfer
    trainer = Trainer(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), tmp_path / "ft", start_from=bundle)
    assert trainer.new_weights == []
    img = nhwc(np.random.RandomState(1).rand(2, 3, 32, 32).astype(np.float32) * 2 - 1)
    assert np.abs(trainer.D(img).numpy() - bundle.D(img).numpy()).max() < 1e-5
    with pytest.raises(UserError, match=r"a snapshot taken while growing \(level of detail 1"):
        configured(data32, start, "mid-growth")


def test_cli_resume_errors_are_one_line(data16, tmp_path):
    proc = run_cli("run_training.py", "--resume", str(PICKLES / "ada-pytorch-32.pkl"))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (f"error: --resume {PICKLES / 'ada-pytorch-32.pkl'} starts a new "
                                                    "run from that network: pass --data DATASET too")
    proc = run_cli("run_training.py", "--data", str(data16), "--resume", str(tmp_path / "nowhere"))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == f"error: --resume {tmp_path / 'nowhere'}: no such run folder or " \
                                                   "network file"
