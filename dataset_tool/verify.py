"""Summarise a dataset and verify it: record counts, checksums, and every level against the top level."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets import format as fmt
from dataset_tool.images import box_levels
from common.errors import UserError
from common.files import sha256_file
from common.progress import Progress


def summary(path: str | Path) -> str:
    layout = fmt.discover(path)
    m = layout.manifest or {}
    files = [f for fs in layout.levels.values() for f in fs]
    size = sum(f.stat().st_size for f in files)
    lines = [f"dataset    {layout.root} (name '{layout.name}', {'ours' if m else 'official layout, no manifest'})",
             f"levels     {min(layout.resolutions)}..{layout.max_resolution} px "
             f"({len(layout.levels)} levels, {len(files)} files, {size / 2**20:.1f} MiB)"]
    if m:
        lines.append(f"images     {m['count']} x {m['channels']} channel(s), encoding {m['levels'][0]['encoding']}, "
                     f"source {m['source']['path']} ({m['source']['skipped']} skipped)")
        labels = m.get("labels")
        if labels:
            desc = ", ".join(f"{f['name']} ({f['kind']}{' x' + str(f['classes']) if f.get('classes') else ''})"
                             for f in labels["fields"])
            lines.append(f"labels     {desc}: {labels['dim']} columns")
    elif layout.labels_path:
        lines.append(f"labels     {layout.labels_path.name}: {np.load(layout.labels_path).shape[1]} columns")
    return "\n".join(lines)


def verify(path: str | Path, quiet: bool = False) -> list[str]:
    """Return a list of problems (empty: the dataset is consistent). Reads every record of every level."""
    layout = fmt.discover(path)
    problems: list[str] = []
    m = layout.manifest
    if m:
        for entry in m["levels"]:
            for f in entry["files"]:
                p = layout.root / f["name"]
                if not p.exists():
                    problems.append(f"{f['name']}: listed in the manifest but missing")
                elif sha256_file(p) != f["sha256"]:
                    problems.append(f"{f['name']}: sha256 differs from the manifest")
    resolutions = sorted(layout.resolutions, reverse=True)
    top = resolutions[0]
    counts = dict.fromkeys(resolutions, 0)
    try:
        mismatched = _compare_levels(layout, resolutions, counts, m["count"] if m else None, quiet,
                                     tolerance=0 if m else 1)   # official float32 cascades may round ties apart
    except Exception as exc:  # a corrupt file: TF raises DataLossError and friends
        problems.append(f"cannot read every record: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return problems
    if len(set(counts.values())) > 1:
        problems.append("levels hold different record counts: " + ", ".join(f"{r}px {n}" for r, n in counts.items()))
    if m and counts[top] != m["count"]:
        problems.append(f"manifest says {m['count']} images, the top level holds {counts[top]}")
    if m:
        for entry in m["levels"]:
            r = entry["resolution"]
            if r in counts and sum(f["records"] for f in entry["files"]) != counts[r]:
                problems.append(f"level {r}px: the manifest's record counts differ from the files")
    if mismatched:
        problems.append(f"{mismatched} image(s) have lower levels that are not the box-filtered top level")
    if layout.labels_path is not None:
        n = np.load(layout.labels_path).shape[0]
        if n != counts[top]:
            problems.append(f"{layout.labels_path.name} holds {n} rows for {counts[top]} images")
    return problems


def _compare_levels(layout, resolutions, counts, total, quiet, tolerance) -> int:
    """Count records per level (into `counts`); return how many images have a level off its box filter."""
    from datasets.reader import read_records
    top = resolutions[0]
    readers = {r: read_records(layout.root, r) for r in resolutions}
    progress = Progress(total, desc="verifying", enabled=not quiet)
    mismatched = 0
    for top_img, _ in readers[top]:
        expected = {lv.shape[0]: lv for lv in box_levels(top_img)}
        counts[top] += 1
        bad = False
        for r in resolutions[1:]:
            item = next(readers[r], None)
            if item is None:
                continue
            counts[r] += 1
            bad |= bool(np.abs(item[0].astype(np.int16) - expected[r].astype(np.int16)).max() > tolerance)
        mismatched += bad
        progress.update()
    for r in resolutions[1:]:
        counts[r] += sum(1 for _ in readers[r])
    progress.close()
    return mismatched


def check(path: str | Path, quiet: bool = False) -> None:
    """Print the summary and verification; UserError if any check fails."""
    print(summary(path))
    problems = verify(path, quiet=quiet)
    if problems:
        for p in problems:
            print(f"problem    {p}")
        raise UserError(f"{path}: {len(problems)} problem(s) found")
    print("verified   record counts, checksums and every level against the box-filtered top level: OK")
