"""tf.data input pipeline over multi-resolution TFRecords (ours, or official StyleGAN/StyleGAN2 datasets).

`make_dataset(path, res=64, batch_size=32)` yields `(images, labels)`: images float32 [N, H, W, C] in
[-1, 1] (or uint8 with `as_uint8`), labels float32 [N, label_dim] (label_dim 0 when unlabelled).

Sharding under tf.distribute: with an `input_context` of K input pipelines, a level stored as at least K
files is split by file (each worker reads only its files); a level with fewer files (the official single
file per level) is split by record: every worker reads the whole file and keeps records i % K == index.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import tensorflow as tf

from datasets import format as fmt
from datasets import records
from common.errors import UserError

PREFETCH = 4    # batches read ahead of the consumer


def _parallel() -> int:
    """Parallel calls of the decoding maps: the cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def fixed_pipeline(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` without tf.data's autotuning thread. In TensorFlow 2.21 deleting an iterator whose pipeline
    autotunes waits until that thread's next wake-up, which grows to a minute: every run's end, every
    progressive level switch and every metric pass over the reals stalled for up to 60 s. The maps run
    on every core instead and the buffers are fixed, which is what a decode-and-flip pipeline needs."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


class Level(NamedTuple):
    """One opened level of a dataset: its layout, resolution and record shape [C, H, W] (unpacks as that
    triple). Readers take it in place of a path: the level is opened once and passed down."""

    layout: fmt.DatasetLayout
    res: int
    shape: tuple[int, int, int]

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def label_dim(self) -> int:
        return label_dim(self.layout)


def open_level(path: str | Path | Level, res: int | None = None) -> Level:
    """The level `res` of the dataset in `path` (res None: its highest); a Level given for `path` is returned as
    it is when it is that level, else its dataset's level `res` is opened."""
    if isinstance(path, Level):
        if res is None or res == path.res:
            return path
        path = path.layout.root
    layout, res = fmt.find_level(path, res)
    files = layout.files(res)
    try:
        first = next(iter(tf.data.TFRecordDataset([str(files[0])]).take(1)), None)
    except tf.errors.OpError as exc:
        raise UserError(f"cannot read {files[0]}: {exc.message.splitlines()[0]}") from None
    if first is None:
        raise UserError(f"{files[0]} holds no records")
    shape = records.record_shape(first)
    if shape[1:] != (res, res) or shape[0] not in (1, 3, 4):
        raise UserError(f"{files[0]} holds records of shape {list(shape)}; expected [C, {res}, {res}]")
    return Level(layout, res, shape)


def _has_record_labels(layout: fmt.DatasetLayout) -> bool:
    return bool(layout.manifest and layout.manifest.get("labels"))


def label_dim(layout: fmt.DatasetLayout) -> int:
    if _has_record_labels(layout):
        return int(layout.manifest["labels"]["dim"])
    if layout.labels_path is not None:
        return int(np.load(layout.labels_path).shape[1])
    return 0


def _decode_fn(encoding: str, shape: tuple[int, int, int], ldim: int, record_labels: bool):
    """(serialized record, label from the .labels file or None) -> (uint8 [H, W, C], float32 [label_dim])."""
    spec = records.feature_spec(ldim if record_labels else 0)

    def decode(serialized: tf.Tensor, file_label: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        ex = tf.io.parse_single_example(serialized, spec)
        img = records.decode_image(ex["data"], encoding, shape)
        if record_labels:
            return img, ex["label"]
        return img, file_label if file_label is not None else tf.zeros([ldim], tf.float32)

    return decode


def make_dataset(
    path: str | Path | Level,         # dataset folder, or a level opened with open_level
    res: int | None = None,           # level to read (pixels); None: the highest
    batch_size: int = 32,             # images per batch (global when the batches are split by a tf.distribute strategy)
    shuffle: bool = True,             # shuffle records with a buffer of shuffle_buffer
    shuffle_buffer: int = 2048,       # records held for shuffling (serialized, before decoding)
    seed: int = 0,                    # shuffle and flip seed
    mirror: bool = False,             # random horizontal flip, per image
    repeat: bool = True,              # loop forever (training)
    drop_remainder: bool = True,      # only full batches
    as_uint8: bool = False,           # uint8 [0, 255] instead of float32 [-1, 1]
    skip: int = 0,                    # batches of batch_size already consumed (resume)
    input_context: tf.distribute.InputContext | None = None,
    skip_records: int | None = None,  # records already consumed by this pipeline (resume; instead of skip)
) -> tf.data.Dataset:
    """Batched (images [N, H, W, C], labels [N, label_dim]) from one level of a dataset folder.

    Epochs: each pass over the records is shuffled with its own seed (`seed`, epoch), so the order of records
    and flips depends only on `seed` (and the sharding). A run resumed `skip_records` in starts at epoch
    skip_records // records_per_epoch and skips only the rest inside it, without decoding: the restart costs
    at most one epoch of reading whatever the position, and sees exactly the batches it would have seen
    without the interruption.
    """
    layout, res, shape = open_level(path, res)
    files = [str(f) for f in layout.files(res)]
    record_labels = _has_record_labels(layout)
    ldim = label_dim(layout)
    pipelines, index = (input_context.num_input_pipelines, input_context.input_pipeline_id) if input_context else (1, 0)

    split_by_file = pipelines > 1 and len(files) >= pipelines
    names = tf.data.Dataset.from_tensor_slices(files)
    if split_by_file:
        names = names.shard(pipelines, index)
    if len(files) == 1:
        records = tf.data.TFRecordDataset(files)
    else:
        records = names.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(len(files), 16)),
                                   num_parallel_calls=min(len(files), _parallel()), deterministic=True)
    if ldim and not record_labels:          # official layout: labels in the .labels file, record order
        if len(files) != 1:
            raise UserError(f"{layout.root}: a sharded level needs per-record labels (rebuild with dataset_tool)")
        labels = np.load(layout.labels_path).astype(np.float32)
        records = tf.data.Dataset.zip((records, tf.data.Dataset.from_tensor_slices(labels)))
    else:
        records = records.map(lambda r: (r, tf.zeros([0], tf.float32)))
    if pipelines > 1 and not split_by_file:
        records = records.shard(pipelines, index)
    skip_records = skip * batch_size if skip_records is None else skip_records
    epoch0, offset = 0, skip_records
    if repeat and skip_records:
        per_epoch = _records_per_pipeline(files, pipelines, index, split_by_file)
        epoch0, offset = divmod(skip_records, per_epoch)
    if repeat:
        one_pass = records

        def epoch(e: tf.Tensor) -> tf.data.Dataset:
            if not shuffle:
                return one_pass
            # This function's graph gets a fixed graph-level seed, so the op seed may be a tensor (the epoch's)
            # whatever the process-wide seed is (TF compares (global, op) seeds to (0, 0) in Python).
            tf.compat.v1.get_default_graph().seed = 1
            return one_pass.shuffle(shuffle_buffer, seed=seed * 1000003 + e, reshuffle_each_iteration=False)
        records = tf.data.Dataset.counter(start=epoch0).flat_map(epoch)
    elif shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed)
    if offset:
        records = records.skip(offset)                     # inside one epoch, before decoding
    decode = _decode_fn(layout.encoding(res), shape, ldim, record_labels)
    ds = records.map(lambda r, lab: decode(r, lab if not record_labels and ldim else None),
                     num_parallel_calls=_parallel(), deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=_parallel(), deterministic=True)

    def finish(step: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        img, lab = batch                                                                  # [N, H, W, C] uint8
        if mirror:
            coin = tf.random.stateless_uniform([tf.shape(img)[0]], seed=tf.stack([tf.cast(seed, tf.int64), step]))
            img = tf.where(coin[:, None, None, None] < 0.5, tf.reverse(img, axis=[2]), img)
        if not as_uint8:
            img = tf.cast(img, tf.float32) / 127.5 - 1.0                                  # [N, H, W, C] in [-1, 1]
        return img, lab

    ds = tf.data.Dataset.zip((tf.data.Dataset.counter(start=skip_records // batch_size), ds))
    ds = ds.map(finish, num_parallel_calls=_parallel(), deterministic=True).prefetch(PREFETCH)
    return fixed_pipeline(ds)


def _records_per_pipeline(files: list[str], pipelines: int, index: int, split_by_file: bool) -> int:
    """Records one input pipeline reads per epoch (its files, or every pipelines-th record of all)."""
    if split_by_file:
        return sum(fmt.tfrecord_count(f) for f in files[index::pipelines])
    total = sum(fmt.tfrecord_count(f) for f in files)
    per = len(range(index, total, pipelines))
    if per == 0:
        raise UserError(f"{files[0]}: {total} record(s) cannot feed {pipelines} input pipelines")
    return per


def read_records(path: str | Path | Level, res: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every record of one level in global record order: (uint8 [H, W, C], label [label_dim])."""
    layout, res, shape = open_level(path, res)
    files = [str(f) for f in layout.files(res)]
    decode = _decode_fn(layout.encoding(res), shape, label_dim(layout), _has_record_labels(layout))
    # Record i lives in shard i % K: round-robin interleave restores the global order.
    records = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=len(files), block_length=1, num_parallel_calls=len(files),
        deterministic=True)
    ds = fixed_pipeline(records.map(decode, num_parallel_calls=_parallel(), deterministic=True).prefetch(64))
    labels = None
    if label_dim(layout) and not _has_record_labels(layout):
        labels = np.load(layout.labels_path).astype(np.float32)
    expected = _recorded_count(layout, res)
    n = 0
    try:
        for i, (img, lab) in enumerate(ds.as_numpy_iterator()):
            yield img, (labels[i] if labels is not None else lab)
            n = i + 1
    except tf.errors.OpError as exc:
        raise UserError(f"cannot read {', '.join(files)}: {damaged_record_message(exc)}") from None
    if expected is not None and n != expected:                  # a file cut at a record boundary reads cleanly
        raise UserError(f"{', '.join(files)} hold(s) {n} records, but the dataset records {expected} "
                        "(the dataset is damaged: check it with dataset_tool/create.py --info)")


def _recorded_count(layout: fmt.DatasetLayout, res: int) -> int | None:
    """The records the manifest (or, for official datasets, the labels file) says the level holds, or None."""
    if layout.manifest:
        for level in layout.manifest.get("levels") or []:
            if isinstance(level, dict) and level.get("resolution") == res:
                try:
                    return sum(int(f["records"]) for f in level["files"])
                except (KeyError, TypeError, ValueError):
                    return None
    return None


def damaged_record_message(exc: tf.errors.OpError) -> str:
    """One line for a damaged record (truncated file, bad checksum, undecodable image), without TensorFlow's
    function-node prefix and op suffix."""
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", exc.message.splitlines()[0])
    text = re.sub(r"\s*\[Op:.*$", "", text)
    return f"{text[:200]} (the dataset is damaged: check it with dataset_tool/create.py --info)"
