"""Evaluate a network with the standard metrics (FID, KID) against its dataset.

    python run_metrics.py --network results/00000-faces --data tfrecords/ --metrics fid50k_full,kid50k_full
    python run_metrics.py --network net.keras --data tfrecords/ --metrics fid2k      # quick CPU check
    python run_metrics.py --network run/ --data faces2k/ --also_data faces-all/     # one set of fakes, two refs

Results are printed as json lines and, for a network inside a run folder, appended to
<run>/metric-<name>.jsonl. Real-image statistics are cached per dataset, resolution and detector.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path[0] = os.path.dirname(os.path.abspath(__file__))

from absl import flags  # noqa: E402

from common.cli import cli_main, start_tensorflow  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.progress import Progress  # noqa: E402

flags.DEFINE_string("network", None, "A .keras network of ours, a run folder (newest snapshot), an NVIDIA .pkl, an "
                    "http(s) URL of one, or a published name such as ffhq-1024 (downloaded once, then cached).")
flags.DEFINE_string("data", None, "The dataset folder the network was trained on.")
flags.DEFINE_list("also_data", [], "More dataset folders to compare the same generated images with (e.g. a "
                  "larger set of the same kind of faces than a small training set); each row names its 'data'.")
flags.DEFINE_string("metrics", "fid50k_full", "Comma-separated: fid50k_full, fid10k, kid50k_full, fidNk ...")
flags.DEFINE_string("inception", None, "Path of the FID Inception weights (default: installed / cached copy).")
flags.DEFINE_string("cache_dir", None, "Where real statistics are cached (default ~/.cache/stylegan2-tf/metrics).")
flags.DEFINE_integer("batch", 16, "Generated images per generator call.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]} (flags start with --)")
    from metrics.metrics import parse_metrics
    specs = parse_metrics(FLAGS.metrics)
    if not FLAGS.network or not FLAGS.data:
        raise UserError("pass --network (a trained network) and --data (its dataset folder)")
    for flag, data in [("--data", FLAGS.data), *(("--also_data", d) for d in FLAGS.also_data)]:
        if not Path(data).exists():
            raise UserError(f"{flag} {data} does not exist")
    from common.files import CACHE, check_output_dir
    from networks.locate import check_network_arg, find_network
    check_network_arg(FLAGS.network)
    cache = Path(FLAGS.cache_dir) if FLAGS.cache_dir else CACHE / "metrics"
    check_output_dir(cache, "--cache_dir" if FLAGS.cache_dir else "the statistics cache")   # before slow work
    start_tensorflow()
    from metrics.metrics import Detector, compute_metrics, log_row, run_folder
    from networks.serialize import load_network
    network = find_network(FLAGS.network)             # a path, a URL or a published name (downloaded once)
    bundle = load_network(network)
    detector = Detector(FLAGS.inception)
    run_dir = run_folder(network)                     # None: results are only printed
    generated: dict = {}                              # generated images' statistics, shared by the datasets
    for data in [FLAGS.data, *FLAGS.also_data]:
        for row in compute_metrics(specs, bundle.G_ema, data, detector, cache, FLAGS.batch,
                                   progress_factory=lambda total, desc: Progress(total, desc=desc),
                                   generated=generated):
            row["network"] = FLAGS.network
            print(json.dumps(row), flush=True)
            if run_dir is not None:
                log_row(run_dir, row)
    return 0


if __name__ == "__main__":
    cli_main(main)
