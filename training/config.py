"""Training configuration: presets, validation and the resolved options written to the run folder."""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
from dataclasses import dataclass

from common.errors import UserError

ADA_MAX_IMAGES = 30000      # --aug default: ada for datasets smaller than this, off otherwise
ADA_INTERVAL = 4            # iterations between adjustments of p (StyleGAN2-ADA)
ADA_KIMG = 500.0            # --ada-kimg default (StyleGAN2-ADA); 100 when a run starts from a network

# name -> overrides of TrainConfig (None entries are resolved from the resolution in resolve()).
PRESETS: dict[str, dict] = {
    "auto": {},   # StyleGAN2-ADA heuristics from the resolution
    "stylegan2": dict(batch=32, map=8, cbase=32768, cmax=512, glr=0.002, dlr=0.002, gamma=10.0, ema_kimg=10.0,
                      ema_rampup=None, mbstd_group=4),
    "paper256": dict(batch=64, map=8, cbase=16384, cmax=512, glr=0.0025, dlr=0.0025, gamma=1.0, ema_kimg=20.0,
                     ema_rampup=None, mbstd_group=8),
    "paper512": dict(batch=64, map=8, cbase=32768, cmax=512, glr=0.0025, dlr=0.0025, gamma=0.5, ema_kimg=20.0,
                     ema_rampup=None, mbstd_group=8),
    "paper1024": dict(batch=32, map=8, cbase=32768, cmax=512, glr=0.002, dlr=0.002, gamma=2.0, ema_kimg=10.0,
                      ema_rampup=None, mbstd_group=4),
    "small": dict(batch=16, map=2, cbase=8192, cmax=256, glr=0.0025, dlr=0.0025, ema_kimg=5.0, ema_rampup=0.05,
                  mbstd_group=4, lod_training_kimg=20.0, lod_transition_kimg=20.0),
}
# Progressive schedule of every other preset: StyleGAN v1's 600 + 600 kimg per resolution (runs of ~25,000 kimg).
# `small` (CPU-sized runs of a few hundred kimg, where 600 kimg at 8x8 alone takes hours) grows over 20 + 20 kimg,
# the schedule of the UTKFace 64x64 comparison with a fixed-resolution run (README, "Progressive growing").
LOD_KIMG_DEFAULT = 600.0


