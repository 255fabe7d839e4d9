"""Exports for deployment (networks/export.py), each run in its own runtime and compared with the Keras generator:
LiteRT in the standalone `ai-edge-litert` interpreter (no TensorFlow, no Flex delegate: a Select op would fail to
prepare), ONNX in onnxruntime's CPU provider, and the web page in headless Chromium opened from file://."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import ROOT, run_cli

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
FIXTURES = ROOT / "tests" / "fixtures" / "stylegan2-parity"
SEEDS, PSI = [0, 1, 5], 0.7


def reference(G, seeds, psi, class_idx=None) -> np.ndarray:
    """uint8 [N, R, R, C] as run_generator.py draws them: seed_to_z, constant noise."""
    from latent.seeds import class_vector, seed_to_z
    from networks.ops import to_uint8
    z = np.concatenate([seed_to_z(s, G.z_dim) for s in seeds])
    c = None if class_idx is None else np.repeat(class_vector(G.c_dim, class_idx), len(seeds), axis=0)
    return to_uint8(G(z, c, truncation_psi=psi, noise_mode="const")).numpy()


def inputs(G, seeds, psi, class_idx=None) -> dict:
    from latent.seeds import class_vector, seed_to_z
    feed = {"z": np.concatenate([seed_to_z(s, G.z_dim) for s in seeds]), "psi": np.array(psi, np.float32)}
    if class_idx is not None:
        feed["c"] = np.repeat(class_vector(G.c_dim, class_idx), len(seeds), axis=0)
    return feed


def run_litert(path: Path, feed: dict) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path))
    assert interpreter.get_signature_list() == {"generate": {"inputs": sorted(feed), "outputs": ["images"]}}
    return interpreter.get_signature_runner("generate")(**feed)["images"]


def run_onnx(path: Path, feed: dict) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(feed) and session.get_outputs()[0].name == "images"
    assert session.get_inputs()[0].shape[0] == "N"
    return session.run(["images"], feed)[0]


def test_cli_exports_litert_and_onnx_that_draw_what_run_generator_draws(tmp_path):
    """The unconditional fixture through the command line: --export g.tflite and g.onnx, each run in its runtime,
    equal the PNGs of `run_generator.py --seeds ... --trunc 0.7 --noise-mode const` within 1 level."""
    net = str(FIXTURES / "uncond-32")
    for name in ("g.tflite", "g.onnx"):
        r = run_cli("run_generator.py", "--network", net, "--export", str(tmp_path / name))
        assert r.returncode == 0, r.stderr[-2000:]
        assert "constant noise" in r.stdout and "[N, 32, 32, 3]" in r.stdout
    r = run_cli("run_generator.py", "--network", net, "--seeds", ",".join(map(str, SEEDS)), "--trunc", str(PSI),
                "--noise-mode", "const", "--outdir", str(tmp_path / "png"))
    assert r.returncode == 0, r.stderr[-2000:]
    pngs = np.stack([np.asarray(Image.open(tmp_path / "png" / f"seed{s:04d}.png")) for s in SEEDS])
    from networks.serialize import load_network
    feed = inputs(load_network(net).G_ema, SEEDS, PSI)
    for images in (run_litert(tmp_path / "g.tflite", feed), run_onnx(tmp_path / "g.onnx", feed)):
        assert images.dtype == np.uint8 and images.shape == pngs.shape
        assert np.abs(images.astype(int) - pngs).max() <= 1


def test_conditional_network_exports_take_the_class(tmp_path):
    """The class-conditional fixture (NVIDIA's weights): a third input c; each class's faces match."""
    from networks.export import export_litert, export_onnx
    from networks.serialize import load_network
    G = load_network(FIXTURES / "cond-16").G_ema
    export_litert(G, tmp_path / "g.tflite")
    export_onnx(G, tmp_path / "g.onnx")
    for k in range(G.c_dim):
        ref = reference(G, SEEDS, PSI, k)
        feed = inputs(G, SEEDS, PSI, k)
        assert np.abs(run_litert(tmp_path / "g.tflite", feed).astype(int) - ref).max() <= 1
        assert np.abs(run_onnx(tmp_path / "g.onnx", feed).astype(int) - ref).max() <= 1
    assert not np.array_equal(reference(G, SEEDS, PSI, 0), reference(G, SEEDS, PSI, 1))


def test_quantized_litert_files_are_smaller_and_close(tmp_path):
    """--quantize float16 and int8 (dynamic range): smaller files, images close to float32's."""
    from networks.export import export_litert
    from networks.serialize import load_network
    G = load_network(FIXTURES / "uncond-32").G_ema
    feed = inputs(G, SEEDS, PSI)
    ref = reference(G, SEEDS, PSI).astype(int)
    sizes = {q: export_litert(G, tmp_path / f"{q}.tflite", q) for q in ("none", "float16", "int8")}
    assert sizes["float16"] < 0.6 * sizes["none"] and sizes["int8"] < 0.6 * sizes["none"], sizes
    for q, mean_levels in (("float16", 1.0), ("int8", 8.0)):
        images = run_litert(tmp_path / f"{q}.tflite", feed).astype(int)
        assert np.abs(images - ref).mean() <= mean_levels, (q, np.abs(images - ref).mean())


def test_web_page_draws_the_same_faces_from_disk(tmp_path):
    """--export_web DIR, opened as file:// in headless Chromium: the page computes z from the seed as NumPy does
    (bit for bit), draws the faces the Keras generator draws (within 1 level), redraws when the seed and the
    truncation change, and loads nothing that is not in DIR."""
    from cdp import Browser, chromium_or_skip
    binary = chromium_or_skip()
    net = FIXTURES / "uncond-32"
    r = run_cli("run_generator.py", "--network", str(net), "--export_web", str(tmp_path / "page"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no server needed" in r.stdout
    from latent.seeds import seed_to_z
    from networks.serialize import load_network
    G = load_network(net).G_ema
    browser = Browser(binary, tmp_path / "profile")

    def face(i: int) -> np.ndarray:
        data = browser.js(f"Array.from(document.querySelectorAll('#faces canvas')[{i}].getContext('2d')"
                          ".getImageData(0, 0, 32, 32).data).join(',')")
        return np.array([int(v) for v in data.split(",")], np.uint8).reshape(32, 32, 4)[..., :3]

    try:
        browser.call("Page.enable")
        browser.call("Network.enable")
        browser.call("Page.navigate", url=(tmp_path / "page" / "index.html").as_uri())
        browser.wait("window.stylegan2 && (window.stylegan2.draws >= 1 || window.stylegan2.error !== '')", 120)
        assert browser.js("window.stylegan2.error") == ""
        assert browser.js("getComputedStyle(document.getElementById('class-box')).display") == "none"  # uncond.
        for seed in (0, 7, 123456, 4294967295):
            z = browser.js(f"Array.from(window.seedToZ({seed}, {G.z_dim})).join(',')")
            assert np.array_equal(np.array([float(v) for v in z.split(",")], np.float32), seed_to_z(seed, G.z_dim)[0])
        ref = reference(G, range(8), 0.7).astype(int)
        assert browser.js("window.stylegan2.seeds.join(',')") == "0,1,2,3,4,5,6,7"
        assert max(np.abs(face(i).astype(int) - ref[i]).max() for i in range(8)) <= 1
        draws = browser.js("window.stylegan2.draws")
        browser.js("const s = document.getElementById('seed'); s.value = '40'; "
                   "s.dispatchEvent(new Event('input')); true")
        browser.wait(f"window.stylegan2.draws > {draws} && !window.stylegan2.busy", 60)
        browser.js("const p = document.getElementById('psi'); p.value = '0.3'; "
                   "p.dispatchEvent(new Event('input')); true")
        browser.wait(f"window.stylegan2.draws > {draws + 1} && !window.stylegan2.busy", 60)
        assert browser.js("[window.stylegan2.seeds[0], window.stylegan2.psi].join(',')") == "40,0.3"
        assert np.abs(face(2).astype(int) - reference(G, [42], 0.3)[0]).max() <= 1
        loaded = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"]
        assert any(u.endswith("/model.js") for u in loaded), loaded
        assert all(u.startswith(((tmp_path / "page").as_uri(), "blob:", "data:")) for u in loaded), loaded
    finally:
        browser.close()


def test_export_web_without_the_runtime_says_how_to_fetch_it(tmp_path):
    r = run_cli("run_generator.py", "--network", str(FIXTURES / "uncond-32"), "--export_web", str(tmp_path / "page"),
                env={"STYLEGAN2_ORT_WEB": str(tmp_path / "none")})
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr[-2000:]
    assert "needs onnxruntime-web 1.30.0" in r.stderr and "scripts/fetch_onnxruntime_web.py" in r.stderr
    assert not (tmp_path / "page").exists()
