"""Reading NVIDIA's network pickles safely: no TensorFlow 1, no torch, no code from the pickle is ever run.

- NVlabs/stylegan2 and NVlabs/stylegan2-ada (TF1): a tuple (G, D, Gs) of `dnnlib.tflib.network.Network`; each
  unpickles here as a plain record of its state (`variables` as (name, array) pairs, `components` as
  sub-networks, `static_kwargs`).
- stylegan2-ada-pytorch / stylegan3: a dict with `G`, `D`, `G_ema`, `augment_pipe`, ... made by
  `torch_utils.persistence`; each network's state dict is read from the pickled module tree. Each tensor
  storage is embedded as `torch.storage._load_from_bytes(b)`, `b` written by torch.save in the legacy format
  (always, when a module is pickled with plain pickle) or as a zip archive; both are parsed here
  (`read_torch_legacy`, `read_torch_zip`) with this same unpickler. The embedded source code (`module_src`)
  is never executed.
- Only the classes and functions in `_ALLOWED` can be named by the pickle; anything else (os.system,
  builtins.eval, ...) is refused with UnsafePickleError before it can run.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

import numpy as np

from common.errors import UserError


class UnsafePickleError(UserError):
    """The pickle names a class or function outside the allowed set."""


class _Record:
    """Stands in for any allowed non-data class: keeps the state it is given."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state) -> None:
        self.state = state

    def __setitem__(self, key, value) -> None:     # dict subclasses such as EasyDict
        self.__dict__.setdefault("items", {})[key] = value


class TF1Network(_Record):
    """`dnnlib.tflib.network.Network` state: name, static_kwargs, components, variables."""

    def all_variables(self, prefix: str = "") -> dict[str, np.ndarray]:
        st = self.state or {}
        out = {prefix + name: np.asarray(value) for name, value in st.get("variables", [])}
        for cname, comp in (st.get("components") or {}).items():
            if isinstance(comp, TF1Network):
                out.update(comp.all_variables(f"{prefix}{cname}/"))
        return out


class TorchModule(_Record):
    """A persistent torch module (`torch_utils.persistence`) or a plain torch.nn module: only its state."""

    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        st = self.state if isinstance(self.state, dict) else {}
        out = {}
        for kind in ("_parameters", "_buffers"):
            for name, t in (st.get(kind) or {}).items():
                if t is not None:
                    out[prefix + name] = np.asarray(t)
        for name, child in (st.get("_modules") or {}).items():
            if isinstance(child, TorchModule):
                out.update(child.state_dict(f"{prefix}{name}."))
        return out


def _reconstruct_persistent_obj(meta: dict) -> TorchModule:
    """Replacement for torch_utils.persistence._reconstruct_persistent_obj: keeps `state`, ignores `module_src`."""
    obj = TorchModule()
    obj.state = meta.get("state") if isinstance(meta, dict) else None
    obj.class_name = meta.get("class_name") if isinstance(meta, dict) else None
    return obj


# ----------------------------------------------------------------------------------- torch tensors, no torch
_TORCH_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                 "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                 "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
                 "BFloat16Storage": None, "UntypedStorage": np.uint8}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class _Storage:
    def __init__(self, data: bytes, dtype) -> None:
        if dtype is None:
            raise UserError("bfloat16 tensors are not supported in network pickles")
        self.array = np.frombuffer(data, dtype=dtype)


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *args) -> np.ndarray:
    arr = storage.array
    if not size:
        return arr[offset].copy()
    itemsize = arr.itemsize
    view = np.lib.stride_tricks.as_strided(arr[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride))
    return np.array(view)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *args) -> np.ndarray:
    return data


