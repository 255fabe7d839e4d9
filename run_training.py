"""Train StyleGAN2 on a multi-resolution TFRecord dataset.

    python run_training.py --data tfrecords/ --res 64 --cfg small --kimg 500
    python run_training.py --resume latest --kimg 1000          # continue the newest run in results/
    python run_training.py --data mine/ --resume ffhq-256 --freezed 10 --kimg 500   # fine-tune a trained network
    python run_training.py --data tfrecords/ --dry-run          # print the resolved options and exit
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys

sys.path[0] = os.path.dirname(os.path.abspath(__file__))

from absl import flags  # noqa: E402

from common.cli import cli_main, start_tensorflow  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.files import check_output_dir  # noqa: E402

flags.DEFINE_string("data", None, "Dataset folder (made by dataset_tool/create.py, or official TFRecords).")
flags.DEFINE_integer("res", None, "Training resolution: a level of the dataset (default: its highest).",
                     lower_bound=4)
flags.DEFINE_string("outdir", "results", "Parent folder of the run folders.")
flags.DEFINE_enum("cfg", "auto", ["auto", "stylegan2", "paper256", "paper512", "paper1024", "small"],
                  "Preset (small: CPU-sized networks).")
flags.DEFINE_integer("batch", None, "Global batch size (all replicas).", lower_bound=1)
flags.DEFINE_float("gamma", None, "R1 regularisation weight.", lower_bound=0)
flags.DEFINE_float("kimg", 25000, "Total training length in thousands of real images.")
flags.DEFINE_float("kimg_per_tick", 4.0, "Progress/status interval in kimg.")
flags.DEFINE_integer("snap", 50, "Snapshot (checkpoint, network, fakes grid) every N ticks.", lower_bound=1)
flags.DEFINE_boolean("mirror", False, "Random horizontal flips of the real images.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_boolean("cond", False, "Train a conditional network on the dataset's labels.")
flags.DEFINE_float("glr", None, "G learning rate.", lower_bound=0)
flags.DEFINE_float("dlr", None, "D learning rate.", lower_bound=0)
flags.DEFINE_integer("map", None, "Mapping network depth.", lower_bound=1)
flags.DEFINE_integer("cbase", None, "Channel base (channels at res r: min(cbase / r, cmax)).", lower_bound=1)
flags.DEFINE_integer("cmax", None, "Maximum channels per layer.", lower_bound=1)
flags.DEFINE_enum("loss", "stylegan2", ["stylegan2", "wgan-gp"], "Objective.")
flags.DEFINE_enum("strategy", "auto", ["auto", "mirrored", "multiworker", "one_device"],
                  "auto: MirroredStrategy over all GPUs, one device on CPU; multiworker: "
                  "MultiWorkerMirroredStrategy over the hosts in TF_CONFIG.")
flags.DEFINE_boolean("progressive", False, "Grow progressively (ProGAN / StyleGAN v1 schedule) from "
                     "--lod-initial-res to --res, fading each resolution in through the lower dataset levels.")
flags.DEFINE_integer("lod_initial_res", 8, "Progressive: first resolution.", lower_bound=4)
flags.DEFINE_float("lod_training_kimg", None, "Progressive: kimg at each resolution before the next fades in "
                   "(default: 20 with --cfg small, else 600 as StyleGAN v1).")
flags.DEFINE_float("lod_transition_kimg", None, "Progressive: kimg of each fade-in (default: 20 with --cfg "
                   "small, else 600).")
flags.DEFINE_enum("mixed_precision", "off", ["off", "fp16", "bf16"], "Run the 4 highest resolutions of G and D "
                  "in float16 (with dynamic loss scaling) or bfloat16; off: float32 (the CPU default).")
flags.DEFINE_enum("tf32", "off", ["off", "on"], "TensorFloat-32 matmuls and convolutions on Ampere and newer GPUs "
                  "(TensorFlow's default is on; off, as StyleGAN2-ADA, keeps float32 layers at float32 precision). "
                  "No effect on CPU.")
flags.DEFINE_enum("jit", "off", ["off", "on"], "XLA-compile each phase's forward and backward pass. On CPU it "
                  "is 6x slower (benchmarks/bench_training.py --jit); on GPU unmeasured. XLA draws the "
                  "path-length and random per-pixel noise from its own stream of the same seed.")
flags.DEFINE_string("metrics", "", "Metrics at every snapshot, e.g. fid50k_full,kid50k_full (fid2k: quick "
                    "CPU check); results in metric-<name>.jsonl and TensorBoard.")
flags.DEFINE_enum("aug", None, ["ada", "fixed", "off"], "Augment every image D sees (StyleGAN2-ADA's bgc "
                  "pipeline): ada adapts p to keep E[sign(D(real))] at --target; fixed uses --p; default: ada for "
                  "datasets under 30k images, else off.")
flags.DEFINE_float("p", None, "--aug fixed: augmentation probability.", lower_bound=0, upper_bound=1)
flags.DEFINE_float("target", 0.6, "--aug ada: target of r_t = E[sign(D(real))].")
flags.DEFINE_float("ada_kimg", None, "--aug ada: kimg for p to move from 0 to 1 (default 500; 100 when starting "
                   "from a network, as StyleGAN2-ADA).")
flags.DEFINE_string("resume", None, "Continue a run: its folder, or 'latest' (newest run under --outdir). Or start a "
                    "new run at kimg 0 from a trained network: an NVIDIA pickle, URL or published name (ffhq-256, "
                    "...), one of our .keras snapshots, or utkface-64 (the shipped model).")
flags.DEFINE_integer("freezed", 0, "Freeze-D: do not train D's first N layers, counted from the highest resolution "
                     "(fromrgb, conv0, conv1, skip of each block), as StyleGAN2-ADA's --freezed.")
flags.DEFINE_boolean("dry_run", False, "Print the resolved options and exit.")
FLAGS = flags.FLAGS
CONTINUE_FLAGS = {"resume", "kimg", "outdir", "dry_run"}    # what --resume RUN may be given with


def snapshot_metrics(cfg):
    """The metrics evaluated at every snapshot of a run whose options name some (resumed runs included)."""
    from metrics.metrics import snapshot_evaluator
    return snapshot_evaluator(cfg.metrics, cfg.data)


def dataset_size(layout) -> int:
    """Images in the dataset: the manifest's count, else the records of its smallest level."""
    if layout.manifest and "count" in layout.manifest:
        return int(layout.manifest["count"])
    import tensorflow as tf
    files = [str(f) for f in layout.files(min(layout.resolutions))]
    return int(tf.data.TFRecordDataset(files).reduce(0, lambda n, _: n + 1).numpy())


