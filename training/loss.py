"""StyleGAN2 objective as data: phases (G main, G reg, D main, D reg) with intervals, and their losses.

Every function here runs per replica inside `strategy.run`. Per-example losses are scaled with
`tf.nn.compute_average_loss(..., global_batch_size)` because the Keras optimizer sums gradients over
replicas. Each phase gets its own randomness from the caller: latents, the mixing cutoff and augmentation
parameters are drawn for the global batch and sliced per replica; per-pixel noise and path-length noise
are drawn on each replica for its own rows only, from per-row seeds (`row_seeds`: the phase's seed and the
row's global index). Either way a row's randomness depends only on the run's seed and its place in the
global batch, so the result does not depend on how many replicas share the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from networks.ops import setup_filter, stateless_normal_rows, upsample2d
from training.augment import AugmentPipe
from training.loss_scale import LossScaler

# one augmentation draw per place an image reaches D (folded into the iteration's seed)
AUG_KEYS = {"G_fake": 0, "D_fake": 1, "D_real": 2, "D_reg": 3}
# one stream of per-row seeds per use within a phase (folded into the phase's seed)
SEED_KEYS = {"noise": 0, "reg_noise": 1, "pl_noise": 2}


@dataclass(frozen=True)
class Phase:
    """One optimisation step of one network, run every `interval` iterations."""

    name: str            # Gmain | Greg | Gboth | Dmain | Dreg | Dboth
    net: str             # "G" or "D"
    interval: int        # run when iteration % interval == 0
    main: bool           # includes the adversarial loss
    reg: bool            # includes the regulariser (path length for G, R1 or gradient penalty for D)


def make_phases(g_reg_interval: int | None, d_reg_interval: int | None, g_reg: bool, d_reg: bool) -> list[Phase]:
    """Lazy regularisation splits main and reg phases; interval None/1 (or no regulariser) folds them."""
    phases = []
    for net, interval, has_reg in (("G", g_reg_interval, g_reg), ("D", d_reg_interval, d_reg)):
        if not has_reg:
            phases.append(Phase(f"{net}main", net, 1, True, False))
        elif interval is None or interval <= 1:
            phases.append(Phase(f"{net}both", net, 1, True, True))
        else:
            phases += [Phase(f"{net}main", net, 1, True, False), Phase(f"{net}reg", net, interval, False, True)]
    return phases


def lazy_adam_params(lr: float, betas: tuple[float, float], interval: int | None) -> tuple[float, float, float]:
    """(lr, beta1, beta2) corrected for lazy regularisation: c = k/(k+1); lr*c, beta1**c, beta2**c."""
    c = interval / (interval + 1) if interval and interval > 1 else 1.0
    return lr * c, betas[0] ** c, betas[1] ** c


def ema_beta(batch: int, ema_kimg: float, cur_nimg: int, rampup: float | None) -> float:
    """G_ema decay per iteration: 0.5 ** (batch / ema_nimg), ema_nimg optionally ramped up with training."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return float(0.5 ** (batch / max(ema_nimg, 1e-8)))


def _slice(t: tf.Tensor, n: int) -> tf.Tensor:
    """This replica's rows [rid*n, (rid+1)*n) of a global tensor."""
    rid = tf.distribute.get_replica_context().replica_id_in_sync_group
    return t[rid * n:(rid + 1) * n]


def row_seeds(seed: tf.Tensor, key: str, n) -> tf.Tensor:
    """int32 [n, 2]: one seed per row of this replica's n rows (global rows [rid*n, (rid+1)*n)), in the
    stream `key` of the phase seed [2]. Stateless generators hash their seed, so neighbouring seeds give
    independent streams."""
    base = tf.cast(tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), SEED_KEYS[key]), tf.int64)
    rid = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
    rows = rid * tf.cast(n, tf.int64) + tf.range(tf.cast(n, tf.int64))                          # [n]
    return tf.cast(tf.stack([tf.fill(tf.shape(rows), base[0]), base[1] + rows], axis=1), tf.int32)