def read_torch_zip(data: bytes | str) -> Any:
    """Load a torch.save / TorchScript zip archive (data.pkl + data/N) into numpy, without torch."""
    with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as z:
        names = z.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise UserError("not a torch archive: no data.pkl inside")
        root = pkl[: -len("data.pkl")]
        cache: dict[str, _Storage] = {}

        def load_storage(pid):
            if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
                raise UnsafePickleError(f"unexpected persistent id {pid!r}")
            storage_type, key = pid[1], str(pid[2])
            if key not in cache:
                name = storage_type.name if isinstance(storage_type, _StorageType) else str(storage_type)
                dtype = _TORCH_DTYPES.get(name, np.float32) if not isinstance(storage_type, np.dtype) else storage_type
                cache[key] = _Storage(z.read(f"{root}data/{key}"), dtype)
            return cache[key]

        return _RestrictedUnpickler(io.BytesIO(z.read(pkl)), persistent_load=load_storage).load()


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C      # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001                      # torch.serialization.PROTOCOL_VERSION


def _storage_dtype(storage_type: Any) -> Any:
    if isinstance(storage_type, np.dtype):
        return storage_type
    name = storage_type.name if isinstance(storage_type, _StorageType) else str(storage_type)
    if name not in _TORCH_DTYPES:
        raise UserError(f"unsupported torch storage type {name} in the network pickle")
    return _TORCH_DTYPES[name]


def read_torch_legacy(data: bytes) -> Any:
    """Load a legacy (non-zip) torch.save stream into numpy, without torch and with the restricted unpickler.

    Layout (torch.serialization._legacy_save): pickle(magic 0x1950a86a20f9469cfc6c), pickle(protocol 1001),
    pickle(sys_info), pickle(the object; storages as persistent ids ('storage', StorageType, key, location,
    numel, view_metadata)), pickle(list of storage keys); then per key in that order: int64 LE element count
    and the raw little-endian elements. The object pickle is read twice: once to learn each key's dtype
    (tensors built on zero storages, discarded), then on the real storages.
    """
    f = io.BytesIO(data)
    try:
        magic = _RestrictedUnpickler(f).load()
        version = _RestrictedUnpickler(f).load()
        sys_info = _RestrictedUnpickler(f).load()
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"not a torch legacy storage stream ({type(exc).__name__})") from None
    if magic != LEGACY_MAGIC or version != LEGACY_PROTOCOL:
        raise UserError(f"not a torch legacy storage stream (magic {magic!r}, protocol {version!r})")
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise UserError("this network pickle was written on a big-endian machine; not supported")
    obj_start = f.tell()
    dtypes: dict[str, Any] = {}

    def probe(pid):                                     # pass 1: each storage key's dtype and size
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"unexpected persistent id {pid!r}")
        dtype = _storage_dtype(pid[1])
        dtypes[str(pid[2])] = dtype
        return _Storage(bytes(int(pid[4]) * np.dtype(dtype).itemsize), dtype)

    _RestrictedUnpickler(f, persistent_load=probe).load()
    keys = _RestrictedUnpickler(f).load()
    if not isinstance(keys, list):
        raise UserError("torch legacy storage stream: bad storage key list")
    pos, storages = f.tell(), {}
    for key in keys:
        key = str(key)
        if key not in dtypes:
            raise UserError(f"torch legacy storage stream: storage {key} is not referenced")
        numel = int.from_bytes(data[pos:pos + 8], "little", signed=True)
        nbytes = numel * np.dtype(dtypes[key]).itemsize
        if numel < 0 or pos + 8 + nbytes > len(data):
            raise UserError("torch legacy storage stream is truncated")
        storages[key] = _Storage(data[pos + 8:pos + 8 + nbytes], dtypes[key])
        pos += 8 + nbytes

    def load(pid):                                      # pass 2: the real storages (and views of them)
        storage = storages.get(str(pid[2]))
        if storage is None:
            raise UserError(f"torch legacy storage stream: storage {pid[2]} has no data")
        view = pid[5] if len(pid) > 5 else None
        if view is not None:                            # (view_key, offset, numel): a slice of the storage
            sub = _Storage(b"", np.uint8)
            sub.array = storage.array[int(view[1]):int(view[1]) + int(view[2])]
            return sub
        return storage

    f.seek(obj_start)
    return _RestrictedUnpickler(f, persistent_load=load).load()


