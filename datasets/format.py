"""The on-disk dataset layout, shared by the writer (dataset_tool) and the reader (datasets/reader.py).

Official StyleGAN layout: `<dir>/<name>-rNN.tfrecords`, NN = log2(resolution), one file per level, each
record a `tf.train.Example` with `shape` (int64 [C, H, W]) and `data` (bytes, raw uint8 CHW; the schema is
datasets/records.py, shared by the writer and the reader). Optional
labels in `<name>-rxx.labels` (float32 .npy, [N, label_dim], record order).

Our additions, all optional for readers: `<name>-rNN-SSSSS-of-KKKKK.tfrecords` shards (record i lives in
shard i % K), a `label` float feature in every record, PNG-encoded `data` (declared in the manifest), and
the manifest `dataset.json`, written last. No TensorFlow import here.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError

MANIFEST_NAME = "dataset.json"
INCOMPLETE_MARKER = ".incomplete"   # present only while a dataset is being built
SKIPPED_NAME = "skipped.txt"
ALIGNMENT_NAME = "alignment.json"     # create.py --align: the landmarks and box of every record's face
FORMAT_VERSION = 1

_FILE_RE = re.compile(r"^(?P<name>.+)-r(?P<lvl>\d\d)(?:-(?P<shard>\d{5})-of-(?P<num>\d{5}))?\.tfrecords$")


def tfrecord_count(path: str | Path) -> int:
    """Records in a TFRecord file, from its framing alone (8-byte length, 4-byte CRC, data, 4-byte CRC):
    one seek per record, no data read. UserError for a file cut inside a record header."""
    path = Path(path)
    size, count, pos = path.stat().st_size, 0, 0
    with open(path, "rb") as f:
        while pos < size:
            header = f.read(8)
            if len(header) < 8:
                raise UserError(f"{path} is cut inside a record header (the dataset is damaged)")
            pos += 16 + int.from_bytes(header, "little")
            f.seek(pos)
            count += 1
    return count


def log2_exact(res: int) -> int:
    """log2 of a power-of-two resolution; raises UserError otherwise."""
    if res < 1 or res & (res - 1):
        raise UserError(f"resolution {res} is not a power of two")
    return res.bit_length() - 1


def level_file_names(name: str, lvl: int, shards: int = 1) -> list[str]:
    """File names of one level: `ffhq-r10.tfrecords`, or `ffhq-r10-00000-of-00004.tfrecords`, ..."""
    if shards == 1:
        return [f"{name}-r{lvl:02d}.tfrecords"]
    return [f"{name}-r{lvl:02d}-{s:05d}-of-{shards:05d}.tfrecords" for s in range(shards)]



def labels_file_name(name: str) -> str:
    return f"{name}-rxx.labels"


@dataclass
class DatasetLayout:
    """What a dataset folder holds: level files by log2 resolution, labels, manifest."""

    root: Path
    name: str
    levels: dict[int, list[Path]]                 # log2(res) -> shard files, in shard order
    labels_path: Path | None = None
    manifest: dict | None = None
    encodings: dict[int, str] = field(default_factory=dict)   # log2(res) -> "raw" | "png"

    @property
    def resolutions(self) -> list[int]:
        return sorted(2 ** lvl for lvl in self.levels)

    @property
    def max_resolution(self) -> int:
        return max(self.resolutions)

    def files(self, res: int) -> list[Path]:
        lvl = log2_exact(res)
        if lvl not in self.levels:
            have = ", ".join(str(r) for r in self.resolutions)
            raise UserError(f"{self.root} has no {res}x{res} level (r{lvl:02d}); it has: {have}")
        return self.levels[lvl]

    def encoding(self, res: int) -> str:
        return self.encodings.get(log2_exact(res), "raw")


def find_level(path: str | Path, res: int | None = None) -> tuple[DatasetLayout, int]:
    """(layout, resolution) of one level of the dataset in `path` (res None: the highest), from its file names
    alone: a missing folder or level is a UserError before TensorFlow starts."""
    layout = discover(path)
    res = res or layout.max_resolution
    layout.files(res)
    return layout, res


def discover(path: str | Path) -> DatasetLayout:
    """Describe the dataset in `path` (ours or an official StyleGAN TFRecord folder); UserError if none."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder (expected a folder of <name>-rNN.tfrecords files)")
    if (root / INCOMPLETE_MARKER).exists():
        raise UserError(f"{root} is an incomplete dataset (its build was interrupted); build it again")
    manifest = None
    if (root / MANIFEST_NAME).exists():
        try:
            manifest = json.loads((root / MANIFEST_NAME).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{root / MANIFEST_NAME} is not valid JSON: {exc}") from None
    groups: dict[str, dict[int, dict[int, Path]]] = {}
    counts: dict[tuple[str, int], int] = {}
    for f in sorted(root.glob("*.tfrecords")):
        m = _FILE_RE.match(f.name)
        if not m:
            raise UserError(f"{f} does not follow the <name>-rNN.tfrecords naming of StyleGAN datasets")
        lvl = int(m["lvl"])
        shard, num = (int(m["shard"]), int(m["num"])) if m["shard"] else (0, 1)
        groups.setdefault(m["name"], {}).setdefault(lvl, {})[shard] = f
        prev = counts.setdefault((m["name"], lvl), num)
        if prev != num:
            raise UserError(f"level r{lvl:02d} in {root} mixes shard counts {prev} and {num}")
    if not groups:
        raise UserError(f"{root} holds no *.tfrecords files: not a dataset (make one with dataset_tool/create.py)")
    if len(groups) > 1:
        raise UserError(f"{root} holds several datasets ({', '.join(sorted(groups))}); keep one per folder")
    name, by_level = next(iter(groups.items()))
    levels: dict[int, list[Path]] = {}
    for lvl, shards in by_level.items():
        num = counts[(name, lvl)]
        missing = sorted(set(range(num)) - set(shards))
        if missing:
            raise UserError(f"level r{lvl:02d} in {root} is missing shard(s) {missing} of {num}")
        levels[lvl] = [shards[s] for s in range(num)]
    labels = sorted(root.glob("*.labels"))
    encodings = {}
    if manifest:
        for entry in manifest.get("levels", []):
            encodings[log2_exact(int(entry["resolution"]))] = entry.get("encoding", "raw")
    return DatasetLayout(root=root, name=name, levels=levels, labels_path=labels[0] if labels else None,
                         manifest=manifest, encodings=encodings)
