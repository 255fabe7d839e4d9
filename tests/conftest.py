"""Shared test setup: repo root on sys.path, quiet TensorFlow, helpers that make synthetic image folders."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")       # in this process; commands run by run_cli use their own
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

from PIL import Image  # noqa: E402


def write_images(folder: Path, n: int, size: tuple[int, int] = (64, 64), fmt: str = "png",
                 seed: int = 0, prefix: str = "img") -> list[Path]:
    """n random RGB images; image i has pixel [0, 0] = (i % 256, i // 256, 7) so records can be identified."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    paths = []
    for i in range(n):
        arr = rng.randint(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        arr[0, 0] = (i % 256, i // 256, 7)
        p = folder / f"{prefix}{i:04d}.{fmt}"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def tiny_dataset(folder: Path, n: int, res: int = 8) -> Path:
    """`n` random res x res images in folder/src built into the dataset folder/ds (one worker, quiet)."""
    from dataset_tool.build import CreateConfig, create_dataset
    write_images(folder / "src", n, size=(res, res))
    create_dataset(CreateConfig(source=str(folder / "src"), dest=str(folder / "ds"), res=res, jobs=1, quiet=True),
                   log=lambda *a, **k: None)
    return folder / "ds"


# A line in the format of TensorFlow's C++ (absl) logging: severity, MMDD, then a space (`E0000 00:00:...`).
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} ", re.M)


def run_cli(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a repo script with the test interpreter from the repo root (extra environment `env`); returns the
    completed process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)           # what a user sees: the command's own setting (common/cli.py)
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=env)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "faults: SIGKILL fault-injection loops (STYLEGAN2_FAULT_TRIALS trials each)")
    config.addinivalue_line("markers", "slow: left out of `make test-fast` (conftest.py: SLOW_MODULES, SLOW_TESTS)")


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


# The longest tests (minutes each on 2 cores), started first so that pytest-xdist's two workers share them instead
# of one finishing alone at the end. (Not those sharing an expensive module-scoped fixture: moved away from their
# module, the fixture would be made twice.)
SLOW_FIRST = ("test_demo_reduced_variant", "test_mirrored_two_devices_equals_one_device_with_ada",
              "test_multiworker_two_local_processes", "test_progressive_run_grows_and_resumes_exactly",
              "test_trainer_p_follows_d_on_reals_and_resume_keeps_it",
              "test_stages_compile_once_each_and_reset_adam",
              "test_float16_training_stays_close_to_float32_for_several_iterations")


# `make test-fast` (-m "not slow") leaves out what trains, converts, drives a browser or runs a command per case:
# these modules whole, and the tests named here (over about 10 s each on 2 cores).
SLOW_MODULES = {"test_training", "test_faults", "test_progressive", "test_bad_input", "test_export", "test_transfer",
                "test_full_disk", "test_shipped_model"}
SLOW_TESTS = {
    "test_mirrored_two_devices_equals_one_device_with_ada", "test_trainer_p_follows_d_on_reals_and_resume_keeps_it",
    "test_cli_projection_is_tuned_by_default_and_every_mode_draws_the_tuned_person",
    "test_an_encoder_guesses_w_better_than_w_avg_and_the_projection_starts_there", "test_cli_learn_direction_then_edit",
    "test_projection_recovers_a_generated_face_and_feeds_other_modes",
    "test_pivotal_tuning_draws_the_photo_leaves_the_network_and_keeps_far_faces",
    "test_only_the_chosen_images_are_transformed_each_as_on_its_own", "test_training_evaluates_metrics_at_snapshots",
    "test_interpolation_video_and_gif_have_the_right_frames", "test_cli_generates_from_a_url_and_fails_in_one_line",
    "test_cli_generates_nvidias_faces_from_their_pickle", "test_saved_model_generate_endpoint",
    "test_inception_features_match_an_independent_transcription",
    "test_p0_is_the_identity_bit_for_bit_and_p1_changes_every_image", "test_style_mix_grid_equals_mixing_by_hand",
    "test_browser_moves_sliders_and_the_image_changes", "test_browser_uploads_a_photo_and_edits_it",
    "test_project_aligns_a_raw_photo_to_the_networks_framing",
    "test_a_photo_is_aligned_projected_with_progress_and_edited",
    "test_clients_see_only_their_own_photos", "test_cli_end_to_end_with_two_workers",
    "test_align_finds_real_faces_with_what_installs",
}


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: next((rank[n] for n in rank if item.name.startswith(n)), len(rank)))
    for item in items:
        if item.module.__name__ in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
