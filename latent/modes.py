"""The modes of `run_generator.py`, one object per mode (`Seeds`, `StyleMix`, `Interpolate`, `Directions`,
`LearnDirection`, `Edit`, `Project`, at the end of this file): made with `checked(...)` from the command's options,
which rejects a bad option before any network is loaded; `outputs(render)` names every file the mode will write
(so nothing is replaced unasked); `run(G, render)` does the work with the function of the same name above it.

Every mode takes the generator `G` and a `Render` (options shared by all modes: truncation, noise, class,
batch, output folder, the network's id recorded in PNG metadata and direction files) and writes files.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from common.errors import UserError
from common.files import atomic_path, check_output_dir, writable_folder
from common.images import contact_sheet, save_png, write_gif, write_video
from common.progress import Progress
from latent import directions as dirs
from latent.mixing import mix_styles, parse_styles, style_mix_grid
from latent.projector import ProjectedLatents
from latent.runner import LatentRunner, sample_w
from latent.seeds import class_vector, generate_seeds, parse_seeds, seed_to_z
from latent.walk import walk

MAX_DIRECTIONS = 512        # --mode directions --num: previews (at most w_dim directions exist)
MAX_MIX_IMAGES = 4096       # --mode style-mix: rows x cols in one figure (64 x 64)

# learn-direction measures its edit on seeds 100000, 100001, ...: faces whose z the boundary was not fitted on
# (it samples z from one RandomState(0) stream; seed s is RandomState(s)'s first draw)
STRENGTH_SEEDS = 100000


@dataclass(frozen=True)
class Render:
    """How images are rendered and where they go; shared by every mode."""

    outdir: Path                       # output folder
    net_id: str = ""                   # network fingerprint (PNG metadata, direction files)
    psi: float = 1.0                   # truncation psi (1: none)
    cutoff: int | None = None          # truncate only the first `cutoff` w layers (None: all)
    noise_mode: str = "const"          # per-pixel noise: const | random | none
    class_idx: int | None = None       # class for conditional networks
    batch: int = 8                     # images per generator call
    steps: int = 7                     # images per edit strip
    extra_meta: dict = field(default_factory=dict)

    def check(self) -> None:
        if not 0.0 <= self.psi <= 2.0:
            raise UserError(f"--trunc {self.psi} should be between 0 and 2 (1: no truncation)")
        if self.steps < 2:
            raise UserError(f"--steps {self.steps} must be at least 2")
        check_output_dir(self.outdir, "--outdir")

    def prepare(self, G) -> LatentRunner:
        """Check the class against the network, create the output folder, return a runner for G."""
        class_vector(G.c_dim, self.class_idx)                # one clear line for a class/network mismatch
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create --outdir {self.outdir}: {exc.strerror}") from None
        return LatentRunner(G, batch=self.batch, noise_mode=self.noise_mode, class_idx=self.class_idx)

    def meta(self, **extra) -> dict:
        return {"psi": self.psi, "noise_mode": self.noise_mode, "network": self.net_id, **self.extra_meta, **extra}


def projection_generator(G, net_id: str, projected: ProjectedLatents):
    """The generator that draws `projected`: the tuned copy beside it (pivotal tuning) when it has one, which must
    come from G (directions are G's), else G itself; with the projection's noise maps installed."""
    if projected.tuned is not None:
        from networks.serialize import load_network
        if projected.network and projected.network.split(":")[-1] != net_id.split(":")[-1]:
            raise UserError(f"--projected-w {projected.path} was projected into and tuned from the network "
                            f"{projected.network}, not {net_id}: pass that network as --network")
        G = load_network(projected.tuned).G_ema
    projected.apply_to(G)
    return G


def check_overwrite(paths: list[Path], overwrite: bool) -> None:
    """Nothing of the user's is replaced unasked: UserError naming what exists, unless `overwrite`."""
    existing = [p for p in paths if p.exists()]
    for p in existing:                  # each can be replaced: a set is written whole, never half old, half new
        if p.is_dir():
            raise UserError(f"{p} is a folder, where this command writes a file; move it or choose another --outdir")
        if not writable_folder(p.parent):
            raise UserError(f"{p} cannot be replaced: {p.parent} is not a writable folder")
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more of this command's outputs" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]}{more} already exist(s); pass --overwrite to replace them, or choose another "
                        "--outdir")


def _seeds_or_none(text: str | None) -> list[int] | None:
    return parse_seeds(text) if text else None


