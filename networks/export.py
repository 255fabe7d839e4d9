"""Generators for deployment, outside Python and TensorFlow: LiteRT (`.tflite`, builtin ops only), ONNX (`.onnx`)
and a static web page that runs the ONNX file in onnxruntime-web, opened from disk; and whole networks (G, D, G_ema)
as an NVIDIA network pickle (`.pkl`) for the PyTorch tools built on stylegan2-ada-pytorch's loader.

Each holds one function `generate(z [N, z_dim] float32, psi [] float32[, c [N, c_dim] float32]) -> images uint8
[N, R, R, C]` with constant noise, the same images as `run_generator.py --noise-mode const`. The converters
(TensorFlow's LiteRT converter, tf2onnx) run only here; the runtimes that read the files are not needed to write
them.
"""
from __future__ import annotations

import base64
import copyreg
import io
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import keras

from common.errors import UserError
from common.files import atomic_path, replace_folder
from networks.ops import to_uint8
from networks import webruntime
from networks.stylegan2 import Generator

QUANTIZE = ("none", "float16", "int8")
ONNX_OPSET = 17

WEB_TEMPLATE = Path(__file__).with_name("web")


def _signature(G: Generator):
    import tensorflow as tf
    spec = [tf.TensorSpec([None, G.z_dim], tf.float32, name="z"), tf.TensorSpec([], tf.float32, name="psi")]
    if G.c_dim:
        spec.append(tf.TensorSpec([None, G.c_dim], tf.float32, name="c"))
    return spec


def generate_function(G: Generator):
    """tf.function (z, psi[, c]) -> {"images": uint8 [N, R, R, C]}, constant noise."""
    import tensorflow as tf

    if G.c_dim:
        def generate(z, psi, c):
            return {"images": to_uint8(G(z, c, truncation_psi=psi, noise_mode="const"))}
    else:
        def generate(z, psi):
            return {"images": to_uint8(G(z, None, truncation_psi=psi, noise_mode="const"))}
    return tf.function(generate, input_signature=_signature(G), autograph=False)


def export_litert(G: Generator, path: str | Path, quantize: str = "none") -> int:
    """Write a LiteRT flatbuffer of builtin ops only with the signature `generate`; returns its size in bytes.
    quantize: none (float32), float16 (weights stored as float16) or int8 (dynamic range: int8 weights, float
    activations)."""
    import tensorflow as tf
    if quantize not in QUANTIZE:
        raise UserError(f"--quantize {quantize}: one of {', '.join(QUANTIZE)}")
    archive = keras.export.ExportArchive()          # (a tf.Module saved directly keeps Keras 3 variables as
    archive.track(G)                                # resources the converter leaves unfrozen: READ_VARIABLE)
    archive.add_endpoint("generate", generate_function(G), input_signature=_signature(G))
    with tempfile.TemporaryDirectory(prefix="stylegan2-litert-") as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["generate"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]         # no Flex (TF Select) ops
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(flatbuffer)
    return len(flatbuffer)


def onnx_model(G: Generator):
    """The generator as an onnx.ModelProto: inputs z, psi (and c), output `images`, batch dimension `N`."""
    import tf2onnx
    model, _ = tf2onnx.convert.from_function(generate_function(G), input_signature=_signature(G), opset=ONNX_OPSET)
    graph = model.graph
    old = graph.output[0].name
    for node in graph.node:                                  # tf2onnx names the output after its TF tensor
        node.output[:] = ["images" if o == old else o for o in node.output]
    graph.output[0].name = "images"
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) >= 2 and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "N"
    model.producer_name = "stylegan2-tf"
    return model


def export_onnx(G: Generator, path: str | Path) -> int:
    """Write an ONNX model (opset 17) of `generate`; returns its size in bytes."""
    data = onnx_model(G).SerializeToString()
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return len(data)


