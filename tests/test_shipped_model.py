"""The face model that ships with the repo (models/utkface-64): intact, deterministic, its directions bound to it,
the default network of every command when no run exists, and `make demo` (reduced) working on it."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, TF_LOG_LINE
from common.errors import UserError
from common.images import crop_resize, read_image
from latent.directions import load_direction, network_id
from latent.seeds import seed_to_z
from networks import locate
from networks.serialize import load_network

MODEL = locate.SHIPPED["utkface-64"]
FIXTURE = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32"

# G_ema(seed_to_z(seed), psi 1, constant noise) at [y, x], RGB in [-1, 1], measured when the model was committed
REFERENCE = {0: ((32, 32), (0.60977, 0.42994, 0.31107)),
             1: ((20, 40), (0.44565, 0.00434, -0.18653)),
             2: ((50, 10), (0.76796, 0.48765, 0.06269))}


def test_file_is_small_and_has_the_recorded_sha256():
    assert MODEL.file.stat().st_size <= 40 * 10**6                   # G_ema and D together
    assert len(MODEL.sha256) == 64 and locate.sha256_of(MODEL.file) == MODEL.sha256
    assert locate.shipped_file("utkface-64") == MODEL.file
    card = (MODEL.folder / "MODEL_CARD.md").read_text()
    assert MODEL.sha256 in card and "non-commercial" in card
    assert (MODEL.folder / "training_options.json").is_file()


def test_damaged_or_lfs_pointer_copy_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "utkface-64"
    folder.mkdir()
    data = bytearray(MODEL.file.read_bytes())
    data[len(data) // 2] ^= 1
    (folder / MODEL.filename).write_bytes(bytes(data))
    monkeypatch.setitem(locate.SHIPPED, "utkface-64", dataclasses.replace(MODEL, folder=folder))
    with pytest.raises(UserError, match="damaged or was replaced"):
        locate.shipped_file("utkface-64")
    (folder / MODEL.filename).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    with pytest.raises(UserError, match="git lfs pull"):
        locate.shipped_file("utkface-64")
    (folder / MODEL.filename).unlink()
    with pytest.raises(UserError, match="missing"):
        locate.shipped_file("utkface-64")


def test_generates_the_recorded_faces():
    bundle = load_network("utkface-64")
    G = bundle.G_ema
    assert bundle.G is None and bundle.D is not None                 # G_ema, and D for fine-tuning
    assert G.img_resolution == 64 and G.c_dim == 0
    z = np.concatenate([seed_to_z(s, G.z_dim) for s in REFERENCE])
    img = G(z, None, truncation_psi=1.0, noise_mode="const").numpy()  # [3, 64, 64, 3]
    for i, ((y, x), rgb) in enumerate(REFERENCE.values()):
        np.testing.assert_allclose(img[i, y, x], rgb, atol=2e-3)
    assert img.std(axis=(1, 2, 3)).min() > 0.2                       # images, not a flat colour


def real_faces(res: int) -> np.ndarray:
    """The 160 UTKFace faces in data/faces at `res`, read and resized as dataset_tool/create.py does, in [-1, 1]."""
    files = sorted((ROOT / "data" / "faces").glob("*.jpg"))
    faces = np.stack([crop_resize(read_image(f), res)[0] for f in files])                # [160, res, res, 3]
    return faces.astype(np.float32) / 127.5 - 1


# committed bundles that hold D beside G_ema: the shipped model (fine-tuned with --resume utkface-64) and any
# in-training state under models/in-training/ (continued with --resume FILE; none while the run ships)
BUNDLES_WITH_D = [MODEL.file] + sorted((ROOT / "models" / "in-training").glob("*/G_ema-D-*.keras"))


@pytest.mark.parametrize("path", BUNDLES_WITH_D, ids=lambda p: p.name)
def test_committed_d_scores_real_faces_above_its_own_fakes(path):
    """The D saved beside G_ema is the one trained with it: real UTKFace faces get clearly higher logits than
    G_ema's fakes (random noise), as they do for a discriminator in training."""
    bundle = load_network(path)
    assert bundle.D is not None and bundle.G_ema.img_resolution == 64
    reals = real_faces(64)
    z = np.concatenate([seed_to_z(s, bundle.G_ema.z_dim) for s in range(len(reals))])
    fakes = np.concatenate([bundle.G_ema(z[i:i + 32], None, noise_mode="random").numpy()
                            for i in range(0, len(z), 32)])
    d_real = np.concatenate([bundle.D(reals[i:i + 32]).numpy() for i in range(0, len(reals), 32)])[:, 0]
    d_fake = np.concatenate([bundle.D(fakes[i:i + 32]).numpy() for i in range(0, len(fakes), 32)])[:, 0]
    # the gap moves as G and D train (196 kimg: 0.16 against -1.06; 368: 0.31 against -0.24, 83.1 %; 512: 0.43
    # against -0.12, 80.6 %; 536: -0.07 against -0.90, 86.2 %); three randomly initialised Ds of this config:
    # gaps -0.03 to 0.00, 41-57 % above the fakes' median
    assert d_real.mean() > d_fake.mean() + 0.3                   # shipped (608 kimg): 0.62 against -0.16
    assert (d_real > np.median(d_fake)).mean() > 0.7             # shipped: 91.9 %


