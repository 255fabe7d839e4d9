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

from common.cli import cli_main, define_flags, start_tensorflow  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.files import check_output_dir  # noqa: E402
from training.config import command_line_options  # noqa: E402

define_flags(command_line_options())      # one definition: training/config.py's TrainConfig
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
        given = {f.name: FLAGS[f.name].value for f in command_line_options()
                 if FLAGS[f.name].present and f.name not in CONTINUE_FLAGS}
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
    cfg = TrainConfig(**{f.name: FLAGS[f.name].value for f in command_line_options()})
    strategy = make_strategy(cfg.strategy)
    if FLAGS.resume and not resume_run:                    # a new run from a trained network
        cfg = from_network(cfg, FLAGS.resume)
    if not resume_run:
        level = open_level(cfg.data, cfg.res)              # opened once, passed down to the trainer
        num_images = dataset_size(level.layout)
        cfg = resolve(cfg, level.res, strategy.num_replicas_in_sync, num_images)
        check_dataset(cfg, level.layout)
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
    run = run_training(cfg, strategy, metrics=snapshot_metrics, level=None if resume_run else level)
    print(f"run folder: {run}")
    return 0


if __name__ == "__main__":
    cli_main(main)
