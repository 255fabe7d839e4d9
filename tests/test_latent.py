"""run_generator.py latent-space modes: style mixing, interpolation videos, directions and attribute editing."""
from __future__ import annotations

import json
import re

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from dataset_tool.build import CreateConfig, create_dataset
from latent.attributes import (AttributeClassifier, AttributeTarget, attribute_target, describe_strength,
                               edit_strength, learn_direction, train_attribute_classifier)
from latent.directions import affine_layers, direction_scales, edit_ws, ganspace_directions, parse_edit, sefa_directions
from latent.mixing import mix_styles, parse_styles
from latent.modes import STRENGTH_SEEDS
from latent.runner import LatentRunner, sample_w
from latent.seeds import seed_to_z
from latent.walk import walk
from networks.stylegan2 import Generator
from networks.serialize import load_network
from common.errors import UserError

NET = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32"


def test_parse_styles_groups_and_ranges():
    assert parse_styles("coarse", 18) == [0, 1, 2, 3]           # 4-8 px, as in the StyleGAN figure
    assert parse_styles("middle", 18) == [4, 5, 6, 7]           # 16-32 px
    assert parse_styles("fine", 18) == list(range(8, 18))       # 64-1024 px
    assert parse_styles("0-6", 18) == list(range(7))
    assert parse_styles("0,2,4-5", 8) == [0, 2, 4, 5]
    for bad in ("3-1", "0-18", "x", ""):
        with pytest.raises(UserError):
            parse_styles(bad, 18)
    with pytest.raises(UserError, match="no fine layers"):
        parse_styles("fine", 8)                                 # a 32x32 network has no 64+ px layers
    assert parse_edit("age=-3..3") == ("age", None, -3.0, 3.0)
    assert parse_edit("sefa:2=-1.5..2") == ("sefa", 2, -1.5, 2.0)
    with pytest.raises(UserError):
        parse_edit("age=3")


