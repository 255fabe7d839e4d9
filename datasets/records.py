"""The record schema, in one place for the writer (dataset_tool) and the reader (datasets.reader).

Each level's record is a `tf.train.Example` with `shape` (int64 [C, H, W]) and `data` (bytes: raw uint8 CHW as in
NVIDIA's datasets, or a PNG when the manifest says so), and, in datasets of ours made with labels, `label`
(float32 [label_dim]). The file layout around the records is datasets/format.py's.
"""
from __future__ import annotations

import tensorflow as tf


def encode(channels: int, res: int, data: bytes, label=None) -> bytes:
    """One serialized record of a res x res level: `data` is the level's bytes (raw CHW or PNG)."""
    feature = {"shape": tf.train.Feature(int64_list=tf.train.Int64List(value=[channels, res, res])),
               "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))}
    if label is not None:
        feature["label"] = tf.train.Feature(float_list=tf.train.FloatList(value=label))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def feature_spec(label_dim: int = 0) -> dict:
    """The features to parse: shape and data, and the label when records carry one (label_dim > 0)."""
    spec = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)}
    if label_dim:
        spec["label"] = tf.io.FixedLenFeature([label_dim], tf.float32)
    return spec


def record_shape(serialized: tf.Tensor) -> tuple[int, int, int]:
    """[C, H, W] of one serialized record."""
    return tuple(int(v) for v in tf.io.parse_single_example(serialized, feature_spec())["shape"].numpy())


def decode_image(data: tf.Tensor, encoding: str, shape: tuple[int, int, int]) -> tf.Tensor:
    """A record's `data` -> uint8 [H, W, C]; encoding 'png' or 'raw' (CHW)."""
    c, h, w = shape
    if encoding == "png":
        img = tf.io.decode_png(data, channels=c)                                            # [H, W, C]
    else:
        img = tf.transpose(tf.reshape(tf.io.decode_raw(data, tf.uint8), [c, h, w]), [1, 2, 0])
    return tf.ensure_shape(img, [h, w, c])


def writer(path) -> tf.io.TFRecordWriter:
    return tf.io.TFRecordWriter(str(path))