def from_network(cfg, source: str):
    """`cfg` with the architecture of the network `source` and the record of where the run's weights come from
    (training.transfer.apply_network checks it against the flags and the dataset)."""
    from datasets.format import discover
    from datasets.reader import label_dim, open_level
    from networks.locate import find_network, sha256_of
    from networks.serialize import load_network, network_file
    from training.transfer import apply_network, architecture
    path = network_file(find_network(source))          # a run folder without checkpoints: its newest snapshot
    bundle = load_network(path)
    layout = discover(cfg.data)
    res = architecture(bundle)["res"]
    channels = open_level(cfg.data, res)[2][0] if res in layout.resolutions else None
    return apply_network(cfg, bundle, source, path.resolve(), sha256_of(path) if path.is_file() else "",
                         layout.resolutions, channels, label_dim(layout))


def check_dataset(cfg, layout) -> None:
    """What training would otherwise find only once it has started: labels for --cond, and every level a
    progressive run reads."""
    from datasets.reader import label_dim
    if cfg.cond and not label_dim(layout):
        raise UserError(f"--cond: the dataset {cfg.data} has no labels (dataset_tool/create.py --labels)")
    if cfg.progressive:
        res = cfg.lod_initial_res
        while res <= cfg.res:
            layout.files(res)                             # UserError naming the missing level
            res *= 2


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]} (flags start with --)")
    from training.config import ADA_MAX_IMAGES, TrainConfig, resolve
    from training.transfer import continues_run
    resume_run = continues_run(FLAGS.resume)
    from networks.locate import known_network
    if FLAGS.resume and not resume_run and not known_network(FLAGS.resume):
        raise UserError(f"--resume {FLAGS.resume}: no such run folder or network file")
    if resume_run:                             # a run continues with its own options: a flag may only repeat them
        from training.config import read_run_options
        from training.transfer import conflicting_flags, find_resume
        run = find_resume(TrainConfig(outdir=FLAGS.outdir, resume=FLAGS.resume))
        given = {f.name: f.value for f in FLAGS.get_key_flags_for_module(sys.modules[__name__])
                 if f.present and f.name not in CONTINUE_FLAGS}
        conflicts = conflicting_flags(given, read_run_options(run))
        if conflicts:
            raise UserError(f"--resume {FLAGS.resume} continues {run} with the options in its training_options.json; "
                            f"only --kimg may change, not {'; '.join(conflicts)}")
    if not FLAGS.data and not resume_run:
        raise UserError(f"--resume {FLAGS.resume} starts a new run from that network: pass --data DATASET too"
                        if FLAGS.resume else "pass --data DATASET (or --resume latest|RUN)")
    # what the flags name, checked from the file system before TensorFlow starts (seconds sooner)
    from training.config import check_durations
    check_durations(FLAGS.kimg, FLAGS.kimg_per_tick, FLAGS.snap)
    check_output_dir(FLAGS.outdir, "--outdir")
    if FLAGS.strategy == "multiworker":
        from training.config import check_tf_config
        check_tf_config()
    if FLAGS.data and not resume_run:
        from datasets.format import find_level
        find_level(FLAGS.data, FLAGS.res)
    if FLAGS.metrics:
        from metrics.metrics import check_metrics
        check_metrics(FLAGS.metrics)                       # names and Inception weights, before any work
    start_tensorflow()
    from datasets.reader import open_level
    from training.distribute import make_strategy
    from training.training_loop import run_training
    cfg = TrainConfig(data=FLAGS.data or "", res=FLAGS.res, outdir=FLAGS.outdir, cfg=FLAGS.cfg, batch=FLAGS.batch,
                      gamma=FLAGS.gamma, kimg=FLAGS.kimg, kimg_per_tick=FLAGS.kimg_per_tick, snap=FLAGS.snap,
                      mirror=FLAGS.mirror, seed=FLAGS.seed, cond=FLAGS.cond, glr=FLAGS.glr, dlr=FLAGS.dlr,
                      map=FLAGS.map, cbase=FLAGS.cbase, cmax=FLAGS.cmax, loss=FLAGS.loss, strategy=FLAGS.strategy,
                      metrics=FLAGS.metrics, mixed_precision=FLAGS.mixed_precision, tf32=FLAGS.tf32,
                      jit=FLAGS.jit,
                      resume=FLAGS.resume,
                      progressive=FLAGS.progressive, lod_initial_res=FLAGS.lod_initial_res,
                      lod_training_kimg=FLAGS.lod_training_kimg, lod_transition_kimg=FLAGS.lod_transition_kimg,
                      aug=FLAGS.aug, p=FLAGS.p, target=FLAGS.target, ada_kimg=FLAGS.ada_kimg, freezed=FLAGS.freezed,
                      dry_run=FLAGS.dry_run)
    strategy = make_strategy(cfg.strategy)
    if FLAGS.resume and not resume_run:                    # a new run from a trained network
        cfg = from_network(cfg, FLAGS.resume)
    if not resume_run:
        layout, res, _ = open_level(cfg.data, cfg.res)     # the level must exist
        num_images = dataset_size(layout)
        cfg = resolve(cfg, res, strategy.num_replicas_in_sync, num_images)
        check_dataset(cfg, layout)
    if not resume_run:                                     # once every option is known to be valid
        why = "" if FLAGS.aug else f" (default for {num_images} images; ada under {ADA_MAX_IMAGES})"
        print(f"augmentation: {cfg.aug}{why}", file=sys.stderr)
    if cfg.dry_run:
        if resume_run:                                     # the options the run goes on with
            from training.config import read_run_options
            from training.transfer import find_resume
            cfg = dataclasses.replace(read_run_options(find_resume(cfg)), resume=cfg.resume, kimg=cfg.kimg)
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    run = run_training(cfg, strategy, metrics=snapshot_metrics)
    print(f"run folder: {run}")
    return 0


if __name__ == "__main__":
    cli_main(main)