def option(default, help: str, choices: list[str] | None = None, lower: float | None = None,
           upper: float | None = None):
    """A TrainConfig field that is also a command-line flag of run_training.py (same name, default and help)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "lower": lower,
                                                        "upper": upper})


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as training_options.json in the run folder. The fields made
    with option() are run_training.py's flags; the others are set by presets, by a network a run starts from, or
    by tests."""

    data: str = option("", "Dataset folder (made by dataset_tool/create.py, or official TFRecords).")
    res: int | None = option(None, "Training resolution: a level of the dataset (default: its highest).", lower=4)
    outdir: str = option("results", "Parent folder of the run folders.")
    cfg: str = option("auto", "Preset (small: CPU-sized networks).", choices=list(PRESETS))
    batch: int | None = option(None, "Global batch size (all replicas).", lower=1)
    gamma: float | None = option(None, "R1 regularisation weight (default: the preset's, or 0.0002 * res^2 / batch).",
                                 lower=0)
    kimg: float = option(25000, "Total training length in thousands of real images.")
    kimg_per_tick: float = option(4.0, "Progress/status interval in kimg.")
    snap: int = option(50, "Snapshot (checkpoint, network, fakes grid) every N ticks.", lower=1)
    keep: int = 5                      # checkpoints kept
    mirror: bool = option(False, "Random horizontal flips of the real images.")
    seed: int = option(0, "Random seed (everything random derives from it).")
    cond: bool = option(False, "Train a conditional network on the dataset's labels.")
    glr: float | None = option(None, "G learning rate.", lower=0)
    dlr: float | None = option(None, "D learning rate.", lower=0)
    map: int | None = option(None, "Mapping network depth.", lower=1)
    cbase: int | None = option(None, "Channel base (channels at res r: min(cbase / r, cmax)).", lower=1)
    cmax: int | None = option(None, "Maximum channels per layer.", lower=1)
    zdim: int = 512                    # z size (a network's own when starting from one)
    wdim: int = 512                    # w size
    dmap: int = 8                      # depth of D's label mapping (conditional networks)
    mbstd_group: int | None = None     # minibatch-stddev group size
    mbstd_channels: int = 1            # minibatch-stddev feature channels
    fp16_res: int = 4                  # --mixed-precision: this many of the highest resolutions (never 4x4)
    conv_clamp: float | None = None    # clip conv outputs to +-this (resolved: 256 with --mixed-precision)
    ema_kimg: float | None = None      # G_ema half-life in kimg
    ema_rampup: float | None = None    # ramp the EMA half-life up with training progress (None: preset; 0: off)
    loss: str = option("stylegan2", "Objective: non-saturating logistic + R1 (stylegan2) or WGAN-GP.",
                       choices=["stylegan2", "wgan-gp"])
    pl_weight: float = 2.0             # path-length regularisation weight (0: off)
    style_mixing: float = 0.9          # style-mixing regularisation probability
    g_reg_interval: int = 4            # lazy path-length regularisation interval
    d_reg_interval: int = 16           # lazy R1 interval
    noise_mode: str = "random"         # per-pixel noise while training (const only for exact-equality tests)
    strategy: str = option("auto", "auto: MirroredStrategy over all GPUs, one device on CPU; multiworker: "
                           "MultiWorkerMirroredStrategy over the hosts in TF_CONFIG.",
                           choices=["auto", "mirrored", "multiworker", "one_device"])
    progressive: bool = option(False, "Grow progressively (ProGAN / StyleGAN v1 schedule) from --lod-initial-res "
                               "to --res, fading each resolution in through the lower dataset levels.")
    lod_initial_res: int = option(8, "Progressive: first resolution.", lower=4)
    lod_training_kimg: float | None = option(None, "Progressive: kimg at each resolution before the next fades in "
                                             "(default: 20 with --cfg small, else 600 as StyleGAN v1).")
    lod_transition_kimg: float | None = option(None, "Progressive: kimg of each fade-in (default: 20 with --cfg "
                                               "small, else 600).")
    mixed_precision: str = option("off", "Run the 4 highest resolutions of G and D in float16 (with dynamic loss "
                                  "scaling) or bfloat16; off: float32 (the CPU default).",
                                  choices=["off", "fp16", "bf16"])
    tf32: str = option("off", "TensorFloat-32 matmuls and convolutions on Ampere and newer GPUs (TensorFlow's "
                       "default is on; off, as StyleGAN2-ADA, keeps float32 layers at float32 precision). No effect "
                       "on CPU.", choices=["off", "on"])
    jit: str = option("off", "XLA-compile each phase's forward and backward pass. On CPU it is 6x slower "
                      "(benchmarks/bench_training.py --jit); on GPU unmeasured. XLA draws the path-length and random "
                      "per-pixel noise from its own stream of the same seed.", choices=["off", "on"])
    metrics: str = option("", "Metrics at every snapshot, e.g. fid50k_full,kid50k_full (fid2k: quick CPU check); "
                          "results in metric-<name>.jsonl and TensorBoard.")
    aug: str | None = option(None, "Augment every image D sees (StyleGAN2-ADA's bgc pipeline): ada adapts p to "
                             f"keep E[sign(D(real))] at --target; fixed uses --p; default: ada for datasets under "
                             f"{ADA_MAX_IMAGES // 1000}k images, else off.", choices=["ada", "fixed", "off"])
    p: float | None = option(None, "--aug fixed: augmentation probability.", lower=0, upper=1)
    target: float = option(0.6, "--aug ada: target of r_t = E[sign(D(real))].")
    ada_kimg: float | None = option(None, "--aug ada: kimg for p to move from 0 to 1, adjusted every "
                                    f"{ADA_INTERVAL} iterations (default 500; 100 when starting from a network, as "
                                    "StyleGAN2-ADA).")
    max_nonfinite: int = 20            # stop after this many consecutive iterations with non-finite gradients
    freezed: int = option(0, "Freeze-D: do not train D's first N layers, counted from the highest resolution "
                          "(fromrgb, conv0, conv1, skip of each block), as StyleGAN2-ADA's --freezed.")
    resume: str | None = option(None, "Continue a run: its folder, or 'latest' (newest run under --outdir). Or "
                                "start a new run at kimg 0 from a trained network: an NVIDIA pickle, URL or "
                                "published name (ffhq-256, ...), one of our .keras snapshots, or utkface-64 (the "
                                "shipped model).")
    transfer: dict | None = None       # the network the run started from (source, file, sha256, kimg, networks)
    dry_run: bool = option(False, "Print the resolved options and exit.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_choices(cfg: TrainConfig) -> None:
    """Each option with choices holds one of them (the flags enforce it; a config built in code or read from a
    run folder is checked here against the same definition). UserError names the first that does not."""
    for f in command_line_options():
        value, choices = getattr(cfg, f.name), f.metadata["choices"]
        if choices and value is not None and value not in choices:
            raise UserError(f"--{f.name.replace('_', '-')} {value} must be one of {', '.join(choices)}")
    if cfg.noise_mode not in ("random", "const", "none"):
        raise UserError(f"noise_mode {cfg.noise_mode} must be random, const or none")


def check_durations(kimg: float, kimg_per_tick: float, snap: int) -> None:
    """The run's length, tick and snapshot interval are positive (UserError otherwise)."""
    if kimg <= 0 or kimg_per_tick <= 0 or snap < 1:
        raise UserError("--kimg, --kimg-per-tick and --snap must be positive")


def resolve(cfg: TrainConfig, res: int, replicas: int, num_images: int | None = None) -> TrainConfig:
    """Fill unset options from the preset / ADA heuristics; validate; UserError names the first problem.
    `num_images` (the dataset size, when known) picks the default augmentation: ada under 30k images."""
    if cfg.cfg not in PRESETS:
        raise UserError(f"--cfg {cfg.cfg} is not one of {', '.join(PRESETS)}")
    out = dataclasses.replace(cfg, res=res)
    preset = dict(PRESETS[cfg.cfg])
    if cfg.cfg == "auto":
        batch = max(min(replicas * min(4096 // res, 32), 64), replicas)
        preset = dict(batch=batch, map=2, cbase=32768 if res >= 512 else 16384, cmax=512,
                      glr=0.002 if res >= 1024 else 0.0025, dlr=0.002 if res >= 1024 else 0.0025,
                      ema_kimg=batch * 10 / 32, ema_rampup=0.05, mbstd_group=min(batch // replicas, 4))
    for key, value in preset.items():
        if getattr(out, key) is None:
            setattr(out, key, value)
    if out.gamma is None:
        out.gamma = preset.get("gamma", 0.0002 * res ** 2 / out.batch)
    for key in ("lod_training_kimg", "lod_transition_kimg"):
        if getattr(out, key) is None:
            setattr(out, key, LOD_KIMG_DEFAULT)
    if out.batch < 1 or out.batch % replicas:
        raise UserError(f"--batch {out.batch} must be a positive multiple of the {replicas} replica(s)")
    per_replica = out.batch // replicas
    group = min(out.mbstd_group, per_replica)
    if per_replica % group:
        raise UserError(f"--batch {out.batch}: the per-replica batch {per_replica} must be divisible by the "
                        f"minibatch-stddev group {group}")
    if out.pl_weight > 0 and per_replica < 2:
        raise UserError(f"--batch {out.batch}: path-length regularisation halves the batch; "
                        "need at least 2 per replica")
    check_choices(out)
    check_durations(out.kimg, out.kimg_per_tick, out.snap)
    if out.progressive:
        r0 = out.lod_initial_res
        if r0 < 4 or r0 & (r0 - 1) or r0 > out.res:
            raise UserError(f"--lod-initial-res {r0} must be a power of two between 4 and --res {out.res}")
        if out.lod_training_kimg < 0 or out.lod_transition_kimg < 0:
            raise UserError("--lod-training-kimg and --lod-transition-kimg must not be negative")
    if out.ada_kimg is None:
        out.ada_kimg = ADA_KIMG
    if out.conv_clamp is None and out.mixed_precision != "off":
        out.conv_clamp = 256.0                            # StyleGAN2-ADA's clamp for float16 training
    blocks = int(np.log2(out.res)) - 2                     # D's blocks above 4x4
    layers = blocks * 4 if out.progressive else blocks * 3 + min(blocks, 1)   # (top) fromrgb, conv0, conv1, skip
    if not 0 <= out.freezed <= layers:
        raise UserError(f"--freezed {out.freezed}: D has {layers} layers that can be frozen (0 to {layers})")
    if out.aug is None:
        out.aug = "ada" if num_images is not None and num_images < ADA_MAX_IMAGES else "off"
    if out.aug == "fixed" and (out.p is None or not 0 <= out.p <= 1):
        raise UserError("--aug fixed needs --p between 0 and 1")
    if out.aug != "fixed" and out.p is not None:
        raise UserError(f"--p is only for --aug fixed (--aug {out.aug})")
    if not 0 < out.target < 1 or out.ada_kimg <= 0:
        raise UserError("--target must be between 0 and 1 and --ada-kimg positive")
    for name in ("glr", "dlr", "gamma"):
        if getattr(out, name) < 0:
            raise UserError(f"--{name} must not be negative")
    return out


def progressive_lod(kimg: float, res: int, initial_res: int = 8, training_kimg: float = 600,
                    transition_kimg: float = 600) -> float:
    """The ProGAN / StyleGAN v1 schedule: level of detail at `kimg` (log2(res / initial_res) at the start,
    0 = full resolution); each resolution trains for training_kimg, then the next fades in linearly over
    transition_kimg."""
    phase_dur = training_kimg + transition_kimg
    phase = int(kimg // phase_dur)
    phase_kimg = kimg - phase * phase_dur
    lod = np.log2(res) - np.log2(initial_res) - phase
    if transition_kimg > 0:
        lod -= max(phase_kimg - training_kimg, 0.0) / transition_kimg
    return float(max(lod, 0.0))


def check_tf_config() -> None:
    """UserError unless TF_CONFIG holds the JSON that --strategy multiworker needs (no TensorFlow call: the
    command checks it before TensorFlow starts)."""
    if not os.environ.get("TF_CONFIG"):
        raise UserError("--strategy multiworker needs TF_CONFIG (the cluster and this worker's task), e.g. "
                        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                        '"index": 0}}')
    try:
        json.loads(os.environ["TF_CONFIG"])
    except json.JSONDecodeError as exc:
        raise UserError(f"TF_CONFIG is not valid JSON: {exc}") from None


def read_run_options(run) -> TrainConfig:
    """The options a run folder was started with (its training_options.json) as a TrainConfig; UserError in one
    line for a missing, cut-short or foreign file."""
    from pathlib import Path
    path = Path(run) / "training_options.json"
    try:
        saved = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror or exc}): a run folder keeps the options it was "
                        "started with there; start a new run from its newest snapshot with --resume SNAPSHOT") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); was it cut short? Start a new run from the run's newest "
                        "snapshot with --resume SNAPSHOT") from None
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if not isinstance(saved, dict) or not saved.get("data") or set(saved) - fields:
        extra = sorted(set(saved) - fields) if isinstance(saved, dict) else []
        raise UserError(f"{path} does not hold this project's training options"
                        + (f" (unknown: {', '.join(extra[:3])})" if extra else ""))
    try:
        return TrainConfig(**saved)
    except TypeError as exc:
        raise UserError(f"{path}: {exc}") from None


def command_line_options() -> list[dataclasses.Field]:
    """The TrainConfig fields that are run_training.py's flags, in order."""
    return [f for f in dataclasses.fields(TrainConfig) if "help" in f.metadata]