class StyleGAN2Loss:
    """Losses of one training iteration; `pl_mean` is a mirrored variable shared by all replicas."""

    def __init__(self,
                 G,                                  # Generator being trained
                 D,                                  # Discriminator being trained
                 global_batch: int,                  # images per iteration over all replicas
                 loss: str = "stylegan2",            # stylegan2 (non-saturating logistic) | wgan-gp
                 r1_gamma: float = 10.0,             # R1 weight
                 pl_weight: float = 2.0,             # path-length weight (0: off)
                 pl_batch_shrink: int = 2,           # path length on batch / shrink images
                 pl_decay: float = 0.01,             # EMA decay of the path-length mean
                 style_mixing_prob: float = 0.9,     # probability of mixing two latents at a random layer
                 wgan_lambda: float = 10.0,          # WGAN-GP gradient-penalty weight
                 wgan_epsilon: float = 0.001,        # WGAN-GP drift weight
                 noise_mode: str = "random",         # per-pixel noise of G while training
                 progressive: bool = False,          # progressive growing: honour `lod`
                 scaler: LossScaler | None = None,   # float16 loss scaling (None: none)
                 augment: AugmentPipe | None = None,  # ADA pipeline applied to every D input (None: none)
                 ) -> None:
        self.G, self.D, self.global_batch = G, D, global_batch
        self.loss, self.r1_gamma, self.pl_weight = loss, r1_gamma, pl_weight
        self.pl_batch_shrink, self.pl_decay, self.style_mixing_prob = pl_batch_shrink, pl_decay, style_mixing_prob
        self.wgan_lambda, self.wgan_epsilon, self.noise_mode = wgan_lambda, wgan_epsilon, noise_mode
        self.progressive = progressive
        self.scaler = scaler or LossScaler(enabled=False)
        self.augment = augment
        self.pl_mean = tf.Variable(0.0, trainable=False, name="pl_mean", aggregation=tf.VariableAggregation.MEAN)
        # progressive growing: the level of detail, set by the training loop
        self.lod = tf.Variable(0.0, trainable=False, name="lod", aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def run_D(self, img, c, rnd: dict, key: str, fade: bool = False):
        """D's logits [n] (float32) of img [n, r, r, C], augmented first when a pipeline is set. The
        augmentation parameters are drawn for the global batch from the iteration's seed and sliced per
        replica, so the result does not depend on the number of replicas. `fade`: progressive growing, the
        image's resolution is fading in."""
        if self.augment is not None:
            seed = tf.random.experimental.stateless_fold_in(rnd["aug_seed"], AUG_KEYS[key])
            rid = tf.distribute.get_replica_context().replica_id_in_sync_group
            img = self.augment.rows(img, seed, self.global_batch, rid * tf.shape(img)[0])
        if not self.progressive:
            return tf.cast(self.D(img, c), tf.float32)[:, 0]
        return tf.cast(self.D(img, c, lod=self.lod if fade else None), tf.float32)[:, 0]

    def current_lod(self):
        return self.lod if self.progressive else None

    def process_reals(self, x, fade: bool = False):
        """Progressive growing: reals [n, r, r, C] read at the current level; while r fades in they are
        blended with their own 2x2 box average, FIR-upsampled as the generator's skip path carries the lower
        resolution, by the fade fraction (as ProGAN). Never upsampled to the network's resolution."""
        if not (self.progressive and fade):
            return x
        frac = self.lod - tf.floor(self.lod)
        low = upsample2d(tf.nn.avg_pool2d(x, 2, 2, "VALID"), setup_filter())          # [n, r, r, C]
        return x + (low - x) * frac

    def r1_gamma_at(self, res: int) -> float:
        """R1 weight at the resolution D reads: gamma * (res / R)^2 while growing. The penalty sums squared
        gradients over res^2 pixels; scaling by the pixel count keeps it what it would be on the image
        upsampled to R x R, and is StyleGAN2-ADA's heuristic gamma = 0.0002 * res^2 / batch at each level."""
        if not self.progressive:
            return self.r1_gamma
        return self.r1_gamma * (res / self.G.img_resolution) ** 2

    # ------------------------------------------------------------------------------------- generator
    def mapping(self, z, z2, c, cutoff, update_w_avg: bool = True):
        """ws [n, num_ws, w_dim] of z, with layers >= cutoff taken from z2 (style-mixing regularisation)."""
        G = self.G
        ws = G.mapping(z, c, update_w_avg=update_w_avg)                              # [n, L, w_dim]
        if self.style_mixing_prob > 0:
            ws2 = G.mapping(z2, c)
            ws = tf.where(tf.range(G.num_ws)[None, :, None] < cutoff, ws, ws2)
        return ws

    def synthesis(self, ws, res: int, seeds):
        """G's images [n, res, res, C] of ws: the full network, or while growing the blocks up to `res`.
        seeds: int32 [n, 2], each image's per-pixel noise seed (`row_seeds`)."""
        if not self.progressive:
            return self.G.synthesis(ws, noise_mode=self.noise_mode, noise_seeds=seeds)
        return self.G.synthesis(ws, noise_mode=self.noise_mode, lod=self.lod, res=res, noise_seeds=seeds)

    def run_G(self, z, c, z2, cutoff, res: int, seeds, update_w_avg: bool = True):
        """Images [n, res, res, C] and ws [n, num_ws, w_dim] (style-mixed at `cutoff`)."""
        ws = self.mapping(z, z2, c, cutoff, update_w_avg)
        return self.synthesis(ws, res, seeds), ws

    def g_step(self, phase: Phase, real, c_real, rnd: dict, fade: bool = False):
        """Per-replica G loss of `phase` (scaled for summation over replicas) and its statistics.

        real [n, r, r, C]: this replica's reals, at the resolution trained now (r = R unless growing).
        rnd: the phase's global randomness: z, z2 [GB, z_dim], cutoff [] int32, seed [2] int64 (per-row noise
        seeds), eps [GB, 1, 1, 1] (WGAN-GP), aug_seed [2] int64 (with augmentation). fade: progressive
        growing, r is fading in.
        """
        n = tf.shape(real)[0]
        res = real.shape[1]
        z, z2, cutoff = _slice(rnd["z"], n), _slice(rnd["z2"], n), rnd["cutoff"]
        stats = {}
        total = tf.constant(0.0)
        if phase.main:
            img, _ = self.run_G(z, c_real, z2, cutoff, res, row_seeds(rnd["seed"], "noise", n))
            logits = self.run_D(img, c_real, rnd, "G_fake", fade)                      # [n]
            per_example = -logits if self.loss == "wgan-gp" else tf.nn.softplus(-logits)
            total += tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
            stats["Loss/G/loss"] = per_example
            stats["Loss/scores/fake"] = logits
        if phase.reg and self.pl_weight > 0:
            m = n // self.pl_batch_shrink
            pl_rows = self.global_batch // self.pl_batch_shrink           # the first GB/shrink global latents,
            zs, z2s = _slice(rnd["z"][:pl_rows], m), _slice(rnd["z2"][:pl_rows], m)   # split evenly over replicas
            channels = real.shape[3]
            noise = stateless_normal_rows(row_seeds(rnd["seed"], "pl_noise", m), res * res * channels)
            noise = tf.reshape(noise, [m, res, res, channels]) / float(res)            # [m, r, r, C], / sqrt(r*r)
            with tf.GradientTape() as inner:
                ws = self.mapping(zs, z2s, c_real[:m], cutoff)
                inner.watch(ws)
                img = self.synthesis(ws, res, row_seeds(rnd["seed"], "reg_noise", m))   # [m, r, r, C]
                s = self.scaler.scale(tf.reduce_sum(tf.cast(img, tf.float32) * noise))   # reduced inside the tape
            grads = self.scaler.unscale(inner.gradient(s, ws))                           # [m, L, w_dim]
            lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=2), axis=1))   # [m]
            ctx = tf.distribute.get_replica_context()
            global_mean = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, tf.reduce_mean(lengths))
            pl_mean = self.pl_mean + (global_mean - self.pl_mean) * self.pl_decay
            self.pl_mean.assign(pl_mean)
            deviation = tf.square(lengths - pl_mean)                                     # [m]
            penalty = deviation * self.pl_weight
            total += tf.nn.compute_average_loss(penalty, global_batch_size=pl_rows) * float(phase.interval)
            # as NVIDIA's logs: the penalty unweighted, the weighted loss (before the lazy interval) as G/reg
            stats.update({"Loss/pl_penalty": deviation, "Loss/G/reg": penalty, "Loss/pl_length": lengths})
        return total, stats

    # ------------------------------------------------------------------------------------- discriminator
    def d_step(self, phase: Phase, real, c_real, rnd: dict, fade: bool = False):
        """Per-replica D loss of `phase` (scaled for summation over replicas) and its statistics; arguments
        as `g_step`."""
        real = self.process_reals(real, fade)                                           # [n, r, r, C]
        n = tf.shape(real)[0]
        res = real.shape[1]
        z, z2, cutoff = _slice(rnd["z"], n), _slice(rnd["z2"], n), rnd["cutoff"]
        stats = {}
        total = tf.constant(0.0)
        if phase.main:
            img, _ = self.run_G(z, c_real, z2, cutoff, res, row_seeds(rnd["seed"], "noise", n))
            fake_logits = self.run_D(tf.stop_gradient(img), c_real, rnd, "D_fake", fade)   # [n]
            real_logits = self.run_D(real, c_real, rnd, "D_real", fade)                    # [n]
            if self.loss == "wgan-gp":
                per_example = fake_logits - real_logits + self.wgan_epsilon * tf.square(real_logits)
            else:
                per_example = tf.nn.softplus(fake_logits) + tf.nn.softplus(-real_logits)
            total += tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
            stats.update({"Loss/D/loss": per_example, "Loss/scores/real": real_logits,
                          "Loss/scores/fake": fake_logits})
            # ADA's overfitting heuristic r_t = E[sign(D(real))]: drives p with --aug ada, and is a diagnostic
            # (how sure D is of the reals) in every run
            stats["Loss/signs/real"] = tf.sign(real_logits)
        if phase.reg:
            if self.loss == "wgan-gp":
                img, _ = self.run_G(z, c_real, z2, cutoff, res, row_seeds(rnd["seed"], "reg_noise", n),
                                    update_w_avg=False)
                eps = _slice(rnd["eps"], n)                                               # [n, 1, 1, 1]
                x = eps * real + (1 - eps) * tf.stop_gradient(img)
            else:
                x = real
            with tf.GradientTape() as inner:
                inner.watch(x)
                # R1 w.r.t. the un-augmented images, through the augmentation (as ADA)
                reg_logits = self.run_D(x, c_real, rnd, "D_reg", fade)                            # [n]
                s = self.scaler.scale(tf.reduce_sum(reg_logits))                                  # inside the tape
            if self.loss != "wgan-gp":
                # ADA counts this pass's reals in r_t too (a second, differently augmented view every
                # d_reg_interval iterations); a combined main + reg phase counts its reals once
                stats.setdefault("Loss/signs/real", tf.sign(reg_logits))
                stats.setdefault("Loss/scores/real", reg_logits)                 # as NVIDIA's: both passes
            g = self.scaler.unscale(inner.gradient(s, x))
            sq = tf.reduce_sum(tf.square(g), axis=[1, 2, 3])                              # [n]
            if self.loss == "wgan-gp":
                penalty = self.wgan_lambda * tf.square(tf.sqrt(sq + 1e-8) - 1.0)
                stats["Loss/gradient_penalty"] = penalty
            else:
                penalty = sq * (self.r1_gamma_at(res) / 2)
                stats.update({"Loss/r1_penalty": sq, "Loss/D/reg": penalty})       # unweighted; weighted
            total += tf.nn.compute_average_loss(penalty, global_batch_size=self.global_batch) * float(phase.interval)
        return total, stats
