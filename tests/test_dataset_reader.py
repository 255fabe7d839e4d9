"""datasets/reader.py: value range, flipping, seeded shuffling, per-worker sharding, official datasets."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from conftest import write_images
from dataset_tool.build import CreateConfig, create_dataset
from datasets.reader import make_dataset, read_records
from common.errors import UserError


def build(src, dest, **kw):
    return create_dataset(CreateConfig(source=str(src), dest=str(dest), jobs=1, quiet=True, **kw),
                          log=lambda *a, **k: None)


def ids(images: np.ndarray) -> list[int]:
    """Image index from pixel [0, 0] (uint8 batches), as written by write_images."""
    return [int(a) + 256 * int(b) for a, b in images[:, 0, 0, :2]]


@pytest.fixture(scope="module")
def ds16(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reader")
    write_images(tmp / "src", 24, size=(16, 16))
    build(tmp / "src", tmp / "one", res=16, name="d")
    build(tmp / "src", tmp / "four", res=16, name="d", shards=4)
    return tmp


def test_float_range_shape_and_levels(ds16):
    img, lab = next(iter(make_dataset(ds16 / "one", res=8, batch_size=5)))
    assert img.shape == (5, 8, 8, 3) and img.dtype == tf.float32 and lab.shape == (5, 0)
    assert float(tf.reduce_min(img)) >= -1.0 and float(tf.reduce_max(img)) <= 1.0
    raw = next(iter(make_dataset(ds16 / "one", batch_size=5, as_uint8=True, shuffle=False)))[0].numpy()
    top = np.stack([r for r, _ in read_records(ds16 / "one", 16)][:5])
    np.testing.assert_array_equal(raw, top)                                   # default: highest level
    flt = next(iter(make_dataset(ds16 / "one", batch_size=5, shuffle=False)))[0].numpy()
    np.testing.assert_allclose(flt, top / 127.5 - 1.0, atol=1e-6)


def test_seeded_shuffle_is_deterministic_and_covers_all(ds16):
    def epoch(seed):
        ds = make_dataset(ds16 / "one", batch_size=24, seed=seed, as_uint8=True, repeat=False)
        return ids(next(iter(ds))[0].numpy())
    assert epoch(1) == epoch(1) and epoch(1) != epoch(2) and sorted(epoch(1)) == list(range(24))


def test_mirror_flips_about_half_and_only_horizontally(ds16):
    ds = make_dataset(ds16 / "one", batch_size=24, shuffle=False, mirror=True, as_uint8=True, seed=3)
    flipped = next(iter(ds))[0].numpy()
    plain = np.stack([r for r, _ in read_records(ds16 / "one", 16)])
    n_flip = 0
    for f, p in zip(flipped, plain):
        if np.array_equal(f, p[:, ::-1]):
            n_flip += 1
        else:
            np.testing.assert_array_equal(f, p)
    assert 4 <= n_flip <= 20
    again = next(iter(make_dataset(ds16 / "one", batch_size=24, shuffle=False, mirror=True, as_uint8=True,
                                   seed=3)))[0].numpy()
    np.testing.assert_array_equal(flipped, again)


@pytest.mark.parametrize("folder,by", [("four", "file"), ("one", "record")])
def test_input_context_sharding_is_disjoint_and_complete(ds16, folder, by):
    """Three input pipelines: a level of four files is split by file (pipeline p reads files p, p + 3, ...),
    a single-file level by record (pipeline p keeps records k % 3 == p)."""
    record_of = {img_id: k for k, img_id in enumerate(ids(np.stack([r for r, _ in read_records(ds16 / folder, 16)])))}
    n, seen = 3, []
    for index in range(n):
        ctx = tf.distribute.InputContext(num_input_pipelines=n, input_pipeline_id=index, num_replicas_in_sync=n)
        ds = make_dataset(ds16 / folder, batch_size=1, shuffle=False, repeat=False, as_uint8=True,
                          input_context=ctx)
        records = sorted(record_of[i] for img, _ in ds for i in ids(img.numpy()))
        if by == "file":                                   # record k lives in shard k % 4
            expected = [k for k in range(24) if (k % 4) % n == index]
        else:
            expected = [k for k in range(24) if k % n == index]
        assert records == expected, (index, records)
        seen += records
    assert sorted(seen) == list(range(24))


def test_official_dataset_without_manifest_with_labels_file(tmp_path):
    """A folder written the way NVIDIA's dataset_tool writes it: raw CHW records, <name>-rxx.labels."""
    rng = np.random.RandomState(0)
    imgs = rng.randint(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    for lvl, size in ((3, 8), (2, 4)):
        with tf.io.TFRecordWriter(str(tmp_path / f"ffhq-r{lvl:02d}.tfrecords")) as w:
            for img in imgs:
                lo = img.reshape(size, 8 // size, size, 8 // size, 3).mean(axis=(1, 3)).round().astype(np.uint8)
                chw = lo.transpose(2, 0, 1)
                ex = tf.train.Example(features=tf.train.Features(feature={
                    "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=chw.shape)),
                    "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()]))}))
                w.write(ex.SerializeToString())
    with open(tmp_path / "ffhq-rxx.labels", "wb") as f:
        np.save(f, labels)
    img, lab = next(iter(make_dataset(tmp_path, batch_size=6, shuffle=False, as_uint8=True)))
    np.testing.assert_array_equal(img.numpy(), imgs)
    np.testing.assert_array_equal(lab.numpy(), labels)


def test_clear_errors(ds16, tmp_path):
    with pytest.raises(UserError, match="no 32x32 level"):
        make_dataset(ds16 / "one", res=32)
    with pytest.raises(UserError, match="not a dataset"):
        make_dataset(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        make_dataset(tmp_path / "missing")


def test_skip_continues_the_exact_batch_sequence(ds16):
    kw = dict(batch_size=5, seed=4, mirror=True, as_uint8=True)
    straight = [b[0].numpy() for _, b in zip(range(7), make_dataset(ds16 / "one", **kw))]
    resumed = [b[0].numpy() for _, b in zip(range(4), make_dataset(ds16 / "one", skip=3, **kw))]
    for a, b in zip(straight[3:], resumed):
        np.testing.assert_array_equal(a, b)


def test_resume_across_epochs_is_exact_and_far_positions_start_as_fast_as_the_first(ds16):
    """Each epoch is shuffled with its own seed, so a position is found by skipping inside one epoch only:
    batches after an epoch boundary equal the straight read's, and a start 3e12 records in (far beyond any
    real run) takes about as long as the first start (a ratio measured here, not a time limit)."""
    import time
    kw = dict(batch_size=5, seed=4, mirror=True, as_uint8=True)
    n = sum(1 for _ in read_records(ds16 / "one"))
    straight = [b[0].numpy() for _, b in zip(range(3 * n // 5 + 2), make_dataset(ds16 / "one", **kw))]
    skip = 2 * n // 5 + 1                                                  # past the end of the 2nd epoch
    resumed = [b[0].numpy() for _, b in zip(range(len(straight) - skip),
                                            make_dataset(ds16 / "one", skip_records=skip * 5, **kw))]
    for a, b in zip(straight[skip:], resumed):
        np.testing.assert_array_equal(a, b)
    epochs = [np.concatenate(straight[i * n // 5:(i + 1) * n // 5]) for i in range(2)]
    assert not np.array_equal(epochs[0], epochs[1])                        # epochs are shuffled differently

    def first_batch_seconds(skip_records: int) -> float:
        t = time.perf_counter()
        next(iter(make_dataset(ds16 / "one", skip_records=skip_records, **kw)))
        return time.perf_counter() - t
    first_batch_seconds(0)                                                  # warm caches and tracing
    start = min(first_batch_seconds(0) for _ in range(3))
    far = min(first_batch_seconds(3 * 10 ** 12) for _ in range(3))
    assert far < 3 * start + 0.5, (start, far)                              # the old reader read 3e12 records


def test_record_counts_come_from_the_framing(ds16):
    from datasets.format import tfrecord_count
    f = next((ds16 / "one").glob("*-r04.tfrecords"))
    assert tfrecord_count(f) == sum(1 for _ in read_records(ds16 / "one", res=16))


def test_pipelines_run_without_the_autotuning_thread(ds16):
    """TF 2.21 does not wake a pipeline's autotuning thread when its iterator is deleted: deleting the iterator
    waited for that thread's next wake-up (measured: 30-37 s at the end of a 32x32 run, 95 s -> 65 s in all),
    at every run's end and progressive level switch. The training and metrics pipelines turn autotuning off
    and fix their parallelism and buffers instead."""
    for folder in ("one", "four"):                                          # one file, and interleaved shards
        ds = make_dataset(ds16 / folder, res=8, batch_size=4)
        assert ds.options().autotune.enabled is False
    assert next(iter(ds))[0].shape == (4, 8, 8, 3)
