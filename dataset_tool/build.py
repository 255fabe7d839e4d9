"""Build a multi-resolution TFRecord dataset from a folder or archive of images.

Pipeline: list files -> labels -> fixed-seed shuffled order -> worker processes decode, crop, resize and
compute every box-filter level -> the main process writes one record per level (and shard) in order.
Everything is built in a hidden `.<dest>.partial-<pid>` folder holding an `.incomplete` marker and moved
into place only when complete, manifest last; an interrupted build never looks like a dataset.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import dataset_tool
from datasets import format as fmt
from common.images import BadImage, crop_resize, image_size, open_image, to_array
from alignment.faces import FFHQ
from dataset_tool.images import box_levels, encode_level
from dataset_tool.labels import Labeler, LabelError
from dataset_tool.sources import Source, is_image_name
from common.errors import UserError
from common.files import check_name, check_path_names, sha256_file, writable_folder
from common.progress import Progress


@dataclass
class CreateConfig:
    """Everything that decides the dataset's content; written to the manifest."""

    source: str                       # folder, .zip or .tar of images
    dest: str                         # output folder (must be empty or absent unless overwrite)
    res: int | None = None            # top resolution (power of two 4..1024); None: from the typical image
    resize_filter: str = "lanczos"    # lanczos | box | bicubic (all anti-aliased in Pillow)
    channels: int = 3                 # 3 (RGB) or 1 (grayscale)
    max_images: int | None = None     # stop after this many written images
    shuffle_seed: int = 123           # write order = RandomState(seed).permutation(sorted files)
    align: bool = False               # find faces by landmarks and crop them as FFHQ was (alignment/faces.py)
    faces: str = "largest"            # with align: the largest face of each photo, or all of them
    labels: str | None = None         # .csv / .json file, regex:PATTERN, or utkface
    label_classes: str = ""           # fields to one-hot: "gender=2,race=5"
    dedupe: bool = False              # drop exact duplicate files (always reported)
    overwrite: bool = False           # replace a non-empty dest (only once the new dataset is complete)
    shards: int = 1                   # files per level (record i -> shard i % shards)
    encoding: str = "raw"             # raw (official, uint8 CHW) | png
    jobs: int = 0                     # worker processes; 0: all cores
    name: str | None = None           # file-name prefix; default: dest folder's name
    quiet: bool = False               # no progress bar


def validate(cfg: CreateConfig) -> None:
    """Check the options before any work; UserError names the first problem."""
    if cfg.res is not None and (cfg.res < 4 or cfg.res > 1024 or cfg.res & (cfg.res - 1)):
        raise UserError(f"--res {cfg.res} must be a power of two from 4 to 1024")
    if cfg.resize_filter not in ("lanczos", "box", "bicubic"):
        raise UserError(f"--resize-filter {cfg.resize_filter} must be lanczos, box or bicubic")
    if cfg.channels not in (1, 3):
        raise UserError(f"--channels {cfg.channels} must be 1 or 3")
    if cfg.encoding not in ("raw", "png"):
        raise UserError(f"--encoding {cfg.encoding} must be raw or png")
    if not 1 <= cfg.shards <= 99999:
        raise UserError(f"--shards {cfg.shards} must be between 1 and 99999")
    if cfg.max_images is not None and cfg.max_images < 1:
        raise UserError(f"--max-images {cfg.max_images} must be at least 1")
    if cfg.jobs < 0:
        raise UserError(f"--jobs {cfg.jobs} must be 0 (all cores) or more")
    if cfg.faces not in ("largest", "all"):
        raise UserError(f"--faces {cfg.faces} must be largest or all")
    if cfg.name is not None:
        check_name(cfg.name, "--name")                     # it prefixes every file written into DEST
    src, dest = Path(cfg.source).resolve(), Path(cfg.dest).resolve()
    if not src.exists():
        raise UserError(f"source {cfg.source} does not exist")
    if not os.access(src, os.R_OK) or (src.is_dir() and not os.access(src, os.X_OK)):
        raise UserError(f"source {cfg.source} is not readable")
    if dest.exists() and not dest.is_dir():
        raise UserError(f"destination {cfg.dest} exists and is not a folder")
    if dest == src or dest in src.parents:
        raise UserError(f"the source {cfg.source} lies inside the destination {cfg.dest}: choose another destination")
    if src.is_dir() and src in dest.parents:
        raise UserError(f"destination {cfg.dest} lies inside the source folder {cfg.source}")
    if dest.is_dir() and any(dest.iterdir()):
        if not cfg.overwrite:
            raise UserError(f"destination {cfg.dest} is not empty; pass --overwrite to replace it")
        foreign = _not_dataset_files(dest)
        if foreign:
            raise UserError(f"--overwrite replaces only a dataset made by this tool; {cfg.dest} holds "
                            f"{'no ' + fmt.MANIFEST_NAME if foreign == [fmt.MANIFEST_NAME] else foreign[0]}"
                            f"{'' if len(foreign) < 2 else f' and {len(foreign) - 1} other file(s)'} (not ours)")
    check_path_names(dest, "destination")
    parent = next((p for p in [dest, *dest.parents] if p.exists()), None)
    if parent is None or not writable_folder(parent):
        raise UserError(f"cannot write the destination {cfg.dest}: {parent} is not writable")


