"""NVIDIA's own network pickles (made by their code: tests/fixtures/nvidia-pickles/make_fixtures.py) load without
torch or TF1 and reproduce NVIDIA's images; torch's legacy storage format is read by the restricted unpickler."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from common.errors import UserError
from networks import legacy
from networks.ops import to_uint8
from networks.serialize import load_network

FIX = ROOT / "tests" / "fixtures" / "nvidia-pickles"
REF = np.load(FIX / "reference.npz")


def render(G, seeds, psi: float, labels=None) -> np.ndarray:
    """uint8 NHWC for each seed as NVIDIA's generate.py: z = RandomState(seed).randn(1, z_dim), noise const."""
    out = []
    for i, seed in enumerate(seeds):
        z = np.random.RandomState(int(seed)).randn(1, G.z_dim).astype(np.float32)
        c = np.eye(G.c_dim, dtype=np.float32)[[labels[i]]] if labels is not None else None
        out.append(to_uint8(G(z, c, truncation_psi=psi, noise_mode="const")).numpy()[0])
    return np.stack(out).astype(int)


@pytest.mark.parametrize("name,fmt", [("ada-pytorch-32.pkl", "stylegan2-ada-pytorch"),
                                      ("tf1-ada-32.pkl", "nvlabs-stylegan2-ada-tf1")])
def test_nvidia_pickle_reproduces_nvidia_images(name, fmt):
    bundle = load_network(FIX / name, cache=False)
    assert bundle.metadata["format"] == fmt and bundle.D is not None and bundle.G is not None
    for psi, tag in ((1.0, "10"), (0.7, "07")):
        ours = render(bundle.G_ema, REF["ada32_seeds"], psi)
        assert np.abs(ours - REF[f"ada32_u8_psi{tag}_fp32"]).max() <= 1      # their float32 path
        assert np.abs(ours - REF[f"ada32_u8_psi{tag}"]).max() <= 1           # their default (fp16 top blocks)


def test_pytorch_snapshot_reports_its_other_entries():
    meta = load_network(FIX / "ada-pytorch-32.pkl", cache=False).metadata
    ignored = meta["ignored_entries"]
    assert ignored["augment_pipe"] == "<AugmentPipe>"
    assert ignored["training_set_kwargs"]["resolution"] == 32
    assert ignored["progress"]["cur_nimg"] == 4000 and ignored["progress"]["best_fid"] is None
    assert meta["G_init_kwargs"]["synthesis_kwargs"]["conv_clamp"] == 256


def test_tf1_ada_conditional_network():
    bundle = load_network(FIX / "tf1-ada-cond-16.pkl", cache=False)
    labels = REF["cond16_labels"]
    for psi, tag in ((1.0, "10"), (0.7, "07")):
        ours = render(bundle.G_ema, REF["cond16_seeds"], psi, labels)
        assert np.abs(ours - REF[f"cond16_u8_psi{tag}_fp32"]).max() <= 1
    imgs = REF["cond16_u8_psi10_fp32"].astype(np.float32) / 127.5 - 1                      # NHWC
    logits = bundle.D(imgs, np.eye(4, dtype=np.float32)[labels]).numpy()
    assert np.abs(logits - REF["cond16_d_logits"]).max() < 1e-4


def test_stylegan3_is_refused_in_one_line():
    with pytest.raises(UserError, match="not a StyleGAN2 network") as err:
        load_network(FIX / "stylegan3-16.pkl", cache=False)
    assert "\n" not in str(err.value) and "StyleGAN3" in str(err.value)


def _legacy_stream(obj_pickle: bytes) -> bytes:
    """A legacy torch.save stream around `obj_pickle` with no storages."""
    head = b"".join(pickle.dumps(x, protocol=2) for x in (legacy.LEGACY_MAGIC, legacy.LEGACY_PROTOCOL,
                                                          {"little_endian": True}))
    return head + obj_pickle + pickle.dumps([], protocol=2)


def test_legacy_storage_stream_uses_the_restricted_unpickler(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    with pytest.raises(legacy.UnsafePickleError, match="system"):
        legacy._load_from_bytes(_legacy_stream(pickle.dumps(Evil(), protocol=2)))
    assert not marker.exists()
    assert legacy._load_from_bytes(_legacy_stream(pickle.dumps({"a": 1}, protocol=2))) == {"a": 1}


def test_legacy_storage_stream_errors_are_clear():
    data = (FIX / "ada-pytorch-32.pkl").read_bytes()
    start = data.index(pickle.dumps(legacy.LEGACY_MAGIC, protocol=2))       # the first storage blob (BINBYTES)
    blob = data[start:start + int.from_bytes(data[start - 4:start], "little")]
    stored = legacy.read_torch_legacy(blob)
    assert isinstance(stored, legacy._Storage) and stored.array.dtype == np.float32
    with pytest.raises(UserError, match="truncated"):
        legacy.read_torch_legacy(blob[:-1])
    with pytest.raises(UserError, match="not a torch legacy storage stream"):
        legacy.read_torch_legacy(b"\x80\x02K\x07." + blob)
    with pytest.raises(UserError, match="not a torch legacy"):
        legacy._load_from_bytes(b"garbage")


def test_cli_generates_nvidias_faces_from_their_pickle(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN2_TF_CACHE", str(tmp_path / "cache"))
    r = run_cli("run_generator.py", "--network", str(FIX / "ada-pytorch-32.pkl"), "--seeds", "0,1",
                "--trunc", "0.7", "--outdir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    for i, seed in enumerate((0, 1)):
        png = np.asarray(Image.open(tmp_path / "out" / f"seed{seed:04d}.png")).astype(int)
        assert np.abs(png - REF["ada32_u8_psi07"][i]).max() <= 1
    assert list((tmp_path / "cache" / "networks").glob("ada-pytorch-32-*.keras"))      # converted once
    r = run_cli("run_generator.py", "--network", str(FIX / "stylegan3-16.pkl"), "--seeds", "0",
                "--outdir", str(tmp_path / "out2"))
    assert r.returncode == 2 and "not a StyleGAN2 network" in r.stderr and "Traceback" not in r.stderr


CLAMP = np.load(FIX / "reference-clamp.npz")


@pytest.mark.parametrize("name", ["ada-pytorch-clamp-16.pkl", "tf1-ada-clamp-16.pkl"])
def test_conv_clamp_acts_in_float32_layers_as_nvidias(name):
    """conv_clamp 0.5 in a float32 network (made by NVIDIA's code): most activations pass the clamp, and the
    images and D's logits still equal NVIDIA's to float32 precision."""
    assert np.abs(CLAMP["clamp16_img"] - CLAMP["clamp16_img_unclamped"]).max() > 1.0   # the clamp matters
    bundle = load_network(FIX / name, cache=False)
    G, D = bundle.G_ema, bundle.D
    assert G.get_config()["conv_clamp"] == 0.5 and D.get_config()["conv_clamp"] == 0.5
    assert G.get_config()["mixed_precision_res"] == 0 and D.get_config()["mbstd_group_size"] == 2
    z = np.stack([np.random.RandomState(int(s)).randn(G.z_dim) for s in CLAMP["clamp16_seeds"]]).astype(np.float32)
    img = G(z, None, noise_mode="const").numpy()
    assert np.abs(img - CLAMP["clamp16_img"]).max() < 1e-4
    assert np.abs(render(G, CLAMP["clamp16_seeds"], 1.0) - CLAMP["clamp16_u8"]).max() <= 1
    logits = D(CLAMP["clamp16_img"]).numpy()
    assert np.abs(logits - CLAMP["clamp16_d_logits"]).max() < 1e-4
