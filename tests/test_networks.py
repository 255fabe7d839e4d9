"""Networks: parity with NVIDIA's reference, parameter counts, noise, truncation, labels, file formats."""
from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from networks import legacy
from networks.convert import export_official_state
from networks.stylegan2 import Discriminator, Generator
from networks.serialize import export_saved_model, load_network, save_bundle
from networks.ops import to_uint8
from common.errors import UserError

FIX = ROOT / "tests" / "fixtures" / "stylegan2-parity"
TOL = 1e-4


def nchw(x) -> np.ndarray:
    return np.asarray(x).transpose(0, 3, 1, 2)


def nhwc(x) -> np.ndarray:
    return np.asarray(x).transpose(0, 2, 3, 1)


def check_parity(bundle, ref) -> None:
    G, D = bundle.G_ema, bundle.D
    c = ref["c"] if G.c_dim else None
    ws = G.mapping(ref["z"], c).numpy()
    assert np.abs(ws - ref["ws"]).max() < TOL
    assert np.abs(nchw(G.synthesis(ref["ws"], noise_mode="const")) - ref["img_const"]).max() < TOL
    assert np.abs(nchw(G.synthesis(ref["ws"], noise_mode="none")) - ref["img_none"]).max() < TOL
    assert np.abs(G.mapping(ref["z"], c, truncation_psi=0.5).numpy() - ref["ws_trunc05"]).max() < TOL
    img = G(ref["z"], c, truncation_psi=0.5, noise_mode="const")
    assert np.abs(nchw(img) - ref["img_trunc05_const"]).max() < TOL
    cut = int(ref["mix_cutoff"])
    mixed = ws.copy()
    mixed[:, cut:] = G.mapping(ref["z2"], c).numpy()[:, cut:]
    assert np.abs(nchw(G.synthesis(mixed, noise_mode="const")) - ref["img_mix_const"]).max() < TOL
    assert np.abs(D(nhwc(ref["img_const"]), c).numpy() - ref["d_logits_fake"]).max() < TOL
    assert np.abs(D(nhwc(ref["reals"]), c).numpy() - ref["d_logits_real"]).max() < TOL


@pytest.mark.parametrize("fixture", ["uncond-32", "cond-16"])
def test_parity_with_reference(fixture):
    check_parity(load_network(FIX / fixture), np.load(FIX / fixture / "reference.npz"))


def test_fused_modconv_gives_the_same_images():
    plain = load_network(FIX / "uncond-32").G_ema
    fused = Generator(**{**plain.get_config(), "fused_modconv": True})
    for a, b in zip(plain.weights, fused.weights):
        b.assign(a)
    ref = np.load(FIX / "uncond-32" / "reference.npz")
    assert np.abs(nchw(fused.synthesis(ref["ws"], noise_mode="const")) - ref["img_const"]).max() < TOL


