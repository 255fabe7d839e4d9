"""Generate faces from a trained (or an official NVIDIA) StyleGAN2 network, and explore its latent space.

    python run_generator.py --network ffhq-1024 --seeds 0-99 --trunc 0.7      # NVIDIA's FFHQ (downloaded once)
    python run_generator.py --network stylegan2-ffhq-config-f.pkl --seeds 0-9 --trunc 0.7
    python run_generator.py --network results/00000-faces --seeds 0,3,10-20 --grid
    python run_generator.py --mode style-mix --rows 85,100,75 --cols 55,821,1789 --styles coarse
    python run_generator.py --mode interpolate --seeds 0-5 --frames 60 --loop
    python run_generator.py --mode directions --method sefa --seeds 0-3        # unsupervised edit directions
    python run_generator.py --mode learn-direction --data tfrecords/ --attribute age
    python run_generator.py --seeds 0-3 --edit age=-3..3 --steps 7             # render edits
    python run_generator.py --network ffhq.pkl --export ffhq.keras            # convert once, explicitly
    python run_generator.py --network ffhq.keras --export-savedmodel ffhq_sm  # serving: generate(z, psi)
    python run_generator.py --export g.tflite --quantize int8                 # LiteRT (phones), builtin ops
    python run_generator.py --export g.onnx                                   # ONNX Runtime and friends
    python run_generator.py --export mine.pkl                                 # for stylegan2-ada-pytorch (G, D, G_ema)
    python run_generator.py --export_web page/                                # a page that runs from disk

Without --network: the newest snapshot under results/, else the face model that ships with the repo
(`--network utkface-64`, models/utkface-64/MODEL_CARD.md); edits of it use its shipped age, gender and SeFa
directions.

This script only parses flags and dispatches: each mode is an object in `latent/modes.py` that checks its
options, names the files it writes and runs.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

sys.path[0] = os.path.dirname(os.path.abspath(__file__))

from absl import flags  # noqa: E402

from common.cli import cli_main, start_tensorflow  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.files import check_output_dir, check_output_file, undone_on_failure  # noqa: E402

flags.DEFINE_string("network", None, "A .keras network of ours, a training run folder (newest snapshot), an "
                    "official NVIDIA .pkl (TF1 or PyTorch), an http(s) URL of one, a published name such as "
                    "ffhq-1024 (downloaded once into ~/.cache/stylegan2-tf/networks) or a parity-fixture "
                    ".npz/folder. Default: the newest snapshot under results/, "
                    "else the face model that ships with the repo (utkface-64).")
flags.DEFINE_string("seeds", None, "Seeds: 0-99, 1,5,7 or 0,3,10-20.")
flags.DEFINE_float("trunc", 1.0, "Truncation psi (1: none; 0.5-0.7 gives nicer, less varied faces).")
flags.DEFINE_integer("trunc_cutoff", None, "Truncate only the first N layers of w.", lower_bound=0)
flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "Per-pixel noise.")
flags.DEFINE_integer("class", None, "Class index for conditional networks.", lower_bound=0)
flags.DEFINE_string("outdir", "out", "Output folder.")
flags.DEFINE_integer("batch", 8, "Images per generator call.", lower_bound=1)
flags.DEFINE_boolean("grid", False, "Also write grid.png with every image.")
flags.DEFINE_string("export", None, "Write --network to this file and exit: .keras (our format: convert once), "
                    ".tflite (LiteRT, builtin ops only) or .onnx (ONNX): generate(z, psi[, c]) -> uint8 images, "
                    "constant noise (docs/deployment.md); .pkl: G, D and G_ema as an NVIDIA network pickle that "
                    "stylegan2-ada-pytorch's tools load (docs/networks.md).")
flags.DEFINE_enum("quantize", "none", ["none", "float16", "int8"], "--export PATH.tflite: float32 weights, "
                  "float16 weights, or int8 weights with float activations (dynamic range).")
flags.DEFINE_string("export_web", None, "Write a static page into this folder (index.html and the files it "
                    "needs) that draws faces in the browser from a seed and a truncation slider, opened from disk: "
                    "the network as ONNX in onnxruntime-web, nothing fetched.")
flags.DEFINE_boolean("overwrite", False, "Replace files this command would write that already exist (images, "
                     "directions, --export, --export_savedmodel); without it such a command stops before any work.")
flags.DEFINE_boolean("ema_only", False, "--export: keep only G_ema (all that generation needs), not G and D "
                     "(the same as --keep G_ema).")
flags.DEFINE_list("keep", None, "--export: the networks to keep, of G_ema, G and D (default: all the network has; "
                  "G_ema is always kept). G_ema,D is what fine-tuning with --resume needs.")
flags.DEFINE_string("export_savedmodel", None,
                    "Export G_ema as a SavedModel with generate(z, psi) -> uint8, then exit.")
flags.DEFINE_enum("mode", "seeds", ["seeds", "style-mix", "interpolate", "directions", "learn-direction", "edit",
                                    "project"], "What to make (an --edit implies --mode edit).")
flags.DEFINE_string("target", None, "project: a photo with a face; its largest face is aligned to the network's "
                    "framing (aligned.png) and projected.")
flags.DEFINE_boolean("align", True, "project: align the --target photo's face first (--noalign: use the photo as "
                     "it is, centre square, for crops already aligned as the network's data).")
flags.DEFINE_string("framing", None, "project: where the face goes: ffhq, a framing.json, or a dataset / folder of "
                    "aligned faces to measure it on (default: recorded with the network, else ffhq).")
flags.DEFINE_integer("num_steps", None, "project: optimisation steps of the projection into W (default 300 with "
                     "--tune, where it finds the pivot; 1000 with --notune).", lower_bound=1,
                     upper_bound=100000)
flags.DEFINE_boolean("tune", True, "project: pivotal tuning (PTI) after the projection: a copy of the network is "
                     "tuned to draw the photo (tuned.keras beside projected_w.npz), so the reconstruction is the "
                     "person and edits keep them. --notune: the plain projection into W, with the network as it is.")
flags.DEFINE_integer("tune_steps", 200, "project: pivotal tuning steps.", lower_bound=1, upper_bound=100000)
flags.DEFINE_boolean("encoder", True, "project: start from the w the network's encoder (encoder.keras beside it, "
                     "shipped with utkface-64) guesses for the photo; --noencoder: start at w_avg.")
flags.DEFINE_float("w_prior", None, "project: weight of the prior that keeps w among the network's own ws (P space, "
                   "Zhu et al. 2020), so edits act as on generated faces; default 0.01 with --tune, 0 with --notune.",
                   lower_bound=0.0, upper_bound=100.0)
flags.DEFINE_boolean("w_plus", False, "project: optimise one w per layer (W+) instead of a single w.")
flags.DEFINE_enum("distance", "pixel", ["pixel", "inception"], "project: image distance (pixel MSE, or plus "
                  "FID-Inception feature distance; the official LPIPS/VGG16 weights are not available offline).")
flags.DEFINE_string("projected_w", None, "A projected_w.npz: its w replace --seeds in seeds, interpolate and edit.")
flags.DEFINE_string("rows", None, "style-mix: row seeds (the faces that keep their other layers).")
flags.DEFINE_string("cols", None, "style-mix: column seeds (the faces whose --styles layers are copied).")
flags.DEFINE_string("styles", "coarse", "style-mix: layers taken from the columns: coarse (4-8 px: pose, face "
                    "shape), middle (16-32 px: features, hair), fine (64+ px: colours, texture) or indices 0-6.")
flags.DEFINE_integer("frames", 60, "interpolate: frames per pair of seeds (at most 10000).", lower_bound=1,
                     upper_bound=10000)
flags.DEFINE_boolean("loop", False, "interpolate: return to the first seed so the video loops.")
flags.DEFINE_enum("space", "w", ["w", "z"], "interpolate: linear in W, or spherical in Z.")
flags.DEFINE_float("fps", 30.0, "interpolate: frames per second (1-240).", lower_bound=1, upper_bound=240)
flags.DEFINE_integer("walks", 1, "interpolate: split --seeds into this many walks, tiled in one video.",
                     lower_bound=1)
flags.DEFINE_enum("method", "sefa", ["sefa", "ganspace"], "directions: closed-form from the style weights "
                  "(SeFa) or principal components of sampled w (GANSpace).")
flags.DEFINE_integer("num", 5, "directions: how many leading directions to preview.", lower_bound=1)
flags.DEFINE_string("directions", None, "Folder where edit directions are saved and read. Default: directions/, "
                    "except that edits of the shipped model read the directions shipped with it.")
flags.DEFINE_string("data", None, "learn-direction: the labelled TFRecord dataset (dataset_tool --labels).")
flags.DEFINE_string("attribute", None, "learn-direction: a label field: age, gender, race=2 ...")
flags.DEFINE_integer("samples", 2000, "learn-direction: generated faces labelled to fit the boundary.",
                     lower_bound=2)
flags.DEFINE_integer("classifier_epochs", 5, "learn-direction: epochs of attribute-classifier training.",
                     lower_bound=1)
flags.DEFINE_multi_string("edit", None, "NAME=LO..HI: move along directions/NAME.npy from LO to HI standard "
                          "deviations of w (repeatable; sefa:0=-5..5 picks one component).")
flags.DEFINE_integer("steps", 7, "directions/edit: images per strip.", lower_bound=2, upper_bound=1000)
FLAGS = flags.FLAGS


NETWORK_NAMES = ("G_ema", "G", "D")


EXPORT_FORMATS = {".keras": "Keras", ".tflite": "LiteRT", ".onnx": "ONNX", ".pkl": "NVIDIA pickle"}


def _check_export(export: str | None, quantize: str, export_web: str | None, overwrite: bool) -> None:
    """--export's format from its suffix, --quantize only for LiteRT, --export_web's folder and runtime."""
    if quantize != "none" and not (export and Path(export).suffix.lower() == ".tflite"):
        raise UserError(f"--quantize {quantize} applies to --export PATH.tflite (LiteRT)")
    if export:
        suffix = Path(export).suffix.lower()
        if suffix not in EXPORT_FORMATS and not Path(export).is_dir():      # a folder: check_output_file says so
            raise UserError(f"--export {export}: the file name must end in .keras, .tflite (LiteRT), .onnx (ONNX) "
                            "or .pkl (NVIDIA's network pickle)")
        check_output_file(export, "--export", suffix if suffix in EXPORT_FORMATS else ".keras", overwrite)
    if export_web:
        check_output_file(export_web, "--export_web", overwrite=overwrite, folder=True)
        from networks.webruntime import check_runtime
        check_runtime()


def _check_keep(keep: list[str] | None, ema_only: bool, export: str | None) -> set[str] | None:
    """The networks --export keeps besides G_ema (None: all the network has); UserError for a bad request."""
    if (keep or ema_only) and not export:
        raise UserError(f"{'--ema_only' if ema_only else '--keep'} applies to --export PATH")
    if (keep or ema_only) and Path(export).suffix.lower() != ".keras":
        raise UserError(f"{'--ema_only' if ema_only else '--keep'} applies to --export PATH.keras; LiteRT and ONNX "
                        "files hold G_ema alone, NVIDIA pickles G, D and G_ema")
    if ema_only and keep:
        raise UserError("give --ema_only or --keep, not both")
    if ema_only:
        return set()
    if keep is None:
        return None
    unknown = [k for k in keep if k not in NETWORK_NAMES]
    if unknown or not keep:
        raise UserError(f"--keep {','.join(keep)}: name networks among {', '.join(NETWORK_NAMES)}")
    return set(keep) - {"G_ema"}


def _kept_networks(bundle, keep: set[str] | None, path) -> dict:
    """{"G": ..., "D": ...} of the networks to export besides G_ema; UserError if one asked for is not there."""
    out = {}
    for name in ("G", "D"):
        net = getattr(bundle, name)
        if keep is not None and name in keep and net is None:
            raise UserError(f"--keep {name}: {path} has no {name}")
        if net is not None and (keep is None or name in keep):
            out[name] = net
    return out


def _mode(mode: str, projected, exporting: bool, folder: Path):
    """The mode object for --mode with its flags (latent/modes.py), checked."""
    from latent import modes
    if mode == "seeds":
        return modes.Seeds.checked(FLAGS.seeds, projected, exporting, FLAGS.grid)
    if mode == "style-mix":
        return modes.StyleMix.checked(FLAGS.rows, FLAGS.cols, FLAGS.styles)
    if mode == "interpolate":
        return modes.Interpolate.checked(FLAGS.seeds, projected, FLAGS.walks, FLAGS.frames, FLAGS.fps, FLAGS.loop,
                                         FLAGS.space)
    if mode == "directions":
        return modes.Directions.checked(folder, FLAGS.seeds, FLAGS.method, FLAGS.num)
    if mode == "learn-direction":
        return modes.LearnDirection.checked(folder, FLAGS.seeds, FLAGS.data, FLAGS.attribute, FLAGS.samples,
                                            FLAGS.classifier_epochs)
    if mode == "edit":
        return modes.Edit.checked(folder, FLAGS.seeds, projected, FLAGS.edit or [])

    def make_detector():
        from metrics.metrics import Detector
        return Detector()
    return modes.Project.checked(FLAGS.target, FLAGS.num_steps or (300 if FLAGS.tune else 1000),
                                 FLAGS.tune_steps if FLAGS.tune else 0, FLAGS.w_plus, FLAGS.distance, FLAGS.fps,
                                 FLAGS.network, FLAGS.framing, FLAGS.align, FLAGS.encoder, make_detector,
                                 FLAGS.w_prior)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]} (flags start with --)")
    from latent import modes
    from latent.projector import load_projected
    mode = "edit" if FLAGS.edit and FLAGS.mode == "seeds" else FLAGS.mode
    render = modes.Render(outdir=Path(FLAGS.outdir), psi=FLAGS.trunc, cutoff=FLAGS.trunc_cutoff,
                          noise_mode=FLAGS.noise_mode, class_idx=FLAGS["class"].value, batch=FLAGS.batch,
                          steps=FLAGS.steps)
    render.check()
    projected = load_projected(FLAGS.projected_w) if FLAGS.projected_w else None
    from networks.locate import directions_folder
    if mode in ("directions", "learn-direction"):               # written: never into the shipped model's folder
        folder = Path(FLAGS.directions or "directions")
        check_output_dir(folder, "--directions")
    else:
        folder = directions_folder(FLAGS.network, FLAGS.directions)
    _check_export(FLAGS.export, FLAGS.quantize, FLAGS.export_web, FLAGS.overwrite)
    keep = _check_keep(FLAGS.keep, FLAGS.ema_only, FLAGS.export)
    if FLAGS.export_savedmodel:
        check_output_file(FLAGS.export_savedmodel, "--export_savedmodel", overwrite=FLAGS.overwrite, folder=True)
    exporting = bool(FLAGS.export or FLAGS.export_savedmodel or FLAGS.export_web)
    job = _mode(mode, projected, exporting, folder)          # checked before anything is loaded
    planned = job.outputs(render)
    modes.check_overwrite(planned, FLAGS.overwrite)    # nothing of the user's replaced unasked
    from networks.locate import check_network_arg, find_network
    check_network_arg(FLAGS.network)
    start_tensorflow()                              # before anything imports TensorFlow
    path = find_network(FLAGS.network)
    from latent.directions import network_id
    from networks.serialize import export_saved_model, load_network, save_bundle
    bundle = load_network(path)
    G = bundle.G_ema
    export_as = EXPORT_FORMATS.get(Path(FLAGS.export).suffix.lower()) if FLAGS.export else None
    if export_as == "Keras":
        kept = _kept_networks(bundle, keep, path)
        save_bundle(FLAGS.export, G, kept.get("G"), kept.get("D"), bundle.metadata)
        print(f"wrote {FLAGS.export} ({', '.join(['G_ema', *kept])})")
    elif export_as == "NVIDIA pickle":
        from networks import export
        size, notes = export.export_nvidia_pickle(G, bundle.D, FLAGS.export, bundle.G)
        print(f"wrote {FLAGS.export} (NVIDIA network pickle, (G, D, Gs) in NVlabs/stylegan2's layout, "
              f"{size / 1e6:.1f} MB): stylegan2-ada-pytorch's legacy.load_network_pkl reads it"
              + "".join(f"; {n}" for n in notes))
    elif export_as:
        from networks import export
        if export_as == "LiteRT":
            size = export.export_litert(G, FLAGS.export, FLAGS.quantize)
            what = f"LiteRT, builtin ops, {FLAGS.quantize if FLAGS.quantize != 'none' else 'float32'} weights"
        else:
            size = export.export_onnx(G, FLAGS.export)
            what = f"ONNX opset {export.ONNX_OPSET}"
        inputs = "z, psi, c" if G.c_dim else "z, psi"
        print(f"wrote {FLAGS.export} ({what}, {size / 1e6:.1f} MB): generate({inputs}) -> images uint8 "
              f"[N, {G.img_resolution}, {G.img_resolution}, {G.img_channels}], constant noise")
    if FLAGS.export_web:
        from networks import export
        size = export.export_web(G, FLAGS.export_web, Path(path).name)
        print(f"wrote {FLAGS.export_web}/index.html and its files ({size / 1e6:.1f} MB): open it in a browser, "
              "no server needed")
    if FLAGS.export_savedmodel:
        export_saved_model(G, FLAGS.export_savedmodel)
        print(f"wrote SavedModel {FLAGS.export_savedmodel} (endpoint generate(z, psi) -> uint8 NHWC)")
    if not job.has_work():
        return 0
    net_id = network_id(path.name, G)               # of the network's own weights, before projected noise maps
    if projected is not None:
        G = modes.projection_generator(G, net_id, projected)
    with undone_on_failure(planned, [render.outdir, folder]):    # a failure leaves the output as it was
        job.run(G, dataclasses.replace(render, net_id=net_id))
    return 0


if __name__ == "__main__":
    cli_main(main)
