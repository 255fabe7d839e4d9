"""`run_generator.py --export net.pkl`: our networks as an NVlabs/stylegan2 (TF1) network pickle, the format
stylegan2-ada-pytorch's `legacy.load_network_pkl` converts (networks/export.py). Checked here against the layout
NVIDIA's own pickles hold (the parity fixture's TF1 arrays) and by reading the file back; against NVIDIA's code
itself by benchmarks/check_nvidia_pickle.py (needs torch), kept apart."""
from __future__ import annotations

import io

import numpy as np
import pytest

from conftest import ROOT, run_cli

FIXTURES = ROOT / "tests" / "fixtures" / "stylegan2-parity"

# The static kwargs legacy.convert_tf_generator / convert_tf_discriminator accept (any other is a ValueError there).
NVIDIA_G_KWARGS = {"latent_size", "label_size", "dlatent_size", "resolution", "num_channels", "mapping_layers",
                   "label_fmaps", "mapping_fmaps", "mapping_nonlinearity", "mapping_lrmul", "w_avg_beta",
                   "fmap_base", "fmap_max", "num_fp16_res", "conv_clamp", "architecture", "resample_kernel",
                   "use_noise", "nonlinearity", "truncation_psi", "truncation_cutoff", "style_mixing_prob",
                   "structure"}
NVIDIA_D_KWARGS = {"label_size", "resolution", "num_channels", "architecture", "fmap_base", "fmap_max",
                   "num_fp16_res", "conv_clamp", "mapping_fmaps", "nonlinearity", "resample_kernel",
                   "freeze_layers", "mapping_layers", "mapping_lrmul", "mbstd_group_size", "mbstd_num_features",
                   "structure"}


def official(net) -> dict[str, np.ndarray]:
    from networks.convert import export_official_state
    return export_official_state(net)


def test_the_pickle_holds_nvidias_tf1_layout_exactly():
    """The parity fixture's weights exported: Gs and D hold exactly the variables (names, shapes, float32 values;
    mod_bias in float64 within float32's rounding) of NVIDIA's TF1 pickle of the same network, the static kwargs
    NVIDIA's converter reads, and the pickle names no class but dnnlib.tflib.network.Network and numpy's array
    helpers."""
    from networks.export import nvidia_pickle_bytes
    from networks import legacy
    from networks.legacy import TF1Network, safe_load_pickle
    from networks.serialize import load_network
    import json
    bundle = load_network(FIXTURES / "uncond-32")
    data, notes = nvidia_pickle_bytes(bundle.G_ema, bundle.D, bundle.G)
    assert notes == ["G is a copy of G_ema (this network has no G)"]
    G, D, Gs = safe_load_pickle(data)
    assert all(isinstance(n, TF1Network) for n in (G, D, Gs))
    for net, ref_file in ((Gs, "G_ema_tf1.npz"), (D, "D_tf1.npz")):
        ref = dict(np.load(FIXTURES / "uncond-32" / ref_file))
        ours = net.all_variables()
        assert sorted(ours) == sorted(ref)
        for name, value in ref.items():
            assert ours[name].shape == value.shape, name
            if name.endswith("mod_bias"):            # bias - 1 in float64, so that reading it back is exact
                assert ours[name].dtype == np.float64
                np.testing.assert_allclose(ours[name], value, rtol=0, atol=2 ** -23, err_msg=name)
            else:
                assert ours[name].dtype == np.float32
                np.testing.assert_array_equal(ours[name], value, err_msg=name)
    assert sorted(Gs.state["components"]) == ["mapping", "synthesis"] and Gs.state["version"] >= 4
    cfg = json.loads((FIXTURES / "uncond-32" / "config.json").read_text())
    for net, key, known in ((Gs, "G_tf1_static_kwargs", NVIDIA_G_KWARGS), (D, "D_tf1_static_kwargs", NVIDIA_D_KWARGS)):
        kwargs = net.state["static_kwargs"]
        assert set(kwargs) <= known
        assert {k: kwargs[k] for k in cfg[key]} == cfg[key]
    seen = set()

    class Recording(legacy._RestrictedUnpickler):
        def find_class(self, module, name):
            seen.add((module, name))
            return super().find_class(module, name)

    Recording(io.BytesIO(data)).load()
    assert ("dnnlib.tflib.network", "Network") in seen
    assert {m for m, _ in seen} <= {"dnnlib.tflib.network", "numpy", "numpy.core.multiarray", "numpy._core.multiarray"}