def _not_dataset_files(folder: Path) -> list[str]:
    """What in `folder` is not part of a dataset this tool wrote ([MANIFEST_NAME] if the manifest is missing)."""
    manifest = folder / fmt.MANIFEST_NAME
    try:
        ours = json.loads(manifest.read_text()).get("format") == "stylegan-multires-tfrecords"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        return [fmt.MANIFEST_NAME]
    allowed = {fmt.MANIFEST_NAME, fmt.SKIPPED_NAME, fmt.ALIGNMENT_NAME}
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in allowed and not p.name.endswith((".tfrecords", ".labels")))


def guess_resolution(source: Source, names: list[str], sample: int = 256) -> tuple[int, int]:
    """(resolution, median short side): the largest power of two (4..1024) not above the typical short side."""
    def size(name: str) -> tuple[int, int] | None:
        try:
            return image_size(source.read(name))
        except Exception:                   # unreadable (permissions, too large, damaged archive member): skip
            return None                     # here; the build lists it in skipped.txt with its reason

    step = max(1, len(names) // sample)
    sides = [min(s) for s in (size(n) for n in names[::step][:sample]) if s]
    if not sides:
        raise UserError(f"none of the sampled files in {source.path} can be read as an image")
    short = int(statistics.median(sides))
    res = 4
    while res * 2 <= min(short, 1024):
        res *= 2
    return res, short


# ---------------------------------------------------------------------------------------------- workers
_WORKER: dict = {}


def _init_worker(state: dict, quiet: bool = False) -> None:
    """Worker set-up. Every per-file failure is returned as a reason, so in worker processes (`quiet`) Ctrl-C
    is left to the main process and stderr is silenced: a tool that is interrupted or killed must not leave
    one BrokenPipeError traceback per worker on the terminal."""
    if quiet:
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stderr = open(os.devnull, "w")
        os.dup2(sys.stderr.fileno(), 2)
    _WORKER.clear()
    _WORKER.update(state)


def _process(task: tuple[int, str]) -> dict:
    """Decode one file into its items (one image, or with --align one per face kept), each with its encoded
    levels (top first); errors become a reason string."""
    idx, name = task
    w = _WORKER
    try:
        data = w["source"].read(name)
    except Exception as exc:
        return {"idx": idx, "name": name, "error": f"cannot read: {exc}"}
    sha = hashlib.sha256(data).hexdigest()
    try:
        arr = to_array(open_image(data), w["channels"])
        if w["align"]:
            from alignment.faces import align_faces
            crops = [(crop, face.to_dict()) for crop, face in align_faces(arr, w["res"], w["faces"])]
        else:
            crops = [(arr, None)]
        items = []
        for crop, face in crops:
            top, upscaled = crop_resize(crop, w["res"], w["resize_filter"])
            items.append({"levels": [encode_level(lv, w["encoding"]) for lv in box_levels(top)],
                          "upscaled": upscaled, "shape": [int(top.shape[2]), int(top.shape[0]), int(top.shape[1])],
                          "face": face})
    except BadImage as exc:
        return {"idx": idx, "name": name, "sha": sha, "error": str(exc)}
    except Exception as exc:  # any other failure on one file must not stop the build
        return {"idx": idx, "name": name, "sha": sha, "error": f"{type(exc).__name__}: {exc}"}
    return {"idx": idx, "name": name, "sha": sha, "items": items}


def _results(tasks: list[tuple[int, str]], state: dict, jobs: int):
    """Processed results in task order; at most a few hundred in flight (bounded memory)."""
    if jobs == 1:
        _init_worker(state)
        yield from map(_process, tasks)
        return
    ctx = multiprocessing.get_context("spawn")   # never fork a process that may hold TensorFlow threads
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(state, True)) as pool:
        block = 128 * jobs
        for start in range(0, len(tasks), block):
            yield from pool.imap(_process, tasks[start:start + block], chunksize=4)


