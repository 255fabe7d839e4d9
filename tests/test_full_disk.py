"""A full disk and oversized inputs: one `error:` line, nothing half-written, nothing of the user's lost, and
memory bounded by the limits (not by what a hostile archive claims).

The full-disk cases write into a real, small tmpfs (mounted here: needs root, as in CI; elsewhere they skip and
say why). The bomb cases run `create.py` under an address-space-independent data-segment limit (RLIMIT_DATA)."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, TF_LOG_LINE, run_cli, write_images

NET = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32"


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of the requested size at tmp_path/disk; unmounted afterwards."""
    mounted = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Fill `disk` with a filler file until `leave` bytes are free."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def partial_files(root: Path) -> list[str]:
    """Temporary or partial names any writer of ours or TensorFlow's could leave behind."""
    return sorted(p.name for p in root.rglob("*") if ".tmp" in p.name or p.name.endswith("_temp")
                  or ".partial" in p.name)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and not TF_LOG_LINE.search(r.stderr), r.stderr[-2000:]
    assert lines and lines[-1].startswith("error: "), r.stderr[-2000:]
    assert sum(line.startswith("error: ") for line in lines) == 1, r.stderr[-2000:]
    return lines[-1]


def test_full_disk_keeps_the_previous_grid_whole(small_disk):
    """run_generator --grid on a disk with room for the 16 seed images but not the grid: the user's previous
    grid.png is unchanged (it used to be truncated in place), the seed images written before the grid are removed
    again (a command's outputs are a set: all or none), no temporary file is left, one error line."""
    disk = small_disk("512k")
    out = disk / "out"
    out.mkdir()
    old = np.random.RandomState(0).randint(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(old).save(out / "grid.png")
    before = (out / "grid.png").read_bytes()
    fill(disk, leave=76 << 10)              # 16 seed PNGs take 16 tmpfs pages (64 KiB); the grid needs ~28 KiB
    r = run_cli("run_generator.py", "--network", str(NET), "--seeds", "0-15", "--grid", "--outdir", str(out),
                "--overwrite")                        # the user asked to replace the grid; the disk is full
    line = one_error_line(r)
    assert "No space left on device" in line and "grid" in line, line
    assert (out / "grid.png").read_bytes() == before
    assert list(out.glob("seed*.png")) == []                 # written before the grid failed, then removed
    assert partial_files(disk) == []


def test_full_disk_at_the_first_checkpoint_leaves_no_partial_checkpoint(small_disk, tmp_path):
    """Training into a disk that holds the run's first files and snapshot but not its first checkpoint: one
    error line naming the checkpoint and the kimg, no `ckpt-N_temp/` folder (TensorFlow's partial write), every
    file left in the run folder complete (the snapshot network loads)."""
    write_images(tmp_path / "src", 8, size=(8, 8))
    r = run_cli("dataset_tool/create.py", str(tmp_path / "src"), str(tmp_path / "ds"), "--quiet")
    assert r.returncode == 0, r.stderr
    disk = small_disk("5m")                 # the snapshot (.keras) is 2.4 MB, the checkpoint 4.6 MB
    r = run_cli("run_training.py", "--data", str(tmp_path / "ds"), "--outdir", str(disk / "runs"), "--cfg", "small",
                "--batch", "4", "--cbase", "64", "--cmax", "8", "--map", "1", "--kimg", "0.016",
                "--kimg_per_tick", "0.016", "--snap", "1", "--aug", "off")
    line = one_error_line(r)
    assert "cannot write the checkpoint at 0.016 kimg" in line and "no space left" in line, line
    run = next((disk / "runs").iterdir())
    assert partial_files(disk) == [] and not list((run / "checkpoints").iterdir())
    snaps = list(run.glob("network-snapshot-*.keras"))
    assert len(snaps) == 1
    check = ("import sys; from networks.serialize import load_network; b = load_network(sys.argv[1]); "
             "print(b.G_ema.img_resolution)")
    r = subprocess.run([sys.executable, "-c", check, str(snaps[0])], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().endswith("8"), r.stderr[-2000:]


def _limited(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return apply


def test_archive_and_folder_bombs_are_skipped_within_a_memory_limit(tmp_path):
    """A 4 MB zip holding a 1 GiB member and a 1 GiB (sparse) file in a folder, each beside a 49 kB PNG of
    400 megapixels: create.py skips them, naming the limit in skipped.txt, and writes the real faces, all under
    a 1.5 GB data limit. Before the size limit it read the whole member and died with MemoryError there."""
    write_images(tmp_path / "faces", 2, size=(32, 32))
    Image.new("1", (20000, 20000)).save(tmp_path / "faces" / "wide.png")        # 49 kB, 400 megapixels
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for p in sorted((tmp_path / "faces").iterdir()):
            z.write(p, p.name)
        with z.open("big.png", "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                f.write(chunk)
    assert bomb.stat().st_size < 8 << 20
    with open(tmp_path / "faces" / "huge.png", "wb") as f:          # sparse: no disk used
        f.truncate(1 << 30)
    limit = 1_500_000_000
    for src, dest in ((bomb, tmp_path / "ds_zip"), (tmp_path / "faces", tmp_path / "ds_dir")):
        r = subprocess.run([sys.executable, "dataset_tool/create.py", str(src), str(dest), "--jobs", "1", "--quiet"],
                           cwd=ROOT, capture_output=True, text=True, preexec_fn=_limited(limit), timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "wrote 2 images" in r.stdout, r.stdout
        skipped = (dest / "skipped.txt").read_text()
        assert "1,073,741,824 bytes, above the 256 MiB limit" in skipped, skipped
        assert "wide.png\t400 megapixels; at most 100 are read" in skipped, skipped    # the one pixel gate