def test_tf1_names_map_exactly_onto_official_names():
    for tf1_file, off_file, kind in (("G_ema_tf1.npz", "G_ema.npz", "G"), ("D_tf1.npz", "D.npz", "D")):
        converted = legacy.tf1_to_official(dict(np.load(FIX / "uncond-32" / tf1_file)), kind)
        official = dict(np.load(FIX / "uncond-32" / off_file))
        assert sorted(converted) == sorted(official)
        for k in official:
            np.testing.assert_allclose(converted[k], official[k], rtol=0, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("res,g_params,d_params", [(1024, 30_370_060, 29_012_513), (256, 30_034_338, 28_864_129)])
def test_config_f_parameter_counts(res, g_params, d_params):
    count = lambda m: sum(int(np.prod(v.shape)) for v in m.trainable_weights)  # noqa: E731
    assert count(Generator(img_resolution=res)) == g_params
    assert count(Discriminator(img_resolution=res)) == d_params


@pytest.mark.parametrize("res", [4, 8, 64])
def test_shapes_across_resolutions(res):
    G = Generator(z_dim=16, w_dim=16, img_resolution=res, channel_base=256, channel_max=16, mapping_layers=2)
    D = Discriminator(img_resolution=res, channel_base=256, channel_max=16)
    assert G.num_ws == 2 * int(np.log2(res)) - 2
    img = G(np.random.randn(3, 16).astype("float32"))
    assert img.shape == (3, res, res, 3)
    assert D(img).shape == (3, 1)


def small_generator(**kw) -> Generator:
    G = Generator(**{**dict(z_dim=16, w_dim=16, img_resolution=16, channel_base=128, channel_max=16,
                            mapping_layers=2), **kw})
    for layer_vars in G.weights:                   # non-zero noise strengths and a non-trivial w_avg
        if layer_vars.name == "noise_strength":
            layer_vars.assign(0.5)
    G.mapping.w_avg.assign(np.random.RandomState(1).randn(16).astype("float32"))
    return G


def test_noise_modes():
    G = small_generator()
    z = np.random.RandomState(0).randn(2, 16).astype("float32")
    const1, const2 = G(z, noise_mode="const"), G(z, noise_mode="const")
    np.testing.assert_array_equal(const1, const2)
    assert np.abs(np.asarray(G(z, noise_mode="random")) - np.asarray(G(z, noise_mode="random"))).max() > 1e-3
    assert np.abs(np.asarray(G(z, noise_mode="none")) - np.asarray(const1)).max() > 1e-3
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="loud")


def test_psi_zero_gives_the_w_avg_image_for_every_z():
    G = small_generator()
    imgs = np.asarray(G(np.random.RandomState(0).randn(4, 16).astype("float32"), truncation_psi=0.0,
                        noise_mode="const"))
    w_avg_img = np.asarray(G.synthesis(np.tile(G.mapping.w_avg.numpy()[None, None], [1, G.num_ws, 1]),
                                       noise_mode="const"))
    for img in imgs:
        np.testing.assert_allclose(img, w_avg_img[0], atol=1e-5)


def test_truncation_cutoff_only_touches_early_layers():
    G = small_generator()
    z = np.random.RandomState(0).randn(2, 16).astype("float32")
    ws = G.mapping(z).numpy()
    wt = G.mapping(z, truncation_psi=0.5, truncation_cutoff=3).numpy()
    np.testing.assert_array_equal(wt[:, 3:], ws[:, 3:])
    expected = G.mapping.w_avg.numpy() + 0.5 * (ws[:, :3] - G.mapping.w_avg.numpy())
    np.testing.assert_allclose(wt[:, :3], expected, atol=1e-6)


def test_w_avg_tracking_is_an_ema_of_mapping_outputs():
    G = small_generator(w_avg_beta=0.9)
    before = G.mapping.w_avg.numpy()
    z = np.random.RandomState(0).randn(8, 16).astype("float32")
    w = G.mapping(z).numpy()[:, 0]
    G.mapping(z, update_w_avg=True)
    np.testing.assert_allclose(G.mapping.w_avg.numpy(), w.mean(0) + (before - w.mean(0)) * 0.9, atol=1e-6)


def test_labels_change_the_image_and_d_projection():
    G = Generator(z_dim=8, c_dim=3, w_dim=8, img_resolution=8, channel_base=64, channel_max=8, mapping_layers=2)
    D = Discriminator(c_dim=3, img_resolution=8, channel_base=64, channel_max=8)
    z = np.random.RandomState(0).randn(2, 8).astype("float32")
    a, b = np.eye(3, dtype="float32")[[0, 0]], np.eye(3, dtype="float32")[[1, 1]]
    assert np.abs(np.asarray(G(z, a, noise_mode="const")) - np.asarray(G(z, b, noise_mode="const"))).max() > 1e-4
    img = G(z, a)
    assert np.abs(D(img, a).numpy() - D(img, b).numpy()).max() > 1e-6


