"""The training loop: tf.distribute, phases at their intervals, G_ema, ticks, stats, checkpoints, resume.

Run folder `<outdir>/<NNNNN>-<desc>/`: training_options.json, log.txt, stats.jsonl, TensorBoard events,
reals.png, fakes_init.png, fakes<kimg>.png, checkpoints/ (tf.train.CheckpointManager) and
network-snapshot-<kimg>.keras (G_ema, G, D; loadable by run_generator.py).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf

from dataset_tool.images import contact_sheet
from training.config import TrainConfig, progressive_lod
from training.dataset import label_dim, make_dataset, open_level
from training.loss import StyleGAN2Loss, ema_beta, lazy_adam_params, make_phases
from training.networks import Discriminator, Generator, set_mixed_precision
from training.serialize import save_bundle, to_uint8
from training.util import Progress, UserError, format_seconds


INITIAL_LOSS_SCALE = 2.0 ** 10      # float16 training: first loss scale (halved on overflow, never below 1)
LOSS_SCALE_GROWTH_STEPS = 1000      # doubled after this many finite steps in a row


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: Mirrored over all GPUs (one device on CPU); multiworker: MultiWorkerMirrored from TF_CONFIG."""
    if name == "multiworker":                           # must come before anything initialises the TF context
        if not os.environ.get("TF_CONFIG"):
            raise UserError("--strategy multiworker needs TF_CONFIG (the cluster and this worker's task), e.g. "
                            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                            '"index": 0}}')
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as exc:
            raise UserError(f"TF_CONFIG is not valid JSON: {exc}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device" or (name == "auto" and len(gpus) <= 1):
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name in ("auto", "mirrored"):
        return tf.distribute.MirroredStrategy()
    raise UserError(f"--strategy {name} must be auto, mirrored, multiworker or one_device")


def worker_info(strategy: tf.distribute.Strategy) -> tuple[bool, int, int]:
    """(is_chief, task index, number of workers). Worker 0 is the chief unless the cluster names one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True, 0, 1
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    spec = resolver.cluster_spec().as_dict()
    workers = sum(len(v) for k, v in spec.items() if k in ("chief", "worker"))
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in spec)
    return chief, task_id, workers


def find_resume(cfg: TrainConfig) -> Path | None:
    if not cfg.resume:
        return None
    if cfg.resume == "latest":
        runs = sorted((p for p in Path(cfg.outdir).glob("[0-9][0-9][0-9][0-9][0-9]-*")
                       if (p / "checkpoints" / "checkpoint").exists()), key=lambda p: p.name)
        if not runs:
            raise UserError(f"--resume latest: no run with a checkpoint under {cfg.outdir}/")
        return runs[-1]
    run = Path(cfg.resume)
    if not (run / "checkpoints" / "checkpoint").exists():
        raise UserError(f"--resume {run}: no checkpoint in {run / 'checkpoints'}")
    return run


def new_run_dir(outdir: str, desc: str) -> Path:
    Path(outdir).mkdir(parents=True, exist_ok=True)
    ids = [int(m[1]) for p in Path(outdir).iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    run = Path(outdir) / f"{max(ids, default=-1) + 1:05d}-{desc}"
    run.mkdir()
    return run


class Logger:
    """One place for statistics: log.txt + stdout, stats.jsonl and TensorBoard."""

    def __init__(self, run: Path) -> None:
        self.log = open(run / "log.txt", "a")
        self.jsonl = open(run / "stats.jsonl", "a")
        self.writer = tf.summary.create_file_writer(str(run))

    def print(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def stats(self, step_kimg: float, stats: dict[str, float]) -> None:
        self.jsonl.write(json.dumps({"kimg": step_kimg, **stats}) + "\n")
        self.jsonl.flush()
        with self.writer.as_default():
            for k, v in stats.items():
                tf.summary.scalar(k, v, step=int(step_kimg * 1000))
        self.writer.flush()

    def scalar(self, name: str, value: float, step_kimg: float) -> None:
        with self.writer.as_default():
            tf.summary.scalar(name, value, step=int(step_kimg * 1000))
        self.writer.flush()

    def image(self, name: str, grid: np.ndarray, step_kimg: float) -> None:
        with self.writer.as_default():
            tf.summary.image(name, grid[None], step=int(step_kimg * 1000))


class Trainer:
    """Builds networks, optimizers and the compiled phase steps; `train()` runs to cfg.kimg."""

    def __init__(self, cfg: TrainConfig, strategy: tf.distribute.Strategy, run: Path) -> None:
        self.cfg, self.strategy, self.run = cfg, strategy, run
        self.replicas = strategy.num_replicas_in_sync
        _, _, shape = open_level(cfg.data, cfg.res)
        self.c_dim = label_dim(open_level(cfg.data, cfg.res)[0]) if cfg.cond else 0
        if cfg.cond and not self.c_dim:
            raise UserError(f"--cond: the dataset {cfg.data} has no labels")
        self.channels = shape[0]
        keras.utils.set_random_seed(cfg.seed)
        g_kwargs = dict(c_dim=self.c_dim, img_resolution=cfg.res, img_channels=self.channels,
                        mapping_layers=cfg.map, channel_base=cfg.cbase, channel_max=cfg.cmax)
        with strategy.scope():
            self.G = Generator(**g_kwargs, name="G")
            self.G_ema = Generator(**g_kwargs, name="G_ema")
            self.D = Discriminator(c_dim=self.c_dim, img_resolution=cfg.res, img_channels=self.channels,
                                   channel_base=cfg.cbase, channel_max=cfg.cmax,
                                   mbstd_group_size=min(cfg.mbstd_group, cfg.batch // self.replicas), name="D")
            for a, b in zip(self.G_ema.weights, self.G.weights):
                a.assign(b)
            has_reg = {"G": cfg.pl_weight > 0, "D": cfg.loss == "wgan-gp" or cfg.gamma > 0}
            intervals = {"G": cfg.g_reg_interval, "D": 1 if cfg.loss == "wgan-gp" else cfg.d_reg_interval}
            self.phases = make_phases(intervals["G"], intervals["D"], has_reg["G"], has_reg["D"])
            self.opts = {}
            for net, lr, model in (("G", cfg.glr, self.G), ("D", cfg.dlr, self.D)):
                k = intervals[net] if has_reg[net] else None
                lr_c, b1, b2 = lazy_adam_params(lr, (0.0, 0.99), k)
                opt = keras.optimizers.Adam(learning_rate=lr_c, beta_1=b1, beta_2=b2, epsilon=1e-8, name=f"{net}_opt")
                opt.build(model.trainable_weights)
                self.opts[net] = opt
            self.loss = StyleGAN2Loss(self.G, self.D, cfg.batch, loss=cfg.loss, r1_gamma=cfg.gamma,
                                      pl_weight=cfg.pl_weight, style_mixing_prob=cfg.style_mixing,
                                      noise_mode=cfg.noise_mode, g_reg_interval=intervals["G"],
                                      d_reg_interval=intervals["D"])
        if cfg.mixed_precision != "off":
            dtype = {"fp16": "float16", "bf16": "bfloat16"}[cfg.mixed_precision]
            for net in (self.G, self.G_ema, self.D):
                set_mixed_precision(net, dtype)
            if cfg.mixed_precision == "fp16":
                self.loss.scaling = True
                self.loss.loss_scale.assign(INITIAL_LOSS_SCALE)
        with strategy.scope():
            self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps",
                                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.rng = tf.random.Generator.from_seed(cfg.seed)
        self.cur_nimg = tf.Variable(0, dtype=tf.int64, trainable=False, name="cur_nimg")
        self.batch_idx = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_idx")
        self.tick = tf.Variable(0, dtype=tf.int64, trainable=False, name="tick")
        self.nonfinite = tf.Variable(0, dtype=tf.int64, trainable=False, name="nonfinite_total")
        self.res_batches = tf.Variable(0, dtype=tf.int64, trainable=False, name="res_batches")   # at res_level
        self.res_level = tf.Variable(0, dtype=tf.int64, trainable=False, name="res_level")
        self.loss.progressive = cfg.progressive
        noise_seeds = [layer.seed_generator.state for layer in self.G._flatten_layers()
                       if hasattr(layer, "seed_generator")]          # Keras does not checkpoint these itself
        self.ckpt = tf.train.Checkpoint(G=self.G, G_ema=self.G_ema, D=self.D, G_opt=self.opts["G"],
                                        D_opt=self.opts["D"], pl_mean=self.loss.pl_mean, rng=self.rng,
                                        cur_nimg=self.cur_nimg, batch_idx=self.batch_idx, tick=self.tick,
                                        nonfinite=self.nonfinite, noise_seeds=noise_seeds,
                                        loss_scale=self.loss.loss_scale, good_steps=self.good_steps,
                                        res_batches=self.res_batches, res_level=self.res_level)
        self.phase_runs: dict[str, int] = dict.fromkeys((p.name for p in self.phases), 0)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(run / "checkpoints"), max_to_keep=cfg.keep)
        self.steps = {p.name: self._compile_phase(p) for p in self.phases}
        self.ema_step = tf.function(self._ema_update)

    # --------------------------------------------------------------------------------- compiled steps
    def _compile_phase(self, phase):
        model = self.G if phase.net == "G" else self.D
        opt = self.opts[phase.net]
        step_fn = self.loss.g_step if phase.net == "G" else self.loss.d_step

        def replica_fn(real, c_real, rnd):
            with tf.GradientTape() as tape:
                total, stats = step_fn(phase, real, c_real, rnd)
                scaled = self.loss.scale(total)                                # float16 only
            grads = [self.loss.unscale(g) for g in tape.gradient(scaled, model.trainable_weights)]
            # Regularisers do not reach every weight (R1 ignores D's output bias): None means zero.
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, model.trainable_weights)]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            ctx = tf.distribute.get_replica_context()
            bad_replicas = ctx.all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(finite, tf.float32))
            finite = bad_replicas < 0.5
            # With Adam beta1 = 0 a zero gradient moves no weight: a non-finite step is skipped.
            grads = [tf.where(finite, g, tf.zeros_like(g)) for g in grads]
            opt.apply_gradients(zip(grads, model.trainable_weights))
            means = {k: tf.reduce_mean(v) for k, v in stats.items()}
            return means, tf.cast(finite, tf.float32)

        @tf.function
        def step(real, c_real, rnd):
            means, finite = self.strategy.run(replica_fn, args=(real, c_real, rnd))
            reduce = lambda v: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)  # noqa: E731
            finite = reduce(finite)
            if self.cfg.mixed_precision == "fp16":                      # dynamic loss scale
                ok = finite > 0.5
                good = tf.where(ok, self.good_steps + 1, tf.zeros_like(self.good_steps))
                grow = good >= LOSS_SCALE_GROWTH_STEPS
                self.loss.loss_scale.assign(tf.where(ok, tf.where(grow, self.loss.loss_scale * 2.0,
                                                                  self.loss.loss_scale),
                                                     tf.maximum(self.loss.loss_scale * 0.5, 1.0)))
                self.good_steps.assign(tf.where(grow, tf.zeros_like(good), good))
            return {k: reduce(v) for k, v in means.items()}, finite

        return step

    def _ema_update(self, beta):
        for e, p in zip(self.G_ema.trainable_weights, self.G.trainable_weights):
            e.assign(p + (e - p) * beta)
        for e, p in zip(self.G_ema.non_trainable_weights, self.G.non_trainable_weights):
            e.assign(p)

    def _randomness(self, shape: tuple[int, int, int]) -> dict[str, tf.Tensor]:
        b, g = self.cfg.batch, self.G
        cut = self.rng.uniform([], 1, g.num_ws, dtype=tf.int32)
        use = self.rng.uniform([]) < self.cfg.style_mixing
        res = shape[0]
        return {"z": self.rng.normal([b, g.z_dim]), "z2": self.rng.normal([b, g.z_dim]),
                "cutoff": tf.where(use, cut, g.num_ws),
                "pl_noise": self.rng.normal([b // 2, *shape]) / np.sqrt(res * res),
                "eps": self.rng.uniform([b, 1, 1, 1])}

    # --------------------------------------------------------------------------------- images
    def grid_latents(self) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
        res = self.cfg.res
        gw, gh = int(np.clip(1024 // res, 4, 16)), int(np.clip(768 // res, 4, 12))
        z = np.random.RandomState(self.cfg.seed + 1).randn(gw * gh, self.G.z_dim).astype(np.float32)
        c = None
        if self.c_dim:
            c = np.eye(self.c_dim, dtype=np.float32)[np.arange(gw * gh) % self.c_dim]
        return z, c, (gw, gh)

    def fakes_grid(self) -> np.ndarray:
        z, c, (gw, _) = self.grid_latents()
        imgs = []
        for i in range(0, len(z), 32):
            out = self.G_ema(z[i:i + 32], None if c is None else c[i:i + 32], noise_mode="const",
                             lod=self.current_lod() if self.cfg.progressive else None)
            imgs.extend(to_uint8(out).numpy())
        return np.asarray(contact_sheet(imgs, gw))

    # --------------------------------------------------------------------------------- loop
    def current_lod(self) -> float:
        """Progressive growing's level of detail now (0: full resolution, always so without growing)."""
        cfg = self.cfg
        if not cfg.progressive:
            return 0.0
        return progressive_lod(int(self.cur_nimg.numpy()) / 1000, cfg.res, cfg.lod_initial_res,
                               cfg.lod_training_kimg, cfg.lod_transition_kimg)

    def level_res(self, lod: float) -> int:
        """The dataset level read at `lod`: the network resolution, or the current one when growing."""
        return self.cfg.res >> int(np.floor(lod + 1e-9))

    def _open_data(self, res: int, skip: int):
        """Distributed iterator over one dataset level, `skip` batches in."""
        cfg = self.cfg
        if worker_info(self.strategy)[2] > 1:
            # several hosts: every worker reads its own shard of the records (by file when the level has a
            # file per worker, else by record), batches of global / replicas
            def per_worker(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
                return make_dataset(cfg.data, res=res, batch_size=ctx.get_per_replica_batch_size(cfg.batch),
                                    seed=cfg.seed, mirror=cfg.mirror, skip=skip, input_context=ctx)
            return iter(self.strategy.distribute_datasets_from_function(per_worker))
        # one host: one global batch in global order, split over the replicas (so N GPUs == 1 GPU)
        ds = make_dataset(cfg.data, res=res, batch_size=cfg.batch, seed=cfg.seed, mirror=cfg.mirror, skip=skip)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return iter(self.strategy.experimental_distribute_dataset(ds.with_options(options)))

    def train(self, logger: Logger, resumed: bool) -> None:
        cfg = self.cfg
        data_res = self.level_res(self.current_lod())
        if cfg.progressive and int(self.res_level.numpy()) != data_res:   # (re)starting at a new level
            self.res_level.assign(data_res)
            self.res_batches.assign(0)
        # the data position: batches read so far (at the current level, when growing progressively)
        dist = self._open_data(data_res, int((self.res_batches if cfg.progressive else self.batch_idx).numpy()))
        shape = (cfg.res, cfg.res, self.channels)
        if not resumed:
            reals = next(iter(make_dataset(cfg.data, res=cfg.res, batch_size=len(self.grid_latents()[0]),
                                           seed=cfg.seed, as_uint8=True)))[0].numpy()
            contact_sheet(list(reals), self.grid_latents()[2][0]).save(self.run / "reals.png")
            grid = self.fakes_grid()
            contact_sheet([grid]).save(self.run / "fakes_init.png")
        total_nimg = cfg.kimg * 1000
        tick_start_nimg = int(self.cur_nimg.numpy())
        tick_start = time.time()
        start_time = tick_start
        acc: dict[str, list[float]] = {}
        consecutive_nonfinite = 0
        progress = Progress(total_nimg, desc="training", unit="img", enabled=sys.stderr.isatty())
        progress.count = tick_start_nimg
        logger.print(f"training {cfg.res}x{cfg.res} from {tick_start_nimg / 1000:.1f} kimg to {cfg.kimg} kimg, batch "
                     f"{cfg.batch} on {self.replicas} replica(s); phases "
                     + ", ".join(f"{p.name}/{p.interval}" for p in self.phases))
        while True:
            if cfg.progressive:
                lod = self.current_lod()
                self.loss.lod.assign(lod)
                if self.level_res(lod) != data_res:                        # the next resolution fades in
                    data_res = self.level_res(lod)
                    self.res_level.assign(data_res)
                    self.res_batches.assign(0)
                    dist = self._open_data(data_res, 0)
                    logger.print(f"progressive: reading the {data_res}x{data_res} level from "
                                 f"{int(self.cur_nimg.numpy()) / 1000:.1f} kimg (lod {lod:.3f})")
            real, c_real = next(dist)
            rnd = self._randomness(shape)
            it = int(self.batch_idx.numpy())
            any_nonfinite = False
            for phase in self.phases:
                if it % phase.interval:
                    continue
                stats, finite = self.steps[phase.name](real, c_real, rnd)
                self.phase_runs[phase.name] += 1
                for k, v in stats.items():
                    acc.setdefault(k, []).append(float(v))
                if float(finite) < 1:
                    any_nonfinite = True
            cur = int(self.cur_nimg.numpy()) + cfg.batch
            self.ema_step(tf.constant(ema_beta(cfg.batch, cfg.ema_kimg, cur, cfg.ema_rampup or None), tf.float32))
            self.cur_nimg.assign(cur)
            self.batch_idx.assign_add(1)
            if cfg.progressive:
                self.res_batches.assign_add(1)
            progress.update(cfg.batch)
            if any_nonfinite:
                self.nonfinite.assign_add(1)
                consecutive_nonfinite += 1
                if consecutive_nonfinite >= cfg.max_nonfinite:
                    raise UserError(f"{consecutive_nonfinite} consecutive iterations with non-finite gradients at "
                                    f"{cur / 1000:.1f} kimg; lower the learning rates or raise --gamma, then "
                                    f"--resume from the last checkpoint")
            else:
                consecutive_nonfinite = 0
            done = cur >= total_nimg
            if not done and cur < tick_start_nimg + cfg.kimg_per_tick * 1000:
                continue
            # ---- end of tick
            self.tick.assign_add(1)
            tick = int(self.tick.numpy())
            now = time.time()
            tick_time = now - tick_start
            tick_kimg = (cur - tick_start_nimg) / 1000
            mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
            stats = {k: float(np.mean(v)) for k, v in acc.items()}
            stats.update({"Progress/tick": tick, "Progress/kimg": cur / 1000,
                          "Timing/sec_per_tick": tick_time, "Timing/sec_per_kimg": tick_time / max(tick_kimg, 1e-9),
                          "Timing/img_per_sec": tick_kimg * 1000 / max(tick_time, 1e-9),
                          "Resources/peak_rss_gb": mem, "Progress/pl_mean": float(self.loss.pl_mean.numpy()),
                          "Progress/loss_scale": float(self.loss.loss_scale.numpy()),
                          "Progress/lod": self.current_lod(),
                          "Progress/nonfinite_total": int(self.nonfinite.numpy())})
            logger.stats(cur / 1000, stats)
            logger.print(f"tick {tick:<5d} kimg {cur / 1000:<8.1f} time {format_seconds(now - start_time):<10s} "
                         f"sec/tick {tick_time:<7.1f} sec/kimg {tick_time / max(tick_kimg, 1e-9):<7.2f} "
                         f"img/s {stats['Timing/img_per_sec']:<7.1f} mem {mem:.2f} GB "
                         f"G {stats.get('Loss/G/loss', float('nan')):.3f} "
                         f"D {stats.get('Loss/D/loss', float('nan')):.3f}")
            acc = {}
            if done or tick % cfg.snap == 0:
                self.snapshot(logger, cur)
            tick_start, tick_start_nimg = time.time(), cur
            if done:
                break
        progress.close()
        logger.print(f"done: {cur / 1000:.1f} kimg")

    def snapshot(self, logger: Logger, cur: int) -> None:
        kimg = cur // 1000
        grid = self.fakes_grid()
        contact_sheet([grid]).save(self.run / f"fakes{kimg:06d}.png")
        logger.image("fakes", grid, cur / 1000)
        save_bundle(self.run / f"network-snapshot-{kimg:06d}.keras", self.G_ema, self.G, self.D,
                    metadata={"kimg": cur / 1000, "resolution": self.cfg.res, "dataset": str(self.cfg.data),
                              "lod": self.current_lod()})
        path = self.manager.save(checkpoint_number=cur)
        logger.print(f"snapshot at {cur / 1000:.1f} kimg: {Path(path).name}, network-snapshot-{kimg:06d}.keras, "
                     f"fakes{kimg:06d}.png")
        if self.cfg.metrics:
            self.evaluate(logger, cur, f"network-snapshot-{kimg:06d}.keras")

    def evaluate(self, logger: Logger, cur: int, snapshot: str) -> None:
        """The configured metrics of G_ema: metric-<name>.jsonl rows, TensorBoard scalars, a log line each."""
        from metrics.inception import CACHE
        from metrics.metrics import Detector, compute_metrics, parse_metrics
        if getattr(self, "_detector", None) is None:
            self._detector = Detector()
        for row in compute_metrics(parse_metrics(self.cfg.metrics), self.G_ema, self.cfg.data, self._detector,
                                   CACHE / "metrics"):
            row = {"kimg": cur / 1000, "snapshot": snapshot, **row}
            with open(self.run / f"metric-{row['metric']}.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            logger.scalar(f"Metrics/{row['metric']}", row["value"], cur / 1000)
            logger.print(f"{row['metric']} {row['value']:.4f} ({row['seconds']:.0f} s)")


def run_training(cfg: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> Path:
    """Create (or resume) a run folder and train; returns the run folder."""
    strategy = strategy or make_strategy(cfg.strategy)
    chief, task, workers = worker_info(strategy)
    if not chief:
        # every worker runs the same steps (checkpoints and snapshots read variables collectively), but only
        # the chief writes the run folder; the others keep theirs under <outdir>/.worker<N>/
        cfg = dataclasses.replace(cfg, outdir=str(Path(cfg.outdir) / f".worker{task}"))
    resume_dir = find_resume(cfg)
    if resume_dir is not None:
        saved = json.loads((resume_dir / "training_options.json").read_text())
        kimg = cfg.kimg
        cfg = TrainConfig(**{**saved, "resume": cfg.resume})
        cfg.kimg = kimg                         # the only option a resumed run may change: how far to go
        run = resume_dir
    else:
        desc = f"{Path(cfg.data).name}-{cfg.cfg}-{cfg.res}"
        run = new_run_dir(cfg.outdir, desc)
        (run / "training_options.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    logger = Logger(run)
    trainer = Trainer(cfg, strategy, run)
    resumed = False
    if resume_dir is not None:
        trainer.ckpt.restore(trainer.manager.latest_checkpoint).expect_partial()
        resumed = True
        logger.print(f"resumed {run} at {int(trainer.cur_nimg.numpy()) / 1000:.3f} kimg "
                     f"(iteration {int(trainer.batch_idx.numpy())})")
    trainer.train(logger, resumed)
    return run


__all__ = ["run_training", "Trainer", "make_strategy"]
