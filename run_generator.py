"""Generate faces from a trained (or an official NVIDIA) StyleGAN2 network, and explore its latent space.

    python run_generator.py --network stylegan2-ffhq-config-f.pkl --seeds 0-9 --trunc 0.7
    python run_generator.py --network results/00000-faces --seeds 0,3,10-20 --grid
    python run_generator.py --mode style-mix --rows 85,100,75 --cols 55,821,1789 --styles coarse
    python run_generator.py --mode interpolate --seeds 0-5 --frames 60 --loop
    python run_generator.py --mode directions --method sefa --seeds 0-3        # unsupervised edit directions
    python run_generator.py --mode learn-direction --data tfrecords/ --attribute age
    python run_generator.py --seeds 0-3 --edit age=-3..3 --steps 7             # render edits
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

from training.util import Progress, UserError, atomic_write, cli_main, start_tensorflow  # noqa: E402

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
flags.DEFINE_enum("mode", "seeds", ["seeds", "style-mix", "interpolate", "directions", "learn-direction", "edit",
                                    "project"], "What to make (an --edit implies --mode edit).")
flags.DEFINE_string("target", None, "project: the aligned face image to project (resized to the network's size).")
flags.DEFINE_integer("num_steps", 1000, "project: optimisation steps.")
flags.DEFINE_boolean("w_plus", False, "project: optimise one w per layer (W+) instead of a single w.")
flags.DEFINE_enum("distance", "pixel", ["pixel", "inception"], "project: image distance (pixel MSE, or plus "
                  "FID-Inception feature distance; the official LPIPS/VGG16 weights are not available offline).")
flags.DEFINE_string("projected_w", None, "A projected_w.npz: its w replace --seeds in seeds, interpolate and edit.")
flags.DEFINE_string("rows", None, "style-mix: row seeds (the faces that keep their other layers).")
flags.DEFINE_string("cols", None, "style-mix: column seeds (the faces whose --styles layers are copied).")
flags.DEFINE_string("styles", "coarse", "style-mix: layers taken from the columns: coarse (4-8 px: pose, face "
                    "shape), middle (16-32 px: features, hair), fine (64+ px: colours, texture) or indices 0-6.")
flags.DEFINE_integer("frames", 60, "interpolate: frames per pair of seeds.")
flags.DEFINE_boolean("loop", False, "interpolate: return to the first seed so the video loops.")
flags.DEFINE_enum("space", "w", ["w", "z"], "interpolate: linear in W, or spherical in Z.")
flags.DEFINE_float("fps", 30.0, "interpolate: frames per second.")
flags.DEFINE_integer("walks", 1, "interpolate: split --seeds into this many walks, tiled in one video.")
flags.DEFINE_enum("method", "sefa", ["sefa", "ganspace"], "directions: closed-form from the style weights "
                  "(SeFa) or principal components of sampled w (GANSpace).")
flags.DEFINE_integer("num", 5, "directions: how many leading directions to preview.")
flags.DEFINE_string("directions", "directions", "Folder where edit directions are saved and read.")
flags.DEFINE_string("data", None, "learn-direction: the labelled TFRecord dataset (dataset_tool --labels).")
flags.DEFINE_string("attribute", None, "learn-direction: a label field: age, gender, race=2 ...")
flags.DEFINE_integer("samples", 2000, "learn-direction: generated faces labelled to fit the boundary.")
flags.DEFINE_integer("classifier_epochs", 5, "learn-direction: epochs of attribute-classifier training.")
flags.DEFINE_multi_string("edit", None, "NAME=LO..HI: move along directions/NAME.npy from LO to HI standard "
                          "deviations of w (repeatable; sefa:0=-5..5 picks one component).")
flags.DEFINE_integer("steps", 7, "directions/edit: images per strip.")
FLAGS = flags.FLAGS


def find_network(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    snaps = sorted(Path("results").glob("*/network-snapshot-*.keras"), key=lambda p: p.stat().st_mtime)
    if not snaps:
        raise UserError("no --network given and no trained snapshot under results/: pass --network PATH "
                        "(a .keras file, a run folder, or an official NVIDIA .pkl)")
    return snaps[-1]


def network_id(path: Path, G) -> str:
    """A short fingerprint of the network's weights (for PNG metadata and to match saved directions)."""
    h = hashlib.sha256(G.mapping.w_avg.numpy().tobytes())
    for v in G.synthesis.b4.conv1.official_params().values():
        h.update(v.numpy().tobytes())
    return f"{path.name}:{h.hexdigest()[:8]}"