def test_style_mix_grid_equals_mixing_by_hand(tmp_path):
    r = run_cli("run_generator.py", "--network", str(NET), "--mode", "style-mix", "--rows", "85,100",
                "--cols", "55,821,1789", "--styles", "0-2", "--outdir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    G = load_network(NET).G_ema
    runner = LatentRunner(G)
    w85, w821 = runner.seeds([85]), runner.seeds([821])
    by_hand = w85.copy()
    by_hand[:, :3] = w821[:, :3]                                 # row keeps its layers, except 0-2 from the column
    expected = runner.synthesize(by_hand)[0]
    got = np.asarray(Image.open(tmp_path / "mix-85-821.png"))
    np.testing.assert_array_equal(got, expected)
    grid = np.asarray(Image.open(tmp_path / "stylemix.png"))
    assert grid.shape == (3 * 32, 4 * 32, 3)
    np.testing.assert_array_equal(grid[32:64, 64:96], expected)  # row 1 (seed 85), column 2 (seed 821)
    np.testing.assert_array_equal(grid[:32, :32], 0)             # blank corner
    np.testing.assert_array_equal(grid[32:64, :32], runner.synthesize(w85)[0])
    mixed = mix_styles(w85, w821, [0, 1, 2])
    np.testing.assert_array_equal(mixed[0, 0], by_hand[0])


def test_walk_endpoints_and_lengths():
    keys = np.random.RandomState(0).randn(3, 4, 8).astype(np.float32)
    path = walk(keys, 5)
    assert len(path) == 11 and np.allclose(path[0], keys[0]) and np.allclose(path[5], keys[1])
    assert np.allclose(path[-1], keys[2])
    assert len(walk(keys, 5, loop=True)) == 15
    # slerp moves along the great circle at a constant angular speed and keeps unit norms
    k2 = keys[:, 0] / np.linalg.norm(keys[:, 0], axis=-1, keepdims=True)   # [3, 8] unit vectors
    zs = walk(k2, 4, spherical=True)                                       # [9, 8]
    np.testing.assert_allclose(np.linalg.norm(zs, axis=-1), 1.0, atol=1e-5)
    angle = lambda a, b: np.arccos(np.clip(np.sum(a * b, -1), -1, 1))    # noqa: E731
    for seg in range(2):
        steps = angle(zs[seg * 4:seg * 4 + 4], zs[seg * 4 + 1:seg * 4 + 5])   # four steps per segment
        np.testing.assert_allclose(steps, angle(k2[seg], k2[seg + 1]) / 4, rtol=1e-4)
        mid = zs[seg * 4 + 2]                                              # the midpoint lies in the keys' plane
        coef, *_ = np.linalg.lstsq(np.stack([k2[seg], k2[seg + 1]], 1), mid, rcond=None)
        np.testing.assert_allclose(coef[0], coef[1], rtol=1e-4)           # ... equally far from both
        np.testing.assert_allclose(np.stack([k2[seg], k2[seg + 1]], 1) @ coef, mid, atol=1e-5)
    with pytest.raises(UserError):
        walk(keys[:1], 5)


def test_interpolation_video_and_gif_have_the_right_frames(tmp_path):
    r = run_cli("run_generator.py", "--network", str(NET), "--mode", "interpolate", "--seeds", "0-2",
                "--frames", "4", "--loop", "--outdir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(tmp_path / "interpolate.mp4"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 12 and frames[0].shape == (32, 32, 3)
    gif = Image.open(tmp_path / "interpolate.gif")
    assert gif.n_frames == 12 and gif.size == (32, 32)
    # the first frame is seed 0's face (MP4 is lossy: compare loosely)
    seed0 = LatentRunner(load_network(NET).G_ema).synthesize(LatentRunner(load_network(NET).G_ema).seeds([0]))[0]
    assert np.abs(frames[0][:, :, ::-1].astype(int) - seed0.astype(int)).mean() < 20
    r = run_cli("run_generator.py", "--network", str(NET), "--mode", "interpolate", "--seeds", "0-3", "--frames",
                "2", "--walks", "2", "--space", "z", "--outdir", str(tmp_path / "two"))
    assert r.returncode == 0, r.stderr
    gif = Image.open(tmp_path / "two" / "interpolate.gif")
    assert gif.n_frames == 3 and gif.size == (64, 32)           # two walks side by side, no loop: 2 + 1 frames


def test_sefa_and_ganspace_directions_are_orthonormal():
    G = load_network(NET).G_ema
    dirs, values = sefa_directions(G)
    assert dirs.shape == (G.w_dim, G.w_dim)
    np.testing.assert_allclose(dirs @ dirs.T, np.eye(G.w_dim), atol=1e-4)
    assert np.all(np.diff(values) <= 1e-5)                       # largest eigenvalue first
    # the top direction maximises |A^T d| over unit vectors: beats any random direction
    A = np.concatenate([fc.weight.numpy() for _, fc in affine_layers(G)], axis=1)
    A = A / np.linalg.norm(A, axis=0, keepdims=True)
    rnd = np.random.RandomState(0).randn(50, G.w_dim)
    rnd /= np.linalg.norm(rnd, axis=1, keepdims=True)
    assert np.linalg.norm(dirs[0] @ A) >= np.linalg.norm(rnd @ A, axis=1).max()
    w = sample_w(LatentRunner(G), 2000)
    pcs, stds, mean = ganspace_directions(w, k=10)
    np.testing.assert_allclose(pcs @ pcs.T, np.eye(10), atol=1e-4)
    np.testing.assert_allclose(direction_scales(pcs, w), stds, rtol=1e-3)
    assert np.all(np.diff(stds) <= 0)


def _toy_redness(res: int) -> AttributeClassifier:
    """A 'classifier' whose score is the mean red channel: a toy attribute every generator can change."""
    inp = keras.Input([res, res, 3])
    out = keras.layers.Lambda(lambda x: keras.ops.mean(x[..., :1], axis=[1, 2]))(inp)
    return AttributeClassifier(keras.Model(inp, out), AttributeTarget("redness", 0, "scalar"), res)


def test_learned_direction_moves_the_score_monotonically():
    keras.utils.set_random_seed(1)
    G = Generator(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)
    runner = LatentRunner(G, batch=64)
    clf = _toy_redness(16)
    direction, figures, w = learn_direction(runner, clf, n=400)
    assert figures["heldout_r"] > 0.8                           # redness is close to linear in w here
    ws = runner.seeds([0, 1, 2])
    scale = direction_scales(direction[None], w)[0]
    moved = edit_ws(ws, direction, np.linspace(-3, 3, 7).astype(np.float32) * scale)   # [3, 7, num_ws, w_dim]
    scores = clf.score(runner.synthesize_float(moved.reshape(-1, G.num_ws, G.w_dim))).reshape(3, 7)
    assert np.all(np.diff(scores, axis=1) > 0), scores
    s = edit_strength(runner, clf, direction, scale, ws)          # the -3 and +3 columns, scored
    np.testing.assert_allclose(s["mean_change"], (scores[:, 6] - scores[:, 0]).mean(), atol=1e-5)
    np.testing.assert_allclose(s["mean_at_lo"], scores[:, 0].mean(), atol=1e-5)
    assert s["share_increased"] == 1 and s["faces"] == 3 and "flipped" not in s
    assert describe_strength("redness", "scalar", s).endswith(
        f"moves by {s['mean_change']:+.2f} on average (median {s['median_change']:+.2f}; {s['mean_at_lo']:.2f} -> "
        f"{s['mean_at_hi']:.2f}), up for 100.0 % of faces")
    # binary: P(class) = sigmoid of (redness - a threshold) x 1000; the faces that cross it, in each sense
    inp = keras.Input([16, 16, 3])
    for mid in (float(scores[:, 3].mean()), float(scores[:, 6].max()) + 1):   # some cross; none can
        logit = keras.layers.Lambda(lambda x, m=mid: (keras.ops.mean(x[..., :1], axis=[1, 2]) - m) * 1000)(inp)
        binary = AttributeClassifier(keras.Model(inp, logit), AttributeTarget("red", 0, "binary"), 16)
        b = edit_strength(runner, binary, direction, scale, ws)
        crossed = np.mean((scores[:, 0] < mid) & (scores[:, 6] > mid))
        assert b["flipped"] == pytest.approx(crossed) and (crossed > 0) == (mid < scores[:, 6].max())
        assert b["flipped_back"] == 0                          # the direction raises redness on every face
        back = edit_strength(runner, binary, direction, scale, ws, lo=3, hi=-3)
        assert (back["flipped"], back["flipped_back"]) == (0, pytest.approx(crossed))   # backwards: the other way
    assert b["flipped"] == 0 and b["mean_at_hi"] < 0.5


def _labelled_faces(tmp_path):
    out = tmp_path / "faces"
    create_dataset(CreateConfig(source=str(ROOT / "data" / "faces"), dest=str(out), res=32, labels="utkface",
                                label_classes="gender=2,race=5", quiet=True))
    return out


def test_attribute_targets_and_classifier(tmp_path):
    data = _labelled_faces(tmp_path)
    from datasets import format as fmt
    manifest = fmt.discover(data).manifest
    assert attribute_target(manifest, "age").kind == "scalar"
    g = attribute_target(manifest, "gender")
    assert (g.kind, g.column) == ("binary", 2)                  # columns: age | gender0 gender1 | race0..4
    assert attribute_target(manifest, "race=3").column == 6
    for bad, msg in (("height", "not a label"), ("race", "name one"), ("race=7", "class must be"),
                     ("age=1", "scalar label")):
        with pytest.raises(UserError, match=msg):
            attribute_target(manifest, bad)
    clf = train_attribute_classifier(data, "age", res=32, epochs=2, holdout=0.2)
    assert clf.target.scale > 50 and clf.heldout["images"] == 32 and np.isfinite(clf.heldout["mae"])


def test_cli_learn_direction_then_edit(tmp_path):
    data = _labelled_faces(tmp_path)
    dirs = tmp_path / "dirs"
    r = run_cli("run_generator.py", "--network", str(NET), "--mode", "learn-direction", "--data", str(data),
                "--attribute", "gender", "--samples", "120", "--classifier-epochs", "1", "--directions", str(dirs),
                "--seeds", "0-1", "--outdir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^classifier epoch 1/1: loss \d+\.\d{4} \(\d+ s\)$", r.stdout, re.M), r.stdout   # progress
    d = np.load(dirs / "gender.npy")
    info = json.loads((dirs / "gender.json").read_text())
    assert d.shape == (load_network(NET).G_ema.w_dim,) and abs(np.linalg.norm(d) - 1) < 1e-5
    assert {"heldout_accuracy", "classifier_heldout", "scales", "network"} <= set(info)
    strength = info["edit_strength"]                            # measured on held-out seeds, and said
    assert strength["faces"] == 200 and strength["seeds"] == "100000-100199"
    assert (strength["psi"], strength["cutoff"], strength["noise_mode"]) == (1.0, None, "const")
    assert describe_strength("gender", "binary", strength) in r.stdout, r.stdout
    # held out: none of the 200 seeds' z is among the 120 z the boundary was fitted on
    fitted = np.random.RandomState(0).randn(120, 512)
    assert not any(np.any(np.all(fitted == seed_to_z(s, 512), axis=1))
                   for s in range(STRENGTH_SEEDS, STRENGTH_SEEDS + 200))
    edit = ("run_generator.py", "--network", str(NET), "--seeds", "3,4", "--edit", "gender=-2..2", "--steps", "5",
            "--directions", str(dirs), "--outdir", str(tmp_path / "out"))
    sheet = (tmp_path / "out" / "edit-gender.png").read_bytes()       # the preview's sheet: the edit's name too
    r = run_cli(*edit)
    assert r.returncode == 2 and "edit-gender.png already exist(s); pass --overwrite" in r.stderr, r.stderr
    assert (tmp_path / "out" / "edit-gender.png").read_bytes() == sheet and not list(
        (tmp_path / "out").glob("*seed0003*"))                          # refused before any work
    r = run_cli(*edit, "--overwrite")
    assert r.returncode == 0, r.stderr
    strip = np.asarray(Image.open(tmp_path / "out" / "edit-gender-seed0003.png"))
    assert strip.shape == (32, 5 * 32, 3)
    middle = LatentRunner(load_network(NET).G_ema).synthesize(LatentRunner(load_network(NET).G_ema).seeds([3]))[0]
    np.testing.assert_array_equal(strip[:, 64:96], middle)      # strength 0 is the unedited face
    assert np.abs(strip[:, :32].astype(int) - strip[:, 128:].astype(int)).mean() > 1
    other = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "cond-16"
    r = run_cli("run_generator.py", "--network", str(other), "--class", "0", "--seeds", "1", "--edit",
                "gender=-1..1", "--directions", str(dirs), "--outdir", str(tmp_path / "out2"))
    assert r.returncode == 2 and "made for network" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("args,message", [
    (["--mode", "style-mix", "--rows", "1"], "needs --rows and --cols"),
    (["--mode", "style-mix", "--rows", "1", "--cols", "2", "--styles", "fine"], "no fine layers"),
    (["--mode", "interpolate", "--seeds", "1"], "split the 1 seeds"),
    (["--seeds", "1", "--edit", "age=-3..3", "--directions", "/nonexistent"], "no direction"),
    (["--seeds", "1", "--edit", "age=3"], "bad --edit"),
    (["--mode", "learn-direction", "--data", "x"], "needs --data"),
])
def test_cli_mode_errors(args, message, tmp_path):
    r = run_cli("run_generator.py", "--network", str(NET), "--outdir", str(tmp_path), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_projection_recovers_a_generated_face_and_feeds_other_modes(tmp_path):
    runner = LatentRunner(load_network(NET).G_ema)
    target = runner.synthesize(runner.seeds([5]))[0]
    Image.fromarray(target).save(tmp_path / "face.png")
    project = ("run_generator.py", "--network", str(NET), "--mode", "project", "--target", str(tmp_path / "face.png"),
               "--num-steps", "100", "--notune", "--outdir", str(tmp_path))
    r = run_cli(*project)                       # aligned by default: a 32x32 random network's face is no face
    assert r.returncode == 2 and "no face found; pass --noalign to project the photo as it is" in r.stderr, r.stderr
    r = run_cli(*project, "--noalign")
    assert r.returncode == 0, r.stderr
    assert "prior" not in r.stdout                                  # --notune: no prior unless asked
    assert not (tmp_path / "aligned.png").exists()
    G = load_network(NET).G_ema
    w_avg = np.repeat(G.mapping.w_avg.numpy()[None, None], G.num_ws, axis=1)
    start = LatentRunner(G).synthesize(w_avg)[0].astype(float)                 # where the search begins
    proj = np.asarray(Image.open(tmp_path / "proj.png")).astype(float)
    mse = np.mean((proj - target) ** 2)
    assert mse < 0.2 * np.mean((start - target) ** 2), mse
    z = np.load(tmp_path / "projected_w.npz")
    assert z["w"].shape == (1, G.num_ws, G.w_dim) and str(z["distance"]) == "pixel"
    cap = cv2.VideoCapture(str(tmp_path / "proj.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 11 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 64
    # the saved latent (with its noise maps) reproduces the projection in another process and mode
    r = run_cli("run_generator.py", "--network", str(NET), "--projected-w", str(tmp_path / "projected_w.npz"),
                "--outdir", str(tmp_path / "again"))
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again" / "projected00.png")), proj)
    r = run_cli("run_generator.py", "--network", str(NET), "--mode", "project", "--outdir", str(tmp_path / "x"))
    assert r.returncode == 2 and "needs --target" in r.stderr


def test_projection_target_is_read_as_create_py_reads_photos(tmp_path):
    """One image reader: a 16-bit grayscale photo becomes the same uint8 levels for --target as for a dataset
    (it used to be clipped to white), an RGBA one is composited on white, and the crop is centred."""
    from latent.projector import load_target
    from common.images import open_image, to_array
    ramp = (np.arange(64 * 96, dtype=np.uint32).reshape(64, 96) * 10).astype(np.uint16)   # 0 .. 61430
    Image.fromarray(ramp).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I;16")
    got = load_target(tmp_path / "gray16.png", 32, 3)                                      # [32, 32, 3]
    assert got.dtype == np.uint8 and got.shape == (32, 32, 3)
    expect = to_array(open_image((tmp_path / "gray16.png").read_bytes()), 3)[:, 16:80]    # centre 64x64
    expect = np.asarray(Image.fromarray(expect).resize((32, 32), Image.LANCZOS))
    np.testing.assert_array_equal(got, expect)
    assert 100 < got.mean() < 150 and got.max() < 255                                      # not clipped white
    rgba = np.zeros((16, 16, 4), np.uint8)                                                  # fully transparent
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert (load_target(tmp_path / "clear.png", 16, 3) == 255).all()
    with pytest.raises(UserError, match="--target .*nowhere.png does not exist"):
        load_target(tmp_path / "nowhere.png", 16, 3)


def _face32(path) -> np.ndarray:
    """A real face (data/faces) at 32x32: not an image the 32x32 test network can draw from any w."""
    face = Image.open(sorted((ROOT / "data" / "faces").iterdir())[0]).convert("RGB").resize((32, 32), Image.LANCZOS)
    face.save(path)
    return np.asarray(face)


def test_pivotal_tuning_draws_the_photo_leaves_the_network_and_keeps_far_faces(tmp_path):
    """tune(): the tuned copy draws the target far closer than the pivot did; the network passed in is unchanged;
    the locality regulariser keeps faces away from the pivot nearer to the untuned network's than without it."""
    from latent.projector import ProjectConfig, apply_noise, project
    from latent.tuning import TuneConfig, psnr, tune
    G = load_network(NET).G_ema
    target = _face32(tmp_path / "face.png")
    pivot = project(G, target, ProjectConfig(steps=40))
    apply_noise(G, pivot.noise)
    before = [v.numpy().copy() for v in G.weights]
    tuned = tune(G, pivot.w, target, TuneConfig(steps=60, locality_every=1))
    assert psnr(tuned.image, target) > psnr(pivot.image, target) + 6, (psnr(tuned.image, target),
                                                                        psnr(pivot.image, target))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, G.weights))
    free = tune(G, pivot.w, target, TuneConfig(steps=60, locality_every=0))
    ws = LatentRunner(G).seeds(list(range(8)))                             # faces far from the pivot
    ref = LatentRunner(G).synthesize_float(ws)
    drift = lambda g: float(np.mean((LatentRunner(g).synthesize_float(ws) - ref) ** 2))  # noqa: E731
    assert drift(tuned.G) < 0.7 * drift(free.G), (drift(tuned.G), drift(free.G))


def test_the_p_space_prior_whitens_the_sampled_ws_and_holds_the_pivot_among_them(tmp_path):
    """The prior's statistics: the mapping's last activation undone exactly, the sampled pre-activations whitened to
    unit covariance. A projection with the prior ends far nearer the sampled ws (Mahalanobis) than one without."""
    from latent.projector import ProjectConfig, _undo_lrelu, p_space_prior, project
    x = np.random.RandomState(0).randn(100, 8)
    np.testing.assert_allclose(_undo_lrelu(np.where(x >= 0, x, 0.2 * x) * np.sqrt(2)), x, rtol=0, atol=1e-12)
    import tensorflow as tf
    activated = tf.nn.leaky_relu(tf.constant(x, tf.float32), 0.2) * np.sqrt(2)        # the graph's form
    np.testing.assert_allclose(_undo_lrelu(activated).numpy(), x, rtol=0, atol=1e-5)
    G = load_network(NET).G_ema
    w = sample_w(LatentRunner(G, batch=1000), 4000, 1)                         # [4000, w_dim]
    mean, whiten = p_space_prior(w)
    white = (_undo_lrelu(w.astype(np.float64)) - mean) @ whiten
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(G.w_dim), rtol=0, atol=1e-3)
    mahalanobis = lambda ws: float(np.mean(((_undo_lrelu(ws[0].astype(np.float64)) - mean) @ whiten) ** 2))  # noqa: E731
    target = _face32(tmp_path / "face.png")
    free = project(G, target, ProjectConfig(steps=40))
    held = project(G, target, ProjectConfig(steps=40, w_prior=1.0))
    assert mahalanobis(held.w) < 0.5 * mahalanobis(free.w), (mahalanobis(held.w), mahalanobis(free.w))


def test_cli_projection_is_tuned_by_default_and_every_mode_draws_the_tuned_person(tmp_path):
    """--mode project (default: pivotal tuning) writes tuned.keras beside projected_w.npz and reports both PSNRs;
    --projected-w then draws with the tuned network: projected00.png and the middle of an edit strip equal
    proj.png; another --network is refused in one line; a missing tuned.keras is one line."""
    _face32(tmp_path / "face.png")
    out = tmp_path / "p"
    r = run_cli("run_generator.py", "--network", str(NET), "--mode", "project", "--target", str(tmp_path / "face.png"),
                "--noalign", "--num-steps", "40", "--tune-steps", "60", "--outdir", str(out))
    assert r.returncode == 0, r.stderr
    m = re.search(r"projection into W: 40 steps.*PSNR ([\d.]+) dB, SSIM [\d.]+\npivotal tuning: 60 steps in [\d.]+ s; "
                  r"PSNR ([\d.]+) dB, SSIM [\d.]+; tuned.keras [\d.]+ MB", r.stdout)
    assert m and float(m[2]) > float(m[1]) + 6, r.stdout
    assert "distance pixel, prior 0.01; PSNR" in r.stdout                   # the pivot's prior, by default
    for name in ("tuned.keras", "proj-w.png", "proj.png", "projected_w.npz", "proj.mp4"):
        assert (out / name).is_file(), name
    tuned = load_network(out / "tuned.keras")
    assert tuned.metadata["tuned_from"].startswith("uncond-32:") and tuned.metadata["tune_steps"] == 60
    z = np.load(out / "projected_w.npz")
    assert str(z["tuned"]) == "tuned.keras" and str(z["network"]) == tuned.metadata["tuned_from"]
    proj = np.asarray(Image.open(out / "proj.png"))
    assert not np.array_equal(proj, np.asarray(Image.open(out / "proj-w.png")))
    r = run_cli("run_generator.py", "--network", str(NET), "--mode", "directions", "--num", "1", "--seeds", "0",
                "--directions", str(tmp_path / "dirs"), "--outdir", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    r = run_cli("run_generator.py", "--network", str(NET), "--projected-w", str(out / "projected_w.npz"),
                "--edit", "sefa:0=-2..2", "--steps", "5", "--directions", str(tmp_path / "dirs"), "--outdir", str(out))
    assert r.returncode == 0, r.stderr
    strip = np.asarray(Image.open(out / "edit-sefa00-seed0000.png"))            # [32, 5 * 32, 3]
    np.testing.assert_array_equal(strip[:, 64:96], proj)
    assert not np.array_equal(strip[:, :32], proj)
    r = run_cli("run_generator.py", "--network", str(NET), "--projected-w", str(out / "projected_w.npz"),
                "--outdir", str(tmp_path / "again"))
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again" / "projected00.png")), proj)
    other = ROOT / "tests" / "fixtures" / "nvidia-pickles" / "ada-pytorch-32.pkl"
    r = run_cli("run_generator.py", "--network", str(other), "--projected-w", str(out / "projected_w.npz"),
                "--outdir", str(tmp_path / "x"))
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "was projected into and tuned from the network " \
        "uncond-32:" in r.stderr and "Traceback" not in r.stderr, r.stderr
    (out / "tuned.keras").rename(tmp_path / "elsewhere.keras")
    r = run_cli("run_generator.py", "--network", str(NET), "--projected-w", str(out / "projected_w.npz"),
                "--outdir", str(tmp_path / "x"))
    assert r.returncode == 2 and "its tuned network" in r.stderr and "is missing" in r.stderr, r.stderr


def test_an_encoder_guesses_w_better_than_w_avg_and_the_projection_starts_there(tmp_path):
    """train_encoder on the 32x32 network's own faces and a few real ones: its guess of held-out generated faces'
    w is nearer than w_avg; it saves and loads with its network's id, refuses another network's, and
    run_generator.py --mode project uses the encoder.keras beside the network (one line says what it gave)."""
    import shutil
    from latent.directions import network_id
    from latent.encoder import load_encoder, train_encoder
    G = load_network(NET).G_ema
    net_id = network_id(NET.name, G)
    reals = np.stack([np.asarray(Image.open(f).convert("RGB").resize((32, 32), Image.LANCZOS))
                      for f in sorted((ROOT / "data" / "faces").iterdir())[:64]])
    enc = train_encoder(G, net_id, samples=2000, epochs=4, reals=reals, real_epochs=1, log=lambda m: None)
    runner = LatentRunner(G)
    ws = runner.seeds(list(range(900000, 900016)))                          # not among the training samples
    guess = enc.w(runner.synthesize(ws))
    assert guess.shape == ws.shape
    err = np.mean((guess - ws) ** 2)
    base = np.mean((enc.w_avg[None, None] - ws) ** 2)
    assert err < 0.75 * base, (err, base)
    net = tmp_path / "net"
    shutil.copytree(NET, net)
    enc.save(net / "encoder.keras")
    again = load_encoder(net / "encoder.keras", net_id, G.w_dim, G.num_ws)
    np.testing.assert_allclose(again.w(runner.synthesize(ws[:2])), guess[:2], atol=1e-5)
    with pytest.raises(UserError, match="was trained for network uncond-32:"):
        load_encoder(net / "encoder.keras", "other:0badf00d", G.w_dim, G.num_ws)
    _face32(tmp_path / "face.png")
    r = run_cli("run_generator.py", "--network", str(net), "--mode", "project", "--target", str(tmp_path / "face.png"),
                "--noalign", "--num-steps", "20", "--notune", "--outdir", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    assert re.search(r"encoder: the starting w in [\d.]+ s; PSNR [\d.]+ dB", r.stdout), r.stdout
