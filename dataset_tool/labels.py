"""Per-image labels from a CSV/JSON file or a regex over file names, encoded as the official float32 rows.

Each label field is either a scalar (one column, the value as is) or a class (one-hot over N columns).
Entries that cannot be parsed raise LabelError with the reason; the tool skips and lists that image.
"""
from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError

UTKFACE_PATTERN = r"^(?P<age>\d+)_(?P<gender>\d+)_(?P<race>\d+)_\d+"
UTKFACE_CLASSES = {"gender": 2, "race": 5}


class LabelError(Exception):
    """This file's label is missing or unparseable (the message says why)."""


@dataclass
class LabelField:
    name: str
    classes: int = 0   # 0: scalar; N > 0: one-hot over N classes

    @property
    def width(self) -> int:
        return self.classes or 1


MAX_CLASSES = 4096          # classes of one one-hot label field (ImageNet has 1,000)


class Labeler:
    """Maps a source file name to its float32 label row."""

    def __init__(self, spec: str, classes: str = "") -> None:
        self.source = spec
        class_counts = dict(UTKFACE_CLASSES) if spec == "utkface" else {}
        for item in filter(None, (s.strip() for s in classes.split(","))):
            key, _, n = item.partition("=")
            if not n.isdigit() or not 2 <= int(n) <= MAX_CLASSES:
                raise UserError(f"--label-classes entry '{item}' should look like name=N with 2 <= N <= "
                                f"{MAX_CLASSES} (a one-hot label row holds N floats per record)")
            class_counts[key] = int(n)
        self._pattern: re.Pattern | None = None
        self._table: dict[str, list[str]] = {}
        if spec == "utkface" or spec.startswith("regex:"):
            pattern = UTKFACE_PATTERN if spec == "utkface" else spec[len("regex:"):]
            try:
                self._pattern = re.compile(pattern)
            except re.error as exc:
                raise UserError(f"--labels regex is invalid: {exc}") from None
            names = list(self._pattern.groupindex)
            if not names:
                raise UserError("--labels regex needs named groups, e.g. regex:^(?P<age>\\d+)_(?P<gender>\\d)_")
        else:
            names = self._load_table(Path(spec))
        unknown = set(class_counts) - set(names)
        if unknown:
            raise UserError(f"--label-classes names unknown label field(s) {sorted(unknown)}; fields: {names}")
        self.fields = [LabelField(n, class_counts.get(n, 0)) for n in names]

    def _load_table(self, path: Path) -> list[str]:
        if not path.is_file():
            raise UserError(f"--labels {path}: no such file (use a .csv/.json file, regex:PATTERN or utkface)")
        try:
            if path.suffix.lower() == ".csv":
                with open(path, newline="") as f:
                    rows = list(csv.reader(f))
                if len(rows) < 2 or len(rows[0]) < 2:
                    raise UserError(f"--labels {path}: expected a header 'file,<name>,...' and one row per image")
                header = [h.strip() for h in rows[0]]
                for row in rows[1:]:
                    if row:
                        self._table[row[0].strip()] = [v.strip() for v in row[1:]]
                return header[1:]
            if path.suffix.lower() == ".json":
                data = json.loads(path.read_text())
                if isinstance(data, dict) and isinstance(data.get("labels"), list):  # StyleGAN2-ADA dataset.json
                    data = {str(k): v for k, v in data["labels"]}
                if not isinstance(data, dict):
                    raise UserError(f"--labels {path}: expected an object mapping file -> value(s)")
                names: list[str] | None = None
                for key, value in data.items():
                    if isinstance(value, dict):
                        names = names or list(value)
                        value = [value.get(n) for n in names]
                    elif not isinstance(value, list):
                        value = [value]
                    self._table[key] = ["" if v is None else str(v) for v in value]
                if names is None:
                    width = max((len(v) for v in self._table.values()), default=1)
                    names = ["label"] if width == 1 else [f"label{i}" for i in range(width)]
                return names
        except (OSError, ValueError, csv.Error) as exc:
            raise UserError(f"--labels {path}: cannot read: {exc}") from None
        raise UserError(f"--labels {path}: unsupported file type (use .csv or .json)")

    @property
    def dim(self) -> int:
        return sum(f.width for f in self.fields)

    def describe(self) -> dict:
        out, col = [], 0
        for f in self.fields:
            out.append({"name": f.name, "kind": "class" if f.classes else "scalar",
                        **({"classes": f.classes} if f.classes else {}), "columns": [col, col + f.width]})
            col += f.width
        return {"source": self.source, "dim": self.dim, "fields": out}

    def raw_values(self, name: str) -> list[str]:
        base = os.path.basename(name)
        if self._pattern is not None:
            m = self._pattern.search(base)
            if not m:
                raise LabelError(f"file name does not match the label pattern {self._pattern.pattern!r}")
            return [m[f.name] or "" for f in self.fields]
        for key in (name, base, os.path.splitext(base)[0]):
            if key in self._table:
                return self._table[key]
        raise LabelError("no entry in the labels file")

    def __call__(self, name: str) -> np.ndarray:
        values = self.raw_values(name)
        if len(values) != len(self.fields):
            raise LabelError(f"expected {len(self.fields)} label values, found {len(values)}")
        row = np.zeros([self.dim], np.float32)
        col = 0
        for field, value in zip(self.fields, values):
            try:
                number = float(value)
            except ValueError:
                raise LabelError(f"label '{field.name}' value {value!r} is not a number") from None
            if not np.isfinite(number):
                raise LabelError(f"label '{field.name}' value {value!r} is not finite")
            if field.classes:
                if number != int(number) or not 0 <= number < field.classes:
                    raise LabelError(f"label '{field.name}' value {value!r} is not a class in 0..{field.classes - 1}")
                row[col + int(number)] = 1.0
            else:
                row[col] = number
            col += field.width
        return row
