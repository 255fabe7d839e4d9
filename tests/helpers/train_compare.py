"""Train a tiny network for a few iterations under a given strategy and save its weights (subprocess helper).

    python tests/helpers/train_compare.py DATASET OUTDIR one_device,mirrored2 [off|ada]   # OUTDIR/<kind>.npz each
Two logical CPU devices stand in for two GPUs; they must be configured before TensorFlow starts. Several kinds run
one after the other in this process (each Trainer seeds Keras and its generator from the run's seed).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from training.config import TrainConfig, resolve  # noqa: E402
import training.training_loop as training_loop  # noqa: E402
from training.training_loop import run_training  # noqa: E402


class StartAtP(training_loop.AugmentPipe):
    """ADA's pipeline starting at p = 0.2 instead of 0, so p moves (down or up) whatever D does in 16 steps."""

    def __init__(self, p: float = 0.0, **kwargs) -> None:
        super().__init__(p=p or 0.2, **kwargs)


training_loop.AugmentPipe = StartAtP

data, out, kinds = sys.argv[1:4]
aug = sys.argv[4] if len(sys.argv) > 4 else "off"
from networks.serialize import load_network  # noqa: E402
from networks.convert import export_official_state  # noqa: E402


def train(kind: str, out: str) -> None:
    strategy = (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if kind == "mirrored2"
                else tf.distribute.OneDeviceStrategy("/cpu:0"))
    cfg = TrainConfig(data=data, outdir=os.path.dirname(out) + f"/runs-{kind}", cfg="small", batch=8, cbase=64,
                      cmax=16, map=1, kimg=0.128, kimg_per_tick=0.064, snap=100, noise_mode="random",
                      style_mixing=0.9, g_reg_interval=2, d_reg_interval=2, aug=aug,
                      ada_kimg=1.0 if aug == "ada" else 500)
    cfg = resolve(cfg, 8, strategy.num_replicas_in_sync)
    cfg.mbstd_group = 1   # minibatch-stddev groups are strided per replica (as NVIDIA's): only size 1 is invariant
    run = run_training(cfg, strategy)
    bundle = load_network(run)
    extra = {}
    if aug == "ada":
        extra["augment_p"] = np.float32(json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
                                        ["Progress/augment"])
    np.savez(out, **extra, **{f"G.{k}": v for k, v in export_official_state(bundle.G).items()},
             **{f"D.{k}": v for k, v in export_official_state(bundle.D).items()})


for kind in kinds.split(","):
    train(kind, os.path.join(out, f"{kind}.npz"))
