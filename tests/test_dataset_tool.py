"""dataset_tool: exact levels, official layout and feature spec, labels, bad input, atomicity, shards."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import ROOT, run_cli, write_images
from datasets import format as fmt
from dataset_tool.build import CreateConfig, create_dataset
from dataset_tool.verify import verify
from datasets.reader import read_records
from common.errors import UserError

OFFICIAL_SPEC = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)}


def build(src, dest, **kw) -> dict:
    kw.setdefault("jobs", 1)
    kw.setdefault("quiet", True)
    return create_dataset(CreateConfig(source=str(src), dest=str(dest), **kw), log=lambda *a, **k: None)


def official_records(path: Path) -> list[np.ndarray]:
    """Parse a level file exactly as the official StyleGAN2 reader does: raw uint8 CHW -> HWC."""
    out = []
    for rec in tf.data.TFRecordDataset(str(path)):
        ex = tf.io.parse_single_example(rec, OFFICIAL_SPEC)
        chw = tf.reshape(tf.io.decode_raw(ex["data"], tf.uint8), ex["shape"]).numpy()
        out.append(chw.transpose(1, 2, 0))
    return out


def index_of(img: np.ndarray) -> int:
    return int(img[0, 0, 0]) + 256 * int(img[0, 0, 1])


def test_official_layout_exact_levels_and_round_trip(tmp):
    paths = write_images(tmp / "src", 12, size=(64, 64))
    manifest = build(tmp / "src", tmp / "ds", res=64)
    names = sorted(p.name for p in (tmp / "ds").glob("*.tfrecords"))
    assert names == [f"ds-r{k:02d}.tfrecords" for k in range(2, 7)]
    top = official_records(tmp / "ds" / "ds-r06.tfrecords")
    sources = {index_of(np.asarray(Image.open(p))): np.asarray(Image.open(p)) for p in paths}
    for img in top:   # pixel round trip: same size in, so the top level is the input, bit for bit
        np.testing.assert_array_equal(img, sources[index_of(img)])
    for lvl in range(2, 6):
        level = official_records(tmp / "ds" / f"ds-r{lvl:02d}.tfrecords")
        k = 2 ** (6 - lvl)
        for hi, lo in zip(top, level):
            r = hi.shape[0] // k
            expected = np.rint(hi.astype(np.float64).reshape(r, k, r, k, 3).mean(axis=(1, 3))).astype(np.uint8)
            np.testing.assert_array_equal(lo, expected)
    assert manifest["count"] == 12 and manifest["resolution"] == 64
    assert json.loads((tmp / "ds" / "dataset.json").read_text())["levels"][0]["files"][0]["records"] == 12
    assert verify(tmp / "ds", quiet=True) == []


def test_shuffled_order_is_the_official_permutation(tmp):
    write_images(tmp / "src", 20, size=(8, 8))
    build(tmp / "src", tmp / "ds", res=8, shuffle_seed=123)
    order = [index_of(img) for img in official_records(tmp / "ds" / "ds-r03.tfrecords")]
    assert order == list(np.random.RandomState(123).permutation(20))
    build(tmp / "src", tmp / "ds2", res=8, shuffle_seed=5)
    assert [index_of(i) for i in official_records(tmp / "ds2" / "ds2-r03.tfrecords")] != order


def test_resize_crop_filter_and_upscale_count(tmp):
    write_images(tmp / "wide", 3, size=(96, 64))
    m = build(tmp / "wide", tmp / "ds", res=32, resize_filter="box")
    assert m["preprocessing"]["upscaled"] == 0
    img = next(read_records(tmp / "ds", 32))[0]
    assert img.shape == (32, 32, 3)
    write_images(tmp / "small", 3, size=(20, 20))
    assert build(tmp / "small", tmp / "ds2", res=32)["preprocessing"]["upscaled"] == 3


def test_default_resolution_from_typical_short_side(tmp):
    write_images(tmp / "src", 5, size=(120, 100))
    assert build(tmp / "src", tmp / "ds")["resolution"] == 64


def test_modes_alpha_16bit_cmyk_exif(tmp):
    src = tmp / "src"
    src.mkdir()
    Image.new("L", (8, 8), 100).save(src / "gray.png")
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(src / "transparent.png")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(src / "white16.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(src / "cmyk.jpg", quality=100)
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 200] * 256)
    pal.save(src / "palette.bmp")
    arr = np.zeros((8, 16, 3), np.uint8)
    arr[:, :8] = 255                          # left half white; EXIF 6 = rotate 90 deg clockwise on display
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(src / "rotated.jpg", exif=exif.tobytes(), quality=100)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(src / "plain.webp", lossless=True)
    build(src, tmp / "ds", res=8, shuffle_seed=0)
    imgs = {}
    order = np.random.RandomState(0).permutation(7)
    names = sorted(p.name for p in src.iterdir())
    for i, (img, _) in zip(order, read_records(tmp / "ds", 8)):
        imgs[names[i]] = img
    assert (imgs["gray.png"] == 100).all()
    assert (imgs["transparent.png"] == 255).all()        # alpha composited onto white
    assert (imgs["white16.png"] == 255).all()            # 16-bit scaled to 8-bit
    assert imgs["cmyk.jpg"][4, 4, 0] > 200 and imgs["cmyk.jpg"][4, 4, 1:].max() < 40   # red
    assert (imgs["palette.bmp"] == [0, 0, 200]).all()
    assert (imgs["plain.webp"] == [1, 2, 3]).all()
    rot = imgs["rotated.jpg"]                            # after rotation: 16 high, 8 wide -> top half white
    assert rot[1, 4].min() > 200 and rot[6, 4].max() < 50


def test_grayscale_output_channels(tmp):
    write_images(tmp / "src", 2, size=(8, 8))
    build(tmp / "src", tmp / "ds", res=8, channels=1)
    ex = tf.io.parse_single_example(next(iter(tf.data.TFRecordDataset(str(tmp / "ds" / "ds-r03.tfrecords")))),
                                    OFFICIAL_SPEC)
    assert list(ex["shape"].numpy()) == [1, 8, 8]


def test_bad_files_are_skipped_and_listed(tmp):
    src = tmp / "src"
    write_images(src, 3, size=(16, 16), fmt="jpg")
    (src / "notes.txt").write_text("hello")
    (src / "empty.png").write_bytes(b"")
    (src / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    good = (src / "img0000.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(good[: len(good) // 2])
    m = build(src, tmp / "ds", res=16)
    assert m["count"] == 3
    skipped = dict(line.split("\t") for line in (tmp / "ds" / "skipped.txt").read_text().splitlines())
    assert set(skipped) == {"notes.txt", "empty.png", "garbage.jpg", "truncated.jpg"}
    assert "extension" in skipped["notes.txt"] and "cannot decode" in skipped["truncated.jpg"]


def test_no_usable_images_is_a_clear_error(tmp):
    (tmp / "src").mkdir()
    (tmp / "src" / "a.jpg").write_bytes(b"nope")
    with pytest.raises(UserError, match="no usable images"):
        build(tmp / "src", tmp / "ds", res=8)
    assert not (tmp / "ds").exists()
    assert not list(tmp.glob(".ds.partial-*"))
    (tmp / "empty").mkdir()
    with pytest.raises(UserError, match="no image files"):
        build(tmp / "empty", tmp / "ds", res=8)


def test_destination_not_empty_needs_overwrite_and_keeps_old_until_done(tmp):
    write_images(tmp / "src", 4, size=(8, 8))
    build(tmp / "src", tmp / "ds", res=8)
    before = (tmp / "ds" / "ds-r03.tfrecords").read_bytes()
    with pytest.raises(UserError, match="not empty; pass --overwrite"):
        build(tmp / "src", tmp / "ds", res=8)
    with pytest.raises(UserError):                       # a failing rebuild leaves the old dataset intact
        build(tmp / "missing", tmp / "ds", res=8, overwrite=True)
    assert (tmp / "ds" / "ds-r03.tfrecords").read_bytes() == before
    build(tmp / "src", tmp / "ds", res=4, overwrite=True)
    assert not (tmp / "ds" / "ds-r03.tfrecords").exists() and (tmp / "ds" / "ds-r02.tfrecords").exists()


def test_interrupted_build_never_looks_like_a_dataset(tmp):
    write_images(tmp / "src", 400, size=(256, 256), fmt="jpg")
    proc = subprocess.Popen([sys.executable, "dataset_tool/create.py", str(tmp / "src"), str(tmp / "ds"),
                             "--res", "256", "--jobs", "1", "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    partial = None
    while time.time() < deadline and proc.poll() is None:
        found = list(tmp.glob(".ds.partial-*/ds-r08.tfrecords"))
        if found and found[0].stat().st_size > 0:
            partial = found[0].parent
            break
        time.sleep(0.05)
    assert partial is not None, "the build finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp / "ds").exists()
    with pytest.raises(UserError, match="incomplete"):
        fmt.discover(partial)
    build(tmp / "src", tmp / "ds", res=8, max_images=3)  # the next build cleans up the stale partial folder
    assert not partial.exists()


def test_labels_from_utkface_names_align_with_records(tmp):
    src = tmp / "src"
    src.mkdir()
    names = []
    for i in range(10):
        name = f"{20 + i}_{i % 2}_{i % 5}_2017010{i}.jpg.chip.jpg"
        arr = np.zeros((8, 8, 3), np.uint8)
        arr[0, 0] = (i, 0, 7)
        Image.fromarray(arr).save(src / name, format="PNG")   # PNG bytes keep the index pixel exact
        names.append(name)
    for bad in ("39_1_20170116174525125.jpg.chip.jpg", "61_x_0_2017.jpg"):
        Image.new("RGB", (8, 8)).save(src / bad, format="PNG")
    m = build(src, tmp / "ds", res=8, labels="utkface")
    assert m["count"] == 10 and m["labels"]["dim"] == 8
    skipped = (tmp / "ds" / "skipped.txt").read_text()
    assert "39_1_20170116174525125" in skipped and "61_x_0_2017" in skipped and "label pattern" in skipped
    labels = np.load(tmp / "ds" / "ds-rxx.labels")
    assert labels.dtype == np.float32 and labels.shape == (10, 8)
    for row, (img, rec_label) in zip(labels, read_records(tmp / "ds", 8)):
        i = index_of(img)
        np.testing.assert_array_equal(row, rec_label)
        expected = np.zeros(8, np.float32)
        expected[0], expected[1 + i % 2], expected[3 + i % 5] = 20 + i, 1, 1
        np.testing.assert_array_equal(row, expected)


def test_labels_from_csv_and_json_report_bad_entries(tmp):
    write_images(tmp / "src", 4, size=(8, 8))
    (tmp / "l.csv").write_text("file,smile,glasses\nimg0000.png,0.5,1\nimg0001.png,oops,0\nimg0002.png,1,3\n")
    m = build(tmp / "src", tmp / "ds", res=8, labels=str(tmp / "l.csv"), label_classes="glasses=2")
    assert m["count"] == 1
    skipped = (tmp / "ds" / "skipped.txt").read_text()
    assert "not a number" in skipped and "not a class" in skipped and "no entry" in skipped
    (tmp / "l.json").write_text(json.dumps({"labels": [[f"img{i:04d}.png", i] for i in range(4)]}))
    build(tmp / "src", tmp / "ds2", res=8, labels=str(tmp / "l.json"))
    for img, lab in read_records(tmp / "ds2", 8):
        assert lab[0] == index_of(img)
    with pytest.raises(UserError, match="unknown label field"):
        build(tmp / "src", tmp / "ds3", res=8, labels="utkface", label_classes="color=3")


def test_archives_give_the_same_records_as_the_folder(tmp):
    write_images(tmp / "src" / "sub", 6, size=(16, 16))
    build(tmp / "src", tmp / "a", res=16)
    with zipfile.ZipFile(tmp / "faces.zip", "w") as z:
        for p in sorted((tmp / "src").rglob("*.png")):
            z.write(p, p.relative_to(tmp / "src").as_posix())
    with tarfile.open(tmp / "faces.tar.gz", "w:gz") as t:
        t.add(tmp / "src" / "sub", arcname="sub")
    build(tmp / "faces.zip", tmp / "b", res=16)
    build(tmp / "faces.tar.gz", tmp / "c", res=16)
    ref = (tmp / "a" / "a-r04.tfrecords").read_bytes()
    assert (tmp / "b" / "b-r04.tfrecords").read_bytes() == ref
    assert (tmp / "c" / "c-r04.tfrecords").read_bytes() == ref


def test_parallel_workers_write_identical_files(tmp):
    write_images(tmp / "src", 30, size=(32, 32), fmt="jpg")
    build(tmp / "src", tmp / "one", res=32, jobs=1, name="x")
    build(tmp / "src", tmp / "two", res=32, jobs=2, name="x")
    for f in (tmp / "one").glob("*.tfrecords"):
        assert f.read_bytes() == (tmp / "two" / f.name).read_bytes()


def test_duplicates_reported_and_dropped(tmp):
    write_images(tmp / "src", 3, size=(8, 8))
    (tmp / "src" / "copy.png").write_bytes((tmp / "src" / "img0001.png").read_bytes())
    m = build(tmp / "src", tmp / "keep", res=8)
    assert m["count"] == 4 and len(m["duplicates"]) == 1
    m = build(tmp / "src", tmp / "drop", res=8, dedupe=True)
    assert m["count"] == 3 and "duplicate" in (tmp / "drop" / "skipped.txt").read_text()


def test_shards_png_encoding_and_order(tmp):
    write_images(tmp / "src", 10, size=(16, 16))
    build(tmp / "src", tmp / "one", res=16, name="f")
    m = build(tmp / "src", tmp / "sh", res=16, shards=3, encoding="png", name="f")
    files = sorted(p.name for p in (tmp / "sh").glob("f-r04-*.tfrecords"))
    assert files == [f"f-r04-{s:05d}-of-00003.tfrecords" for s in range(3)]
    assert [f["records"] for f in m["levels"][0]["files"]] == [4, 3, 3]
    a = [img for img, _ in read_records(tmp / "one", 16)]
    b = [img for img, _ in read_records(tmp / "sh", 16)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))   # PNG is lossless; global order restored
    assert verify(tmp / "sh", quiet=True) == []


def test_verify_detects_tampering(tmp):
    write_images(tmp / "src", 3, size=(16, 16))
    build(tmp / "src", tmp / "ds", res=16)
    f = tmp / "ds" / "ds-r03.tfrecords"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    assert any("sha256" in p for p in verify(tmp / "ds", quiet=True))


def test_shipped_sample_with_utkface_labels(tmp):
    m = build(ROOT / "data" / "faces", tmp / "faces", res=32, labels="utkface")
    assert m["count"] == 160 and m["source"]["skipped"] == 0 and m["labels"]["dim"] == 8
    ages = np.load(tmp / "faces" / "faces-rxx.labels")[:, 0]
    assert ages.min() >= 1 and ages.max() <= 116


def test_cli_errors_are_one_line_and_nonzero(tmp):
    write_images(tmp / "src", 2, size=(8, 8))
    r = run_cli("dataset_tool/create.py", str(tmp / "src"), str(tmp / "ds"), "--res", "100")
    assert r.returncode == 2 and r.stderr.strip() == "error: --res 100 must be a power of two from 4 to 1024"
    r = run_cli("dataset_tool/create.py", str(tmp / "nothing"), str(tmp / "ds"))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == f"error: source {tmp / 'nothing'} does not exist"
    r = run_cli("dataset_tool/create.py", "--info", str(tmp / "src"))
    assert r.returncode == 2 and "holds no *.tfrecords" in r.stderr and "Traceback" not in r.stderr


def test_cli_end_to_end_with_two_workers(tmp):
    write_images(tmp / "src", 8, size=(32, 32), fmt="jpg")
    r = run_cli("dataset_tool/create.py", str(tmp / "src"), str(tmp / "ds"), "--res", "32", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "wrote 8 images at 32x32" in r.stdout
    r = run_cli("dataset_tool/create.py", "--info", str(tmp / "ds"), "--quiet")
    assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr
    r = run_cli("dataset_tool/extract.py", str(tmp / "ds"), str(tmp / "png"), "--res", "8", "--grid",
                str(tmp / "sheet.png"))
    assert r.returncode == 0 and len(list((tmp / "png").glob("*.png"))) == 8
    assert Image.open(tmp / "sheet.png").size == (24, 24)
    again = [str(tmp / "ds"), str(tmp / "png"), "--res", "16", "--grid", str(tmp / "sheet.png")]
    r = run_cli("dataset_tool/extract.py", *again)                     # refused: the files are there
    assert r.returncode == 2 and "is not empty; pass --overwrite" in r.stderr
    r = run_cli("dataset_tool/extract.py", *again, "--overwrite")
    assert r.returncode == 0 and Image.open(tmp / "sheet.png").size == (48, 48)
    assert Image.open(tmp / "png" / "img00000000.png").size == (16, 16)


def test_align_finds_real_faces_with_what_installs(tmp_path):
    """--align runs on real photos (16 of data/faces) with the packages that install (OpenCV 5 once broke
    every --align run, unnoticed, when it moved the Haar cascades out of its package)."""
    src = tmp_path / "src"
    src.mkdir()
    for f in sorted((ROOT / "data" / "faces").glob("*.jpg"))[:16]:
        (src / f.name).write_bytes(f.read_bytes())
    r = run_cli("dataset_tool/create.py", str(src), str(tmp_path / "ds"), "--res", "32", "--align", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert manifest["count"] >= 15, manifest["count"]                      # UTKFace crops: nearly all are found


def test_unreadable_file_is_skipped_when_guessing_the_resolution(tmp_path, monkeypatch):
    """A file the user cannot read (chmod 000; simulated, as root reads everything) is skipped both while the
    resolution is guessed (no --res) and while writing, with its reason in skipped.txt; it was a traceback."""
    from dataset_tool import sources
    write_images(tmp_path / "src", 6, size=(16, 16))
    real_read = sources.Source.read

    def read(self, name):
        if name == "img0003.png":
            raise PermissionError(13, "Permission denied", str(self.path / name))
        return real_read(self, name)

    monkeypatch.setattr(sources.Source, "read", read)
    create_dataset(CreateConfig(source=str(tmp_path / "src"), dest=str(tmp_path / "ds"), jobs=1, quiet=True),
                   log=lambda *a, **k: None)
    manifest = json.loads((tmp_path / "ds" / fmt.MANIFEST_NAME).read_text())
    assert manifest["resolution"] == 16 and manifest["count"] == 5, manifest
    assert "img0003.png\tcannot read: [Errno 13] Permission denied" in (tmp_path / "ds" / fmt.SKIPPED_NAME).read_text()
