"""benchmarks/fid_vs_time.py: a snapshot's cost sums the ticks up to it (a replayed tick after a resume counts
once), rows are kept per dataset, training statistics plot per tick."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fid_vs_time  # noqa: E402


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "00000-run"
    run.mkdir()
    ticks = [(4, 100, 60, 0.0), (8, 100, 60, 0.01), (12, 999, 999, 0.5),    # 12 is lost to a crash ...
             (12, 200, 120, 0.02), (16, 200, 120, 0.03)]                    # ... and replayed after the resume
    (run / "stats.jsonl").write_text("".join(json.dumps(
        {"kimg": k, "Timing/cpu_sec_per_tick": c * 36, "Timing/sec_per_tick": w * 36, "Progress/augment": p}) + "\n"
        for k, c, w, p in ticks))
    rows = [{"network": f"{run}/network-snapshot-{k:06d}.keras", "value": v, "data": d}
            for k, v, d in ((8, 50.0, "/d/faces2k"), (8, 40.0, "/d/faces-all"), (16, 30.0, "/d/faces2k"),
                            (16, 20.0, "/d/faces-all"), (16, 25.0, "/d/faces2k"))]        # 16 re-measured: newest wins
    (run / "metric-fid10k_full.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_costs_replayed_ticks_and_datasets(tmp_path):
    run = _run(tmp_path)
    flat = lambda rows: [v for row in rows for v in row]                       # noqa: E731
    assert flat(fid_vs_time.tick_costs(run)) == pytest.approx(flat([(4, 1, .6), (8, 2, 1.2), (12, 4, 2.4),
                                                                     (16, 6, 3.6)]))
    small = fid_vs_time.curve(run, "fid10k_full", data="faces2k")
    assert flat((p["kimg"], p["cpu_h"], p["wall_h"], p["value"]) for p in small) == pytest.approx(
        [8, 2, 1.2, 50, 16, 6, 3.6, 25])
    assert [p["value"] for p in fid_vs_time.curve(run, "fid10k_full", data="faces-all")] == [40.0, 20.0]
    with pytest.raises(SystemExit, match="several datasets"):
        fid_vs_time.curve(run, "fid10k_full")
    p = fid_vs_time.stat_curve(run, "Progress/augment")
    assert [(q["kimg"], q["value"]) for q in p] == [(4, 0.0), (8, 0.01), (12, 0.02), (16, 0.03)]
    out = tmp_path / "plot.png"
    fid_vs_time.plot({"2k": small, "p": p}, out, "fid10k_full", x="kimg", size=(400, 300))
    assert Image.open(out).size == (400, 300)


def test_rows_logged_before_data_existed_count_as_one_dataset(tmp_path):
    run = _run(tmp_path)
    old = {"network": f"{run}/network-snapshot-000008.keras", "value": 60.0}           # no 'data' field
    new = {"network": f"{run}/network-snapshot-000016.keras", "value": 35.0, "data": "/d/faces-all"}
    (run / "metric-fid10k_full.jsonl").write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    assert [(p["kimg"], p["value"]) for p in fid_vs_time.curve(run, "fid10k_full")] == [(8, 60.0), (16, 35.0)]


def test_the_kimg_0_snapshot_of_a_run_from_a_network_is_a_point_at_no_cost(tmp_path):
    """Ours writes snapshot 000000 before any step only when it starts from a network; StyleGAN2-ADA's comes
    after the first iteration of any run, random networks included, and is left out as before."""
    run = _run(tmp_path)
    rows = [{"network": f"{run}/network-snapshot-{k:06d}.keras", "value": v} for k, v in ((0, 90.0), (8, 50.0))]
    (run / "metric-fid10k_full.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [(p["kimg"], p["value"]) for p in fid_vs_time.curve(run, "fid10k_full")] == [(8, 50.0)]
    (run / "training_options.json").write_text(json.dumps({"transfer": {"source": "utkface-64"}}))
    assert [(p["kimg"], p["cpu_h"], p["value"]) for p in fid_vs_time.curve(run, "fid10k_full")] == [
        (0, 0.0, 90.0), (8, 2.0, 50.0)]


def test_negative_values_are_drawn_inside_the_axes(tmp_path):
    """r_t = E[sign(D(real))] can be negative: the y axis extends down to it instead of drawing under the x axis."""
    out = tmp_path / "rt.png"
    rt = [{"kimg": k, "cpu_h": 0.0, "wall_h": 0.0, "value": v} for k, v in ((4, 0.5), (8, -0.5), (12, 0.2))]
    fid_vs_time.plot({"rt": rt}, out, "Loss/signs/real", x="kimg", size=(400, 300))
    img = Image.open(out).convert("RGB")
    colour = fid_vs_time.COLOURS[0]
    rows = [y for y in range(img.height) for x in range(60, 390) if img.getpixel((x, y)) == colour]
    assert max(rows) < 300 - 50                                  # nothing below the x axis (bottom margin 50)


def test_stylegan2_ada_stats_are_read_as_their_means(tmp_path):
    """A side-by-side run of NVIDIA's StyleGAN2-ADA: its stats.jsonl has {num, mean, std} values and its kimg
    only as Progress/kimg; p and r_t are read as the means, wall time from its ticks, no CPU time."""
    run = tmp_path / "00000-nvidia"
    run.mkdir()
    stat = lambda v: {"num": 4, "mean": v, "std": 0.0}                          # noqa: E731
    rows = [{"Progress/kimg": stat(k), "Timing/sec_per_tick": stat(w * 36), "Progress/augment": stat(p),
             "Loss/signs/real": stat(rt), "Timing/Gmain": {"num": 0, "mean": float("nan"), "std": float("nan")}}
            for k, w, p, rt in ((0.016, 0, 0.0, 0.5), (4.016, 100, 0.02, 0.74), (8.016, 100, 0.0128, 0.49))]
    (run / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = fid_vs_time.stat_curve(run, "Progress/augment")
    assert [(q["kimg"], q["value"], q["cpu_h"]) for q in p] == [(0.016, 0.0, 0), (4.016, 0.02, 0), (8.016, 0.0128, 0)]
    assert [q["wall_h"] for q in p] == pytest.approx([0, 1, 2])
    assert [q["value"] for q in fid_vs_time.stat_curve(run, "Loss/signs/real")] == [0.5, 0.74, 0.49]
    assert fid_vs_time.stat_curve(run, "Timing/Gmain") == []                  # never measured: no points
    (run / "metric-fid5k_full.jsonl").write_text(json.dumps(
        {"network": f"{run}/network-snapshot-000008.pkl", "value": 164.1, "data": "/d/faces300"}) + "\n")
    assert [(q["kimg"], q["value"]) for q in fid_vs_time.curve(run, "fid5k_full")] == [(8.0, 164.1)]   # .pkl