@pytest.mark.parametrize("fixture", ["cond-16", "trained"])
def test_cli_export_reads_back_as_the_same_networks(tmp_path, fixture):
    """--export net.pkl and load_network(net.pkl): G_ema, G and D come back with every weight equal and the same
    configuration, for NVIDIA's class-conditional fixture and for a network with a G of its own, float16 blocks,
    conv_clamp and a mapping learning rate and w_avg decay other than the defaults."""
    from networks.serialize import load_network, save_bundle
    from networks.stylegan2 import Discriminator, Generator
    if fixture == "trained":
        g_cfg = dict(z_dim=16, w_dim=16, img_resolution=16, channel_base=128, channel_max=16, mapping_layers=3,
                     mapping_lr_multiplier=0.1, w_avg_beta=0.99, mixed_precision="float16", mixed_precision_res=2,
                     conv_clamp=256.0)
        nets = [Generator(**g_cfg, name=n) for n in ("G_ema", "G")]
        D = Discriminator(img_resolution=16, channel_base=128, channel_max=16, mbstd_group_size=2,
                          mixed_precision="float16", mixed_precision_res=2, conv_clamp=256.0, name="D")
        rng = np.random.RandomState(0)
        for net in (*nets, D):
            for var in net.weights:
                var.assign(np.asarray(rng.randn(*var.shape), "float32"))
        source = tmp_path / "net.keras"
        save_bundle(source, nets[0], nets[1], D, {"kimg": 1.0})
    else:
        source = FIXTURES / fixture
    before = load_network(source)
    out = tmp_path / ("net.pkl" if fixture == "trained" else "NET.PKL")      # the suffix in either case
    r = run_cli("run_generator.py", "--network", str(source), "--export", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "legacy.load_network_pkl" in r.stdout
    assert ("G is a copy of G_ema" in r.stdout) == (fixture != "trained")
    after = load_network(out, cache=False)
    for name in ("G_ema", "G", "D"):
        ours, back = getattr(before, name) or before.G_ema, getattr(after, name)
        a, b = official(ours), official(back)
        assert sorted(a) == sorted(b), name
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
        keep = ("c_dim", "img_resolution", "channel_base", "channel_max", "mapping_layers", "mapping_lr_multiplier",
                "w_avg_beta", "conv_clamp", "mixed_precision_res", "mbstd_group_size", "mbstd_num_channels")
        if name == "D" and not ours.c_dim:
            keep = tuple(k for k in keep if k != "mapping_layers")       # no label mapping to have layers
        config_a, config_b = ours.get_config(), back.get_config()
        assert {k: config_a.get(k) for k in keep} == {k: config_b.get(k) for k in keep}, name


def test_a_network_nvidia_cannot_hold_is_refused_in_one_line(tmp_path):
    """No D (NVIDIA's pickles always hold one), or a snapshot taken while a resolution fades in: one error line,
    no file."""
    from networks.serialize import save_bundle
    from networks.stylegan2 import Discriminator, Generator
    cfg = dict(z_dim=8, w_dim=8, img_resolution=8, channel_base=32, channel_max=8, mapping_layers=1)
    save_bundle(tmp_path / "no-d.keras", Generator(**cfg, name="G_ema"))
    save_bundle(tmp_path / "fading.keras", Generator(**cfg, lod=0.5, name="G_ema"), None,
                Discriminator(img_resolution=8, channel_base=32, channel_max=8, name="D"))
    for name, says in (("no-d", "has no D"), ("fading", "fading in")):
        out = tmp_path / f"{name}.pkl"
        r = run_cli("run_generator.py", "--network", str(tmp_path / f"{name}.keras"), "--export", str(out))
        assert r.returncode != 0 and not out.exists()
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], r.stderr
