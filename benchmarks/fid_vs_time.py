"""FID against training cost for several run folders: a table and a line plot (PNG, drawn with Pillow).

    python benchmarks/fid_vs_time.py RUN_A RUN_B ... --metric fid10k_full --out docs/fid-vs-time.png
    python benchmarks/fid_vs_time.py off=RUN_A ada=RUN_B --data faces2k --x kimg     # rows against one dataset
    python benchmarks/fid_vs_time.py ada=RUN_B --stat Progress/augment --x kimg       # ADA's p over training

Each run folder needs `stats.jsonl` (written by run_training.py every tick, or StyleGAN2-ADA's own, whose values
are {num, mean, std}: their means are read, for side-by-side runs of NVIDIA's code) and `metric-<metric>.jsonl` (written
by run_metrics.py for the run's snapshots). The cost of a snapshot is summed over the ticks up to its kimg:
`Timing/cpu_sec_per_tick` (CPU seconds of the training process: unaffected by other processes sharing the
machine) and `Timing/sec_per_tick` (wall seconds). After a resume the replayed ticks replace the lost ones.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from benchlib import ROOT  # noqa: F401  (repo root on sys.path)
from common.files import atomic_path
from networks.locate import snapshot_kimg

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def read_stats(run: Path) -> dict[float, dict]:
    """The rows of a run's stats.jsonl by kimg (a replayed tick after a resume wins), values as plain numbers:
    StyleGAN2-ADA's {num, mean, std} entries become their means and its Progress/kimg the row's kimg."""
    rows: dict[float, dict] = {}
    for line in (run / "stats.jsonl").read_text().splitlines():
        row = {k: v["mean"] if isinstance(v, dict) and "mean" in v else v for k, v in json.loads(line).items()}
        rows[float(row["kimg"] if "kimg" in row else row["Progress/kimg"])] = row
    return rows


def tick_costs(run: Path, rows: dict[float, dict] | None = None) -> list[tuple[float, float, float]]:
    """(kimg, cumulative CPU hours, cumulative wall hours) after each tick, replayed ticks counted once (CPU
    hours are 0 for runs that do not log them: StyleGAN2-ADA's). `rows`: read_stats(run), if already read."""
    rows = read_stats(run) if rows is None else rows
    out, cpu, wall = [], 0.0, 0.0
    for kimg in sorted(rows):
        cpu += rows[kimg].get("Timing/cpu_sec_per_tick", 0.0) / 3600
        wall += rows[kimg].get("Timing/sec_per_tick", 0.0) / 3600
        out.append((kimg, cpu, wall))
    return out


def _from_network(run: Path) -> bool:
    """A run of ours started from a trained network (`training_options.json` names it under `transfer`)."""
    try:
        return bool(json.loads((run / "training_options.json").read_text()).get("transfer"))
    except (OSError, ValueError):
        return False


def curve(run: Path, metric: str, data: str | None = None) -> list[dict]:
    """One point per evaluated snapshot: kimg, cpu_h, wall_h, value (the newest evaluation of each), of the
    rows against the dataset whose path contains `data` (needed when the run was compared with several)."""
    costs = tick_costs(run)
    if _from_network(run):                                # its snapshot 000000 is the network, before any step
        costs = [(0.0, 0.0, 0.0)] + costs
    points: dict[float, dict] = {}
    rows = [json.loads(line) for line in (run / f"metric-{metric}.jsonl").read_text().splitlines()]
    if data is not None:
        rows = [r for r in rows if data in r.get("data", "")]
    elif len({r["data"] for r in rows if "data" in r}) > 1:                # rows before 'data' was logged: one set
        raise SystemExit(f"{run}: {metric} was measured against several datasets; pick one with --data")
    for row in rows:
        kimg = snapshot_kimg(Path(row["network"]))
        done = [c for c in costs if c[0] <= kimg + 1e-9]
        if kimg < 0 or not done:
            continue
        points[kimg] = {"kimg": kimg, "cpu_h": done[-1][1], "wall_h": done[-1][2], "value": float(row["value"])}
    return [points[k] for k in sorted(points)]


def stat_curve(run: Path, name: str) -> list[dict]:
    """A training statistic (stats.jsonl, e.g. Progress/augment) at every tick, as curve() points."""
    rows = read_stats(run)
    return [{"kimg": k, "cpu_h": c, "wall_h": w, "value": float(rows[k][name])}
            for k, c, w in tick_costs(run, rows)
            if rows[k].get(name) is not None and not math.isnan(rows[k][name])]       # NaN: never measured


def plot(curves: dict[str, list[dict]], path: Path, metric: str, x: str = "cpu_h",
         size: tuple[int, int] = (720, 440)) -> None:
    """Line plot of value against `x` for every curve, axes from zero (or from the lowest value when one is
    negative, e.g. r_t), legend top right."""
    w, h = size
    left, right, top, bottom = 70, 20, 30, 50
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 13)
    except OSError:
        font = ImageFont.load_default()
    pts = [p for c in curves.values() for p in c]
    xmax = max(p[x] for p in pts) * 1.05 or 1.0
    ymin = min(0.0, min(p["value"] for p in pts) * 1.1)
    ymax = max(p["value"] for p in pts) * 1.1 or 1.0
    sx = lambda v: left + (w - left - right) * v / xmax                      # noqa: E731
    sy = lambda v: h - bottom - (h - top - bottom) * (v - ymin) / (ymax - ymin)  # noqa: E731
    d.line([(left, top), (left, h - bottom), (w - right, h - bottom)], fill="black")
    if ymin < 0:
        d.line([(left, sy(0.0)), (w - right, sy(0.0))], fill=(200, 200, 200))  # the zero line
    for i in range(6):
        xv, yv = xmax * i / 5, ymin + (ymax - ymin) * i / 5
        d.line([(sx(xv), h - bottom), (sx(xv), h - bottom + 4)], fill="black")
        d.text((sx(xv) - 12, h - bottom + 8), f"{xv:.1f}", fill="black", font=font)
        d.line([(left - 4, sy(yv)), (left, sy(yv))], fill="black")
        d.text((8, sy(yv) - 7), f"{yv:.0f}" if ymax - ymin >= 10 else f"{yv:.3g}", fill="black", font=font)
    xlabel = {"cpu_h": "training-process CPU hours", "wall_h": "wall-clock hours", "kimg": "kimg"}[x]
    d.text((w / 2 - 80, h - 22), xlabel, fill="black", font=font)
    d.text((8, 6), metric, fill="black", font=font)
    for n, (name, c) in enumerate(curves.items()):
        colour = COLOURS[n % len(COLOURS)]
        xy = [(sx(p[x]), sy(p["value"])) for p in c]
        if len(xy) > 1:
            d.line(xy, fill=colour, width=2)
        for px, py in xy:
            d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        d.text((w - right - 260, top + 4 + 18 * n), f"— {name}", fill=colour, font=font)
    with atomic_path(path) as tmp:
        img.save(tmp)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (NAME=PATH to name a curve)")
    ap.add_argument("--metric", default="fid10k_full")
    ap.add_argument("--data", default=None, help="only rows against the dataset whose path contains this")
    ap.add_argument("--stat", default=None, help="plot this stats.jsonl value per tick (e.g. Progress/augment) "
                    "instead of the metric")
    ap.add_argument("--x", default="cpu_h", choices=["cpu_h", "wall_h", "kimg"])
    ap.add_argument("--out", type=Path, default=None, help="PNG to write")
    args = ap.parse_args()
    curves = {}
    for spec in args.runs:
        name, _, path = str(spec).rpartition("=")
        path = Path(path)
        curves[name or path.name] = stat_curve(path, args.stat) if args.stat else curve(path, args.metric, args.data)
    label = args.stat or args.metric
    print(f"| run | kimg | CPU h | wall h | {label} |\n|---|---|---|---|---|")
    for name, c in curves.items():
        for p in c:
            print(f"| {name} | {p['kimg']:g} | {p['cpu_h']:.2f} | {p['wall_h']:.2f} | {p['value']:.4g} |")
    if args.out:
        plot(curves, args.out, label, args.x)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
