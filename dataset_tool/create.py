"""Create a multi-resolution TFRecord dataset (official StyleGAN layout) from a folder or archive of faces.

    python dataset_tool/create.py faces/ tfrecords/ [--res 256] [--labels utkface] [--shards 4] ...
    python dataset_tool/create.py --info tfrecords/      # summary + full verification
"""
from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # repo root, not dataset_tool/

from common.cli import cli_main, start_tensorflow  # noqa: E402
from common.errors import UserError  # noqa: E402

from absl import flags  # noqa: E402

flags.DEFINE_integer("res", None, "Top resolution, a power of two 4..1024 (default: the largest power of two "
                     "not above the typical image's short side).")
flags.DEFINE_enum("resize_filter", "lanczos", ["lanczos", "box", "bicubic"], "Anti-aliased resize filter.")
flags.DEFINE_integer("channels", 3, "3 for RGB, 1 for grayscale.")
flags.DEFINE_integer("max_images", None, "Write at most this many images.", lower_bound=1)
flags.DEFINE_integer("shuffle_seed", 123, "Seed of the shuffled write order (official: 123).")
flags.DEFINE_boolean("align", False, "Find faces by their landmarks (MTCNN: eye centres, mouth corners) and crop "
                     "them as NVIDIA aligned FFHQ; photos without a usable face are listed in skipped.txt, the "
                     "landmarks of every crop in alignment.json. Off: inputs are assumed aligned and cropped.")
flags.DEFINE_enum("faces", "largest", ["largest", "all"], "--align: the largest face of each photo, or every face.")
flags.DEFINE_string("labels", None, "Labels: a .csv (file,name1,...) or .json file, 'regex:PATTERN' with named "
                    "groups matched on file names, or 'utkface' (age_gender_race_...).")
flags.DEFINE_string("label_classes", "", "Label fields to one-hot encode, e.g. 'gender=2,race=5'.")
flags.DEFINE_boolean("dedupe", False, "Drop exact duplicate files (they are always reported).")
flags.DEFINE_boolean("overwrite", False, "Replace a non-empty destination once the new dataset is complete.")
flags.DEFINE_integer("shards", 1, "Files per level, so several hosts can split the data by file.",
                     lower_bound=1)
flags.DEFINE_enum("encoding", "raw", ["raw", "png"], "raw: official uint8 CHW; png: about 3x smaller at "
                  "512/1024 but slower to read and not readable by the official StyleGAN2 tools.")
flags.DEFINE_integer("jobs", 0, "Worker processes (0: one per core).", lower_bound=0)
flags.DEFINE_string("name", None, "File-name prefix (default: the destination folder's name).")
flags.DEFINE_string("info", None, "Print the summary of this dataset folder and verify it, then exit.")
flags.DEFINE_boolean("quiet", False, "No progress bar.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if FLAGS.info:
        if len(argv) > 1:
            raise UserError("--info takes the dataset folder as its value and no other arguments")
        start_tensorflow()
        from dataset_tool.verify import check
        check(FLAGS.info, quiet=FLAGS.quiet)
        return 0
    if len(argv) != 3:
        raise UserError("usage: create.py SRC DEST [flags]  (SRC: folder/.zip/.tar of images; --help for flags)")
    from dataset_tool.build import CreateConfig, create_dataset, validate
    cfg = CreateConfig(source=argv[1], dest=argv[2], res=FLAGS.res, resize_filter=FLAGS.resize_filter,
                       channels=FLAGS.channels, max_images=FLAGS.max_images, shuffle_seed=FLAGS.shuffle_seed,
                       align=FLAGS.align, faces=FLAGS.faces, labels=FLAGS.labels, label_classes=FLAGS.label_classes,
                       dedupe=FLAGS.dedupe, overwrite=FLAGS.overwrite, shards=FLAGS.shards,
                       encoding=FLAGS.encoding, jobs=FLAGS.jobs, name=FLAGS.name, quiet=FLAGS.quiet)
    validate(cfg)                                       # flags, source and destination: before TensorFlow starts
    start_tensorflow()
    create_dataset(cfg)
    return 0


if __name__ == "__main__":
    cli_main(main)
