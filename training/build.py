"""A run's networks, phases and optimizers, built from its config (and the network it starts from). Called inside
the strategy's scope, so every variable is a distributed one."""
from __future__ import annotations

from dataclasses import dataclass

import keras

from networks.stylegan2 import Discriminator, Generator
from training.config import TrainConfig
from training.loss import lazy_adam_params, make_phases
from training.transfer import copy_weights, freeze_layers

PRECISION = {"off": None, "fp16": "float16", "bf16": "bfloat16"}


@dataclass
class Networks:
    G: Generator
    G_ema: Generator
    D: Discriminator
    frozen: list[str]                  # D's layers not trained (--freezed)
    new_weights: list[str]             # weights a grown run adds to the network it starts from


def build_networks(cfg: TrainConfig, replicas: int, channels: int, c_dim: int, start_from=None) -> Networks:
    """G, G_ema and D of the run's architecture; G_ema a copy of G, or (start_from: a NetworkBundle) the three
    take that network's weights where they have them."""
    arch = dict(img_resolution=cfg.res, img_channels=channels, c_dim=c_dim, channel_base=cfg.cbase,
                channel_max=cfg.cmax, mixed_precision=PRECISION[cfg.mixed_precision],
                mixed_precision_res=cfg.fp16_res, conv_clamp=cfg.conv_clamp)
    g_kwargs = dict(**arch, z_dim=cfg.zdim, w_dim=cfg.wdim, mapping_layers=cfg.map)
    G = Generator(**g_kwargs, name="G")
    G_ema = Generator(**g_kwargs, name="G_ema")
    D = Discriminator(**arch, mbstd_group_size=min(cfg.mbstd_group, cfg.batch // replicas),
                      mbstd_num_channels=cfg.mbstd_channels, mapping_layers=cfg.dmap, progressive=cfg.progressive,
                      name="D")
    frozen = freeze_layers(D, cfg.freezed)                      # before an optimizer sees D's weights
    new_weights: list[str] = []
    if start_from is None:
        for a, b in zip(G_ema.weights, G.weights):
            a.assign(b)
    else:                                                        # transfer learning: the network's weights
        new_weights = copy_weights(G_ema, start_from.G_ema)     # blocks a grown run adds
        copy_weights(G, start_from.G if start_from.G is not None else start_from.G_ema)
        if start_from.D is not None:
            new_weights += copy_weights(D, start_from.D)
    return Networks(G, G_ema, D, frozen, new_weights)


def phases_and_optimizers(cfg: TrainConfig, G: Generator, D: Discriminator) -> tuple[list, dict]:
    """The training phases (main and lazy regularisation passes at their intervals) and an Adam per network whose
    learning rate and betas are corrected for its lazy regularisation interval."""
    has_reg = {"G": cfg.pl_weight > 0, "D": cfg.loss == "wgan-gp" or cfg.gamma > 0}
    intervals = {"G": cfg.g_reg_interval, "D": 1 if cfg.loss == "wgan-gp" else cfg.d_reg_interval}
    phases = make_phases(intervals["G"], intervals["D"], has_reg["G"], has_reg["D"])
    opts = {}
    for net, lr, model in (("G", cfg.glr, G), ("D", cfg.dlr, D)):
        lr_c, b1, b2 = lazy_adam_params(lr, (0.0, 0.99), intervals[net] if has_reg[net] else None)
        opt = keras.optimizers.Adam(learning_rate=lr_c, beta_1=b1, beta_2=b2, epsilon=1e-8, name=f"{net}_opt")
        opt.build(model.trainable_weights)
        opts[net] = opt
    return phases, opts
