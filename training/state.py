"""The state of a training run that is not the networks: counters, and the checkpoint that holds them with
the networks, optimizers and every other variable a resumed run needs.

Counters live in Python during training (reading a device variable every iteration would stall a GPU) and
are written into their variables only when a checkpoint is saved, and read back from them on restore.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import tensorflow as tf

from common.errors import UserError

COUNTERS = {                 # checkpoint key -> (attribute, what it counts)
    "cur_nimg": ("nimg", "real images shown so far"),
    "batch_idx": ("iteration", "training iterations so far"),
    "tick": ("tick", "ticks so far"),
    "nonfinite": ("nonfinite_total", "iterations skipped for non-finite gradients"),
    "res_batches": ("level_batches", "progressive growing: batches read at the current dataset level"),
    "res_level": ("level_res", "progressive growing: the dataset level being read (pixels)"),
}


class TrainingState:
    """Counters (`nimg`, `iteration`, `tick`, `nonfinite_total`, `level_batches`, `level_res`) and the
    `tf.train.CheckpointManager` of `<run>/checkpoints`, which also saves the trackables given."""

    def __init__(self,
                 directory: str | Path,      # checkpoint folder
                 keep: int = 5,              # checkpoints kept
                 **trackables) -> None:      # networks, optimizers, variables: saved under these names
        self.nimg = self.iteration = self.tick = self.nonfinite_total = self.level_batches = self.level_res = 0
        self._vars = {key: tf.Variable(0, dtype=tf.int64, trainable=False, name=key) for key in COUNTERS}
        self.checkpoint = tf.train.Checkpoint(**trackables, **self._vars)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=keep)

    def save(self) -> str:
        """Write a checkpoint numbered by the images shown; returns its path prefix. TensorFlow writes it into
        `ckpt-N_temp/` and renames; when that fails (a full disk: ResourceExhaustedError), the partial folder
        is removed and UserError says so, the older checkpoints untouched."""
        for key, (attr, _) in COUNTERS.items():
            self._vars[key].assign(getattr(self, attr))
        try:
            return self.manager.save(checkpoint_number=self.nimg)
        except (tf.errors.OpError, OSError) as exc:
            directory = Path(self.manager.directory)
            for partial in directory.glob(f"ckpt-{self.nimg}_temp*"):
                shutil.rmtree(partial, ignore_errors=True)
            text = getattr(exc, "message", None) or getattr(exc, "strerror", None) or ""
            if isinstance(exc, tf.errors.ResourceExhaustedError) or "No space left" in text:
                text = "no space left on the device"
            newest = self.manager.latest_checkpoint
            raise UserError(f"cannot write the checkpoint at {self.nimg / 1000:.3f} kimg in {directory}: "
                            f"{(text or type(exc).__name__).splitlines()[0]}; "
                            + (f"the run can be resumed from {Path(newest).name}" if newest
                               else "no checkpoint of this run exists yet")) from None

    def restore_latest(self, log=print, source: str | Path | None = None) -> str:
        """Restore the newest checkpoint that reads back completely into every trackable and the counters;
        returns its path prefix. A damaged newer checkpoint is reported in one line and renamed aside
        (`damaged-ckpt-N.*`, kept for inspection); with none readable, UserError and nothing changed.
        `source`: another checkpoint folder to restore from (a non-chief worker restores from the chief's),
        only read: damaged checkpoints there are skipped, not renamed."""
        if source is not None and Path(source).resolve() != Path(self.manager.directory).resolve():
            other = tf.train.CheckpointManager(self.checkpoint, str(source), max_to_keep=None)
            for path in reversed(other.checkpoints):
                problem = unreadable(path)
                if problem is None:
                    return self._restore(path)
                log(f"checkpoint {path} cannot be read back ({problem}); trying an older one")
            raise UserError(f"no readable checkpoint in {source}; the run cannot be resumed")
        directory = Path(self.manager.directory)
        candidates = list(reversed(self.manager.checkpoints))
        for path in candidates:
            problem = unreadable(path)
            if problem is None:
                break
            log(f"checkpoint {Path(path).name} cannot be read back ({problem}); trying an older one")
        else:
            names = ", ".join(Path(p).name for p in candidates) or "none"
            raise UserError(f"no readable checkpoint in {directory} (tried: {names}); the run cannot be resumed")
        damaged = candidates[:candidates.index(path)]
        for bad in damaged:
            for f in directory.glob(Path(bad).name + ".*"):
                f.rename(f.with_name("damaged-" + f.name))
            log(f"kept the damaged checkpoint as {directory / ('damaged-' + Path(bad).name)}.*")
        if damaged:                                     # the manager must forget them, or it would try again
            kept = [p for p in self.manager.checkpoints if p not in damaged]
            tf.compat.v1.train.update_checkpoint_state(str(directory), kept[-1], all_model_checkpoint_paths=kept)
            self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory),
                                                      max_to_keep=self.manager._max_to_keep)
        return self._restore(path)

    def _restore(self, path: str) -> str:
        self.checkpoint.restore(path).expect_partial()
        for key, (attr, _) in COUNTERS.items():
            setattr(self, attr, int(self._vars[key].numpy()))
        return path


def unreadable(prefix: str) -> str | None:
    """None if every tensor of the checkpoint at `prefix` reads back; else the problem, in a few words."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, OSError, IndexError, ValueError, RuntimeError) as exc:
        text = getattr(exc, "message", None) or str(exc)
        return f"{type(exc).__name__}: {text.splitlines()[0][:120]}" if text else type(exc).__name__
    return None