def _load_from_bytes(b: bytes) -> Any:
    """Replacement for torch.storage._load_from_bytes: the storages pickled inside network pickles, written by
    torch.save in the legacy format (every torch version when a module is pickled with plain pickle) or,
    rarely, as a zip archive."""
    if not isinstance(b, (bytes, bytearray)):
        raise UnsafePickleError("torch.storage._load_from_bytes called with something other than bytes")
    if bytes(b[:2]) == b"PK":
        return read_torch_zip(bytes(b))
    return read_torch_legacy(bytes(b))


# (module, name) -> object the pickle may name. Nothing here executes code from the pickle.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("_codecs", "encode"): lambda s, enc="latin1": s.encode(enc),
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("dnnlib.tflib.network", "Network"): TF1Network,
    ("dnnlib.util", "EasyDict"): dict,
    ("dnnlib", "EasyDict"): dict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("torch", "Size"): tuple,
    ("torch.jit._pickle", "build_intlist"): list,            # TorchScript module attributes
    ("torch.jit._pickle", "build_doublelist"): list,
    ("torch.jit._pickle", "build_boollist"): list,
    ("torch", "device"): str,
}
_np_multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _np_multiarray._reconstruct
    _ALLOWED[(_mod, "scalar")] = _np_multiarray.scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):            # ndarrays pickled with protocol 5
    _ALLOWED[(_mod, "_frombuffer")] = lambda buf, dtype, shape, order="C": np.frombuffer(
        buf, dtype=np.dtype(dtype)).reshape(shape, order=order)
for _name in _TORCH_DTYPES:
    _ALLOWED[("torch", _name)] = _StorageType(_name)
for _name in ("float32", "float16", "float64", "int64", "int32", "uint8", "bool", "bfloat16"):
    _ALLOWED[("torch", _name)] = np.dtype(_name) if _name != "bfloat16" else None


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, persistent_load=None) -> None:
        super().__init__(file)
        self._pid = persistent_load

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in _ALLOWED and _ALLOWED[key] is not None:
            return _ALLOWED[key]
        data_modules = ("training.", "torch.nn.modules.", "torch_utils.", "networks", "legacy", "__torch__.")
        if module.startswith(data_modules) and name[:1].isupper() and "." not in name:
            return TorchModule             # plain (non-persistent) or TorchScript module classes: data only
        raise UnsafePickleError(f"refusing to load: the pickle names {module}.{name}, which is not a "
                                f"network class or tensor helper (it could run code)")

    def persistent_load(self, pid):
        if self._pid is None:
            raise UnsafePickleError(f"unexpected persistent id {pid!r}")
        return self._pid(pid)


