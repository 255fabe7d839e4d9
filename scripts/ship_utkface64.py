"""Ship a snapshot of the UTKFace 64x64 run as models/utkface-64 (issue #29), with the commands a user would type:
the G_ema + D bundle, its age and gender directions relearned (with what the classifier sees an edit do on
held-out seeds) and SeFa, and the README's images of the shipped model redrawn from it.

    python scripts/ship_utkface64.py RUN/network-snapshot-000048.keras utkface64 [--work /tmp/ship]

DATASET is the labelled UTKFace dataset at 64x64 (`dataset_tool/create.py ../shared/data/utkface-aligned-200.zip
utkface64 --res 64 --labels utkface --label-classes gender=2,race=5`). It then prints the new file's sha256 for
networks/locate.py (SHIPPED) and the directions' figures for the model card; tests/test_shipped_model.py's
REFERENCE pixels are printed too. The model card itself is written by hand.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "utkface-64"
BUNDLE = MODEL / "G_ema-D.keras"
DOCS = ROOT / "docs"
PHOTO = ROOT / "data" / "photos" / "eileen-collins.jpg"


def run(*args: str) -> None:
    """One command as a user types it (from the repo root, this interpreter); a failure (the command has printed
    its `error:` line) stops the script with the command's exit code."""
    print("$ python " + " ".join(args), flush=True)
    code = subprocess.run([sys.executable, *args], cwd=ROOT).returncode
    if code:
        sys.exit(code)


def jpeg(src: Path, name: str) -> None:
    Image.open(src).convert("RGB").save(DOCS / name, quality=90)
    print(f"wrote docs/{name}")


def photo_strip(proj: Path, out: Path, tile: int = 128, gap: int = 2) -> None:
    """docs/utkface64-photo-age.jpg: the photo, its aligned crop, the projection into W before tuning
    (proj-w.png), the tuned reconstruction and the age strip (-3..3), each
    tile `tile` pixels high, `gap` white pixels apart."""
    photo = Image.open(PHOTO).convert("RGB")
    photo = photo.resize((round(photo.width * tile / photo.height), tile), Image.LANCZOS)
    tiles = [photo] + [Image.open(proj / n).convert("RGB").resize((tile, tile), Image.NEAREST)
                       for n in ("aligned.png", "proj-w.png", "proj.png") if (proj / n).is_file()]
    strip = Image.open(proj / "edit-age.png").convert("RGB")                  # one row of 64-pixel steps
    steps = strip.width // strip.height
    tiles += [strip.crop((i * strip.height, 0, (i + 1) * strip.height, strip.height)).resize((tile, tile),
                                                                                           Image.NEAREST)
              for i in range(steps)]
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), tile), "white")
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + gap
    sheet.save(out, quality=90)
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshot", help="the run's network-snapshot-*.keras to ship (G_ema and D are kept)")
    ap.add_argument("data", help="labelled UTKFace dataset at 64x64 (for the age and gender directions)")
    ap.add_argument("--work", default="/tmp/ship-utkface64", help="scratch folder for previews")
    ap.add_argument("--classifier_epochs", type=int, default=3)
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    net = str(BUNDLE.relative_to(ROOT))
    run("run_generator.py", "--network", args.snapshot, "--export", net, "--keep", "G_ema,D", "--overwrite")
    dirs = MODEL / "directions"
    shutil.rmtree(dirs, ignore_errors=True)                        # bound to the old network: made again below
    for attr in ("gender", "age"):
        run("run_generator.py", "--network", net, "--mode", "learn-direction", "--data", args.data,
            "--attribute", attr, "--classifier_epochs", str(args.classifier_epochs), "--directions", str(dirs),
            "--seeds", "0-5", "--outdir", str(work / f"learn-{attr}"))
    run("run_generator.py", "--network", net, "--mode", "directions", "--method", "sefa", "--num", "5",
        "--seeds", "0-3", "--directions", str(dirs), "--outdir", str(work / "sefa"))
    # the README's pictures of the shipped model
    run("run_generator.py", "--network", net, "--seeds", "0-63", "--grid", "--outdir", str(work / "seeds"))
    jpeg(work / "seeds" / "grid.png", "utkface64-seeds0-63.jpg")
    run("run_generator.py", "--network", net, "--seeds", "0-5", "--edit", "age=-3..3", "--edit", "gender=-3..3",
        "--directions", str(dirs), "--outdir", str(work / "edit"))
    jpeg(work / "edit" / "edit-age.png", "utkface64-edit-age.jpg")
    jpeg(work / "edit" / "edit-gender.png", "utkface64-edit-gender.jpg")
    run("run_generator.py", "--network", net, "--mode", "style-mix", "--rows", "0,1,2,3", "--cols", "4,5,6,7",
        "--styles", "coarse", "--outdir", str(work / "mix"))
    jpeg(work / "mix" / "stylemix.png", "utkface64-stylemix.jpg")
    proj = work / "projection"
    run("run_generator.py", "--network", net, "--mode", "project", "--target", str(PHOTO), "--outdir", str(proj))
    run("run_generator.py", "--network", net, "--projected-w", str(proj / "projected_w.npz"), "--edit", "age=-3..3",
        "--directions", str(dirs), "--outdir", str(proj))
    photo_strip(proj, DOCS / "utkface64-photo-age.jpg")
    # what goes into networks/locate.py, the model card and tests/test_shipped_model.py
    digest = hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
    print(f"\n{net}: {BUNDLE.stat().st_size:,} bytes, sha256 {digest}")
    for attr in ("age", "gender"):
        meta = json.loads((dirs / f"{attr}.json").read_text())
        print(attr, json.dumps({k: meta[k] for k in meta if k not in ("scales", "shape")}))
    sys.path.insert(0, str(ROOT))
    from common.cli import start_tensorflow
    start_tensorflow()
    from latent.seeds import seed_to_z
    from networks.serialize import load_network
    G = load_network(BUNDLE).G_ema
    points = {0: (32, 32), 1: (20, 40), 2: (50, 10)}
    img = G(np.concatenate([seed_to_z(s, G.z_dim) for s in points]), None, truncation_psi=1.0,
            noise_mode="const").numpy()
    print("REFERENCE = {" + ",\n             ".join(
        f"{s}: (({y}, {x}), ({img[i, y, x, 0]:.5f}, {img[i, y, x, 1]:.5f}, {img[i, y, x, 2]:.5f}))"
        for i, (s, (y, x)) in enumerate(points.items())) + "}")


if __name__ == "__main__":
    main()