def export_web(G: Generator, folder: str | Path, network: str = "") -> int:
    """Write a page that draws faces in the browser from a seed and a truncation slider, opened from disk: the
    ONNX model and onnxruntime-web's files are embedded as scripts (a file:// page may load scripts, not fetch
    files). Returns the bytes written. The folder appears whole or not at all."""
    runtime = webruntime.check_runtime()
    model = onnx_model(G).SerializeToString()
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in ("index.html", "app.js", "seeds.js"):
            shutil.copy(WEB_TEMPLATE / name, tmp / name)
        shutil.copy(runtime / "ort.wasm.min.js", tmp / "ort.wasm.min.js")
        glue = (runtime / "ort-wasm-simd-threaded.mjs").read_text()
        (tmp / "ort-glue.js").write_text(f"window.ORT_GLUE = {json.dumps(glue)};\n")
        wasm = base64.b64encode((runtime / "ort-wasm-simd-threaded.wasm").read_bytes()).decode()
        (tmp / "ort-wasm.js").write_text(f'window.ORT_WASM = "{wasm}";\n')
        info = {"network": network, "z_dim": G.z_dim, "c_dim": G.c_dim, "resolution": G.img_resolution,
                "channels": G.img_channels, "onnxruntime_web": webruntime.VERSION}
        (tmp / "model.js").write_text(f"window.STYLEGAN2_INFO = {json.dumps(info)};\n"
                                      f'window.STYLEGAN2_ONNX = "{base64.b64encode(model).decode()}";\n')
        (tmp / "LICENSE-onnxruntime-web.txt").write_text(
            f"ort.wasm.min.js, ort-glue.js and ort-wasm.js hold onnxruntime-web {webruntime.VERSION} (npm), "
            "Copyright (c) Microsoft Corporation, MIT License: https://github.com/microsoft/onnxruntime\n")
        size = sum(f.stat().st_size for f in tmp.iterdir())
        replace_folder(tmp, folder)                            # --overwrite: the old page goes only now
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return size



# ----------------------------------------------------------------------------------- NVIDIA network pickle
TF1_VERSION = 4                 # dnnlib.tflib.network.Network state version of NVlabs/stylegan2
TF1_NOTE = ("# StyleGAN2 network written by stylegan2-tf (TensorFlow 2 / Keras 3). NVIDIA's TF1 build code is not "
            "included: read it with stylegan2-ada-pytorch's legacy.load_network_pkl or with stylegan2-tf.\n")


class _TF1Network:
    """Pickles as `dnnlib.tflib.network.Network` with the given state, as TF1 wrote it: NEWOBJ of the class, then
    BUILD with the state dict (see _TF1Pickler for the class name)."""

    def __init__(self, state: dict) -> None:
        self.state = state

    def __reduce_ex__(self, protocol):
        return (copyreg.__newobj__, (_TF1Network,), self.state)