# ---------------------------------------------------------------------------------------------- writer
def _dead(folder: Path) -> bool:
    """Whether the build that named `folder` (`...-<pid>`) is gone."""
    pid = folder.name.rsplit("-", 1)[-1]
    return not (pid.isdigit() and Path(f"/proc/{pid}").exists() and int(pid) != os.getpid())


def _clean_stale_partials(dest: Path) -> None:
    """Tidy up after builds that were killed beside `dest`: their partial folders are removed, and an old
    dataset set aside by a build killed between its two renames is put back (or removed once replaced)."""
    for p in dest.parent.glob(".*.partial-*"):
        if (p / fmt.INCOMPLETE_MARKER).exists() and _dead(p):     # only ours, only finished processes
            shutil.rmtree(p, ignore_errors=True)
    for p in dest.parent.glob(f".{dest.name}.old-*"):
        if _dead(p):
            if dest.exists():
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.replace(p, dest)


def _log(*args, **kwargs) -> None:
    print(*args, **kwargs, flush=True)


def create_dataset(cfg: CreateConfig, log=_log) -> dict:
    """Build the dataset described by `cfg`; returns the manifest. Raises UserError on bad input."""
    _clean_stale_partials(Path(cfg.dest).resolve())
    validate(cfg)
    import tensorflow as tf  # imported after validation so bad options fail fast

    source = Source(cfg.source)
    all_files = source.list_files()
    images = [n for n in all_files if is_image_name(n)]
    skipped: list[tuple[str, str]] = [(n, "not an image file (extension)") for n in all_files
                                      if not is_image_name(n)]
    if not images:
        raise UserError(f"no image files (.jpg .jpeg .png .webp .bmp) found in {cfg.source}")
    res, short = (cfg.res, None) if cfg.res else guess_resolution(source, images)
    if cfg.res is None:
        log(f"resolution {res}x{res} (typical short side {short} px; set --res to override)")

    labeler = Labeler(cfg.labels, cfg.label_classes) if cfg.labels else None
    label_rows: dict[str, np.ndarray] = {}
    if labeler:
        for n in images:
            try:
                label_rows[n] = labeler(n)
            except LabelError as exc:
                skipped.append((n, f"label: {exc}"))
    order = np.random.RandomState(cfg.shuffle_seed).permutation(len(images))
    tasks = [(int(i), images[i]) for i in order if labeler is None or images[i] in label_rows]

    dest = Path(cfg.dest).resolve()
    name = cfg.name or dest.name
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {dest.parent}: {exc.strerror}") from None
    tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / fmt.INCOMPLETE_MARKER).write_text("this dataset is being built or its build was interrupted\n")
    try:
        manifest = _write(cfg, source, tasks, label_rows, labeler, skipped, res, name, tmp, log)
        os.unlink(tmp / fmt.INCOMPLETE_MARKER)
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            os.replace(dest, old)          # only now: the new dataset is complete
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the dataset to {cfg.dest}: {exc.strerror or exc} "
                        f"({exc.filename or tmp})") from None
    except tf.errors.OpError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the dataset to {cfg.dest}: {exc.message.splitlines()[0]}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _write(cfg, source, tasks, label_rows, labeler, skipped, res, name, tmp: Path, log) -> dict:
    from datasets import records
    top_lvl = fmt.log2_exact(res)
    lvls = list(range(top_lvl, 1, -1))                        # top first, down to r02
    paths = {lvl: [tmp / f for f in fmt.level_file_names(name, lvl, cfg.shards)] for lvl in lvls}
    writers = {lvl: [records.writer(p) for p in ps] for lvl, ps in paths.items()}
    state = {"source": source, "res": res, "channels": cfg.channels, "align": cfg.align, "faces": cfg.faces,
             "resize_filter": cfg.resize_filter, "encoding": cfg.encoding}
    jobs = cfg.jobs or os.cpu_count() or 1
    limit = cfg.max_images or float("inf")                    # records; with --faces all a photo gives several
    progress = Progress(len(tasks), desc="reading", enabled=not cfg.quiet)   # files, as the source lists them
    seen: dict[str, str] = {}
    duplicates: list[list[str]] = []
    rows: list[np.ndarray] = []
    alignment: list[dict] = []
    written = upscaled = files_read = 0
    for r in _results(tasks, state, jobs):
        files_read += 1
        progress.update()
        if "error" in r:
            skipped.append((r["name"], r["error"]))
            continue
        first = seen.setdefault(r["sha"], r["name"])
        if first != r["name"]:
            duplicates.append([r["name"], first])
            if cfg.dedupe:
                skipped.append((r["name"], f"duplicate of {first} (--dedupe)"))
                continue
        label = label_rows[r["name"]] if labeler else None
        for face_idx, item in enumerate(r["items"]):
            if written >= limit:
                break
            c = item["shape"][0]
            for k, lvl in enumerate(lvls):
                record = records.encode(c, 2 ** lvl, item["levels"][k], label)
                writers[lvl][written % cfg.shards].write(record)
            if label is not None:
                rows.append(label)
            if item["face"] is not None:             # the landmarks each crop was made from: auditable, redoable
                alignment.append({"record": written, "file": r["name"], "face": face_idx, **item["face"]})
            written += 1
            upscaled += bool(item["upscaled"])
        if written >= limit:
            break
    for ws in writers.values():
        for w in ws:
            w.close()
    elapsed = progress.close()
    if files_read < len(tasks):
        log(f"--max_images {cfg.max_images} reached after {files_read:,} of {len(tasks):,} files; "
            f"the other {len(tasks) - files_read:,} were not read")
    if written == 0:
        reasons = sorted({why for _, why in skipped})[:3]
        raise UserError(f"no usable images in {cfg.source} ({len(skipped)} skipped: {'; '.join(reasons)})")

    if labeler:
        with open(tmp / fmt.labels_file_name(name), "wb") as f:   # np.save(path) would append .npy
            np.save(f, np.stack(rows).astype(np.float32))
    with open(tmp / fmt.SKIPPED_NAME, "w") as f:
        f.writelines(f"{n}\t{why}\n" for n, why in skipped)
    if cfg.align:
        with open(tmp / fmt.ALIGNMENT_NAME, "w") as f:
            json.dump({"framing": FFHQ.to_dict(),
                       "detector": "mtcnn 1.0.0 (landmarks refined by its O-net in upright views, 3 passes)",
                       "faces": alignment}, f, indent=1)

    levels = []
    for lvl in lvls:
        files = []
        for s, p in enumerate(paths[lvl]):
            files.append({"name": p.name, "records": len(range(s, written, cfg.shards)),
                          "bytes": p.stat().st_size, "sha256": sha256_file(p)})
        levels.append({"resolution": 2 ** lvl, "lod": top_lvl - lvl, "encoding": cfg.encoding, "files": files})
    manifest = {
        "format": "stylegan-multires-tfrecords",
        "format_version": fmt.FORMAT_VERSION,
        "tool": f"stylegan2-tf dataset_tool {dataset_tool.__version__}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "name": name,
        "resolution": res,
        "channels": cfg.channels,
        "count": written,
        "shards": cfg.shards,
        "source": {"path": str(Path(cfg.source).resolve()), "kind": source.kind,
                   "files": len(tasks) + len(skipped) - sum(1 for _, w in skipped if w.startswith("duplicate")),
                   "skipped": len(skipped)},
        "preprocessing": {
            "align": cfg.align, "faces": cfg.faces if cfg.align else None,
            "crop": "FFHQ quad from landmarks" if cfg.align else "center square", "resize_filter": cfg.resize_filter,
            "upscaled": upscaled, "exif_orientation": "applied", "alpha": "composited onto white",
            "levels": "2x2 box average cascade in float64, each level rounded (rint) on its own",
            "shuffle_seed": cfg.shuffle_seed, "max_images": cfg.max_images, "dedupe": cfg.dedupe,
        },
        "duplicates": duplicates,
        "labels": ({**labeler.describe(), "file": fmt.labels_file_name(name), "per_record_feature": "label"}
                   if labeler else None),
        "levels": levels,
        "config": dataclasses.asdict(cfg),
        "build_seconds": round(elapsed, 2),
    }
    with open(tmp / fmt.MANIFEST_NAME, "w") as f:
        json.dump(manifest, f, indent=2)
    log(f"wrote {written} images at {res}x{res} ({len(lvls)} levels, {cfg.shards} file(s) each) in "
        f"{elapsed:.1f}s, {written / max(elapsed, 1e-9):.{0 if written >= 10 * elapsed else 1}f} img/s")
    if upscaled:
        log(f"warning: {upscaled} image(s) were smaller than {res}x{res} and were upscaled", file=sys.stderr)
    if skipped:
        log(f"skipped {len(skipped)} file(s); reasons in {Path(cfg.dest) / fmt.SKIPPED_NAME}")
    if duplicates:
        log(f"{len(duplicates)} exact duplicate file(s) {'dropped' if cfg.dedupe else 'kept (--dedupe drops them)'}")
    return manifest
