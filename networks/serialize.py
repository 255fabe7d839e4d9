"""Network files: our own format, official NVIDIA pickles, the parity fixtures' .npz, SavedModel export.

Our format is one Keras 3 file (`.keras`: a zip of config.json + weights, no pickle) holding a
`NetworkBundle` with G_ema and optionally G and D, plus metadata. Loading needs only this package.
`load_network(path)` accepts:
  - our `.keras` bundle, or a run folder (its newest `network-snapshot-*.keras`);
  - an NVlabs/stylegan2 or stylegan2-ada TF1 pickle or a stylegan2-ada-pytorch / stylegan3 pickle (StyleGAN2
    networks), converted once and cached in ~/.cache/stylegan2-tf/networks as `.keras`;
  - an http(s) URL or a short name of NVIDIA's published networks (networks.pretrained): downloaded once into
    the cache and converted once to a `.keras` beside the download;
  - a folder or `.npz` in the parity-fixture format (`G_ema.npz`, `D.npz`, `config.json`).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import keras

from common.errors import UserError
from common.files import CACHE, atomic_path, replace_folder
from networks.locate import snapshot_kimg  # noqa: F401  (also imported from here)
from networks.convert import load_official_state
from networks.ops import to_uint8
from networks.stylegan2 import PACKAGE, Discriminator, Generator

CACHE_DIR = CACHE / "networks"                   # NVIDIA pickles converted to .keras
CONVERTER = 2          # version of the pickle conversion; cached conversions of older versions are redone
                       # (2: conv_clamp, float16 resolutions and minibatch-std options carried over)


@keras.saving.register_keras_serializable(package=PACKAGE)
class NetworkBundle(keras.Model):
    """G_ema (always), G and D (optional) and JSON-able metadata, saved as one `.keras` file."""

    def __init__(self, G_ema: Generator, G: Generator | None = None, D: Discriminator | None = None,
                 metadata: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.G_ema, self.G, self.D = G_ema, G, D
        self.metadata = dict(metadata or {})
        self.built = True

    def call(self, z, c=None):
        return self.G_ema(z, c)

    def get_config(self) -> dict:
        ser = keras.saving.serialize_keras_object
        return {**super().get_config(), "G_ema": ser(self.G_ema), "G": ser(self.G) if self.G else None,
                "D": ser(self.D) if self.D else None, "metadata": self.metadata}

    @classmethod
    def from_config(cls, config: dict) -> "NetworkBundle":
        de = keras.saving.deserialize_keras_object
        config = dict(config)
        nets = {k: config.pop(k, None) for k in ("G_ema", "G", "D")}
        nets = {k: de(v) if v else None for k, v in nets.items()}
        return cls(**nets, **config)


def save_bundle(path: str | Path, G_ema: Generator, G: Generator | None = None, D: Discriminator | None = None,
                metadata: dict | None = None) -> Path:
    """Write the bundle to `path` (.keras) atomically."""
    with atomic_path(path) as tmp:
        NetworkBundle(G_ema, G, D, metadata).save(tmp)
    return Path(path)


def _options(g_kwargs: dict, d_kwargs: dict) -> tuple[dict, dict]:
    """The options of NVIDIA networks that no weight shape shows, from their init kwargs (PyTorch:
    `synthesis_kwargs` and `mapping_kwargs` of G, D's own; TF1: the static kwargs, same names): the mapping's
    lr multiplier and w_avg decay, conv_clamp (every layer NVIDIA
    clamps, float32 ones included), the number of float16 resolutions, D's minibatch-stddev group and
    channels; and the architecture kinds, of which only skip G / resnet D (config E and F) exist here."""
    syn = g_kwargs.get("synthesis_kwargs") or g_kwargs
    epi = d_kwargs.get("epilogue_kwargs") or d_kwargs
    for kind, kw, want in (("G", syn, "skip"), ("D", d_kwargs, "resnet")):
        if kw.get("architecture", want) != want:
            raise UserError(f"{kind} architecture {kw['architecture']!r} is not supported (StyleGAN2 config E and "
                            f"F use a {want} {'generator' if kind == 'G' else 'discriminator'})")
    g, d = {}, {}
    mapping = g_kwargs.get("mapping_kwargs") or g_kwargs                  # PyTorch names, else TF1 ones
    lr = mapping.get("lr_multiplier", mapping.get("mapping_lrmul"))
    if lr is not None:
        g["mapping_lr_multiplier"] = float(lr)
    if isinstance(mapping.get("w_avg_beta"), (int, float)):
        g["w_avg_beta"] = float(mapping["w_avg_beta"])
    for out, kw in ((g, syn), (d, d_kwargs)):
        if kw.get("conv_clamp") is not None:
            out["conv_clamp"] = float(kw["conv_clamp"])
        if "num_fp16_res" in kw:
            out["mixed_precision_res"] = int(kw["num_fp16_res"] or 0)
    if epi.get("mbstd_group_size"):
        d["mbstd_group_size"] = int(epi["mbstd_group_size"])
    channels = epi.get("mbstd_num_channels", epi.get("mbstd_num_features"))
    if channels is not None:
        d["mbstd_num_channels"] = int(channels)
    return g, d


def _config_from_fixture(cfg: dict) -> tuple[dict, dict]:
    g, d = cfg["G_init_kwargs"], cfg["D_init_kwargs"]
    syn = g.get("synthesis_kwargs", {})
    gk = dict(z_dim=g["z_dim"], c_dim=g["c_dim"], w_dim=g["w_dim"], img_resolution=g["img_resolution"],
              img_channels=g["img_channels"], mapping_layers=g.get("mapping_kwargs", {}).get("num_layers", 8),
              channel_base=syn.get("channel_base", 32768), channel_max=syn.get("channel_max", 512))
    dk = dict(c_dim=d["c_dim"], img_resolution=d["img_resolution"], img_channels=d["img_channels"],
              channel_base=d.get("channel_base", 32768), channel_max=d.get("channel_max", 512),
              mbstd_group_size=d.get("epilogue_kwargs", {}).get("mbstd_group_size", 4))
    go, do = _options(g, d)
    return {**gk, **go}, {**dk, **do}


def _infer_g_config(state: dict[str, np.ndarray]) -> dict:
    """Generator kwargs from an official state dict's shapes."""
    res = max(int(k.split(".")[1][1:]) for k in state if k.startswith("synthesis.b"))
    fc = sorted(int(k.split(".")[1][2:]) for k in state if k.startswith("mapping.fc") and k.endswith(".weight"))
    w_dim = state["mapping.fc0.weight"].shape[0]
    c_dim = state["mapping.embed.weight"].shape[1] if "mapping.embed.weight" in state else 0
    z_dim = state["mapping.fc0.weight"].shape[1] - (w_dim if c_dim else 0)
    ch = {int(k.split(".")[1][1:]): v.shape[0] for k, v in state.items()
          if k.startswith("synthesis.b") and k.endswith(".conv1.weight")}
    channel_max = max(ch.values())
    # channel_base: the smallest base that reproduces every block's width.
    base = next(b for b in (2 ** i for i in range(6, 20)) if all(min(b // r, channel_max) == c for r, c in ch.items()))
    img_channels = state[f"synthesis.b{res}.torgb.weight"].shape[0]
    return dict(z_dim=int(z_dim), c_dim=int(c_dim), w_dim=int(w_dim), img_resolution=res,
                img_channels=int(img_channels), mapping_layers=len(fc), channel_base=base,
                channel_max=int(channel_max))


def _infer_d_config(state: dict[str, np.ndarray], g_cfg: dict) -> dict:
    res = max(int(k.split(".")[0][1:]) for k in state if k.startswith("b") and ".fromrgb." in k)
    return dict(c_dim=g_cfg["c_dim"], img_resolution=res, img_channels=state[f"b{res}.fromrgb.weight"].shape[1],
                channel_base=g_cfg["channel_base"], channel_max=g_cfg["channel_max"],
                mapping_layers=len([k for k in state if k.startswith("mapping.fc") and k.endswith(".weight")]))


def build_from_official(G_ema_state: dict, D_state: dict | None = None, G_state: dict | None = None,
                        g_cfg: dict | None = None, d_cfg: dict | None = None,
                        metadata: dict | None = None) -> NetworkBundle:
    """Our networks holding the given official-named weights (configs inferred from shapes when not given)."""
    g_cfg = g_cfg or _infer_g_config(G_ema_state)
    G_ema = Generator(**g_cfg, name="G_ema")
    load_official_state(G_ema, G_ema_state)
    G = None
    if G_state is not None:
        G = Generator(**g_cfg, name="G")
        load_official_state(G, G_state)
    D = None
    if D_state is not None:
        D = Discriminator(**(d_cfg or _infer_d_config(D_state, g_cfg)), name="D")
        load_official_state(D, D_state)
    return NetworkBundle(G_ema, G, D, metadata)


def _plain(value, depth: int = 0):
    """JSON-able copy of a pickled value (numbers, strings, small arrays as lists; anything else as its type)."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, np.ndarray) and value.size <= 16:
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict) and depth < 3:
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and len(value) <= 16 and depth < 3:
        return [_plain(v, depth + 1) for v in value]
    return f"<{type(value).__name__}>"


def _torch_entry(data: dict, key: str, source: str) -> dict[str, np.ndarray] | None:
    """The official state dict of network `key` of a stylegan2-ada-pytorch / stylegan3 snapshot (None if absent)."""
    from networks import legacy
    net = data.get(key)
    if net is None:
        return None
    if not isinstance(net, legacy.TorchModule):
        raise UserError(f"{source}: entry {key!r} is not a network ({type(net).__name__})")
    cls = net.class_name or ""
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("resample_filter")}
    alias_free = "stylegan3" in cls or any(k.startswith(("synthesis.input.", "synthesis.L0_")) for k in state)
    if alias_free or (key.startswith("G") and not any(k.startswith("synthesis.b") for k in state)):
        kind = "a StyleGAN3 (alias-free) generator" if alias_free else "an unknown generator"
        raise UserError(f"{source}: not a StyleGAN2 network: {key} is {kind} (class {cls or '?'}); "
                        "only StyleGAN2 networks can be loaded")
    return state


def _init_kwargs(net) -> dict:
    st = getattr(net, "state", None)
    kw = st.get("_init_kwargs") if isinstance(st, dict) else None
    return kw if isinstance(kw, dict) else {}


def _from_pickle(path: Path, source: str | None = None) -> NetworkBundle:
    """Convert an NVIDIA network pickle (read with the restricted unpickler) to our networks."""
    from networks import legacy
    source = source or str(path)
    data = legacy.safe_load_pickle(path.read_bytes())
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, legacy.TF1Network) for n in data):
        G, D, Gs = data
        kw = [dict((n.state or {}).get("static_kwargs") or {}) for n in (G, D, Gs)]
        ada = (Gs.state or {}).get("version", 4) >= 5 or any(k in kw[2] for k in ("num_fp16_res", "conv_clamp"))
        g_state = legacy.tf1_to_official(Gs.all_variables(), "G", kw[2])
        d_state = legacy.tf1_to_official(D.all_variables(), "D", kw[1])
        go, do = _options(kw[2], kw[1])
        g_cfg = {**_infer_g_config(g_state), **go}
        d_cfg = {**_infer_d_config(d_state, g_cfg), **do}
        meta = {"source": source, "format": "nvlabs-stylegan2-ada-tf1" if ada else "nvlabs-stylegan2-tf1",
                "static_kwargs": _plain(kw[2])}
        return build_from_official(g_state, d_state, legacy.tf1_to_official(G.all_variables(), "G", kw[0]),
                                   g_cfg=g_cfg, d_cfg=d_cfg, metadata=meta)
    if isinstance(data, dict) and "G_ema" in data:
        states = {k: _torch_entry(data, k, source) for k in ("G_ema", "G", "D")}
        go, do = _options(_init_kwargs(data["G_ema"]), _init_kwargs(data["D"]) if states["D"] is not None else {})
        g_cfg = {**_infer_g_config(states["G_ema"]), **go}
        d_cfg = None
        if states["D"] is not None:
            d_cfg = {**_infer_d_config(states["D"], g_cfg), **do}
        meta = {"source": source, "format": "stylegan2-ada-pytorch",
                "G_init_kwargs": _plain(_init_kwargs(data["G_ema"])),
                "ignored_entries": {k: _plain(v) if not isinstance(v, legacy.TorchModule) else
                                    f"<{v.class_name or 'torch module'}>"
                                    for k, v in data.items() if k not in ("G", "D", "G_ema")}}
        return build_from_official(states["G_ema"], states["D"], states["G"], g_cfg=g_cfg, d_cfg=d_cfg,
                                   metadata=meta)
    raise UserError(f"{source}: not a StyleGAN2 network pickle (expected (G, D, Gs) or a dict with G_ema)")


def _from_fixture(path: Path) -> NetworkBundle:
    folder = path if path.is_dir() else path.parent
    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else None
    g_cfg, d_cfg = _config_from_fixture(cfg) if cfg else (None, None)
    g_file = path if path.suffix == ".npz" else folder / "G_ema.npz"
    d_file = folder / "D.npz"
    return build_from_official(dict(np.load(g_file)), dict(np.load(d_file)) if d_file.exists() else None,
                               g_cfg=g_cfg, d_cfg=d_cfg, metadata={"source": str(path), "format": "npz"})


def _cache_path(path: Path) -> Path:
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return CACHE_DIR / f"{path.stem}-{key}.keras"


def network_file(path: Path) -> Path:
    """The file a local network path stands for: a run folder's newest `network-snapshot-*.keras`; a file or
    a parity-fixture folder (G_ema.npz) itself. UserError if there is none."""
    if not path.exists():
        raise UserError(f"network {path} does not exist")
    if path.is_dir() and not (path / "G_ema.npz").exists():
        snaps = sorted(path.glob("network-snapshot-*.keras"), key=snapshot_kimg)
        if not snaps:
            raise UserError(f"{path} holds no network-snapshot-*.keras (is it a training run folder?)")
        return snaps[-1]
    return path


def load_network(path: str | Path, cache: bool = True) -> NetworkBundle:
    """Load any supported network file or run folder, URL or published name (see module docstring); UserError
    if unusable."""
    from networks import locate, pretrained
    if isinstance(path, str) and path in locate.SHIPPED:
        path = locate.shipped_file(path)
    if isinstance(path, str) and pretrained.is_remote(path):
        path = pretrained.fetch(path)
    path = network_file(Path(path))
    if path.is_dir():
        return _from_fixture(path)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise UserError(f"{path} is damaged or not a .keras file (not a complete zip archive; was it truncated?)")
        try:
            bundle = keras.saving.load_model(path, compile=False)
        except Exception as exc:
            raise UserError(f"cannot load {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
        if not isinstance(bundle, NetworkBundle):
            raise UserError(f"{path} is a Keras file but not a StyleGAN2 network bundle")
        return bundle
    if suffix == ".npz":
        try:
            return _from_fixture(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path}: not a readable network .npz ({type(exc).__name__}: {exc})") from None
    if suffix in (".pkl", ".pickle"):
        downloaded = path.resolve().parent == pretrained.networks_dir().resolve()
        cached = path.with_suffix(".keras") if downloaded else _cache_path(path)      # downloads: beside them
        if cache and cached.exists():
            bundle = load_network(cached)
            if bundle.metadata.get("converter") == CONVERTER:
                return bundle
        try:
            bundle = _from_pickle(path)
            bundle.metadata["converter"] = CONVERTER
        except UserError as exc:                 # every problem names the file (same error type)
            raise type(exc)(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None
        if cache:
            try:
                save_bundle(cached, bundle.G_ema, bundle.G, bundle.D, bundle.metadata)
            except OSError:
                pass
        return bundle
    raise UserError(f"{path}: unknown network format (expected .keras, .pkl, .npz or a run folder)")



def export_saved_model(G: Generator, path: str | Path) -> None:
    """SavedModel with endpoint `generate(z [N, z_dim] float32, psi [] float32) -> uint8 [N, R, R, C]`
    (and `c [N, c_dim]` for conditional networks), constant noise."""
    import tensorflow as tf
    archive = keras.export.ExportArchive()
    archive.track(G)
    z_spec = tf.TensorSpec([None, G.z_dim], tf.float32, name="z")
    psi_spec = tf.TensorSpec([], tf.float32, name="psi")
    if G.c_dim:
        c_spec = tf.TensorSpec([None, G.c_dim], tf.float32, name="c")
        fn = tf.function(autograph=False)(lambda z, psi, c: to_uint8(G(z, c, truncation_psi=psi, noise_mode="const")))
        archive.add_endpoint("generate", fn, input_signature=[z_spec, psi_spec, c_spec])
    else:
        fn = tf.function(autograph=False)(lambda z, psi: to_uint8(G(z, None, truncation_psi=psi, noise_mode="const")))
        archive.add_endpoint("generate", fn, input_signature=[z_spec, psi_spec])
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")              # complete before it takes the name
    shutil.rmtree(tmp, ignore_errors=True)
    archive.write_out(str(tmp), verbose=False)
    replace_folder(tmp, path)                                 # --overwrite: the old folder goes only now