# ------------------------------------------------------------------------------------------------ seeds
def check_seeds(seeds: str | None, projected: ProjectedLatents | None, exporting: bool) -> list[int] | None:
    out = _seeds_or_none(seeds)
    if out is None and projected is None and not exporting:
        raise UserError("pass --seeds (e.g. --seeds 0-9), or --export / --export-savedmodel")
    return out


def seeds(G, render: Render, seeds: list[int] | None, grid: bool = False,
          projected: ProjectedLatents | None = None) -> None:
    """seed<NNNN>.png per seed (and grid.png); projected<NN>.png per projected latent."""
    runner = render.prepare(G)
    out = render.outdir
    if projected is not None:
        imgs = runner.synthesize(projected.w)
        for i, img in enumerate(imgs):
            save_png(out / f"projected{i:02d}.png", img, render.meta(projected_w=projected.path, index=i))
        print(f"wrote {len(imgs)} image(s) from {projected.path} to {out}/projected*.png")
    if not seeds:
        return
    progress = Progress(len(seeds), desc="generating")
    images = []
    for seed, img in generate_seeds(G, seeds, render.psi, render.cutoff, render.noise_mode, render.class_idx,
                                    render.batch):
        save_png(out / f"seed{seed:04d}.png", img, render.meta(seed=seed))
        if grid:
            images.append(img)
        progress.update()
    progress.close()
    if grid:
        with atomic_path(out / "grid.png") as tmp:              # the user's previous grid stays whole on failure
            contact_sheet(images).save(tmp, format="PNG")
    print(f"wrote {len(seeds)} image(s) to {out}/ ({G.img_resolution}x{G.img_resolution}, psi {render.psi}, "
          f"{progress.rate:.1f} img/s)")


# ------------------------------------------------------------------------------------------------ style mixing
def check_style_mix(rows: str | None, cols: str | None) -> tuple[list[int], list[int]]:
    if not rows or not cols:
        raise UserError("--mode style-mix needs --rows and --cols (e.g. --rows 85,100,75 --cols 55,821,1789)")
    out = parse_seeds(rows), parse_seeds(cols)
    if len(out[0]) * len(out[1]) > MAX_MIX_IMAGES:
        raise UserError(f"--rows and --cols make {len(out[0])} x {len(out[1])} mixes; at most {MAX_MIX_IMAGES:,} "
                        "fit one figure")
    return out


def style_mix(G, render: Render, rows: list[int], cols: list[int], styles: str = "coarse") -> Path:
    """The StyleGAN figure: each row seed with the `styles` layers of each column seed. Returns its path."""
    layers = parse_styles(styles, G.num_ws)
    runner = render.prepare(G)
    row_ws = runner.seeds(rows, render.psi, render.cutoff)
    col_ws = runner.seeds(cols, render.psi, render.cutoff)
    progress = Progress(len(rows) * (len(cols) + 1) + len(cols), desc="style mixing")
    row_imgs, col_imgs = runner.synthesize(row_ws, progress), runner.synthesize(col_ws, progress)
    mixed = runner.synthesize(mix_styles(row_ws, col_ws, layers).reshape(-1, G.num_ws, G.w_dim), progress)
    mixed = mixed.reshape(len(rows), len(cols), *mixed.shape[1:])
    progress.close()
    layer_list = ",".join(map(str, layers))
    for r, rs in enumerate(rows):
        for c, cs in enumerate(cols):
            save_png(render.outdir / f"mix-{rs}-{cs}.png", mixed[r, c],
                     render.meta(row_seed=rs, col_seed=cs, styles=layer_list))
    path = render.outdir / "stylemix.png"
    save_png(path, style_mix_grid(row_imgs, col_imgs, mixed),
             render.meta(rows=",".join(map(str, rows)), cols=",".join(map(str, cols)), styles=layer_list))
    print(f"wrote {path} and {len(rows) * len(cols)} mix-ROW-COL.png (w layers {layers} from the column seeds)")
    return path


