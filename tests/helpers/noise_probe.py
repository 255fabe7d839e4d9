"""The per-pixel noise a real training phase draws, per replica (subprocess helper: two logical CPUs).

    python tests/helpers/noise_probe.py DATASET OUT.npz
Builds a Trainer under MirroredStrategy over two logical CPU devices and under one device, taps
`SynthesisNetwork.draw_noise` and runs the Dmain phase's loss (G's forward pass included) inside
strategy.run with the phase randomness the training loop draws. Saves every layer's noise per replica
(`mirrored2.L`), the same for one device (`one_device.L`), and a second phase's noise (`next.L`).
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from training.config import TrainConfig, resolve  # noqa: E402
from training.training_loop import Trainer  # noqa: E402

data, out = sys.argv[1:3]
result = {}
for kind, strategy in (("mirrored2", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
                       ("one_device", tf.distribute.OneDeviceStrategy("/cpu:0"))):
    cfg = resolve(TrainConfig(data=data, outdir=os.path.dirname(out), cfg="small", batch=8, cbase=64, cmax=16, map=1,
                              seed=7), 8, strategy.num_replicas_in_sync)
    trainer = Trainer(cfg, strategy, __import__("pathlib").Path(os.path.dirname(out)))
    synthesis = trainer.G.synthesis
    draw, taps = synthesis.draw_noise, {}                # replica threads trace at once: one slot per thread

    def tap(seeds, res, draw=draw, taps=taps):
        noise = draw(seeds, res)
        taps.setdefault(threading.get_ident(), noise)
        return noise
    synthesis.draw_noise = tap
    phase = next(p for p in trainer.phases if p.name == "Dmain")
    real = tf.zeros([cfg.batch, 8, 8, 3])

    def replica_fn(real, rnd):
        taps.pop(threading.get_ident(), None)  # noqa: B023
        trainer.loss.d_step(phase, real, tf.zeros([tf.shape(real)[0], 0]), rnd)  # noqa: B023
        return taps[threading.get_ident()]                              # the G forward pass of Dmain  # noqa: B023

    @tf.function
    def run(real, rnd):
        return strategy.run(replica_fn, args=(real, rnd))  # noqa: B023

    dist_real = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(real).unbatch().batch(cfg.batch))))
    for name in (kind, "next" if kind == "one_device" else None):
        if name is None:
            continue
        noise = run(dist_real, trainer._randomness(8, phase))            # one phase's draw, as the loop does
        for layer, per_layer in enumerate(noise):
            parts = strategy.experimental_local_results(per_layer)
            result[f"{name}.{layer}"] = np.stack([p.numpy() for p in parts])   # [replicas, n, r, r, 1]
np.savez(out, **result)
