"""The training loop: networks under tf.distribute, phases at their intervals, G_ema, ticks, snapshots, resume.

The trainer delegates: building the networks, phases and optimizers to `build`, the progressive schedule to
`schedule.Schedule`, the objective to `loss.StyleGAN2Loss`, float16 loss scaling to `loss_scale.LossScaler`,
counters and the checkpoint to `state.TrainingState`, statistics to `stats.StatsCollector` (read once per tick)
and `stats.Logger`, tick timing, the tick line and the non-finite guard to `report`, strategies to `distribute`.
What stays here: the compiled steps, G_ema and ADA updates, the data feed, the loop and snapshots. Metrics are
not imported here: the caller passes a factory of `evaluate(G_ema, snapshot, kimg)` functions that
compute the metrics named in the config and return their result rows.

Run folder `<outdir>/<NNNNN>-<desc>/`: training_options.json, log.txt, stats.jsonl, TensorBoard events,
reals.png, fakes_init.png, fakes<kimg>.png, checkpoints/ (tf.train.CheckpointManager) and
network-snapshot-<kimg>.keras (G_ema, G, D; loadable by run_generator.py).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import keras
import tensorflow as tf

from common.errors import UserError
from common.files import atomic_path, atomic_write
from common.images import contact_sheet
from common.progress import Progress
from datasets.reader import Level, damaged_record_message, make_dataset, open_level
from networks.ops import to_uint8
from networks.serialize import save_bundle
from networks.stylegan2 import Generator
from training.augment import BGC, AugmentPipe, ada_adjust
from training.config import ADA_INTERVAL, ADA_KIMG, TrainConfig, read_run_options
from training.distribute import input_pipeline, make_strategy, worker_info
from training.build import build_networks, phases_and_optimizers
from training.loss import StyleGAN2Loss, ema_beta
from training.loss_scale import LossScaler
from training.state import TrainingState
from training.report import NonfiniteGuard, TickTimer, tick_line
from training.schedule import Schedule
from training.transfer import find_resume
from training.stats import Logger, StatsCollector

Evaluate = Callable[[Generator, Path, float], Iterable[dict]]   # (G_ema, snapshot file, kimg) -> metric rows


class _PerStageSteps(logging.Filter):
    """Drops TensorFlow's warning that a step function was traced several times: the trainer compiles one step
    per phase and stage by design (a grown run meets three stages within its first iterations)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_PerStageSteps())


