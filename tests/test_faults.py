"""Faults: a damaged newest checkpoint, and SIGKILL at random moments of a dataset build and of training.

After every kill, whatever a later step reads is complete and valid (datasets verify, snapshots load,
`--resume latest` continues). The kill loops are marked `faults`; STYLEGAN2_FAULT_TRIALS sets how many
trials each runs (CI: the default, 1 per loop; see README for a long run).
"""
from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from conftest import ROOT, run_cli, tiny_dataset, write_images
from dataset_tool.build import CreateConfig, create_dataset
from dataset_tool.verify import verify
from datasets import format as fmt
from networks.serialize import load_network
from training.config import TrainConfig, resolve
from training.state import unreadable
from training.training_loop import run_training

TRIALS = int(os.environ.get("STYLEGAN2_FAULT_TRIALS", "1"))
TINY = ["--cfg", "small", "--batch", "4", "--cbase", "64", "--cmax", "8", "--map", "1"]


@pytest.fixture(scope="module")
def data8(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("faults"), 24)


def test_a_damaged_newest_checkpoint_resumes_from_the_previous_one(data8, tmp_path):
    cfg = resolve(TrainConfig(data=str(data8), outdir=str(tmp_path), cfg="small", batch=4, cbase=64, cmax=8, map=1,
                              kimg=0.032, kimg_per_tick=0.016, snap=1), 8, 1)
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    run = run_training(cfg, one)
    ckpts = run / "checkpoints"
    data = ckpts / "ckpt-32.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])                # a copy gone wrong
    again = run_training(TrainConfig(outdir=str(tmp_path), resume="latest", kimg=0.048), one)
    log = (run / "log.txt").read_text()
    assert again == run and "ckpt-32 cannot be read back" in log and "at 0.016 kimg" in log, log
    assert (ckpts / "damaged-ckpt-32.data-00000-of-00001").exists()             # kept for inspection
    assert load_network(run).metadata["kimg"] == pytest.approx(0.048)
    state = tf.train.get_checkpoint_state(str(ckpts))                          # what the next resume sees
    assert Path(state.model_checkpoint_path).name == "ckpt-48"
    assert all(unreadable(p) is None for p in state.all_model_checkpoint_paths)


def _kill_after(cmd: list[str], delay: float) -> int | None:
    """Start cmd from the repo root, SIGKILL it after `delay` seconds; returns its exit code if it ended first."""
    proc = subprocess.Popen([sys.executable, *cmd], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + delay
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.returncode


@pytest.mark.faults
@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_dataset_build_leaves_the_old_or_the_new_dataset(tmp_path, trial):
    rng = np.random.RandomState(trial)
    write_images(tmp_path / "src", 160, size=(64, 64), fmt="jpg")
    dest = tmp_path / "ds"
    create_dataset(CreateConfig(source=str(tmp_path / "src"), dest=str(dest), res=16, max_images=40, jobs=1,
                                quiet=True), log=lambda *a, **k: None)                 # the old dataset
    delay = float(rng.uniform(0.5, 9.0))
    code = _kill_after(["dataset_tool/create.py", str(tmp_path / "src"), str(dest), "--res", "64", "--overwrite",
                        "--jobs", "1", "--quiet"], delay)
    assert code in (0, -signal.SIGKILL), code
    assert verify(dest, quiet=True) == [], f"trial {trial}: killed after {delay:.2f}s"
    count = json.loads((dest / fmt.MANIFEST_NAME).read_text())["count"]
    assert count == (160 if code == 0 else count) and count in (40, 160)
    for partial in tmp_path.glob(".ds.partial-*"):                                  # never looks like a dataset
        with pytest.raises(Exception, match="incomplete"):
            fmt.discover(partial)
    r = run_cli("dataset_tool/create.py", str(tmp_path / "src"), str(dest), "--res", "64", "--overwrite", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert verify(dest, quiet=True) == [] and not list(tmp_path.glob(".ds.*"))     # stale folders tidied


@pytest.mark.faults
@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_training_leaves_loadable_snapshots_and_resumes(data8, tmp_path, trial):
    rng = np.random.RandomState(100 + trial)
    args = ["run_training.py", "--data", str(data8), "--outdir", str(tmp_path), *TINY, "--kimg", "0.064",
            "--kimg-per-tick", "0.008", "--snap", "1"]
    delay = float(rng.uniform(8.0, 40.0))                 # start-up, tracing, then a snapshot every 2 iterations
    code = _kill_after(args, delay)
    assert code in (0, -signal.SIGKILL), code
    runs = list(tmp_path.glob("0*-*"))
    for run in runs:
        for snap in run.glob("network-snapshot-*.keras"):
            load_network(snap)                                                     # complete or absent
        assert not list(run.glob(".*.tmp*")) or code == -signal.SIGKILL
    has_ckpt = any((run / "checkpoints" / "checkpoint").exists() for run in runs)
    resume = TrainConfig(outdir=str(tmp_path), resume="latest", kimg=0.064)
    if not has_ckpt:
        with pytest.raises(UserError, match="no run with a checkpoint"):
            run_training(resume, tf.distribute.OneDeviceStrategy("/cpu:0"))
        return
    run = run_training(resume, tf.distribute.OneDeviceStrategy("/cpu:0"))
    assert load_network(run).metadata["kimg"] == pytest.approx(0.064), f"trial {trial}, killed after {delay:.1f}s"


class _SlowServer(http.server.BaseHTTPRequestHandler):
    """Serves the NVIDIA-format fixture pickle in 40 slices, 0.1 s apart (a slow network)."""
    body = (ROOT / "tests" / "fixtures" / "nvidia-pickles" / "ada-pytorch-32.pkl").read_bytes()

    def do_GET(self) -> None:                          # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        step = len(self.body) // 40 + 1
        for i in range(0, len(self.body), step):
            self.wfile.write(self.body[i:i + step])
            self.wfile.flush()
            time.sleep(0.1)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.faults
@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_download_leaves_nothing_that_looks_complete(tmp_path, trial):
    rng = np.random.RandomState(200 + trial)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/net.pkl"
    env = {"STYLEGAN2_TF_NETWORKS": str(tmp_path / "nets"), "STYLEGAN2_TF_CACHE": str(tmp_path / "cache"),
           "no_proxy": "*", "NO_PROXY": "*"}
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        args = ["run_generator.py", "--network", url, "--seeds", "0", "--outdir", str(tmp_path / "out"), "--overwrite"]
        delay = float(rng.uniform(0.5, 9.0))                       # import, download (4 s), conversion, images
        code = _kill_after(args, delay)
        assert code in (0, -signal.SIGKILL), code
        for f in (tmp_path / "nets").glob("*"):
            if not f.name.startswith("."):                          # a visible file is a complete one
                if f.suffix == ".keras":
                    load_network(f)
                else:
                    assert f.suffix == ".pkl" and f.read_bytes() == _SlowServer.body, f
        r = run_cli(*args)
        assert r.returncode == 0, f"trial {trial}, killed after {delay:.1f}s: {r.stderr[-2000:]}"
        assert (tmp_path / "out" / "seed0000.png").exists()
        assert not list((tmp_path / "nets").glob(".*.part"))        # the killed download's part file is gone
    finally:
        httpd.shutdown()
        httpd.server_close()
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
