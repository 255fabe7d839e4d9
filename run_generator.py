"""Generate faces from a trained (or an official NVIDIA) StyleGAN2 network.

    python run_generator.py --network stylegan2-ffhq-config-f.pkl --seeds 0-9 --trunc 0.7
    python run_generator.py --network results/00000-faces --seeds 0,3,10-20 --grid
    python run_generator.py --network ffhq.pkl --export ffhq.keras            # convert once, explicitly
    python run_generator.py --network ffhq.keras --export-savedmodel ffhq_sm  # serving: generate(z, psi)
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

sys.path[0] = os.path.dirname(os.path.abspath(__file__))

from absl import flags  # noqa: E402

from training.util import Progress, UserError, cli_main, quiet_tensorflow  # noqa: E402

flags.DEFINE_string("network", None, "A .keras network of ours, a training run folder (newest snapshot), an "
                    "official NVIDIA .pkl (TF1 or PyTorch) or a parity-fixture .npz/folder. Default: the newest "
                    "snapshot under results/.")
flags.DEFINE_string("seeds", None, "Seeds: 0-99, 1,5,7 or 0,3,10-20.")
flags.DEFINE_float("trunc", 1.0, "Truncation psi (1: none; 0.5-0.7 gives nicer, less varied faces).")
flags.DEFINE_integer("trunc_cutoff", None, "Truncate only the first N layers of w.")
flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "Per-pixel noise.")
flags.DEFINE_integer("class", None, "Class index for conditional networks.")
flags.DEFINE_string("outdir", "out", "Output folder.")
flags.DEFINE_integer("batch", 8, "Images per generator call.")
flags.DEFINE_boolean("grid", False, "Also write grid.png with every image.")
flags.DEFINE_string("export", None, "Convert --network to our .keras format at this path and exit.")
flags.DEFINE_string("export_savedmodel", None,
                    "Export G_ema as a SavedModel with generate(z, psi) -> uint8, then exit.")
FLAGS = flags.FLAGS


def find_network(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    snaps = sorted(Path("results").glob("*/network-snapshot-*.keras"), key=lambda p: p.stat().st_mtime)
    if not snaps:
        raise UserError("no --network given and no trained snapshot under results/: pass --network PATH "
                        "(a .keras file, a run folder, or an official NVIDIA .pkl)")
    return snaps[-1]


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]} (flags start with --)")
    from training.generate import parse_seeds
    seeds = parse_seeds(FLAGS.seeds) if FLAGS.seeds else None       # check syntax before loading anything
    if seeds is None and not (FLAGS.export or FLAGS.export_savedmodel):
        raise UserError("pass --seeds (e.g. --seeds 0-9), or --export / --export-savedmodel")
    if not 0.0 <= FLAGS.trunc <= 2.0:
        raise UserError(f"--trunc {FLAGS.trunc} should be between 0 and 2 (1: no truncation)")
    path = find_network(FLAGS.network)
    quiet_tensorflow()
    from training.generate import generate_seeds, save_png
    from training.serialize import export_saved_model, load_network, save_bundle
    bundle = load_network(path)
    G = bundle.G_ema
    if FLAGS.export:
        save_bundle(FLAGS.export, G, bundle.G, bundle.D, bundle.metadata)
        print(f"wrote {FLAGS.export}")
    if FLAGS.export_savedmodel:
        export_saved_model(G, FLAGS.export_savedmodel)
        print(f"wrote SavedModel {FLAGS.export_savedmodel} (endpoint generate(z, psi) -> uint8 NHWC)")
    if seeds is None:
        return 0
    outdir = Path(FLAGS.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    net_id = f"{path.name}:{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
    progress = Progress(len(seeds), desc="generating")
    images = []
    for seed, img in generate_seeds(G, seeds, FLAGS.trunc, FLAGS.trunc_cutoff, FLAGS.noise_mode,
                                    FLAGS["class"].value, FLAGS.batch):
        save_png(outdir / f"seed{seed:04d}.png", img,
                 {"seed": seed, "psi": FLAGS.trunc, "noise_mode": FLAGS.noise_mode, "network": net_id})
        if FLAGS.grid:
            images.append(img)
        progress.update()
    progress.close()
    if FLAGS.grid:
        from dataset_tool.images import contact_sheet
        contact_sheet(images).save(outdir / "grid.png")
    print(f"wrote {len(seeds)} image(s) to {outdir}/ ({G.img_resolution}x{G.img_resolution}, psi {FLAGS.trunc})")
    return 0


if __name__ == "__main__":
    cli_main(main)