def safe_load_pickle(data: bytes) -> Any:
    """Unpickle `data` admitting only network containers, numpy arrays and torch tensors."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot read the network pickle: {type(exc).__name__}: {exc}") from None


# ----------------------------------------------------------------------------------- TF1 names -> official
def tf1_to_official(tf1: dict[str, np.ndarray], kind: str, static_kwargs: dict | None = None) -> dict[str, np.ndarray]:
    """Convert NVlabs/stylegan2 and NVlabs/stylegan2-ada (TF1) variable names/layouts (G or Gs: kind 'G'; D:
    kind 'D') to official PyTorch ones, as stylegan2-ada-pytorch's legacy.py does. TF1-ADA adds label
    embeddings (`mapping/LabelEmbed` in G, `LabelEmbed` and `Mapping{i}` (lr multiplier `mapping_lrmul`,
    default 0.1; ours 0.01) in D); fp16 and conv_clamp options change no variable."""
    kw = static_kwargs or {}
    want = "skip" if kind == "G" else "resnet"
    if kw.get("architecture", want) != want:
        raise UserError(f"TF1 {kind} with architecture {kw['architecture']!r} is not supported (StyleGAN2 "
                        f"config F uses a {want} {'generator' if kind == 'G' else 'discriminator'})")
    out: dict[str, np.ndarray] = {}
    conv = lambda w: np.asarray(w).transpose(3, 2, 0, 1)  # noqa: E731  [kh, kw, I, O] -> [O, I, kh, kw]
    if kind == "G":
        noise_layers = []
        for name, v in tf1.items():
            parts = name.split("/")
            if name == "dlatent_avg":
                out["mapping.w_avg"] = v
            elif parts[0] == "mapping" and parts[1].startswith("Dense"):
                out[f"mapping.fc{parts[1][5:]}.{parts[2]}"] = v.T if parts[2] == "weight" else v
            elif parts[0] == "mapping" and parts[1] == "LabelEmbed":             # stylegan2-ada
                out[f"mapping.embed.{parts[2]}"] = v.T if parts[2] == "weight" else v
            elif parts[0] == "mapping" and parts[1] == "LabelConcat":
                raise UserError("conditional TF1 generators use a different label embedding; not supported")
            elif parts[0] == "synthesis" and parts[1].startswith("noise"):
                noise_layers.append((int(parts[1][5:]), v))
            elif parts[0] == "synthesis":
                res = parts[1].split("x")[0]
                layer = {"Const": "const", "Conv": "conv1", "Conv0_up": "conv0", "Conv1": "conv1",
                         "ToRGB": "torgb"}.get(parts[2])
                if layer is None:
                    raise UserError(f"unknown TF1 generator variable {name}")
                base, leaf = f"synthesis.b{res}", parts[3]
                if layer == "const":
                    out[f"{base}.const"] = v[0]
                elif leaf == "weight":
                    w = conv(v)
                    out[f"{base}.{layer}.weight"] = w[:, :, ::-1, ::-1].copy() if layer == "conv0" else w
                elif leaf == "mod_weight":
                    out[f"{base}.{layer}.affine.weight"] = v.T
                elif leaf == "mod_bias":
                    out[f"{base}.{layer}.affine.bias"] = v + 1.0
                else:
                    out[f"{base}.{layer}.{leaf}"] = v
            elif name not in ("lod",):
                raise UserError(f"unknown TF1 generator variable {name}")
        # noise0 is the 4x4 conv; then conv0, conv1 of each resolution in order.
        targets = sorted({k.rsplit(".", 1)[0] for k in out if k.endswith("noise_strength")},
                         key=lambda s: (int(s.split(".")[1][1:]), s.split(".")[2]))
        if len(noise_layers) != len(targets):
            raise UserError(f"TF1 generator has {len(noise_layers)} noise buffers for {len(targets)} conv layers")
        for (_, v), target in zip(sorted(noise_layers), targets):
            out[f"{target}.noise_const"] = np.asarray(v).reshape(v.shape[-2:])
        return out
    for name, v in tf1.items():
        parts = name.split("/")
        if parts[0] == "Output":
            out[f"b4.out.{parts[1]}"] = v.T if parts[1] == "weight" else v
            continue
        if parts[0] == "LabelEmbed":                                           # stylegan2-ada projection D
            out[f"mapping.embed.{parts[1]}"] = v.T if parts[1] == "weight" else v
            continue
        if parts[0].startswith("Mapping") and parts[0][7:].isdigit():
            gain = float(kw.get("mapping_lrmul", 0.1)) / 0.01                  # same function at our lr x0.01
            out[f"mapping.fc{parts[0][7:]}.{parts[1]}"] = (v.T if parts[1] == "weight" else v) * gain
            continue
        if parts[0] == "mapping" or parts[0].startswith("LabelEmbed"):
            raise UserError("this conditional TF1 discriminator is not supported")
        res = parts[0].split("x")[0]
        layer = {"FromRGB": "fromrgb", "Conv0": "conv0", "Conv1_down": "conv1", "Skip": "skip", "Conv": "conv",
                 "Dense0": "fc"}.get(parts[1])
        if layer is None:
            raise UserError(f"unknown TF1 discriminator variable {name}")
        leaf = parts[2]
        if leaf == "weight":
            v = v.T if v.ndim == 2 else conv(v)
        out[f"b{res}.{layer}.{leaf}"] = v
    return out


# ----------------------------------------------------------------------------------- official -> TF1 names
def official_to_tf1(state: dict[str, np.ndarray], kind: str) -> dict[str, np.ndarray]:
    """Inverse of tf1_to_official (kind 'G' or 'D'): official names and layouts -> the variable names and layouts
    inside an NVlabs/stylegan2 pickle (dense [in, out], conv [kh, kw, in, out], the generator's upsampling conv
    spatially flipped, mod_bias = affine bias - 1 (float64, the only one: exact both ways), noise buffers
    `synthesis/noiseK` [1, 1, H, W]). D's mapping is written at lr multiplier 0.01 (`mapping_lrmul` 0.01 goes with
    it). Resample filters are not variables in TF1."""
    out: dict[str, np.ndarray] = {}
    conv = lambda w: np.asarray(w).transpose(2, 3, 1, 0)  # noqa: E731  [O, I, kh, kw] -> [kh, kw, I, O]
    dense = lambda name, v: v.T if name.endswith("weight") else v  # noqa: E731
    for name, v in state.items():
        v = np.asarray(v, np.float32)
        parts = name.split(".")
        if parts[-1] == "resample_filter":
            continue
        if kind == "G":
            if name == "mapping.w_avg":
                out["dlatent_avg"] = v
            elif parts[0] == "mapping":
                layer = "LabelEmbed" if parts[1] == "embed" else f"Dense{parts[1][2:]}"
                out[f"mapping/{layer}/{parts[2]}"] = dense(name, v)
            elif parts[2] == "const":
                out["synthesis/4x4/Const/const"] = v[None]
            else:
                res, layer, leaf = int(parts[1][1:]), parts[2], ".".join(parts[3:])
                tf_layer = {"conv0": "Conv0_up", "conv1": "Conv" if res == 4 else "Conv1", "torgb": "ToRGB"}[layer]
                base = f"synthesis/{res}x{res}/{tf_layer}"
                if leaf == "noise_const":
                    k = 0 if res == 4 else int(np.log2(res)) * 2 - (5 if layer == "conv0" else 4)
                    out[f"synthesis/noise{k}"] = v[None, None]
                elif leaf == "weight":
                    w = conv(v)
                    out[f"{base}/weight"] = w[::-1, ::-1] if layer == "conv0" else w
                elif leaf == "affine.weight":
                    out[f"{base}/mod_weight"] = v.T
                elif leaf == "affine.bias":                 # float64: bias - 1 exactly, so + 1 gives it back
                    out[f"{base}/mod_bias"] = v.astype(np.float64) - 1.0
                else:
                    out[f"{base}/{leaf}"] = v
            continue
        if parts[0] == "mapping":
            layer = "LabelEmbed" if parts[1] == "embed" else f"Mapping{parts[1][2:]}"
            out[f"{layer}/{parts[2]}"] = dense(name, v)
        elif parts[0] == "b4" and parts[1] in ("conv", "fc", "out"):
            layer = {"conv": "4x4/Conv", "fc": "4x4/Dense0", "out": "Output"}[parts[1]]
            out[f"{layer}/{parts[2]}"] = conv(v) if v.ndim == 4 else dense(name, v)
        else:
            res = int(parts[0][1:])
            layer = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[parts[1]]
            out[f"{res}x{res}/{layer}/{parts[2]}"] = conv(v) if v.ndim == 4 else v
    return {k: np.array(v, v.dtype, order="C") for k, v in out.items()}    # (ascontiguousarray makes 0-d 1-d)
