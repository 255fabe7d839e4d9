"""Generators for deployment, outside Python and TensorFlow: LiteRT (`.tflite`, builtin ops only), ONNX (`.onnx`)
and a static web page that runs the ONNX file in onnxruntime-web, opened from disk.

Each holds one function `generate(z [N, z_dim] float32, psi [] float32[, c [N, c_dim] float32]) -> images uint8
[N, R, R, C]` with constant noise, the same images as `run_generator.py --noise-mode const`. The converters
(TensorFlow's LiteRT converter, tf2onnx) run only here; the runtimes that read the files are not needed to write
them.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from pathlib import Path

import keras

from common.errors import UserError
from common.files import atomic_path, replace_folder
from networks.ops import to_uint8
from networks import webruntime
from networks.stylegan2 import Generator

FORMATS = {".keras": "Keras", ".tflite": "LiteRT", ".onnx": "ONNX"}
QUANTIZE = ("none", "float16", "int8")
ONNX_OPSET = 17

WEB_TEMPLATE = Path(__file__).with_name("web")


def check_export(path: str, quantize: str) -> str:
    """The format of `--export PATH` from its suffix (UserError for another, or a quantization it lacks)."""
    suffix = Path(path).suffix
    if suffix not in FORMATS:
        raise UserError(f"--export {path}: the file name must end in .keras, .tflite (LiteRT) or .onnx (ONNX)")
    if quantize != "none" and suffix != ".tflite":
        raise UserError(f"--quantize {quantize} applies to LiteRT files (.tflite), not {suffix}")
    return FORMATS[suffix]


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