# ------------------------------------------------------------------------------------------------ interpolation
def check_interpolate(seeds: str | None, projected: ProjectedLatents | None, walks: int, frames: int,
                      fps: float) -> list[int] | None:
    out = _seeds_or_none(seeds)
    if out is None and projected is None:
        raise UserError("pass --seeds (e.g. --seeds 0-5)")
    if projected is None and (walks < 1 or len(out) % walks or len(out) // walks < 2):
        raise UserError(f"--walks {walks} must split the {len(out)} seeds into equal walks of at least two "
                        "seeds each")
    if frames < 1 or fps <= 0:
        raise UserError("--frames and --fps must be positive")
    return out


def interpolate(G, render: Render, seeds: list[int] | None, frames: int = 60, loop: bool = False,
                space: str = "w", fps: float = 30.0, walks: int = 1,
                projected: ProjectedLatents | None = None) -> Path:
    """interpolate.mp4 and .gif: `walks` walks through the seeds (tiled), or one walk through the projected
    latents and then the seeds. Linear in W, or spherical in Z."""
    runner = render.prepare(G)
    paths = []
    if projected is not None:
        keys = [projected.w] + ([runner.seeds(seeds, render.psi, render.cutoff)] if seeds else [])
        paths.append(walk(np.concatenate(keys), frames, loop))
        described = "projected w, then seeds, in W"
    else:
        described = f"{space.upper()} space"
        for group in np.array_split(np.array(seeds), walks):
            if space == "z":
                z = np.concatenate([seed_to_z(int(s), G.z_dim) for s in group])
                paths.append(runner.map(walk(z, frames, loop, spherical=True), render.psi, render.cutoff))
            else:
                paths.append(walk(runner.seeds([int(s) for s in group], render.psi, render.cutoff), frames, loop))
    T = len(paths[0])
    progress = Progress(T * len(paths), desc="interpolating")
    clips = np.stack([runner.synthesize(p, progress) for p in paths])          # [walks, T, H, W, C]
    progress.close()
    cols = int(np.ceil(np.sqrt(len(paths))))
    rows = int(np.ceil(len(paths) / cols))
    H, W, C = clips.shape[2:]
    video = np.zeros([T, rows * H, cols * W, C], np.uint8)
    for k in range(len(paths)):
        r, c = divmod(k, cols)
        video[:, r * H:(r + 1) * H, c * W:(c + 1) * W] = clips[k]
    out = render.outdir
    write_gif(out / "interpolate.gif", video, fps)
    write_video(out / "interpolate.mp4", video, fps)
    print(f"wrote {out}/interpolate.mp4 and .gif: {T} frames of {video.shape[2]}x{video.shape[1]} at {fps:g} fps "
          f"({described}, {len(paths)} walk(s))")
    return out / "interpolate.mp4"


# ------------------------------------------------------------------------------------------------ directions
def _strength_grid(runner: LatentRunner, ws: np.ndarray, direction: np.ndarray, scale: float, lo: float,
                   hi: float, steps: int) -> np.ndarray:
    """Images [N, steps, H, W, C] of each w+ moved from lo to hi standard deviations along `direction`."""
    strengths = np.linspace(lo, hi, steps).astype(np.float32) * scale
    moved = dirs.edit_ws(ws, direction, strengths)                               # [N, S, num_ws, w_dim]
    imgs = runner.synthesize(moved.reshape(-1, *ws.shape[1:]))
    return imgs.reshape(len(ws), steps, *imgs.shape[1:])


def _save_strips(outdir: Path, name: str, seeds: list[int], imgs: np.ndarray, meta: dict) -> Path:
    """One strip per seed (a row of `imgs` [N, S, H, W, C]) and one sheet with all of them."""
    for seed, row in zip(seeds, imgs):
        save_png(outdir / f"{name}-seed{seed:04d}.png", np.concatenate(list(row), axis=1), {**meta, "seed": seed})
    sheet = np.concatenate([np.concatenate(list(row), axis=1) for row in imgs], axis=0)
    save_png(outdir / f"{name}.png", sheet, meta)
    return outdir / f"{name}.png"


def check_directions(seeds: str | None, method: str, num: int) -> list[int]:
    if method not in ("sefa", "ganspace"):
        raise UserError(f"--method {method} must be sefa or ganspace")
    if not 1 <= num <= MAX_DIRECTIONS:
        raise UserError(f"--num {num}: preview 1 to {MAX_DIRECTIONS} directions (a network has at most w_dim, "
                        f"{MAX_DIRECTIONS} for every published one)")
    return _seeds_or_none(seeds) or [0, 1, 2]


def directions(G, render: Render, folder: Path, seeds: list[int], method: str = "sefa", num: int = 5) -> Path:
    """Unsupervised directions (SeFa or GANSpace) saved as <folder>/<method>.npy, with -3..3 std previews."""
    runner = render.prepare(G)
    w = sample_w(runner, 10000)
    if method == "sefa":
        found, values = dirs.sefa_directions(G)
        extra = {"eigenvalues": values[:num * 4].tolist()}
    else:
        found, _, _ = dirs.ganspace_directions(w, k=max(num, 20))
        extra = {}
    scales = dirs.direction_scales(found, w)
    saved = dirs.save_directions(folder, method, found, {"network": render.net_id, "method": method,
                                                         "scales": scales.tolist(), **extra})
    ws = runner.seeds(seeds, render.psi, render.cutoff)
    progress = Progress(num, desc=f"{method} previews", unit="dir")
    for k in range(min(num, len(found))):
        imgs = _strength_grid(runner, ws, found[k], scales[k], -3, 3, render.steps)
        _save_strips(render.outdir, f"{method}{k:02d}", seeds, imgs, render.meta(direction=f"{method}:{k}"))
        progress.update()
    progress.close()
    print(f"wrote {saved} ({len(found)} directions) and previews {render.outdir}/{method}00.png.. (-3..3 std of "
          f"w); edit with --edit {method}:0=-3..3")
    return saved


def check_learn_direction(seeds: str | None, data: str | None, attribute: str | None, samples: int) -> list[int]:
    if not data or not attribute:
        raise UserError("--mode learn-direction needs --data (a labelled dataset) and --attribute (e.g. --attribute "
                        "age)")
    if not Path(data).exists():
        raise UserError(f"--data {data} does not exist")
    if samples < 50:
        raise UserError(f"--samples {samples}: use at least 50 generated faces to fit a direction")
    return _seeds_or_none(seeds) or [0, 1, 2]


def learn_direction(G, render: Render, folder: Path, seeds: list[int], data: str, attribute: str,
                    samples: int = 2000, classifier_epochs: int = 5, strength_faces: int = 200) -> Path:
    """A supervised direction (InterFaceGAN recipe) for a dataset label, saved as <folder>/<attribute>.npy; its
    .json holds the boundary's held-out figures and the edit's strength on `strength_faces` held-out seeds."""
    from latent.attributes import describe_strength, edit_strength, learn_direction as fit, train_attribute_classifier
    runner = render.prepare(G)
    name = attribute.replace("=", "")
    print(f"training the '{attribute}' classifier on {data} ({classifier_epochs} epochs) ...", flush=True)
    clf = train_attribute_classifier(data, attribute, res=G.img_resolution, epochs=classifier_epochs,
                                     log=lambda m: print(m, flush=True))
    print(f"classifier on held-out real faces: {clf.heldout}", flush=True)
    progress = Progress(samples, desc="labelling generated faces")
    direction, figures, w = fit(runner, clf, samples, render.psi, progress=progress, cutoff=render.cutoff)
    progress.close()
    scale = float(dirs.direction_scales(direction[None], w)[0])
    # what the -3..3 edit does on faces the boundary never saw, in the classifier's eyes
    check = list(range(STRENGTH_SEEDS, STRENGTH_SEEDS + max(strength_faces, 1)))
    progress = Progress(2 * len(check), desc="measuring the edit")
    strength = edit_strength(runner, clf, direction, scale, runner.seeds(check, render.psi, render.cutoff),
                             progress=progress)
    progress.close()
    strength.update(seeds=f"{check[0]}-{check[-1]}", psi=render.psi, cutoff=render.cutoff,
                    noise_mode=render.noise_mode, class_idx=render.class_idx)
    saved = dirs.save_directions(folder, name, direction, {
        "network": render.net_id, "method": "supervised", "attribute": attribute, "kind": clf.target.kind,
        "scales": [scale], "classifier_heldout": clf.heldout, "classifier_res": clf.res, **figures,
        "edit_strength": strength})
    imgs = _strength_grid(runner, runner.seeds(seeds, render.psi, render.cutoff), direction, scale, -3, 3,
                          render.steps)
    preview = _save_strips(render.outdir, f"edit-{name}", seeds, imgs, render.meta(direction=name))
    print(describe_strength(attribute, clf.target.kind, strength))
    print(f"wrote {saved} (boundary in W: {figures}) and preview {preview}")
    return saved


def check_edit(seeds: str | None, projected: ProjectedLatents | None, edits: list[str], folder: Path
               ) -> tuple[list[int] | None, list[tuple[str, int | None, float, float]]]:
    out = _seeds_or_none(seeds)
    if out is None and projected is None:
        raise UserError("pass --seeds (e.g. --seeds 0-3)")
    parsed = [dirs.parse_edit(e) for e in edits]
    if not parsed:
        raise UserError("--mode edit needs --edit NAME=LO..HI (e.g. --edit age=-3..3)")
    for name, _, _, _ in parsed:
        dirs.direction_path(folder, name)                 # exists, or a one-line error saying how to make it
    return out, parsed


def edit(G, render: Render, folder: Path, seeds: list[int] | None,
         edits: list[tuple[str, int | None, float, float]], projected: ProjectedLatents | None = None) -> list[Path]:
    """For each (name, component, lo, hi): strips of each face moved from lo to hi std along the direction."""
    loaded = [dirs.load_direction(folder, name, comp, render.net_id, G.w_dim, (lo, hi))
              for name, comp, lo, hi in edits]                    # every direction checked before writing
    runner = render.prepare(G)
    if projected is not None:
        ws, seeds = projected.w, list(range(len(projected.w)))        # strips are numbered by projected latent
    else:
        ws = runner.seeds(seeds, render.psi, render.cutoff)
    sheets = []
    for (name, comp, lo, hi), (direction, scale) in zip(edits, loaded):
        imgs = _strength_grid(runner, ws, direction, scale, lo, hi, render.steps)
        label = name if comp is None else f"{name}{comp:02d}"
        sheet = _save_strips(render.outdir, f"edit-{label}", seeds, imgs, render.meta(edit=f"{name}={lo}..{hi}"))
        print(f"wrote {sheet} and {len(seeds)} strip(s): {render.steps} steps from {lo:g} to {hi:g} std of w")
        sheets.append(sheet)
    return sheets


# ------------------------------------------------------------------------------------------------ projection
def check_framing(framing: str | None) -> None:
    """--framing names ffhq or something that exists (before TensorFlow starts)."""
    if framing and framing != "ffhq" and not Path(framing).exists():
        raise UserError(f"--framing {framing} does not exist (ffhq, a framing.json, or aligned faces)")


def target_framing(network: str | None, framing: str | None) -> tuple:
    """(Framing, what it is) for aligning a photo to project: `--framing ffhq`, a framing.json, or a dataset /
    folder / archive of aligned faces (measured on up to 100 of them); without --framing the one recorded with
    the network (the shipped model's, a run's), else NVIDIA's FFHQ framing."""
    from common.images import BadImage
    from alignment.faces import FFHQ, load_framing, measure_framing
    from dataset_tool.sources import aligned_images
    from networks.locate import framing_file
    if framing == "ffhq":
        return FFHQ, "NVIDIA's FFHQ framing (--framing ffhq)"
    if framing:
        check_framing(framing)
        path = Path(framing)
        if path.suffix == ".json":
            return load_framing(path), f"the framing in {path}"
        try:
            measured, n = measure_framing(aligned_images(path), name=path.name, limit=100)
        except BadImage:
            raise UserError(f"--framing {framing}: no face found in its images to measure a framing on") from None
        return measured, f"the framing of {path}, measured on {n} of its faces"
    recorded = framing_file(network)
    if recorded is not None:
        return load_framing(recorded), f"the framing recorded with the network ({recorded})"
    return FFHQ, "NVIDIA's FFHQ framing (none is recorded with this network)"


def check_project(target: str | None, num_steps: int, distance: str, tune_steps: int = 0,
                  framing: str | None = None) -> None:
    if not target:
        raise UserError("--mode project needs --target photo.jpg (a photo with a face, or --noalign: an aligned "
                        "crop)")
    if Path(target).is_dir():
        raise UserError(f"--target {target} is a folder; give one photo file")
    check_framing(framing)
    if not Path(target).is_file():
        raise UserError(f"--target {target} does not exist")
    if num_steps < 1:
        raise UserError("--num-steps must be at least 1")
    if tune_steps < 0:
        raise UserError("--tune_steps must not be negative")
    if distance not in ("pixel", "inception"):
        raise UserError(f"--distance {distance} must be pixel or inception")
    from common.images import read_image
    read_image(target, what="--target")                  # before the network loads: one line if it is no image


def aligned_target(target: str, res: int, channels: int, framing, note: str, out: Path) -> np.ndarray:
    """The largest face of the photo `target` aligned to `framing` at res x res (uint8 [res, res, channels]),
    written to out/aligned.png with its landmarks; UserError when the photo has no usable face."""
    import json
    from common.images import BadImage, read_image
    from alignment.faces import align_faces, detect_faces
    photo = read_image(target, 3, what="--target")
    found = detect_faces(photo, largest=True)
    try:
        (crop, face), = align_faces(photo, res, "largest", framing, found)
    except BadImage as exc:
        raise UserError(f"--target {target}: {str(exc).replace(' (--align)', '')}; pass --noalign to project the "
                        "photo as it is (centre square)") from None
    if channels == 1:
        crop = np.asarray(Image.fromarray(crop).convert("L"))[:, :, None]
    save_png(out / "aligned.png", crop, {"target": target, "framing": json.dumps(framing.to_dict()),
                                         "face": json.dumps(face.to_dict())})
    print(f"aligned the largest of {len(found)} face(s) in {target} ({face.eye_distance:.0f} px between the eyes) to "
          f"{note} -> {out}/aligned.png")
    return crop


def project(G, render: Render, target: str, num_steps: int = 1000, w_plus: bool = False, distance: str = "pixel",
            detector=None, fps: float = 30.0, framing=None, framing_note: str = "", tune_steps: int = 0,
            encoder=None, w_prior: float | None = None) -> Path:
    """Find the latent of a face image: projected_w.npz, proj.png, target.png and proj.mp4 (target | progress).
    With `framing` (an alignment.faces.Framing) the photo's largest face is aligned to it first (aligned.png);
    without, the photo is used as it is (centre square). `detector` (the FID Inception, for distance
    'inception') is passed in by the caller. With `tune_steps` the projection is the pivot of pivotal tuning:
    a copy of G tuned to draw the photo at it is written as tuned.keras (and proj-w.png is the pivot's image
    before tuning); every command that reads the projected_w.npz draws with it. `encoder` (latent/encoder.py)
    gives the projection's starting w instead of w_avg. `w_prior`: the P-space prior's weight (None: the default,
    `default_w_prior`)."""
    from latent.projector import (ProjectConfig, apply_noise, default_w_prior, load_target,
                                  project as run_projection, save_projection)
    from latent.tuning import TuneConfig, psnr, ssim, tune
    render.prepare(G)
    if framing is not None:
        image = aligned_target(target, G.img_resolution, G.img_channels, framing, framing_note, render.outdir)
    else:
        image = load_target(target, G.img_resolution, G.img_channels)
    start = time.perf_counter()
    lines, w_start = [], None
    if encoder is not None:
        w_start = encoder.w(image[None])[0]                    # [num_ws, w_dim]
        guess = LatentRunner(G).synthesize(w_start[None])[0]
        lines.append(f"encoder: the starting w in {time.perf_counter() - start:.2f} s; PSNR {psnr(guess, image):.1f} "
                     f"dB, SSIM {ssim(guess, image):.3f}")
    w_prior = default_w_prior(tune_steps) if w_prior is None else w_prior
    cfg = ProjectConfig(steps=num_steps, w_plus=w_plus, distance=distance, w_prior=w_prior)
    progress = Progress(cfg.steps, desc="projecting", unit="step")
    times: list[float] = []                                    # when each step ended (the first one traces)
    result = run_projection(G, image, cfg, detector, progress, on_step=lambda *_: times.append(time.perf_counter()),
                            w_start=w_start)
    progress.close()
    per_step = (times[-1] - times[0]) / (len(times) - 1) * 1000 if len(times) > 1 else float("nan")
    out = render.outdir
    frames = list(result.frames)
    lines += [f"projection into {'W+' if cfg.w_plus else 'W'}: {cfg.steps} steps at {per_step:.0f} ms/step after "
             f"the first, distance {result.distance}{f', prior {w_prior:g}' if w_prior else ''}; PSNR "
             f"{psnr(result.image, image):.1f} dB, SSIM "
             f"{ssim(result.image, image):.3f}"]
    final = result.image
    if tune_steps:
        apply_noise(G, result.noise)                   # the pivot's noise maps, kept by the tuned copy
        progress = Progress(tune_steps, desc="tuning", unit="step")
        tuning = tune(G, result.w, image, TuneConfig(steps=tune_steps), progress)
        progress.close()
        final = tuning.image
        frames += tuning.frames
        save_bundle_tuned(out / "tuned.keras", tuning.G, render.net_id, target, cfg.steps, tune_steps)
        save_png(out / "proj-w.png", result.image, render.meta(distance=result.distance, steps=cfg.steps))
        lines.append(f"pivotal tuning: {tune_steps} steps in {tuning.seconds:.1f} s; PSNR {psnr(final, image):.1f} "
                     f"dB, SSIM {ssim(final, image):.3f}; tuned.keras "
                     f"{(out / 'tuned.keras').stat().st_size / 2 ** 20:.1f} MB")
    save_projection(out / "projected_w.npz", result, cfg, network=render.net_id,
                    tuned="tuned.keras" if tune_steps else "")
    save_png(out / "target.png", image, {"target": target})
    save_png(out / "proj.png", final, render.meta(distance=result.distance, steps=cfg.steps, tune_steps=tune_steps))
    video = np.stack([np.concatenate([image, f], axis=1) for f in frames])      # target | progress
    if video.shape[3] == 1:
        video = np.repeat(video, 3, axis=3)
    write_video(out / "proj.mp4", video, fps)
    for line in lines:
        print(line)
    print(f"wrote {out}/projected_w.npz, proj.png, target.png, proj.mp4"
          + (", tuned.keras, proj-w.png" if tune_steps else "") + f" in {time.perf_counter() - start:.0f} s")
    return out / "projected_w.npz"


def save_bundle_tuned(path: Path, G, net_id: str, target: str, pivot_steps: int, tune_steps: int) -> Path:
    """The tuned generator in our .keras format (G_ema only), recording the network it was tuned from."""
    from networks.serialize import save_bundle
    return save_bundle(path, G, metadata={"tuned_from": net_id, "target": str(target), "pivot_steps": pivot_steps,
                                          "tune_steps": tune_steps, "method": "pivotal tuning (PTI)"})


# ------------------------------------------------------------------------------------------ the mode objects
def _strips(out: Path, name: str, ids: list[int]) -> list[Path]:
    return [out / f"{name}-seed{i:04d}.png" for i in ids] + [out / f"{name}.png"]


@dataclass
class Mode:
    """A run_generator.py mode with its options checked."""

    def outputs(self, render: Render) -> list[Path]:
        """Every file `run` writes, known before any work."""
        raise NotImplementedError

    def has_work(self) -> bool:
        return True

    def run(self, G, render: Render) -> None:
        raise NotImplementedError


@dataclass
class Seeds(Mode):
    seeds: list[int] | None = None                 # None: only the projected latents (or only an export)
    projected: ProjectedLatents | None = None
    grid: bool = False

    @classmethod
    def checked(cls, seeds_text: str | None, projected: ProjectedLatents | None, exporting: bool,
                grid: bool) -> "Seeds":
        return cls(check_seeds(seeds_text, projected, exporting), projected, grid)

    def outputs(self, render: Render) -> list[Path]:
        out, n = render.outdir, len(self.projected.w) if self.projected is not None else 0
        return ([out / f"projected{i:02d}.png" for i in range(n)] + [out / f"seed{s:04d}.png" for s in self.seeds or []]
                + ([out / "grid.png"] if self.grid and self.seeds else []))

    def has_work(self) -> bool:
        return self.seeds is not None or self.projected is not None

    def run(self, G, render: Render) -> None:
        seeds(G, render, self.seeds, self.grid, self.projected)


@dataclass
class StyleMix(Mode):
    rows: list[int] = field(default_factory=list)
    cols: list[int] = field(default_factory=list)
    styles: str = "coarse"

    @classmethod
    def checked(cls, rows: str | None, cols: str | None, styles: str) -> "StyleMix":
        return cls(*check_style_mix(rows, cols), styles)

    def outputs(self, render: Render) -> list[Path]:
        return [render.outdir / f"mix-{r}-{c}.png" for r in self.rows for c in self.cols] + \
            [render.outdir / "stylemix.png"]

    def run(self, G, render: Render) -> None:
        style_mix(G, render, self.rows, self.cols, self.styles)


@dataclass
class Interpolate(Mode):
    seeds: list[int] | None = None
    projected: ProjectedLatents | None = None
    frames: int = 60
    loop: bool = False
    space: str = "w"
    fps: float = 30.0
    walks: int = 1

    @classmethod
    def checked(cls, seeds_text: str | None, projected: ProjectedLatents | None, walks: int, frames: int,
                fps: float, loop: bool, space: str) -> "Interpolate":
        return cls(check_interpolate(seeds_text, projected, walks, frames, fps), projected, frames, loop, space,
                   fps, walks)

    def outputs(self, render: Render) -> list[Path]:
        return [render.outdir / "interpolate.gif", render.outdir / "interpolate.mp4"]

    def run(self, G, render: Render) -> None:
        interpolate(G, render, self.seeds, self.frames, self.loop, self.space, self.fps, self.walks, self.projected)


@dataclass
class Directions(Mode):
    folder: Path = Path("directions")
    seeds: list[int] = field(default_factory=list)
    method: str = "sefa"
    num: int = 5

    @classmethod
    def checked(cls, folder: Path, seeds_text: str | None, method: str, num: int) -> "Directions":
        return cls(folder, check_directions(seeds_text, method, num), method, num)

    def outputs(self, render: Render) -> list[Path]:
        return ([self.folder / f"{self.method}.npy", self.folder / f"{self.method}.json"]
                + [p for k in range(self.num) for p in _strips(render.outdir, f"{self.method}{k:02d}", self.seeds)])

    def run(self, G, render: Render) -> None:
        directions(G, render, self.folder, self.seeds, self.method, self.num)


@dataclass
class LearnDirection(Mode):
    folder: Path = Path("directions")
    seeds: list[int] = field(default_factory=list)
    data: str = ""
    attribute: str = ""
    samples: int = 2000
    classifier_epochs: int = 5

    @classmethod
    def checked(cls, folder: Path, seeds_text: str | None, data: str | None, attribute: str | None, samples: int,
                classifier_epochs: int) -> "LearnDirection":
        return cls(folder, check_learn_direction(seeds_text, data, attribute, samples), data, attribute, samples,
                   classifier_epochs)

    def outputs(self, render: Render) -> list[Path]:
        name = self.attribute.replace("=", "")
        return [self.folder / f"{name}.npy", self.folder / f"{name}.json",
                *_strips(render.outdir, f"edit-{name}", self.seeds)]

    def run(self, G, render: Render) -> None:
        learn_direction(G, render, self.folder, self.seeds, self.data, self.attribute, self.samples,
                        self.classifier_epochs)


@dataclass
class Edit(Mode):
    folder: Path = Path("directions")
    seeds: list[int] | None = None
    edits: list[tuple[str, int | None, float, float]] = field(default_factory=list)
    projected: ProjectedLatents | None = None

    @classmethod
    def checked(cls, folder: Path, seeds_text: str | None, projected: ProjectedLatents | None,
                edits: list[str]) -> "Edit":
        return cls(folder, *check_edit(seeds_text, projected, edits, folder), projected)

    def outputs(self, render: Render) -> list[Path]:
        ids = list(range(len(self.projected.w))) if self.projected is not None else list(self.seeds or [])
        return [p for name, comp, _, _ in self.edits
                for p in _strips(render.outdir, f"edit-{name if comp is None else f'{name}{comp:02d}'}", ids)]

    def run(self, G, render: Render) -> None:
        edit(G, render, self.folder, self.seeds, self.edits, self.projected)


@dataclass
class Project(Mode):
    target: str = ""
    num_steps: int = 1000
    tune_steps: int = 0                            # 0: the plain projection into W (--notune)
    w_plus: bool = False
    distance: str = "pixel"
    fps: float = 30.0
    network: str | None = None                     # --network as given: its framing and encoder are beside it
    framing: str | None = None                     # --framing
    align: bool = True
    encoder: bool = True
    make_detector: Callable | None = None          # distance 'inception': makes the FID Inception (metrics sits
                                                   # above this package, so the command passes it in)
    w_prior: float | None = None                   # None: latent.projector.default_w_prior

    @classmethod
    def checked(cls, target: str | None, num_steps: int, tune_steps: int, w_plus: bool, distance: str, fps: float,
                network: str | None, framing: str | None, align: bool, encoder: bool,
                make_detector: Callable | None = None, w_prior: float | None = None) -> "Project":
        check_project(target, num_steps, distance, tune_steps, framing)
        return cls(target, num_steps, tune_steps, w_plus, distance, fps, network, framing, align, encoder,
                   make_detector, w_prior)

    def outputs(self, render: Render) -> list[Path]:
        out = render.outdir
        return [out / "projected_w.npz", out / "target.png", out / "proj.png", out / "proj.mp4", out / "aligned.png",
                *([out / "tuned.keras", out / "proj-w.png"] if self.tune_steps else [])]

    def run(self, G, render: Render) -> None:
        from networks.locate import encoder_file
        detector = self.make_detector() if self.distance == "inception" and self.make_detector else None
        framing, note = target_framing(self.network, self.framing) if self.align else (None, "")
        encoder = None
        found = encoder_file(self.network) if self.encoder and not self.w_plus else None
        if found is not None:
            from latent.encoder import load_encoder
            encoder = load_encoder(found, render.net_id, G.w_dim, G.num_ws)
        project(G, render, self.target, self.num_steps, self.w_plus, self.distance, detector, self.fps, framing,
                note, self.tune_steps, encoder, self.w_prior)
