"""Bad input for every command: exit code 2, one line on stderr naming the problem, no traceback, and nothing
that was there before is changed (the whole test tree is checksummed before and after)."""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, TF_LOG_LINE, run_cli, write_images
from dataset_tool.build import CreateConfig, create_dataset
from training.config import TrainConfig, resolve

NET = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32"


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or 'dir') of everything under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link " + os.readlink(p)
        else:
            out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _cut_at_record(path: Path, keep: int) -> None:
    """Keep the first `keep` records of a TFRecord file: a file cut short exactly between two records."""
    data, end = path.read_bytes(), 0
    for _ in range(keep):
        end += 8 + 4 + int.from_bytes(data[end:end + 8], "little") + 4      # length, its CRC, data, data CRC
    path.write_bytes(data[:end])


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Inputs good and bad: images, a dataset, a damaged dataset, a photo folder with a dataset-named
    neighbour, damaged network / direction / latent files and a run whose every checkpoint is damaged."""
    w = tmp_path_factory.mktemp("bad")
    write_images(w / "src", 8, size=(8, 8))
    quiet = dict(jobs=1, quiet=True)
    create_dataset(CreateConfig(source=str(w / "src"), dest=str(w / "ds"), res=8, **quiet), log=lambda *a, **k: None)
    shutil.copytree(w / "ds", w / "damaged")
    _truncate(w / "damaged" / "ds-r03.tfrecords", 0.6)
    write_images(w / "src1", 1, size=(32, 32))                           # one image: too few for statistics
    create_dataset(CreateConfig(source=str(w / "src1"), dest=str(w / "ds1"), res=32, **quiet), log=lambda *a, **k: None)
    shutil.copytree(w / "ds", w / "cutds")
    _cut_at_record(w / "cutds" / "ds-r03.tfrecords", 4)                 # 4 of 8 records, cut between two
    (w / "loop1").symlink_to("loop2")                                   # a symbolic link loop
    (w / "loop2").symlink_to("loop1")
    with tarfile.open(w / "whole.tar.gz", "w:gz") as tar:
        tar.add(w / "src", arcname="src")
    (w / "cut.tar.gz").write_bytes((w / "whole.tar.gz").read_bytes()[:300])
    (w / "whole.tar.gz").unlink()
    write_images(w / "photos" / "faces", 4, size=(8, 8))
    (w / "photos" / "notes.txt").write_text("mine\n")
    (w / "stuff").mkdir()
    (w / "stuff" / "thesis.tex").write_text("do not delete\n")
    (w / "afile").write_text("a file, not a folder\n")
    (w / "gen").mkdir()                                          # a generator's earlier output
    for name in ("seed0000.png", "grid.png"):
        (w / "gen" / name).write_bytes(b"earlier output")
    from networks.serialize import load_network, save_bundle
    bundle = load_network(NET)
    save_bundle(w / "net.keras", bundle.G_ema)
    shutil.copy(w / "net.keras", w / "cut.keras")
    _truncate(w / "cut.keras", 0.7)
    (w / "bad.pkl").write_bytes(b"\x80\x04not really a pickle")
    (w / "dirs").mkdir()
    (w / "dirs" / "age.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    (w / "proj.npz").write_bytes(b"PK\x03\x04 truncated zip")
    import numpy as np
    from PIL import Image
    from latent.directions import network_id
    G = bundle.G_ema
    latent = dict(w=np.zeros([1, G.num_ws, G.w_dim], np.float32), network=network_id("net.keras", G))
    np.savez(w / "escape.npz", tuned="../net.keras", **latent)               # a tuned network outside its folder
    for name in ("lost", "tunedbad"):                                         # missing, and not a network
        (w / name).mkdir()
        np.savez(w / name / "projected_w.npz", tuned="tuned.keras", **latent)
    (w / "tunedbad" / "tuned.keras").write_bytes(b"PK\x03\x04 not a network")
    Image.new("1", (12000, 12000)).save(w / "huge.png")                     # 144 megapixels in a small file
    np.save(w / "plain.npy", latent["w"])
    unit = np.eye(G.w_dim, dtype=np.float32)[0]
    for name, vec, info in (("dlist", unit, "[1, 2]"), ("dabc", unit, '{"scales": "abc"}'),
                            ("dfew", np.stack([unit] * 3), '{"scales": [1.0]}'),
                            ("dnan", np.full(G.w_dim, np.nan, np.float32), "{}")):
        (w / name).mkdir()
        np.save(w / name / "age.npy", vec)
        (w / name / "age.json").write_text(info)
    (w / "nanframing.json").write_text('{"framing": {"eye_scale": NaN}}')
    Image.fromarray(np.full((16, 16), np.nan, np.float32), mode="F").save(w / "nan.tif")
    (w / "gen" / "proj.png").mkdir()                                        # a folder where a file goes
    np.savez(w / "empty.npz", w=np.zeros([0, G.num_ws, G.w_dim], np.float32))
    np.savez(w / "complex.npz", w=np.zeros([1, G.num_ws, G.w_dim], np.complex64))
    np.savez(w / "nan.npz", w=np.full([1, G.num_ws, G.w_dim], np.nan, np.float32))
    np.savez_compressed(w / "bomb.npz", w=np.zeros([25000, 20, 512], np.float16))    # 500 MB inflated, 0.5 MB here
    run = w / "runs" / "00000-ds-small-8"
    (run / "checkpoints").mkdir(parents=True)
    cfg = resolve(TrainConfig(data=str(w / "ds"), outdir=str(w / "runs"), cfg="small", batch=4, cbase=64, cmax=8,
                              map=1, kimg=0.032, kimg_per_tick=0.016, snap=1), 8, 1)
    (run / "training_options.json").write_text(json.dumps(cfg.to_dict()))
    (run / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-16"\n'
                                                   'all_model_checkpoint_paths: "ckpt-8"\n'
                                                   'all_model_checkpoint_paths: "ckpt-16"\n')
    for name, text in (("list", "[1, 2]"), ("cut", json.dumps(cfg.to_dict())[:100])):   # options not a run's
        bad = w / "runs3" / f"00000-{name}"
        (bad / "checkpoints").mkdir(parents=True)
        (bad / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-8"\n')
        (bad / "training_options.json").write_text(text)
    for n in (8, 16):
        (run / "checkpoints" / f"ckpt-{n}.index").write_bytes(b"\x00" * 40)
        (run / "checkpoints" / f"ckpt-{n}.data-00000-of-00001").write_bytes(b"\x00" * 100)
    return w


W = "{w}"
CASES = [
    # dataset_tool/create.py
    (["dataset_tool/create.py", f"{W}/nowhere", f"{W}/out"], "does not exist"),
    (["dataset_tool/create.py", f"{W}/photos/faces", f"{W}/photos", "--overwrite"], "lies inside the destination"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/stuff", "--overwrite"], "replaces only a dataset"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/ds"], "not empty; pass --overwrite"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/afile"], "not a folder"),
    (["dataset_tool/create.py", f"{W}/src", "/proc/self/stylegan2-ds"], "cannot write the destination"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--res", "100"], "power of two"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--labels", f"{W}/nowhere.csv"], "nowhere.csv"),
    (["dataset_tool/create.py", f"{W}/afile", f"{W}/out"], "neither a folder nor"),
    (["dataset_tool/create.py", "--info", f"{W}/damaged", "--quiet"], "problem(s) found"),
    # dataset_tool/extract.py
    (["dataset_tool/extract.py", f"{W}/nowhere", f"{W}/png"], "does not exist"),
    (["dataset_tool/extract.py", f"{W}/ds", f"{W}/afile"], "not a folder"),
    (["dataset_tool/extract.py", f"{W}/damaged", f"{W}/png3"], "dataset is damaged"),
    (["dataset_tool/extract.py", f"{W}/ds", f"{W}/stuff"], "output folder {w}/stuff is not empty; pass --overwrite"),
    (["dataset_tool/extract.py", f"{W}/ds", f"{W}/png", "--grid", f"{W}/afile"], "--grid {w}/afile: the file name"),
    # run_training.py
    (["run_training.py", "--data", f"{W}/nowhere"], "does not exist"),
    (["run_training.py", "--data", f"{W}/ds", "--res", "64"], "no 64x64 level"),
    (["run_training.py", "--data", f"{W}/ds", "--outdir", f"{W}/afile"], "not a folder"),
    (["run_training.py", "--data", f"{W}/ds", "--metrics", "fid"], "unknown metric"),
    (["run_training.py", "--outdir", f"{W}/runs", "--resume", "latest"], "no readable checkpoint"),
    # run_generator.py
    (["run_generator.py", "--network", f"{W}/nowhere.pkl", "--seeds", "1"], "does not exist"),
    (["run_generator.py", "--network", f"{W}/cut.keras", "--seeds", "1", "--outdir", f"{W}/o"], "damaged"),
    (["run_generator.py", "--network", f"{W}/bad.pkl", "--seeds", "1", "--outdir", f"{W}/o"], "bad.pkl"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--outdir", f"{W}/afile"], "not a folder"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--trunc", "5"], "between 0 and 2"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--edit", "age=-1..1", "--directions",
      f"{W}/dirs", "--outdir", f"{W}/o"], "age.npy"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/proj.npz"], "proj.npz"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/escape.npz", "--outdir", f"{W}/o"],
     "its tuned network '../net.keras' must be a .keras file name beside it"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/lost/projected_w.npz", "--outdir",
      f"{W}/o"], "was made with pivotal tuning, but its tuned network {w}/lost/tuned.keras is missing"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/tunedbad/projected_w.npz",
      "--outdir", f"{W}/o"], "{w}/tunedbad/tuned.keras is damaged"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/plain.npy"],
     "is a single .npy array, not a projected_w.npz"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/empty.npz"], "1 <= N <= 10000"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/complex.npz"], "got complex64"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/nan.npz"], "holds NaN or infinite"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/bomb.npz"],
     "got float16 [25000, 20, 512]"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--edit", "age=-" + "9" * 400 + "..3",
      "--directions", f"{W}/dirs"], "strengths go from -100 to 100"),
    (["run_generator.py", "--mode", "style-mix", "--rows", "0-2999", "--cols", "0-2999"],
     "make 3000 x 3000 mixes; at most 4,096"),
    (["run_generator.py", "--mode", "directions", "--num", "100000000"], "--num 100000000: preview 1 to 512"),
    (["run_generator.py", "--seeds", "1", "--edit", "age=-3..3", "--steps", "100000"], "flag --steps=100000"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--labels", "utkface", "--label_classes", "race=300000000"],
     "2 <= N <= 4096"),
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/ds", "--metrics", "ppl_zend_0k"],
     "metric ppl_zend_0k: its count must be 1k to 1000k images"),
    (["run_training.py", "--data", f"{W}/ds", "--outdir", f"{W}/runs2", "--metrics", "ppl_zend_0k"],
     "metric ppl_zend_0k: its count must be"),
    (["run_training.py", "--resume", f"{W}/runs/00000-ds-small-8", "--data", f"{W}/ds", "--res", "64", "--batch",
      "8", "--kimg", "1"], "only --kimg may change, not --res 64 (the run has 8); --batch 8 (the run has 4)"),
    (["run_training.py", "--resume", "latest", "--outdir", f"{W}/stuff", "--dry_run"], "--resume latest: no run"),
    (["run_training.py", "--resume", f"{W}/runs3/00000-list", "--dry_run"],
     "does not hold this project's training options"),
    (["run_training.py", "--resume", f"{W}/runs3/00000-cut"], "is not valid JSON"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/huge.png",
      "--outdir", f"{W}/o"], "12000x12000 is 144 megapixels; at most 100 are read"),
    (["run_generator.py", "--mode", "project", "--target", f"{W}/afile", "--tune_steps", "0"],
     "flag --tune_steps=0: 0 is not"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/afile",
      "--outdir", f"{W}/o"], "cannot read the image"),
    # run_metrics.py
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/ds1", "--metrics", "fid1k"],
     "has 1 image(s) at 32x32: too few for statistics"),
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/nowhere"], "does not exist"),
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/ds", "--metrics", "fidx"], "unknown metric"),
    # flags: absl's parse errors, bounds and non-finite numbers, all one line (common/cli.py: parse_flags)
    (["run_training.py", "--data", f"{W}/ds", "--batch", "0"], "flag --batch=0: 0 is not a positive integer"),
    (["run_training.py", "--data", f"{W}/ds", "--batch", "abc"], "flag --batch=abc: invalid literal"),
    (["run_training.py", "--data", f"{W}/ds", "--kimg", "nan"], "--kimg nan: must be a finite number"),
    (["run_training.py", "--data", f"{W}/ds", "--glr", "nan"], "--glr nan: must be a finite number"),
    (["run_training.py", "--data", f"{W}/ds", "--gamma", "inf"], "--gamma inf: must be a finite number"),
    (["run_training.py", "--data", f"{W}/ds", "--gamma", "-1"], "-1.0 is not a non-negative number"),
    (["run_training.py", "--data", f"{W}/ds", "--cmax", "0"], "flag --cmax=0: 0 is not a positive integer"),
    (["run_training.py", "--data", f"{W}/ds", "--cfg", "nonsense"], "flag --cfg=nonsense: value should be one of"),
    (["run_training.py", "--data", f"{W}/ds", "--nonsense", "1"], "Unknown command line flag 'nonsense'"),
    (["run_training.py", "--data", f"{W}/ds", "--p", "2"], "flag --p=2: 2.0 is not a number in the range [0, 1]"),
    (["run_generator.py", "--seeds", "1", "--batch", "-3"], "flag --batch=-3: -3 is not a positive integer"),
    (["run_generator.py", "--seeds", "1", "--trunc", "nan"], "--trunc nan: must be a finite number"),
    (["run_generator.py", "--mode", "project", "--target", f"{W}/afile", "--w_prior", "-1"], "flag --w_prior=-1"),
    (["run_generator.py", "--mode", "project", "--target", f"{W}/afile", "--w_prior", "nan"],
     "--w_prior nan: must be a finite number"),
    (["run_generator.py", "--mode", "interpolate", "--seeds", "1,2", "--frames", "100000000"], "--frames=100000000"),
    (["run_generator.py", "--mode", "interpolate", "--seeds", "1,2", "--fps", "0"],
     "flag --fps=0: 0.0 is not a number in the range [1, 240]"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "0-4294967295", "--outdir", f"{W}/o"],
     "names 4,294,967,296 seeds; at most 1,000,000"),
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/ds", "--batch", "0"], "flag --batch=0"),
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/ds", "--also_data", f"{W}/nowhere"],
     "--also_data {w}/nowhere does not exist"),
    (["dataset_tool/extract.py", f"{W}/ds", f"{W}/png", "--max_images", "-1"], "flag --max_images=-1"),
    (["dataset_tool/extract.py", f"{W}/ds", f"{W}/png", "--grid_size", "0"], "flag --grid_size=0"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--shards", "0"], "flag --shards=0"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--jobs", "-1"], "flag --jobs=-1"),
    (["run_explorer.py", "--port", "70000"], "flag --port=70000"),
    # outputs: nothing of the user's replaced unasked, and a file name that fits
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/cut.keras"],
     "--export {w}/cut.keras exists; pass --overwrite to replace it"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/stuff"], "is a folder; give a file name"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/new.pkl"],
     "an NVIDIA network pickle holds G, D and G_ema; this network has no D"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/k.keras", "--keep", "G_ema,E"],
     "--keep G_ema,E: name networks among G_ema, G, D"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "0", "--keep", "D"],
     "--keep applies to --export PATH"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/k.keras", "--keep", "D", "--ema_only"],
     "give --ema_only or --keep, not both"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "0", "--outdir", f"{W}/gen"],
     "{w}/gen/seed0000.png already exist(s); pass --overwrite"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "0-3", "--grid", "--outdir", f"{W}/gen"],
     "{w}/gen/seed0000.png and 1 more of this command's outputs already exist(s)"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/g.pt"],
     "must end in .keras, .tflite (LiteRT), .onnx (ONNX) or .pkl (NVIDIA's network pickle)"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/g.onnx", "--quantize", "int8"],
     "--quantize int8 applies to --export PATH.tflite"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/g.tflite", "--keep", "D"],
     "--keep applies to --export PATH.keras; LiteRT and ONNX files hold G_ema alone"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/g.tflite", "--quantize", "int4"],
     "flag --quantize=int4: value should be one of"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export_web", f"{W}/stuff"],
     "--export_web {w}/stuff is not empty; pass --overwrite"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export_web", f"{W}/afile"], "exists and is not a folder"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export_web", f"{W}/{'w' * 256}"], "is 256 bytes long"),
    # a name from the user never escapes its folder (common/files.py: check_name)
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--name", "../escape"],
     "--name '../escape' must be a plain file name"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--name", f"{W}/abs"], "must be a plain file name"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--name", ".hidden"], "must be a plain file name"),
    # files that are not what a flag names: one line, before any slow work
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/ds", "--inception", f"{W}/afile"],
     "Inception weights {w}/afile cannot be read: File is not a zip file"),
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/ds", "--cache_dir", f"{W}/afile/sub"],
     "--cache_dir {w}/afile/sub cannot be written"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/nowhere.png",
      "--outdir", f"{W}/o"], "--target {w}/nowhere.png does not exist"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export_savedmodel", f"{W}/stuff"],
     "--export_savedmodel {w}/stuff is not empty; pass --overwrite"),
    # more of the same classes: names, ranges, counts, combinations (all before TensorFlow)
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out", "--name", "a\x01b"], "must be a plain file name"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/src"], "lies inside the destination"),
    (["dataset_tool/extract.py", f"{W}/ds", f"{W}/png", "--res", "7"], "resolution 7 is not a power of two"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "a-b"], "bad seed list 'a-b'"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "5-2"], "the end is before the start"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--trunc_cutoff", "-1"],
     "flag --trunc_cutoff=-1"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "interpolate", "--seeds", "1"],
     "equal walks of at least two seeds each"),
    (["run_explorer.py", "--network", f"{W}/nowhere.keras"], "does not exist"),
    (["run_explorer.py", "--network", f"{W}/net.keras", "--directions", f"{W}/afile"],
     "--directions {w}/afile is not a folder"),
    (["run_metrics.py", "--network", f"{W}/net.keras", "--data", f"{W}/ds", "--metrics", ""], "no metrics given"),
    (["run_training.py", "--data", f"{W}/ds", "--outdir", f"{W}/runs2", "--kimg", "0"], "must be positive"),
    (["run_training.py", "--data", f"{W}/ds", "--outdir", f"{W}/runs2", "--res", "100"], "is not a power of two"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "style-mix", "--rows", "1,2"],
     "needs --rows and --cols"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--edit", "age"], "bad --edit 'age'"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--projected-w", f"{W}/nowhere.npz"],
     "--projected-w {w}/nowhere.npz does not exist"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/src"],
     "--target {w}/src is a folder; give one photo file"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/src/img0000.png",
      "--framing", f"{W}/nowhere.json"], "--framing {w}/nowhere.json does not exist"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "learn-direction", "--attribute", "age"],
     "needs --data (a labelled dataset)"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--noise_mode", "loud"],
     "flag --noise_mode=loud"),
    (["run_training.py", "--data", f"{W}/ds", "--aug", "nope"], "flag --aug=nope"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--class", "2", "--outdir", f"{W}/o"],
     "--class was given but the network is unconditional"),
    # the file system refuses a path: one line (common/cli.py), checked before work where it can be
    (["dataset_tool/create.py", f"{W}/loop1", f"{W}/out"], "{w}/loop1: a symbolic link loop"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/loop1"], "{w}/loop1: a symbolic link loop"),
    (["run_generator.py", "--network", f"{W}/loop1", "--seeds", "1", "--outdir", f"{W}/o"], "symbolic link loop"),
    (["dataset_tool/create.py", f"{W}/src", "/sys/stylegan2-ds"], "cannot write the destination /sys/stylegan2-ds"),
    (["dataset_tool/extract.py", f"{W}/ds", "/proc/stylegan2-png"], "/proc is not a writable folder"),
    (["dataset_tool/create.py", f"{W}/src", f"{W}/out/{'a' * 300}"], "is 300 bytes long; file names have at most"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--outdir", f"{W}/{'b' * 256}"],
     "is 256 bytes long"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--export", f"{W}/out.KERAS"], "in lower case"),
    (["dataset_tool/create.py", f"{W}/cut.tar.gz", f"{W}/out"], "cannot read {w}/cut.tar.gz"),
    (["dataset_tool/extract.py", f"{W}/cutds", f"{W}/png4"], "hold(s) 4 records, but the dataset records 8"),
    # the files beside a network: one reader per kind, checked (latent/directions.py, alignment/faces.py)
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--edit", "age=-1..1", "--directions",
      f"{W}/dlist", "--outdir", f"{W}/o"], "not a direction's description (a JSON object is expected, got list)"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--edit", "age=-1..1", "--directions",
      f"{W}/dabc", "--outdir", f"{W}/o"], "its 'scales' must be 1 positive number(s)"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--edit", "age:0=-1..1", "--directions",
      f"{W}/dfew", "--outdir", f"{W}/o"], "its 'scales' must be 3 positive number(s)"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--seeds", "1", "--edit", "age=-1..1", "--directions",
      f"{W}/dnan", "--outdir", f"{W}/o"], "direction age holds NaN, infinite or only zero values"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/src/img0000.png",
      "--framing", f"{W}/nanframing.json", "--outdir", f"{W}/o"], "not a framing file (ValueError: it holds NaN"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/nan.tif",
      "--outdir", f"{W}/o"], "NaN or infinite values"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/src/img0000.png",
      "--outdir", f"{W}/gen", "--overwrite"], "{w}/gen/proj.png is a folder, where this command writes a file"),
    (["run_generator.py", "--network", f"{W}/net.keras", "--mode", "project", "--target", f"{W}/src/img0000.png",
      "--outdir", f"{W}/new/o"], "no face found"),
    # run_training.py: found before any run folder exists or any line is printed
    (["run_training.py", "--data", f"{W}/ds", "--outdir", f"{W}/runs2", "--freezed", "9"],
     "--freezed 9: D has 4 layers that can be frozen (0 to 4)"),
    (["run_training.py", "--data", f"{W}/ds", "--outdir", f"{W}/runs2", "--cond"], "has no labels"),
    (["run_training.py", "--data", f"{W}/ds", "--outdir", f"{W}/runs2", "--resume", f"{W}/net.keras"],
     "makes 32x32 images, but the dataset"),
    (["run_training.py", "--data", f"{W}/ds", "--outdir", f"{W}/runs2", "--resume", f"{W}/nowhere"],
     "no such run folder or network file"),
]


# Found only once TensorFlow runs (records, networks, checkpoints, labels read): every other case is rejected from
# the flags and the file system alone, before TensorFlow starts (seconds sooner), which the test checks by running
# it with a `tensorflow` that cannot be imported.
NEEDS_TF = {
    ("dataset_tool/create.py", "nowhere.csv"), ("dataset_tool/create.py", "neither a folder nor"),
    ("dataset_tool/create.py", "problem(s) found"), ("dataset_tool/extract.py", "dataset is damaged"),
    ("run_training.py", "no readable checkpoint"), ("run_training.py", "has no labels"),
    ("run_training.py", "--freezed 9: D has 4 layers that can be frozen (0 to 4)"),
    ("run_training.py", "makes 32x32 images, but the dataset"),
    ("run_generator.py", "damaged"), ("run_generator.py", "bad.pkl"), ("run_generator.py", "age.npy"),
    ("run_generator.py", "an NVIDIA network pickle holds G, D and G_ema; this network has no D"),
    ("run_generator.py", "{w}/tunedbad/tuned.keras is damaged"),
    ("dataset_tool/create.py", "2 <= N <= 4096"),
    ("run_metrics.py", "Inception weights {w}/afile cannot be read: File is not a zip file"),
    ("dataset_tool/create.py", "cannot read {w}/cut.tar.gz"),
    ("run_metrics.py", "has 1 image(s) at 32x32: too few for statistics"),
    ("run_generator.py", "--class was given but the network is unconditional"),
    ("run_generator.py", "not a direction's description (a JSON object is expected, got list)"),
    ("run_generator.py", "its 'scales' must be 1 positive number(s)"),
    ("run_generator.py", "its 'scales' must be 3 positive number(s)"),
    ("run_generator.py", "direction age holds NaN, infinite or only zero values"),
    ("run_generator.py", "not a framing file (ValueError: it holds NaN"),
    ("run_generator.py", "NaN or infinite values"),
    ("run_generator.py", "no face found"),
    ("dataset_tool/extract.py", "hold(s) 4 records, but the dataset records 8"),
}
assert NEEDS_TF <= {(a[0], m) for a, m in CASES}

# Cases that run TensorFlow kernels before their error (records decoded, networks built and run, the face detector)
# run twice: as the CPU is, and with oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA), so TensorFlow takes its other
# kernel paths (on AVX-512 machines those print C++ errors such as "oneDNN supports DT_UINT8 only on platforms with
# AVX-512") and the one-line contract is checked on both. One or two per command: the other NEEDS_TF cases stop
# while reading a file, on the code path these already take.
RUNS_KERNELS = {
    ("dataset_tool/create.py", "problem(s) found"),
    ("dataset_tool/extract.py", "hold(s) 4 records, but the dataset records 8"),
    ("run_metrics.py", "has 1 image(s) at 32x32: too few for statistics"),
    ("run_training.py", "makes 32x32 images, but the dataset"),
    ("run_generator.py", "--class was given but the network is unconditional"), ("run_generator.py", "no face found"),
}
assert RUNS_KERNELS <= NEEDS_TF
ISAS = {"cpu": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}


def _has_avx512() -> bool:
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return True                                       # unknown: run both


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory) -> str:
    """A folder for PYTHONPATH whose `tensorflow` fails to import."""
    root = tmp_path_factory.mktemp("no-tf")
    (root / "tensorflow").mkdir()
    (root / "tensorflow" / "__init__.py").write_text('raise ImportError("TensorFlow must not start for this error")')
    return str(root)


@pytest.mark.parametrize("isa", sorted(ISAS))
@pytest.mark.parametrize("args,message", CASES, ids=[f"{a[0].split('/')[-1]}:{m}" for a, m in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, no_tensorflow, args, message, isa):
    needs_tf = (args[0], message) in NEEDS_TF
    if isa == "avx2" and (args[0], message) not in RUNS_KERNELS:
        pytest.skip("no TensorFlow kernel runs before this error: no kernel path to vary")
    if isa == "avx2" and not _has_avx512():
        pytest.skip("this CPU has no AVX-512: the 'cpu' run already takes oneDNN's AVX2 paths")
    before = tree_digest(world)
    env = dict(ISAS[isa]) if needs_tf else {"PYTHONPATH": no_tensorflow}
    r = run_cli(*(a.replace(W, str(world)) for a in args), env=env)
    assert not TF_LOG_LINE.search(r.stderr), r.stderr[-2000:]                # no TensorFlow C++ log line
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-2000:]
    assert message.replace(W, str(world)) in lines[0], lines[0]
    after = tree_digest(world)
    assert {k: after.get(k) for k in before} == before, "a failed command changed or removed files"
    assert after == before, f"a failed command wrote {sorted(set(after) - set(before))}"
