"""Write the images of one dataset level back out as PNG files, and optionally one contact sheet.

    python dataset_tool/extract.py tfrecords/ out/ --res 64 [--max-images 100] [--grid sheet.png]

The output folder must be new or empty and --grid a new .png, unless --overwrite.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # repo root, not dataset_tool/

from common.cli import cli_main, start_tensorflow  # noqa: E402
from common.errors import UserError  # noqa: E402

from absl import flags  # noqa: E402

flags.DEFINE_integer("res", None, "Level to extract (default: the highest).")
flags.DEFINE_integer("max_images", None, "Extract at most this many images.", lower_bound=1)
flags.DEFINE_string("grid", None, "Also write a contact sheet of the first images to this PNG path.")
flags.DEFINE_integer("grid_size", 64, "Images on the contact sheet.", lower_bound=1)
flags.DEFINE_boolean("overwrite", False, "Write into an output folder that is not empty, and over an existing --grid.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        raise UserError("usage: extract.py DATASET OUTDIR [--res N] [--max-images N] [--grid sheet.png]")
    from common.files import atomic_path, check_output_file
    from datasets.format import find_level
    outdir = argv[2]
    find_level(argv[1], FLAGS.res)                      # the dataset and level exist: before TensorFlow starts
    check_output_file(outdir, "output folder", overwrite=FLAGS.overwrite, folder=True)
    if FLAGS.grid:
        check_output_file(FLAGS.grid, "--grid", ".png", FLAGS.overwrite)
    start_tensorflow()
    from PIL import Image

    from common.images import contact_sheet
    from datasets.reader import open_level, read_records
    open_level(argv[1], FLAGS.res)                      # its records are readable
    out = Path(outdir)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"    # the PNGs land together or not at all
    partial.mkdir(parents=True)
    sheet, n = [], 0
    try:
        for i, (img, _) in enumerate(read_records(argv[1], FLAGS.res)):
            if FLAGS.max_images is not None and i >= FLAGS.max_images:
                break
            Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(partial / f"img{i:08d}.png")
            if len(sheet) < FLAGS.grid_size:
                sheet.append(img)
            n += 1
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(partial.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if FLAGS.grid and sheet:
        with atomic_path(FLAGS.grid) as tmp:
            contact_sheet(sheet).save(tmp)
    print(f"wrote {n} PNG files to {outdir}" + (f" and a contact sheet to {FLAGS.grid}" if FLAGS.grid else ""))
    return 0


if __name__ == "__main__":
    cli_main(main)
