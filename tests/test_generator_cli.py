"""run_generator.py (seeds mode) and the official seed/uint8 conventions."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from latent.seeds import generate_seeds, parse_seeds, seed_to_z
from networks.serialize import load_network
from networks.ops import to_uint8
from common.errors import UserError

NET = ROOT / "tests" / "fixtures" / "stylegan2-parity"


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,7") == [1, 5, 7]
    assert parse_seeds("0,3,10-12") == [0, 3, 10, 11, 12]
    for bad in ("", "a", "3-1", "1-x", "-4", "5000000000"):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_seed_conventions_and_determinism():
    G = load_network(NET / "uncond-32").G_ema
    z = seed_to_z(7, G.z_dim)
    np.testing.assert_array_equal(z, np.random.RandomState(7).randn(1, G.z_dim).astype(np.float32))
    (s1, a), (s2, b), (s3, c) = generate_seeds(G, [7, 7, 8], psi=0.7)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).max() > 10
    direct = to_uint8(G(z, truncation_psi=0.7, noise_mode="const")).numpy()[0]
    assert np.abs(direct.astype(int) - a.astype(int)).max() <= 1
    x = np.array([-1.0, -0.999, 0.0, 0.5, 1.0, 1.2], np.float32)
    assert list(to_uint8(x).numpy()) == [0, 0, 128, 191, 255, 255]


def test_psi_zero_same_image_for_every_seed():
    G = load_network(NET / "uncond-32").G_ema
    imgs = [img for _, img in generate_seeds(G, [1, 2, 3], psi=0.0)]
    assert all(np.array_equal(imgs[0], im) for im in imgs[1:])


def test_cli_writes_pngs_with_metadata_and_grid(tmp_path):
    r = run_cli("run_generator.py", "--network", str(NET / "cond-16"), "--seeds", "0,3,5-6", "--class", "2",
                "--trunc", "0.5", "--outdir", str(tmp_path), "--grid")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.glob("seed*.png")) == ["seed0000.png", "seed0003.png", "seed0005.png",
                                                                  "seed0006.png"]
    meta = Image.open(tmp_path / "seed0003.png").text
    assert meta["seed"] == "3" and meta["psi"] == "0.5" and meta["network"].startswith("cond-16:")
    assert Image.open(tmp_path / "grid.png").size == (32, 32)


@pytest.mark.parametrize("args,message", [
    (["--seeds", "1-x"], "bad seed list"),
    (["--network", "nowhere.pkl", "--seeds", "1"], "does not exist"),
    (["--network", str(NET / "cond-16"), "--seeds", "1"], "network is conditional"),
    (["--network", str(NET / "uncond-32"), "--seeds", "1", "--class", "1"], "network is unconditional"),
    (["--network", str(NET / "uncond-32")], "pass --seeds"),
])
def test_cli_errors(args, message, tmp_path):
    r = run_cli("run_generator.py", "--outdir", str(tmp_path), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_cli_export_converts_to_our_format(tmp_path):
    r = run_cli("run_generator.py", "--network", str(NET / "uncond-32"), "--export", str(tmp_path / "net.keras"))
    assert r.returncode == 0, r.stderr
    a = load_network(NET / "uncond-32").G_ema
    b = load_network(tmp_path / "net.keras").G_ema
    z = seed_to_z(1, a.z_dim)
    np.testing.assert_array_equal(a(z, noise_mode="const"), b(z, noise_mode="const"))
    r = run_cli("run_generator.py", "--network", str(NET / "cond-16"), "--export", str(tmp_path / "net.keras"),
                "--overwrite")                                               # replaced only when asked
    assert r.returncode == 0, r.stderr
    assert load_network(tmp_path / "net.keras").G_ema.c_dim == 3


def test_cli_export_keeps_the_networks_asked_for(tmp_path):
    """--keep G_ema,D: what fine-tuning needs (the shipped model's bundle); --ema_only: G_ema alone."""
    src = load_network(NET / "uncond-32")                           # G_ema and D, no G
    r = run_cli("run_generator.py", "--network", str(NET / "uncond-32"), "--export", str(tmp_path / "gd.keras"),
                "--keep", "G_ema,D")
    assert r.returncode == 0 and "(G_ema, D)" in r.stdout, r.stderr
    out = load_network(tmp_path / "gd.keras")
    assert out.G is None and out.D is not None
    for a, b in zip(src.D.weights, out.D.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    r = run_cli("run_generator.py", "--network", str(tmp_path / "gd.keras"), "--export", str(tmp_path / "g.keras"),
                "--ema_only")
    assert r.returncode == 0, r.stderr
    out = load_network(tmp_path / "g.keras")
    assert out.G is None and out.D is None
    r = run_cli("run_generator.py", "--network", str(tmp_path / "g.keras"), "--export", str(tmp_path / "x.keras"),
                "--keep", "D")
    assert r.returncode == 2 and "--keep D: " in r.stderr and "has no D" in r.stderr, r.stderr
    assert not (tmp_path / "x.keras").exists()
