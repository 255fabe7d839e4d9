"""The package layers: every import between this project's packages points downward, and the base stays light.

    common                  errors, CLI start-up, progress, atomic files, image grids and encoding
    datasets, alignment     the TFRecord layout and the tf.data reader; face alignment by landmarks
    dataset_tool, networks  the dataset writer; the networks and their file formats
    training, latent        training; latent-space tools (seeds, mixing, walks, directions, projection)
    metrics, explorer       FID, KID, PPL, precision/recall; the browser explorer (server and page)
    scripts                 run_*.py, dataset_tool/create.py and extract.py, benchmarks/, tests/
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

LAYERS = {"common": 0, "datasets": 1, "alignment": 1, "dataset_tool": 2, "networks": 2, "training": 3, "latent": 3,
          "metrics": 4, "explorer": 4}
SCRIPTS = {"dataset_tool/create.py", "dataset_tool/extract.py"}      # command-line entry points, on top


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in a file, including those inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def test_packages_import_only_downward():
    bad = []
    for package, layer in LAYERS.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in SCRIPTS:
                continue
            for line, target in imports_of(path):
                if target in LAYERS and target != package and LAYERS[target] >= layer:
                    bad.append(f"{rel}:{line} imports {target} (layer {LAYERS[target]} >= {package}'s {layer})")
    assert not bad, "\n".join(bad)


def test_the_layer_test_sees_a_violation(tmp_path):
    """The checker itself: an upward import, even inside a function, is found."""
    f = tmp_path / "x.py"
    f.write_text("import numpy\n\ndef f():\n    from metrics.metrics import Detector\n    import training.loss\n")
    assert [t for _, t in imports_of(f)] == ["numpy", "metrics", "training"]


def test_the_base_imports_no_tensorflow_and_nothing_of_ours():
    for path in sorted((ROOT / "common").rglob("*.py")):
        top = {t for _, t in imports_of(path) if t not in ("common",)}
        assert not top & (set(LAYERS) | {"keras"}), path
        # TensorFlow only inside start_tensorflow(), which exists to import it quietly
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name != "start_tensorflow":
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Import):
                        assert all(a.name != "tensorflow" for a in sub.names), (path, node.name)
        module_level = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        assert "tensorflow" not in module_level, path