def check_flags(mode: str) -> dict:
    """Validate the flags of `mode` before anything is loaded; returns parsed values."""
    from training.generate import parse_seeds
    from training.latent import parse_edit
    out: dict = {"seeds": parse_seeds(FLAGS.seeds) if FLAGS.seeds else None}
    if not 0.0 <= FLAGS.trunc <= 2.0:
        raise UserError(f"--trunc {FLAGS.trunc} should be between 0 and 2 (1: no truncation)")
    if FLAGS.steps < 2:
        raise UserError(f"--steps {FLAGS.steps} must be at least 2")
    exporting = FLAGS.export or FLAGS.export_savedmodel
    if FLAGS.projected_w:
        import numpy as np
        if not Path(FLAGS.projected_w).is_file():
            raise UserError(f"--projected-w {FLAGS.projected_w} does not exist")
        try:
            with np.load(FLAGS.projected_w, allow_pickle=False) as z:
                out["projected_w"] = z["w"].astype(np.float32)
                out["projected_noise"] = [z[k] for k in sorted(z.files) if k.startswith("noise")]
        except (KeyError, ValueError, OSError) as exc:
            raise UserError(f"--projected-w {FLAGS.projected_w}: not a projected_w.npz with an array 'w' "
                            f"({exc})") from None
        if out["projected_w"].ndim != 3:
            raise UserError(f"--projected-w: 'w' should be [N, num_ws, w_dim], got {out['projected_w'].shape}")
    if mode == "project":
        if not FLAGS.target:
            raise UserError("--mode project needs --target face.png (an aligned, cropped face)")
        if not Path(FLAGS.target).is_file():
            raise UserError(f"--target {FLAGS.target} does not exist")
        if FLAGS.num_steps < 1:
            raise UserError("--num-steps must be at least 1")
    if mode in ("seeds", "interpolate", "edit") and out["seeds"] is None and "projected_w" not in out \
            and not (mode == "seeds" and exporting):
        example = {"seeds": "--seeds 0-9", "interpolate": "--seeds 0-5", "edit": "--seeds 0-3"}[mode]
        raise UserError(f"pass --seeds (e.g. {example})" + (", or --export / --export-savedmodel"
                                                              if mode == "seeds" else ""))
    if mode == "style-mix":
        if not FLAGS.rows or not FLAGS.cols:
            raise UserError("--mode style-mix needs --rows and --cols (e.g. --rows 85,100,75 --cols 55,821,1789)")
        out["rows"], out["cols"] = parse_seeds(FLAGS.rows), parse_seeds(FLAGS.cols)
    if mode == "interpolate":
        if FLAGS.walks < 1 or len(out["seeds"]) % FLAGS.walks or len(out["seeds"]) // FLAGS.walks < 2:
            raise UserError(f"--walks {FLAGS.walks} must split the {len(out['seeds'])} seeds into equal walks "
                            "of at least two seeds each")
        if FLAGS.frames < 1 or FLAGS.fps <= 0:
            raise UserError("--frames and --fps must be positive")
    if mode == "learn-direction":
        if not FLAGS.data or not FLAGS.attribute:
            raise UserError("--mode learn-direction needs --data (a labelled dataset) and --attribute "
                            "(e.g. --attribute age)")
        if not Path(FLAGS.data).exists():
            raise UserError(f"--data {FLAGS.data} does not exist")
        if FLAGS.samples < 50:
            raise UserError(f"--samples {FLAGS.samples}: use at least 50 generated faces to fit a direction")
    if mode == "edit":
        out["edits"] = [parse_edit(e) for e in FLAGS.edit or []]
        if not out["edits"]:
            raise UserError("--mode edit needs --edit NAME=LO..HI (e.g. --edit age=-3..3)")
        for name, _, _, _ in out["edits"]:
            if not (Path(FLAGS.directions) / f"{name}.npy").exists():
                raise UserError(f"no direction {Path(FLAGS.directions) / name}.npy: make it with --mode directions "
                                "or --mode learn-direction (or point --directions at its folder)")
    return out


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]} (flags start with --)")
    mode = "edit" if FLAGS.edit and FLAGS.mode == "seeds" else FLAGS.mode
    args = check_flags(mode)                                         # syntax before loading anything
    path = find_network(FLAGS.network)
    start_tensorflow()
    from training.serialize import export_saved_model, load_network, save_bundle
    bundle = load_network(path)
    G = bundle.G_ema
    if FLAGS.export:
        save_bundle(FLAGS.export, G, bundle.G, bundle.D, bundle.metadata)
        print(f"wrote {FLAGS.export}")
    if FLAGS.export_savedmodel:
        export_saved_model(G, FLAGS.export_savedmodel)
        print(f"wrote SavedModel {FLAGS.export_savedmodel} (endpoint generate(z, psi) -> uint8 NHWC)")
    if mode == "seeds" and args["seeds"] is None and "projected_w" not in args:
        return 0
    from training.generate import class_vector
    class_vector(G.c_dim, FLAGS["class"].value)                      # class flag vs network, one clear line
    outdir = Path(FLAGS.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    net_id = network_id(path, G)
    if "projected_w" in args:
        if args["projected_w"].shape[1:] != (G.num_ws, G.w_dim):
            raise UserError(f"--projected-w holds w of shape {args['projected_w'].shape[1:]}, the network needs "
                            f"{(G.num_ws, G.w_dim)}")
        if args["projected_noise"]:                  # the projection's noise maps reproduce its face exactly
            from training.projector import apply_noise
            apply_noise(G, args["projected_noise"])
    {"seeds": mode_seeds, "style-mix": mode_style_mix, "interpolate": mode_interpolate,
     "directions": mode_directions, "learn-direction": mode_learn_direction, "edit": mode_edit,
     "project": mode_project}[mode](
        G, args, outdir, net_id)
    return 0


def _runner(G):
    from training.latent import LatentRunner
    return LatentRunner(G, batch=FLAGS.batch, noise_mode=FLAGS.noise_mode, class_idx=FLAGS["class"].value)


def _meta(net_id: str, **extra) -> dict:
    return {"psi": FLAGS.trunc, "noise_mode": FLAGS.noise_mode, "network": net_id, **extra}


def mode_seeds(G, args: dict, outdir: Path, net_id: str) -> None:
    from training.generate import generate_seeds, save_png
    if "projected_w" in args:
        imgs = _runner(G).synthesize(args["projected_w"])
        for i, img in enumerate(imgs):
            save_png(outdir / f"projected{i:02d}.png", img, _meta(net_id, projected_w=FLAGS.projected_w, index=i))
        print(f"wrote {len(imgs)} image(s) from {FLAGS.projected_w} to {outdir}/projected*.png")
        if args["seeds"] is None:
            return
    seeds = args["seeds"]
    progress = Progress(len(seeds), desc="generating")
    images = []
    for seed, img in generate_seeds(G, seeds, FLAGS.trunc, FLAGS.trunc_cutoff, FLAGS.noise_mode,
                                    FLAGS["class"].value, FLAGS.batch):
        save_png(outdir / f"seed{seed:04d}.png", img, _meta(net_id, seed=seed))
        if FLAGS.grid:
            images.append(img)
        progress.update()
    progress.close()
    if FLAGS.grid:
        from dataset_tool.images import contact_sheet
        contact_sheet(images).save(outdir / "grid.png")
    print(f"wrote {len(seeds)} image(s) to {outdir}/ ({G.img_resolution}x{G.img_resolution}, psi {FLAGS.trunc}, "
          f"{progress.rate:.1f} img/s)")


def mode_style_mix(G, args: dict, outdir: Path, net_id: str) -> None:
    from training.generate import save_png
    from training.latent import mix_styles, parse_styles, style_mix_grid
    layers = parse_styles(FLAGS.styles, G.num_ws)
    runner = _runner(G)
    rows, cols = args["rows"], args["cols"]
    row_ws = runner.seeds(rows, FLAGS.trunc, FLAGS.trunc_cutoff)
    col_ws = runner.seeds(cols, FLAGS.trunc, FLAGS.trunc_cutoff)
    progress = Progress(len(rows) * (len(cols) + 1) + len(cols), desc="style mixing")
    row_imgs, col_imgs = runner.synthesize(row_ws, progress), runner.synthesize(col_ws, progress)
    mixed = runner.synthesize(mix_styles(row_ws, col_ws, layers).reshape(-1, G.num_ws, G.w_dim), progress)
    mixed = mixed.reshape(len(rows), len(cols), *mixed.shape[1:])
    progress.close()
    for r, rs in enumerate(rows):
        for c, cs in enumerate(cols):
            save_png(outdir / f"mix-{rs}-{cs}.png", mixed[r, c], _meta(net_id, row_seed=rs, col_seed=cs,
                                                                        styles=",".join(map(str, layers))))
    save_png(outdir / "stylemix.png", style_mix_grid(row_imgs, col_imgs, mixed),
             _meta(net_id, rows=FLAGS.rows, cols=FLAGS.cols, styles=",".join(map(str, layers))))
    print(f"wrote {outdir}/stylemix.png and {len(rows) * len(cols)} mix-ROW-COL.png (w layers {layers} from the "
          "column seeds)")


def mode_interpolate(G, args: dict, outdir: Path, net_id: str) -> None:
    import numpy as np

    from training.generate import seed_to_z
    from training.latent import walk, write_gif, write_video
    runner = _runner(G)
    paths = []
    if "projected_w" in args:                    # one walk through the projected latents, then the seeds
        keys = [args["projected_w"]] + ([runner.seeds(args["seeds"], FLAGS.trunc, FLAGS.trunc_cutoff)]
                                        if args["seeds"] else [])
        paths.append(walk(np.concatenate(keys), FLAGS.frames, FLAGS.loop))
        space = "projected w, then seeds, in W"
    else:
        space = f"{FLAGS.space.upper()} space"
        for group in np.array_split(np.array(args["seeds"]), FLAGS.walks):
            if FLAGS.space == "z":
                z = np.concatenate([seed_to_z(int(s), G.z_dim) for s in group])
                paths.append(runner.map(walk(z, FLAGS.frames, FLAGS.loop, spherical=True), FLAGS.trunc,
                                        FLAGS.trunc_cutoff))
            else:
                paths.append(walk(runner.seeds([int(s) for s in group], FLAGS.trunc, FLAGS.trunc_cutoff),
                                  FLAGS.frames, FLAGS.loop))
    T = len(paths[0])
    progress = Progress(T * len(paths), desc="interpolating")
    frames = np.stack([runner.synthesize(p, progress) for p in paths])    # [walks, T, H, W, C]
    progress.close()
    cols = int(np.ceil(np.sqrt(len(paths))))
    rows = int(np.ceil(len(paths) / cols))
    W, H, C = frames.shape[3], frames.shape[2], frames.shape[4]
    video = np.zeros([T, rows * H, cols * W, C], np.uint8)
    for k in range(len(paths)):
        r, c = divmod(k, cols)
        video[:, r * H:(r + 1) * H, c * W:(c + 1) * W] = frames[k]
    write_gif(outdir / "interpolate.gif", video, FLAGS.fps)
    write_video(outdir / "interpolate.mp4", video, FLAGS.fps)
    print(f"wrote {outdir}/interpolate.mp4 and .gif: {T} frames of {video.shape[2]}x{video.shape[1]} at "
          f"{FLAGS.fps:g} fps ({space}, {len(paths)} walk(s))")


def _strength_grid(runner, ws, direction, scale, lo, hi):
    """Images [N, steps, H, W, C] of each w+ moved from lo to hi standard deviations along direction."""
    import numpy as np

    from training.latent import edit_ws
    strengths = np.linspace(lo, hi, FLAGS.steps).astype(np.float32) * scale
    moved = edit_ws(ws, direction, strengths)                             # [N, S, num_ws, w_dim]
    imgs = runner.synthesize(moved.reshape(-1, *ws.shape[1:]))
    return imgs.reshape(len(ws), FLAGS.steps, *imgs.shape[1:])


def _save_strips(outdir: Path, name: str, seeds, imgs, meta: dict) -> Path:
    """One strip per seed (a row) and one sheet with all of them."""
    import numpy as np

    from training.generate import save_png
    for seed, row in zip(seeds, imgs):
        save_png(outdir / f"{name}-seed{seed:04d}.png", np.concatenate(list(row), axis=1), {**meta, "seed": seed})
    sheet = np.concatenate([np.concatenate(list(row), axis=1) for row in imgs], axis=0)
    save_png(outdir / f"{name}.png", sheet, meta)
    return outdir / f"{name}.png"


def _write_direction(name: str, directions, info: dict) -> Path:
    """directions/<name>.npy ([w_dim] or [k, w_dim]) and <name>.json, each via a temporary name."""
    import json

    import numpy as np
    folder = Path(FLAGS.directions)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{name}.tmp.npy"
    np.save(tmp, directions)
    tmp.replace(folder / f"{name}.npy")
    with atomic_write(folder / f"{name}.json") as f:
        f.write(json.dumps(info, indent=2) + "\n")
    return folder / f"{name}.npy"


def mode_directions(G, args: dict, outdir: Path, net_id: str) -> None:
    from training.latent import direction_scales, ganspace_directions, sample_w, sefa_directions
    runner = _runner(G)
    w = sample_w(runner, 10000)
    if FLAGS.method == "sefa":
        dirs, values = sefa_directions(G)
        extra = {"eigenvalues": values[:FLAGS.num * 4].tolist()}
    else:
        dirs, _, _ = ganspace_directions(w, k=max(FLAGS.num, 20))
        extra = {}
    scales = direction_scales(dirs, w)
    saved = _write_direction(FLAGS.method, dirs, {"network": net_id, "method": FLAGS.method, "shape": list(dirs.shape),
                                                  "scales": scales.tolist(), **extra})
    seeds = args["seeds"] or [0, 1, 2]
    ws = runner.seeds(seeds, FLAGS.trunc, FLAGS.trunc_cutoff)
    progress = Progress(FLAGS.num, desc=f"{FLAGS.method} previews", unit="dir")
    for k in range(min(FLAGS.num, len(dirs))):
        imgs = _strength_grid(runner, ws, dirs[k], scales[k], -3, 3)
        _save_strips(outdir, f"{FLAGS.method}{k:02d}", seeds, imgs, _meta(net_id, direction=f"{FLAGS.method}:{k}"))
        progress.update()
    progress.close()
    print(f"wrote {saved} ({len(dirs)} directions) and previews {outdir}/{FLAGS.method}00.png.. (-3..3 std of w); "
          f"edit with --edit {FLAGS.method}:0=-3..3")


def mode_learn_direction(G, args: dict, outdir: Path, net_id: str) -> None:
    from training.attributes import learn_direction, train_attribute_classifier
    from training.latent import direction_scales
    name = FLAGS.attribute.replace("=", "")
    print(f"training a {FLAGS.attribute} classifier on {FLAGS.data} ...", flush=True)
    clf = train_attribute_classifier(FLAGS.data, FLAGS.attribute, res=G.img_resolution,
                                     epochs=FLAGS.classifier_epochs)
    print(f"classifier on held-out real faces: {clf.heldout}", flush=True)
    runner = _runner(G)
    progress = Progress(FLAGS.samples, desc="labelling generated faces")
    direction, figures, w = learn_direction(runner, clf, FLAGS.samples, FLAGS.trunc, progress=progress)
    progress.close()
    scale = float(direction_scales(direction[None], w)[0])
    saved = _write_direction(name, direction, {
        "network": net_id, "method": "supervised", "attribute": FLAGS.attribute, "kind": clf.target.kind,
        "scales": [scale], "classifier_heldout": clf.heldout, "classifier_res": clf.res, **figures})
    seeds = args["seeds"] or [0, 1, 2]
    imgs = _strength_grid(runner, runner.seeds(seeds, FLAGS.trunc, FLAGS.trunc_cutoff), direction, scale, -3, 3)
    preview = _save_strips(outdir, f"edit-{name}", seeds, imgs, _meta(net_id, direction=name))
    print(f"wrote {saved} (boundary in W: {figures}) and preview {preview}")


def mode_edit(G, args: dict, outdir: Path, net_id: str) -> None:
    import json

    import numpy as np
    runner = _runner(G)
    if "projected_w" in args:
        ws = args["projected_w"]
        seeds = list(range(len(ws)))             # strips are numbered by projected latent
    else:
        seeds = args["seeds"]
        ws = runner.seeds(seeds, FLAGS.trunc, FLAGS.trunc_cutoff)
    for name, comp, lo, hi in args["edits"]:
        folder = Path(FLAGS.directions)
        dirs = np.load(folder / f"{name}.npy", allow_pickle=False)
        info = json.loads((folder / f"{name}.json").read_text()) if (folder / f"{name}.json").exists() else {}
        if info.get("network") and info["network"].split(":")[-1] != net_id.split(":")[-1]:
            raise UserError(f"{folder / name}.npy was made for network {info['network']}, not {net_id}: "
                            "directions only apply to the network they were made for")
        if dirs.ndim == 2:
            if comp is None or comp >= len(dirs):
                raise UserError(f"{name}.npy holds {len(dirs)} directions: pick one, e.g. --edit {name}:0={lo}..{hi}")
            direction, scale = dirs[comp], (info.get("scales") or [1.0] * len(dirs))[comp]
        else:
            if comp is not None:
                raise UserError(f"{name}.npy holds one direction: use --edit {name}={lo}..{hi}")
            direction, scale = dirs, (info.get("scales") or [1.0])[0]
        if direction.shape != (G.w_dim,):
            raise UserError(f"{name}.npy has shape {direction.shape}, the network's w has {G.w_dim} dimensions")
        imgs = _strength_grid(runner, ws, direction.astype(np.float32), scale, lo, hi)
        label = name if comp is None else f"{name}{comp:02d}"
        sheet = _save_strips(outdir, f"edit-{label}", seeds, imgs, _meta(net_id, edit=f"{name}={lo}..{hi}"))
        print(f"wrote {sheet} and {len(seeds)} strip(s): {FLAGS.steps} steps from {lo:g} to {hi:g} std of w")


def mode_project(G, args: dict, outdir: Path, net_id: str) -> None:
    import numpy as np
    from PIL import Image

    from training.generate import save_png
    from training.latent import write_video
    from training.projector import ProjectConfig, project
    R = G.img_resolution
    try:
        img = Image.open(FLAGS.target)
        img = img.convert("RGB" if G.img_channels == 3 else "L")
    except OSError as exc:
        raise UserError(f"--target {FLAGS.target}: cannot read the image ({exc})") from None
    w, h = img.size
    s = min(w, h)                                       # centre square crop, then resize
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((R, R), Image.LANCZOS)
    target = np.asarray(img).reshape(R, R, G.img_channels)
    detector = None
    if FLAGS.distance == "inception":
        from metrics.metrics import Detector
        detector = Detector()
    cfg = ProjectConfig(steps=FLAGS.num_steps, w_plus=FLAGS.w_plus, distance=FLAGS.distance)
    progress = Progress(cfg.steps, desc="projecting", unit="step")
    result = project(G, target, cfg, detector, progress)
    progress.close()
    tmp = outdir / "projected_w.tmp.npz"
    np.savez(tmp, w=result.w[None], distance=result.distance, steps=cfg.steps, w_plus=cfg.w_plus,
             **{f"noise{i:02d}": n for i, n in enumerate(result.noise)})
    tmp.replace(outdir / "projected_w.npz")
    save_png(outdir / "target.png", target, {"target": FLAGS.target})
    save_png(outdir / "proj.png", result.image, _meta(net_id, distance=result.distance, steps=cfg.steps))
    frames = np.stack([np.concatenate([target, f], axis=1) for f in result.frames])    # target | progress
    if frames.shape[3] == 1:
        frames = np.repeat(frames, 3, axis=3)
    write_video(outdir / "proj.mp4", frames, FLAGS.fps)
    mse = float(np.mean((result.image.astype(np.float64) - target.astype(np.float64)) ** 2))
    psnr = 10 * np.log10(255 ** 2 / max(mse, 1e-12))
    print(f"wrote {outdir}/projected_w.npz, proj.png, target.png, proj.mp4 ({'W+' if cfg.w_plus else 'W'}, "
          f"{cfg.steps} steps, distance {result.distance}; PSNR of the projection {psnr:.1f} dB)")


if __name__ == "__main__":
    cli_main(main)