def new_run_dir(outdir: str, desc: str) -> Path:
    """<outdir>/<NNNNN>-<desc>, numbered after the runs already there."""
    Path(outdir).mkdir(parents=True, exist_ok=True)
    ids = [int(m[1]) for p in Path(outdir).iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    run = Path(outdir) / f"{max(ids, default=-1) + 1:05d}-{desc}"
    run.mkdir()
    return run


class Trainer:
    """Builds networks, optimizers and one compiled step per phase; `train()` runs to cfg.kimg."""

    def __init__(self, cfg: TrainConfig, strategy: tf.distribute.Strategy, run: Path,
                 evaluate: Evaluate | None = None, start_from=None, level: Level | None = None) -> None:
        """start_from: a NetworkBundle whose G, D and G_ema the new run starts from (cfg.transfer says which).
        level: the dataset's level cfg.res when the caller has opened it (else it is opened here)."""
        if cfg.ada_kimg is None:                # a config that did not go through resolve(): its default
            cfg = dataclasses.replace(cfg, ada_kimg=ADA_KIMG)
        self.cfg, self.strategy, self.run, self.evaluate = cfg, strategy, run, evaluate
        self.replicas = strategy.num_replicas_in_sync
        self.level = open_level(level if level is not None else cfg.data, cfg.res)
        self.c_dim = self.level.label_dim if cfg.cond else 0
        if cfg.cond and not self.c_dim:
            raise UserError(f"--cond: the dataset {cfg.data} has no labels")
        self.channels = self.level.channels
        # TensorFloat-32 (Ampere and newer GPUs): TF's default is on; StyleGAN2-ADA turns it off
        tf.config.experimental.enable_tensor_float_32_execution(cfg.tf32 == "on")
        keras.utils.set_random_seed(cfg.seed)
        with strategy.scope():
            nets = build_networks(cfg, self.replicas, self.channels, self.c_dim, start_from)
            self.G, self.G_ema, self.D = nets.G, nets.G_ema, nets.D
            self.frozen, self.new_weights = nets.frozen, nets.new_weights
            self.phases, self.opts = phases_and_optimizers(cfg, self.G, self.D)
            self.scaler = LossScaler(enabled=cfg.mixed_precision == "fp16")
            self.augment = None
            if cfg.aug in ("ada", "fixed"):
                self.augment = AugmentPipe(p=cfg.p if cfg.aug == "fixed" else 0.0, **BGC)
                self.augment.static_shapes = cfg.jit == "on"
                only_first = tf.VariableAggregation.ONLY_FIRST_REPLICA
                # ADA: sum and count of the batch means of sign(D(real)) since the last adjustment, last r_t
                self.ada_acc = tf.Variable([0.0, 0.0], trainable=False, name="ada_acc", aggregation=only_first)
                self.ada_rt = tf.Variable(0.0, trainable=False, name="ada_rt", aggregation=only_first)
            self.loss = StyleGAN2Loss(self.G, self.D, cfg.batch, loss=cfg.loss, r1_gamma=cfg.gamma,
                                      pl_weight=cfg.pl_weight, style_mixing_prob=cfg.style_mixing,
                                      noise_mode=cfg.noise_mode, progressive=cfg.progressive, scaler=self.scaler,
                                      augment=self.augment)
        self.rng = tf.random.Generator.from_seed(cfg.seed)   # every random draw of training (checkpointed)
        extra = {}                  # new keys only: checkpoints of runs without augmentation are unchanged
        if self.augment is not None:
            extra = dict(augment_p=self.augment.p, ada_acc=self.ada_acc, ada_rt=self.ada_rt)
        self.state = TrainingState(run / "checkpoints", cfg.keep, G=self.G, G_ema=self.G_ema, D=self.D,
                                   G_opt=self.opts["G"], D_opt=self.opts["D"], pl_mean=self.loss.pl_mean,
                                   rng=self.rng, loss_scale=self.scaler.loss_scale,
                                   good_steps=self.scaler.good_steps, **extra)
        self.stats = StatsCollector()
        self.schedule = Schedule(cfg)
        self.phase_runs: dict[str, int] = dict.fromkeys((p.name for p in self.phases), 0)
        # one compiled step per phase and stage (resolution, fading): one stage without growing
        self.steps: dict[tuple[str, int, bool], Callable] = {}
        self.ema_step = tf.function(self._ema_update, autograph=False)
        self.ada_step = tf.function(self._ada_update, autograph=False)

    # --------------------------------------------------------------------------------- compiled steps
    def _step(self, phase, stage: tuple[int, bool]):
        """The compiled step of `phase` at `stage` (resolution, fading), compiled on first use."""
        key = (phase.name, *stage)
        if key not in self.steps:
            self.steps[key] = self._compile_phase(phase, fade=stage[1])
        return self.steps[key]

    def gradients_fn(self, phase, fade: bool = False) -> Callable:
        """(real, c_real, rnd) -> (gradients, statistics, finite): the phase's loss and its gradients on one
        replica's rows, XLA-compiled with --jit on (called inside strategy.run)."""
        model = self.G if phase.net == "G" else self.D
        step_fn = self.loss.g_step if phase.net == "G" else self.loss.d_step

        def gradients(real, c_real, rnd):
            """The phase's loss, its gradients and statistics on this replica's rows (XLA-compiled with --jit on)."""
            real = tf.cast(real, tf.float32) / 127.5 - 1.0      # uint8 [n, r, r, C] travels; [-1, 1] here
            with tf.GradientTape() as tape:
                total, stats = step_fn(phase, real, c_real, rnd, fade=fade)
                scaled = self.scaler.scale(total)                              # float16 only
            grads = [self.scaler.unscale(g) for g in tape.gradient(scaled, model.trainable_weights)]
            # Regularisers do not reach every weight (R1 ignores D's output bias): None means zero.
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, model.trainable_weights)]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            return grads, stats, finite

        return tf.function(gradients, jit_compile=True, autograph=False) if self.cfg.jit == "on" else gradients

    def _compile_phase(self, phase, fade: bool = False):
        model = self.G if phase.net == "G" else self.D
        opt = self.opts[phase.net]
        running = self.running_stats()
        gradients = self.gradients_fn(phase, fade)

        def replica_fn(real, c_real, rnd):
            before = [tf.identity(tf.convert_to_tensor(v)) for v in running]   # before the forward pass updates them
            grads, stats, finite = gradients(real, c_real, rnd)
            ctx = tf.distribute.get_replica_context()
            bad_replicas = ctx.all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(finite, tf.float32))
            finite = bad_replicas < 0.5
            # With Adam beta1 = 0 a zero gradient moves no weight: a non-finite step is skipped, and the
            # running statistics it updated (w_avg, the path-length mean) go back to their values before it.
            grads = [tf.where(finite, g, tf.zeros_like(g)) for g in grads]
            opt.apply_gradients(zip(grads, model.trainable_weights))
            for v, old in zip(running, before):
                v.assign(tf.where(finite, v, old))
            means = {k: tf.reduce_mean(v) for k, v in stats.items()}
            return means, tf.cast(finite, tf.float32)

        # autograph=False here and in every tf.function of the library: none has tensor-dependent Python control
        # flow, and converting the ~150 functions a training step calls cost seconds at every start.
        @tf.function(autograph=False)
        def step(real, c_real, rnd):
            means, finite = self.strategy.run(replica_fn, args=(real, c_real, rnd))
            reduce = lambda v: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)  # noqa: E731
            finite = reduce(finite)
            self.scaler.update(finite)
            return {k: reduce(v) for k, v in means.items()}, finite

        return step

    def running_stats(self) -> list[tf.Variable]:
        """Non-trainable statistics that a step updates in its forward pass (kept only from finite steps)."""
        out = [self.loss.pl_mean]
        if hasattr(self.G.mapping, "w_avg"):
            out.append(self.G.mapping.w_avg)
        return out

    def _ema_update(self, beta):
        """G_ema <- G + (G_ema - G) * beta, on every device from its own copies (strategy.extended.update):
        no variable travels between devices."""
        ext = self.strategy.extended
        lerp = lambda e, p, b: e.assign(p + (e - p) * b)      # noqa: E731
        copy = lambda e, p: e.assign(p)                      # noqa: E731
        for e, p in zip(self.G_ema.trainable_weights, self.G.trainable_weights):
            ext.update(e.value, lerp, args=(p.value, beta))                 # .value: the tf.distribute variable
        for e, p in zip(self.G_ema.non_trainable_weights, self.G.non_trainable_weights):
            ext.update(e.value, copy, args=(p.value,))

    def _ada_update(self, signs: tf.Tensor, count: tf.Tensor, adjust: tf.Tensor) -> None:
        """Accumulate one iteration's `count` batch means of sign(D(real)) (summed in `signs`, each already
        averaged over replicas; 2 in iterations with an R1 pass); when `adjust`, move p by
        sign(r_t - target) * batch * interval / (ada_kimg * 1000), floored at 0 (on device)."""
        signs = tf.cast(signs, tf.float32)
        ok = tf.math.is_finite(signs)                  # a skipped (non-finite) step reports nothing
        acc = self.ada_acc + tf.where(ok, tf.stack([signs, tf.cast(count, tf.float32)]), 0.0)
        rt = acc[0] / tf.maximum(acc[1], 1.0)
        p = ada_adjust(self.augment.p, rt, self.cfg.target, self.cfg.batch, ADA_INTERVAL, self.cfg.ada_kimg)
        self.augment.p.assign(tf.where(adjust, p, self.augment.p))
        self.ada_rt.assign(tf.where(adjust, rt, self.ada_rt))
        self.ada_acc.assign(tf.where(adjust, tf.zeros_like(acc), acc))

    def _randomness(self, res: int, phase) -> dict[str, tf.Tensor]:
        """The randomness of one phase at resolution `res`, fresh for every phase (as the reference draws
        per phase): global latents and cutoff (sliced over replicas by the loss), and a seed from which each
        replica draws its rows' per-pixel and path-length noise. The style-mixing cutoff is drawn among the
        layers that run at res (as StyleGAN v1 while growing)."""
        b, g = self.cfg.batch, self.G
        active = g.num_ws - 2 * int(np.log2(self.cfg.res // res))            # 2 ws per resolution not run
        cut = self.rng.uniform([], 1, active, dtype=tf.int32)
        use = self.rng.uniform([]) < self.cfg.style_mixing
        rnd = {"z": self.rng.normal([b, g.z_dim]), "z2": self.rng.normal([b, g.z_dim]),
               "cutoff": tf.where(use, cut, g.num_ws), "seed": self.rng.make_seeds(1)[:, 0]}
        if phase.net == "D" and phase.reg and self.cfg.loss == "wgan-gp":
            rnd["eps"] = self.rng.uniform([b, 1, 1, 1])
        if self.augment is not None:
            rnd["aug_seed"] = self.rng.make_seeds(1)[:, 0]
        return rnd

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
        return self.schedule.lod(self.state.nimg)

    def reset_optimizers(self) -> None:
        """Zero the Adam moments and step counts, as ProGAN / StyleGAN v1 (`reset_opt_for_new_lod`) when
        layers are introduced: a block that starts training late would otherwise take its first steps
        with Adam's bias correction of a long-running optimizer, about 1/sqrt(1 - beta2) = 10x too large."""
        for opt in self.opts.values():
            opt.iterations.assign(0)
            for v in [*opt._momentums, *opt._velocities]:
                v.assign(tf.zeros_like(v))

    def _open_data(self, res: int, batches: int) -> Iterator[tuple]:
        """Batches of one dataset level, `batches` global batches in, as the step takes them: (images, labels),
        split into per-replica values when there are several replicas. Every input pipeline skips the records
        it fed to those batches (global batch / pipelines each), inside its current epoch.

        One host reads one global batch in global order and hands each replica its consecutive slice (so N
        GPUs == 1 GPU); several hosts each read their own shard of the records (by file when the level has a
        file per worker, else by record) and split their batch over their replicas. The slices are made here
        rather than by tf.distribute's dataset wrappers: those add an autotuning pipeline per device whose
        deletion stalls for up to a minute (see datasets.reader.fixed_pipeline), at every run's end and level
        switch (measured: 55 s in each worker of a two-worker run)."""
        cfg = self.cfg
        index, workers = input_pipeline(self.strategy)
        context = (tf.distribute.InputContext(num_input_pipelines=workers, input_pipeline_id=index,
                                              num_replicas_in_sync=self.replicas) if workers > 1 else None)
        per_pipeline = cfg.batch // workers
        data = iter(make_dataset(self.level, res=res, batch_size=per_pipeline, seed=cfg.seed, mirror=cfg.mirror,
                                 input_context=context, skip_records=batches * per_pipeline,
                                 as_uint8=True))                               # 1 byte a value to the devices
        if self.replicas == 1:
            return data
        local = self.replicas // workers                                       # replicas of this worker
        per_replica = per_pipeline // local

        def split(batch: tuple[tf.Tensor, tf.Tensor]) -> tuple:
            def part(ctx: tf.distribute.ValueContext) -> tuple[tf.Tensor, tf.Tensor]:
                i = ctx.replica_id_in_sync_group % local * per_replica         # this worker's replicas in order
                return batch[0][i:i + per_replica], batch[1][i:i + per_replica]
            return self.strategy.experimental_distribute_values_from_function(part)
        return map(split, data)

    def _switch_level(self, data_res: int) -> None:
        self.state.level_res, self.state.level_batches = data_res, 0

    def train(self, logger: Logger, resumed: bool) -> None:
        cfg, st = self.cfg, self.state
        total_nimg = round(cfg.kimg * 1000)
        if st.nimg >= total_nimg:
            logger.print(f"already at {st.nimg / 1000:.3f} kimg, not below --kimg {cfg.kimg}: nothing to train")
            return
        data_res = self.schedule.stage(st.nimg)[0]
        if cfg.progressive and st.level_res != data_res:                    # (re)starting at a new level
            self._switch_level(data_res)
        # the data position: batches read so far (at the current level, when growing progressively)
        dist = self._open_data(data_res, st.level_batches if cfg.progressive else st.iteration)
        if not resumed:
            reals = next(iter(make_dataset(self.level, res=cfg.res, batch_size=len(self.grid_latents()[0]),
                                           seed=cfg.seed, as_uint8=True)))[0].numpy()
            for name, sheet in (("reals.png", contact_sheet(list(reals), self.grid_latents()[2][0])),
                                ("fakes_init.png", contact_sheet([self.fakes_grid()]))):
                with atomic_path(self.run / name) as tmp:
                    sheet.save(tmp, format="PNG")
            if cfg.transfer is not None:             # kimg 0 of a run from a network: that network, scored
                self.snapshot(logger)                # on the new data (StyleGAN2-ADA's snapshot 000000)
        timer = TickTimer(st.nimg)
        guard = NonfiniteGuard([p.name for p in self.phases], cfg.max_nonfinite)
        tick_nonfinite = st.nonfinite_total
        progress = Progress(total_nimg, desc="training", unit="img", enabled=sys.stderr.isatty())
        progress.count = st.nimg
        logger.print(f"training {cfg.res}x{cfg.res} from {st.nimg / 1000:.1f} kimg to {cfg.kimg} kimg, batch "
                     f"{cfg.batch} on {self.replicas} replica(s); phases "
                     + ", ".join(f"{p.name}/{p.interval}" for p in self.phases)
                     + {"ada": f"; augmentation ada (target {cfg.target}, {cfg.ada_kimg} kimg per unit of p)",
                        "fixed": f"; augmentation fixed (p {cfg.p})"}.get(cfg.aug or "off", "; no augmentation")
                     + (f"; {cfg.mixed_precision} in the {cfg.fp16_res} highest resolutions"
                        if cfg.mixed_precision != "off" else ""))
        stage = self.schedule.stage(st.nimg)
        if cfg.progressive:
            logger.print(self.schedule.message(st.nimg))
        while True:
            if cfg.progressive:
                lod = self.current_lod()
                self.loss.lod.assign(lod)
                stage = self.schedule.stage(st.nimg)
                if self.schedule.changes(st.nimg, cfg.batch):                  # at the same iteration on resume
                    self.reset_optimizers()
                    logger.print(self.schedule.message(st.nimg) + "; optimizer state reset")
                if stage[0] != data_res:                                   # the next resolution fades in
                    data_res = stage[0]
                    self._switch_level(data_res)
                    dist = self._open_data(data_res, 0)
                    logger.print(f"progressive: reading the {data_res}x{data_res} level from "
                                 f"{st.nimg / 1000:.1f} kimg (lod {lod:.3f})")
            try:
                real, c_real = next(dist)
            except tf.errors.OpError as exc:
                raise UserError(f"cannot read {cfg.data}: {damaged_record_message(exc)}") from None
            signs, n_signs = 0.0, 0                      # batch means of sign(D(real)) this iteration (ADA)
            for phase in self.phases:
                if st.iteration % phase.interval:
                    continue
                stats, finite = self._step(phase, stage)(real, c_real, self._randomness(stage[0], phase))
                self.phase_runs[phase.name] += 1
                self.stats.report(stats)
                guard.phase(phase.name, finite)
                if cfg.aug == "ada" and "Loss/signs/real" in stats:      # only ada feeds r_t back into p
                    signs, n_signs = signs + stats["Loss/signs/real"], n_signs + 1
            guard.iteration_done()
            st.nimg += cfg.batch
            st.iteration += 1
            if cfg.progressive:
                st.level_batches += 1
            if n_signs:
                self.ada_step(signs, tf.constant(float(n_signs)), tf.constant(st.iteration % ADA_INTERVAL == 0))
            self.ema_step(tf.constant(ema_beta(cfg.batch, cfg.ema_kimg, st.nimg, cfg.ema_rampup or None), tf.float32))
            progress.update(cfg.batch)
            done = st.nimg >= total_nimg
            end_of_tick = done or st.nimg >= timer.nimg + cfg.kimg_per_tick * 1000
            if end_of_tick or st.iteration % cfg.max_nonfinite == 0:           # read the device counters
                st.nonfinite_total += guard.check(st.nimg / 1000)
            if not end_of_tick:
                continue
            # ---- end of tick
            st.tick += 1
            stats = {**timer.end(st.tick, st.nimg), **self.stats.collect(),
                     "Progress/pl_mean": float(self.loss.pl_mean.numpy()),
                     "Progress/loss_scale": float(self.scaler.loss_scale.numpy()),
                     "Progress/lod": self.current_lod(), "Progress/nonfinite_total": st.nonfinite_total}
            if self.augment is not None:
                stats["Progress/augment"] = float(self.augment.p.numpy())
                stats["Progress/rt"] = (float(self.ada_rt.numpy()) if cfg.aug == "ada"
                                        else stats.get("Loss/signs/real", float("nan")))
            logger.stats(st.nimg / 1000, stats)
            if st.nonfinite_total > tick_nonfinite:
                logger.print(f"skipped {st.nonfinite_total - tick_nonfinite} iteration(s) with non-finite gradients "
                             f"this tick ({st.nonfinite_total} in all); weights and running statistics kept, "
                             f"loss scale {stats['Progress/loss_scale']:g}")
                tick_nonfinite = st.nonfinite_total
            logger.print(tick_line(stats, timer.total()))
            if done or st.tick % cfg.snap == 0:
                self.snapshot(logger)
            timer.start(st.nimg)
            if done:
                break
        progress.close()
        logger.print(f"done: {st.nimg / 1000:g} kimg")

    def snapshot_tag(self) -> str:
        """`000096` (kimg, as NVIDIA's names), or `000096.008` when the image count is not a whole kimg:
        names never collide, whatever the tick length, batch or final --kimg."""
        nimg = self.state.nimg
        return f"{nimg // 1000:06d}" if nimg % 1000 == 0 else f"{nimg / 1000:010.3f}"

    def snapshot_metadata(self) -> dict:
        """What a snapshot records: this run's kimg and `kimg_total`, the kimg the weights have trained in all (for
        a run from a trained network, its kimg plus this run's; absent when its count is unknown), which a run
        started from the snapshot reports."""
        kimg = self.state.nimg / 1000
        meta = {"kimg": kimg, "resolution": self.cfg.res, "dataset": str(self.cfg.data), "lod": self.current_lod()}
        base = (self.cfg.transfer or {}).get("kimg", 0.0)
        if isinstance(base, (int, float)):
            meta["kimg_total"] = base + kimg
        return meta

    def snapshot(self, logger: Logger) -> None:
        """fakes<kimg>.png, network-snapshot-<kimg>.keras, a checkpoint, and the metrics if any."""
        nimg = self.state.nimg
        tag = self.snapshot_tag()
        grid = self.fakes_grid()
        with atomic_path(self.run / f"fakes{tag}.png") as tmp:
            contact_sheet([grid]).save(tmp)
        logger.image("fakes", grid, nimg / 1000)
        lod = self.current_lod()
        for G in (self.G, self.G_ema):
            G.lod = lod                          # saved with the network: a snapshot renders as trained
        snap = self.run / f"network-snapshot-{tag}.keras"
        save_bundle(snap, self.G_ema, self.G, self.D, metadata=self.snapshot_metadata())
        path = self.state.save()
        logger.print(f"snapshot at {nimg / 1000:.3f} kimg: {Path(path).name}, {snap.name}, fakes{tag}.png")
        if self.evaluate is not None:
            for row in self.evaluate(self.G_ema, snap, nimg / 1000):
                logger.scalars(nimg / 1000, {f"Metrics/{row['metric']}": row["value"]})
                logger.print(f"{row['metric']} {row['value']:.4f} ({row['seconds']:.0f} s)")


def load_transfer_source(cfg: TrainConfig):
    """The network a new run starts from (cfg.transfer) and the lines that say what is taken from it."""
    from networks.locate import sha256_of
    from networks.serialize import load_network
    t = cfg.transfer
    path = Path(t["file"])
    if not path.exists():
        raise UserError(f"the network this run starts from, {path}, is gone ({t['source']}); it is needed only "
                        "until the first checkpoint")
    if path.is_file() and t.get("sha256") and sha256_of(path) != t["sha256"]:
        raise UserError(f"{path} changed since the run was configured (sha256 differs from training_options.json)")
    bundle = load_network(path)
    kimg = f", trained {t['kimg']:g} kimg" if isinstance(t.get("kimg"), (int, float)) else ""
    notes = [f"starting a new run from the network {t['source']} ({t['format']}{kimg}): G_ema, "
             + ("G" if bundle.G is not None else "G (a copy of G_ema: the network has no G)")
             + (" and D" if bundle.D is not None else "")
             + " copied; kimg 0, fresh optimizers"]
    if t.get("grown_from"):
        r0, r = t["grown_from"], cfg.res
        notes.append(f"growing the network from {r0}x{r0} to {r}x{r}: G's and D's blocks up to {r0}x{r0} come from "
                     f"it; the new ones (b{r0 * 2}" + (f"..b{r}" if r > 2 * r0 else "") + ") fade in over "
                     f"{cfg.lod_transition_kimg:g} kimg from kimg {cfg.lod_training_kimg:g}")
    if bundle.D is None:
        notes.append(f"warning: {t['source']} has no discriminator (a G_ema-only network): D starts from random "
                     "weights")
    return bundle, notes


def run_training(cfg: TrainConfig, strategy: tf.distribute.Strategy | None = None,
                 metrics: Callable[[TrainConfig], Evaluate] | None = None, level: Level | None = None) -> Path:
    """Create (or resume) a run folder and train; returns the run folder. When the run's options name
    metrics, `metrics(cfg)` makes the `evaluate(G_ema, snapshot, kimg)` run at every snapshot (it returns
    rows with `metric`, `value`, `seconds`). `level`: the dataset level of a new run, when the caller has
    opened it."""
    strategy = strategy or make_strategy(cfg.strategy)
    chief, task, _ = worker_info(strategy)
    # Every worker runs the same steps (checkpoints and snapshots read variables collectively), but each
    # writes only inside its own place: the chief the run folder, worker N <outdir>/.worker<N>/<run name>/.
    # A resumed run is found and restored from the chief's run folder by every worker (read only).
    resume_dir = find_resume(cfg)
    if resume_dir is not None:
        saved = read_run_options(resume_dir)
        cfg = dataclasses.replace(saved, resume=cfg.resume, kimg=cfg.kimg)        # only kimg may change
    if cfg.metrics and metrics is None:
        raise UserError(f"the run's options name metrics ({cfg.metrics}) but no evaluator was passed: "
                        "run_training(..., metrics=...) (run_training.py passes metrics.snapshot_evaluator)")
    notes: list[str] = []
    start_from = None
    if cfg.transfer and resume_dir is None:             # a new run from a trained network: read before any folder
        start_from, notes = load_transfer_source(cfg)
    if resume_dir is not None:
        run = resume_dir if chief else resume_dir.parent / f".worker{task}" / resume_dir.name
        run.mkdir(parents=True, exist_ok=True)
    else:
        outdir = cfg.outdir if chief else str(Path(cfg.outdir) / f".worker{task}")
        run = new_run_dir(outdir, f"{Path(cfg.data).name}-{cfg.cfg}-{cfg.res}")
    if not (run / "training_options.json").exists():
        with atomic_write(run / "training_options.json") as f:
            f.write(json.dumps(cfg.to_dict(), indent=2))
    trainer = Trainer(cfg, strategy, run, metrics(cfg) if cfg.metrics and chief else None, start_from=start_from,
                      level=level if resume_dir is None else None)
    if trainer.frozen:
        notes.append(f"--freezed {cfg.freezed}: D's layers {', '.join(trainer.frozen)} are not trained")
    if resume_dir is not None:                  # before anything is written: an unresumable run stays untouched
        trainer.state.restore_latest(log=notes.append, source=resume_dir / "checkpoints")
    logger = Logger(run)
    for note in notes:
        logger.print(note)
    if resume_dir is not None:
        logger.print(f"resumed {run} at {trainer.state.nimg / 1000:.3f} kimg (iteration {trainer.state.iteration}): "
                     "its networks, optimizers, augmentation and random state")
    trainer.train(logger, resumed=resume_dir is not None)
    logger.close()
    return run


__all__ = ["Evaluate", "Trainer", "find_resume", "run_training"]