def test_bundle_save_load_round_trip_is_bit_exact(tmp_path):
    bundle = load_network(FIX / "cond-16")
    path = save_bundle(tmp_path / "net.keras", bundle.G_ema, D=bundle.D, metadata={"kimg": 12})
    again = load_network(path)
    assert again.metadata == {"kimg": 12} and again.G is None
    for name, value in export_official_state(bundle.G_ema).items():
        np.testing.assert_array_equal(export_official_state(again.G_ema)[name], value)
    ref = np.load(FIX / "cond-16" / "reference.npz")
    np.testing.assert_array_equal(again.G_ema(ref["z"], ref["c"], noise_mode="const"),
                                  bundle.G_ema(ref["z"], ref["c"], noise_mode="const"))
    np.testing.assert_array_equal(again.D(nhwc(ref["reals"]), ref["c"]), bundle.D(nhwc(ref["reals"]), ref["c"]))
    (tmp_path / "run").mkdir()
    save_bundle(tmp_path / "run" / "network-snapshot-000004.keras", bundle.G_ema)
    assert load_network(tmp_path / "run").G_ema.c_dim == 3


def test_saved_model_generate_endpoint(tmp_path):
    G = load_network(FIX / "uncond-32").G_ema
    export_saved_model(G, tmp_path / "sm")
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    z = np.random.RandomState(3).randn(2, G.z_dim).astype("float32")
    out = loaded.generate(tf.constant(z), tf.constant(0.7))
    assert out.dtype == tf.uint8 and out.shape == (2, 32, 32, 3)
    expected = to_uint8(G(z, truncation_psi=0.7, noise_mode="const")).numpy()
    assert np.abs(out.numpy().astype(int) - expected.astype(int)).max() <= 1
    cond = load_network(FIX / "cond-16").G_ema                   # --overwrite: replaced whole, nothing left over
    export_saved_model(cond, tmp_path / "sm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]
    again = tf.saved_model.load(str(tmp_path / "sm"))            # kept alive: its functions need its variables
    out = again.generate(tf.constant(z[:, :cond.z_dim]), tf.constant(1.0), tf.constant(np.eye(3, dtype="float32")[:2]))
    assert out.shape == (2, 16, 16, 3)


# ----------------------------------------------------------------------------- official pickles, synthesised
def _install(monkeypatch, name: str, **attrs) -> types.ModuleType:
    """Register a stand-in module (and its parents) so pickle can *write* objects under official names."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if parent not in sys.modules:
            monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        value.__module__, value.__qualname__ = name, key
        setattr(mod, key, value)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


def test_tf1_pickle_loads_without_tf1(tmp_path, monkeypatch):
    class Network:
        def __init__(self, state):
            self.state = state

        def __getstate__(self):
            return self.state

    _install(monkeypatch, "dnnlib.tflib.network", Network=Network)
    g_vars = dict(np.load(FIX / "uncond-32" / "G_ema_tf1.npz"))

    def net(name, variables, components=None):
        return Network({"version": 4, "name": name, "static_kwargs": {}, "components": components or {},
                        "build_module_src": "raise SystemExit('never run')", "build_func_name": "G_main",
                        "variables": list(variables.items())})

    def split(prefix):
        return {k[len(prefix) + 1:]: v for k, v in g_vars.items() if k.startswith(prefix + "/")}
    gs = net("G", {"dlatent_avg": g_vars["dlatent_avg"]},
             {"mapping": net("G_mapping", split("mapping")), "synthesis": net("G_synthesis", split("synthesis"))})
    d = net("D", dict(np.load(FIX / "uncond-32" / "D_tf1.npz")))
    (tmp_path / "tf1.pkl").write_bytes(pickle.dumps((gs, d, gs), protocol=2))
    monkeypatch.setattr("networks.serialize.CACHE_DIR", tmp_path / "cache")
    bundle = load_network(tmp_path / "tf1.pkl")
    check_parity(bundle, np.load(FIX / "uncond-32" / "reference.npz"))
    assert list((tmp_path / "cache").glob("tf1-*.keras"))            # converted once, cached
    check_parity(load_network(tmp_path / "tf1.pkl"), np.load(FIX / "uncond-32" / "reference.npz"))


def _torch_storage_bytes(arr: np.ndarray, FloatStorage) -> bytes:
    """What torch.save(storage) writes: a zip with data.pkl (a persistent id) and data/0 (raw bytes)."""
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", arr.size) if obj is arr else None
    buf = io.BytesIO()
    P(buf, protocol=2).dump(arr)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/data/0", np.ascontiguousarray(arr, np.float32).tobytes())
    return out.getvalue()


def test_pytorch_pickle_loads_without_torch_and_never_runs_its_source(tmp_path, monkeypatch):
    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*a):
        raise AssertionError

    def _load_from_bytes(b):
        raise AssertionError

    def _reconstruct_persistent_obj(meta):
        raise AssertionError

    _install(monkeypatch, "torch", FloatStorage=FloatStorage)
    _install(monkeypatch, "torch._utils", _rebuild_tensor_v2=_rebuild_tensor_v2)
    _install(monkeypatch, "torch.storage", _load_from_bytes=_load_from_bytes)
    _install(monkeypatch, "torch_utils.persistence", _reconstruct_persistent_obj=_reconstruct_persistent_obj)

    class Tensor:
        def __init__(self, arr):
            self.arr = np.array(arr, np.float32, order="C")        # keeps 0-d tensors 0-d

        def __reduce__(self):
            storage = Storage(self.arr.reshape(-1))
            strides = tuple(s // 4 for s in self.arr.strides)
            return (_rebuild_tensor_v2, (storage, 0, self.arr.shape, strides, False, collections.OrderedDict()))

    class Storage:
        def __init__(self, flat):
            self.flat = flat

        def __reduce__(self):
            return (_load_from_bytes, (_torch_storage_bytes(self.flat, FloatStorage),))

    class Persistent:
        def __init__(self, state):
            self.state = state

        def __reduce__(self):
            meta = {"type": "class", "version": 6, "class_name": "networks.Generator",
                    "module_src": "import os\nos.system('touch PWNED')", "state": self.state}
            return (_reconstruct_persistent_obj, (meta,))

    def module_tree(flat: dict) -> Persistent:
        params, buffers, children = collections.OrderedDict(), collections.OrderedDict(), {}
        for name, value in flat.items():
            head, _, rest = name.partition(".")
            if rest:
                children.setdefault(head, {})[rest] = value
            elif head in ("noise_const", "w_avg"):
                buffers[head] = Tensor(value)
            else:
                params[head] = Tensor(value)
        return Persistent({"training": False, "_parameters": params, "_buffers": buffers,
                           "_modules": collections.OrderedDict((k, module_tree(v)) for k, v in children.items())})

    g = dict(np.load(FIX / "cond-16" / "G_ema.npz"))
    d = dict(np.load(FIX / "cond-16" / "D.npz"))
    data = {"G": module_tree(g), "D": module_tree(d), "G_ema": module_tree(g), "augment_pipe": None,
            "training_set_kwargs": {"resolution": 16}}
    (tmp_path / "ada.pkl").write_bytes(pickle.dumps(data, protocol=4))
    bundle = load_network(tmp_path / "ada.pkl", cache=False)
    check_parity(bundle, np.load(FIX / "cond-16" / "reference.npz"))
    assert not (Path.cwd() / "PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_malicious_pickle_is_refused_before_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(legacy.UnsafePickleError, match="posix.system|os.system"):
        load_network(tmp_path / "evil.pkl", cache=False)
    assert not marker.exists()
    (tmp_path / "eval.pkl").write_bytes(pickle.dumps((eval, ("1+1",)))[:0] + b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(legacy.UnsafePickleError, match="builtins.eval"):
        load_network(tmp_path / "eval.pkl", cache=False)


def test_unknown_formats_are_clear_errors(tmp_path):
    (tmp_path / "net.txt").write_text("hi")
    with pytest.raises(UserError, match="unknown network format"):
        load_network(tmp_path / "net.txt")
    with pytest.raises(UserError, match="does not exist"):
        load_network(tmp_path / "missing.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="cannot read the network pickle"):
        load_network(tmp_path / "junk.pkl", cache=False)
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(UserError, match="not a StyleGAN2 network pickle"):
        load_network(tmp_path / "list.pkl", cache=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no network-snapshot"):
        load_network(tmp_path / "empty")