def test_directions_belong_to_the_model_and_are_refused_by_another():
    G = load_network(MODEL.file).G_ema
    net_id = network_id(MODEL.file.name, G)
    for name, component in (("age", None), ("gender", None), ("sefa", 0)):
        d, scale = load_direction(MODEL.directions, name, component, net_id, G.w_dim)
        assert d.shape == (G.w_dim,) and abs(np.linalg.norm(d) - 1) < 1e-4 and scale > 0
    other = load_network(FIXTURE).G_ema
    with pytest.raises(UserError, match="made for network"):
        load_direction(MODEL.directions, "age", None, network_id("other.keras", other), G.w_dim)


def test_default_network_is_the_newest_run_snapshot_else_the_shipped_model(tmp_path):
    said: list[str] = []
    assert locate.find_network(None, tmp_path / "results", log=said.append) == MODEL.file
    assert "shipped model utkface-64" in said[-1]
    assert locate.directions_folder(None, None, tmp_path / "results") == MODEL.directions
    assert locate.directions_folder("utkface-64", None) == MODEL.directions
    assert locate.directions_folder(str(MODEL.file), "mine") == Path("mine")
    run = tmp_path / "results" / "00000-faces"
    run.mkdir(parents=True)
    shutil.copy(MODEL.file, run / "network-snapshot-000004.keras")
    assert locate.find_network(None, tmp_path / "results", log=said.append) == run / "network-snapshot-000004.keras"
    assert "newest snapshot" in said[-1]
    assert locate.directions_folder(None, None, tmp_path / "results") == Path("directions")


def test_run_generator_without_network_says_it_uses_the_shipped_model(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run_generator.py"), "--seeds", "0-1", "--edit", "age=-2..2",
                           "--steps", "3", "--outdir", "out"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "using the shipped model utkface-64" in proc.stderr
    assert (tmp_path / "out" / "edit-age.png").is_file()


def test_demo_reduced_variant(tmp_path):
    """`make demo` with DEMO_QUICK=1: every step of the shipped-model part and of train-your-own, and not one
    TensorFlow C++ log line in what it prints (the commands' own default, not the test process's setting)."""
    env = dict(os.environ, DEMO_QUICK="1", DEMO_OUT=str(tmp_path / "demo"), PYTHONUNBUFFERED="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), sys.executable], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    ship = tmp_path / "demo" / "utkface-64"
    for name in ("grid.png", "seed0015.png", "stylemix.png", "interpolate.mp4", "edit-age.png", "edit-gender.png",
                 "projection/proj.png", "projection/projected_w.npz", "projection/edit-age.png",
                 "projection/tuned.keras", "projection/proj-w.png", "web/index.html", "web/model.js"):
        assert (ship / name).is_file(), name
    aligned = Image.open(ship / "projection" / "aligned.png")            # the raw photo went through the aligner
    assert aligned.size == (64, 64) and "face" in aligned.text and "the largest of 1 face(s)" in proc.stdout
    assert (tmp_path / "demo" / "generated" / "grid.png").is_file()
    assert "demo finished" in proc.stdout
    assert not TF_LOG_LINE.search(proc.stdout + proc.stderr), TF_LOG_LINE.findall(proc.stdout + proc.stderr)


def test_the_shipped_models_folder_names_that_model():
    """--network models/utkface-64 (its folder, as a user points at it) is the shipped model: its checked file,
    its directions, framing and encoder."""
    from networks.locate import SHIPPED, directions_folder, encoder_file, find_network, framing_file
    model = SHIPPED["utkface-64"]
    for arg in ("models/utkface-64", str(model.folder), str(model.file)):
        assert find_network(arg) == model.file
        assert directions_folder(arg, None) == model.directions and framing_file(arg) == model.framing
        assert encoder_file(arg) in (None, model.folder / "encoder.keras")