class _TF1Pickler(pickle._Pickler):
    """The standard (pure Python) pickler, except that the class _TF1Network is written as the global
    dnnlib.tflib.network.Network, the class NVIDIA's loaders expect."""

    def save_global(self, obj, name=None):
        if obj is _TF1Network:
            self.write(pickle.GLOBAL + b"dnnlib.tflib.network\nNetwork\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def _tf1_net(name: str, func: str, kwargs: dict, variables: dict, components: dict | None = None) -> _TF1Network:
    return _TF1Network({"version": TF1_VERSION, "name": name, "static_kwargs": kwargs,
                        "components": components or {}, "build_module_src": TF1_NOTE, "build_func_name": func,
                        "variables": list(variables.items())})


def tf1_generator_kwargs(G: Generator) -> dict:
    """NVlabs/stylegan2 static kwargs of G (the names legacy.convert_tf_generator reads)."""
    cfg = G.get_config()
    kw = {"latent_size": G.z_dim, "dlatent_size": G.w_dim, "label_size": G.c_dim, "resolution": G.img_resolution,
          "num_channels": G.img_channels, "mapping_layers": cfg["mapping_layers"],
          "mapping_lrmul": cfg["mapping_lr_multiplier"], "w_avg_beta": cfg["w_avg_beta"],
          "fmap_base": cfg["channel_base"] // 2, "fmap_max": cfg["channel_max"], "architecture": "skip",
          "num_fp16_res": cfg["mixed_precision_res"] if cfg["mixed_precision"] == "float16" else 0}
    if cfg["conv_clamp"] is not None:
        kw["conv_clamp"] = cfg["conv_clamp"]
    return kw


def tf1_discriminator_kwargs(D) -> dict:
    """NVlabs/stylegan2(-ada) static kwargs of D (the names legacy.convert_tf_discriminator reads)."""
    cfg = D.get_config()
    kw = {"label_size": D.c_dim, "resolution": D.img_resolution, "num_channels": D.img_channels,
          "fmap_base": cfg["channel_base"] // 2, "fmap_max": cfg["channel_max"], "architecture": "resnet",
          "mbstd_group_size": cfg["mbstd_group_size"], "mbstd_num_features": cfg["mbstd_num_channels"],
          "num_fp16_res": cfg["mixed_precision_res"] if cfg["mixed_precision"] == "float16" else 0}
    if D.c_dim:
        kw.update(mapping_layers=cfg["mapping_layers"], mapping_fmaps=int(D.mapping.w_dim), mapping_lrmul=0.01)
    if cfg["conv_clamp"] is not None:
        kw["conv_clamp"] = cfg["conv_clamp"]
    return kw


def nvidia_pickle_bytes(G_ema: Generator, D, G: Generator | None = None) -> tuple[bytes, list[str]]:
    """(G, D, Gs) as NVlabs/stylegan2 writes them (each a `dnnlib.tflib.network.Network` holding numpy arrays),
    the format stylegan2-ada-pytorch's `legacy.load_network_pkl` converts; and notes on what was left out."""
    from networks.convert import export_official_state
    from networks.legacy import official_to_tf1
    notes = []
    for net in (G_ema, G):
        if net is not None and net.lod > 0:
            raise UserError(f"this network is a snapshot taken while a resolution was fading in (lod {net.lod:g}); "
                            "NVIDIA's networks cannot render that: export a snapshot after the fade-in")
    if D is None:
        raise UserError("an NVIDIA network pickle holds G, D and G_ema; this network has no D (export one that "
                        "has it, e.g. a training snapshot or the shipped model)")
    if G is None:
        notes.append("G is a copy of G_ema (this network has no G)")
    d_state = export_official_state(D)
    if D.progressive:
        top = f"b{D.img_resolution}.fromrgb."
        dropped = [k for k in d_state if ".fromrgb." in k and not k.startswith(top)]
        d_state = {k: v for k, v in d_state.items() if k not in dropped}
        if dropped:
            notes.append(f"D's fromRGB layers below {D.img_resolution}x{D.img_resolution} (progressive growing) "
                         "are left out: NVIDIA's D reads the full resolution only")

    def generator(net: Generator, name: str) -> _TF1Network:
        tf1 = official_to_tf1(export_official_state(net), "G")
        part = lambda prefix: {k[len(prefix):]: v for k, v in tf1.items() if k.startswith(prefix)}  # noqa: E731
        components = {"mapping": _tf1_net("G_mapping", "G_mapping", {}, part("mapping/")),
                      "synthesis": _tf1_net("G_synthesis", "G_synthesis_stylegan2", {}, part("synthesis/"))}
        return _tf1_net(name, "G_main", tf1_generator_kwargs(net), {"dlatent_avg": tf1["dlatent_avg"]}, components)

    data = (generator(G if G is not None else G_ema, "G"),
            _tf1_net("D", "D_stylegan2", tf1_discriminator_kwargs(D), official_to_tf1(d_state, "D")),
            generator(G_ema, "Gs"))
    buf = io.BytesIO()
    _TF1Pickler(buf, protocol=4).dump(data)
    return buf.getvalue(), notes


def export_nvidia_pickle(G_ema: Generator, D, path: str | Path, G: Generator | None = None) -> tuple[int, list[str]]:
    """Write (G, D, Gs) as an NVlabs/stylegan2 network pickle (see nvidia_pickle_bytes); returns its size in bytes
    and notes on what was left out."""
    data, notes = nvidia_pickle_bytes(G_ema, D, G)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return len(data), notes
