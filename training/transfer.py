"""Starting a run from a trained network (transfer learning), as StyleGAN2-ADA's `train.py --resume=PKL`.

`--resume` means one of two things. A run folder (or `latest`) continues that run: its kimg, optimizer,
ADA and random state. Anything else `--network` takes (an NVIDIA pickle, URL or published name, one of our
`.keras` snapshots or a folder of them, the shipped `utkface-64`) starts a new run at kimg 0 with fresh
optimizers from the network's G, D and G_ema. The architecture then comes from the network; the preset sets
only the training hyperparameters. Flags or a dataset that contradict the network are one-line errors.

A `--res` above the network's grows it: the run trains at `--res`, its blocks up to the network's resolution
(G's and D's) come from the network and the new ones fade in over them, as progressive growing does
(`lod_initial_res` is the network's resolution, `lod_training_kimg` 0 unless given). At kimg 0 G draws the
network's faces brought to the new size.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import re

from common.errors import UserError
from training.config import TrainConfig

ADA_KIMG_TRANSFER = 100     # StyleGAN2-ADA: p may move 0 -> 1 in 100 kimg when starting from a network


def continues_run(resume: str | None) -> bool:
    """True when `--resume` names a run to continue ('latest' or a folder holding checkpoints/), False when it
    names a network to start from (or is not given)."""
    if not resume:
        return False
    return resume == "latest" or (Path(resume) / "checkpoints").is_dir()


def find_resume(cfg: TrainConfig) -> Path | None:
    """The run folder to continue (`cfg.resume`: a folder or 'latest' under cfg.outdir), or None (a new run,
    perhaps from the network `cfg.resume` names)."""
    if not continues_run(cfg.resume):             # not given, or a network to start a new run from
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


def architecture(bundle) -> dict:
    """The options of `bundle`'s networks that define a run's architecture, as TrainConfig fields."""
    g = bundle.G_ema.get_config()
    out = dict(res=g["img_resolution"], channels=g["img_channels"], c_dim=g["c_dim"], zdim=g["z_dim"],
               wdim=g["w_dim"], map=g["mapping_layers"], cbase=g["channel_base"], cmax=g["channel_max"],
               fp16_res=g.get("mixed_precision_res", 4), conv_clamp=g.get("conv_clamp"))
    lod = float(g.get("lod") or 0.0)
    if lod > 0:
        raise UserError(f"the network is a snapshot taken while growing (level of detail {lod:g}, not yet all "
                        f"{out['res']}x{out['res']}); start from one taken after its last fade-in")
    if bundle.D is not None:
        d = bundle.D.get_config()
        out.update(mbstd_group=d["mbstd_group_size"], mbstd_channels=d["mbstd_num_channels"],
                   dmap=d["mapping_layers"])
        for key, g_value in (("channel_base", out["cbase"]), ("channel_max", out["cmax"]),
                             ("img_resolution", out["res"]), ("c_dim", out["c_dim"])):
            if d[key] != g_value:
                raise UserError(f"the network's D has {key} {d[key]} and its G {g_value}; "
                                "not a network this project can train")
    return out


def apply_network(cfg: TrainConfig, bundle, source: str, file: Path, sha256: str, data_res: list[int],
                  data_channels: int | None, data_labels: int) -> TrainConfig:
    """`cfg` with the architecture of `bundle` (loaded from `file`, named `source` by the user) and a record of
    where its weights come from; UserError naming both values when a flag the user passed or the dataset
    (its levels `data_res`, channels at the network's resolution, label size) contradicts the network."""
    arch = architecture(bundle)
    name = f"the network {source}"
    res = arch["res"]
    if cfg.res is not None and cfg.res < res:
        raise UserError(f"--res {cfg.res} contradicts {name}, which has res {res}; leave --res out (the "
                        f"architecture comes from the network), or pass a higher --res to grow it")
    checks = {"map": "--map", "cbase": "--cbase", "cmax": "--cmax"}
    for key, flag in checks.items():
        given = getattr(cfg, key)
        if given is not None and given != arch[key]:
            raise UserError(f"{flag} {given} contradicts {name}, which has {key} {arch[key]}; leave {flag} out "
                            "(the architecture comes from the network)")
    if cfg.progressive:
        raise UserError(f"--progressive grows a network from a low resolution; it cannot start from {name} "
                        f"(a --res above its {res} grows it from there)")
    grow = cfg.res is not None and cfg.res > res
    if grow and cfg.res not in data_res:
        raise UserError(f"--res {cfg.res}: the dataset {cfg.data} has no {cfg.res}x{cfg.res} level (it has "
                        f"{', '.join(str(r) for r in data_res)})")
    if res not in data_res:
        raise UserError(f"{name} makes {res}x{res} images, but the dataset {cfg.data} has no {res}x{res} level "
                        f"(it has {', '.join(str(r) for r in data_res)}); rebuild it with dataset_tool/create.py "
                        f"--res {res}")
    if data_channels is not None and data_channels != arch["channels"]:
        raise UserError(f"{name} makes {arch['channels']}-channel images, but the dataset {cfg.data} holds "
                        f"{data_channels}-channel images")
    if arch["c_dim"] and data_labels != arch["c_dim"]:
        have = f"labels of size {data_labels}" if data_labels else "no labels"
        raise UserError(f"{name} is conditional (labels of size {arch['c_dim']}), but the dataset {cfg.data} has "
                        f"{have}; start from an unconditional network, or add matching labels "
                        "(dataset_tool/create.py --labels)")
    if cfg.cond and not arch["c_dim"]:
        raise UserError(f"--cond: {name} is unconditional; it cannot learn labels. Leave --cond out, or train a "
                        "conditional network from scratch")
    from networks.stylegan2 import FP16_CLAMP
    fp16_res, clamp = arch["fp16_res"], arch["conv_clamp"]
    if cfg.mixed_precision != "off":
        fp16_res = fp16_res or 4                          # a float32 network: StyleGAN2-ADA's 4 resolutions
        clamp = FP16_CLAMP if clamp is None else clamp    # and its clamp, which keeps float16 finite
    out = dataclasses.replace(cfg, res=cfg.res if grow else res, map=arch["map"], cbase=arch["cbase"],
                              cmax=arch["cmax"], zdim=arch["zdim"], wdim=arch["wdim"], cond=bool(arch["c_dim"]),
                              fp16_res=fp16_res, conv_clamp=clamp)
    if grow:                                   # the new blocks fade in over the network's, at once by default
        out.progressive, out.lod_initial_res = True, res
        if out.lod_training_kimg is None:
            out.lod_training_kimg = 0.0
    for key in ("mbstd_group", "mbstd_channels", "dmap"):
        if key in arch:
            setattr(out, key, arch[key])
    if out.ada_kimg is None:
        out.ada_kimg = ADA_KIMG_TRANSFER
    if out.ema_rampup is None:
        out.ema_rampup = 0.0                              # StyleGAN2-ADA: no G_ema ramp-up from a network
    meta = bundle.metadata or {}
    kimg = meta.get("kimg_total", meta.get("kimg"))         # a snapshot of a run from a network: both counts
    progress = (meta.get("ignored_entries") or {}).get("progress")
    if kimg is None and isinstance(progress, dict) and isinstance(progress.get("cur_nimg"), (int, float)):
        kimg = progress["cur_nimg"] / 1000                # a stylegan2-ada-pytorch snapshot's own count
    out.transfer = {"source": source, "file": str(file), "sha256": sha256, "format": meta.get("format", "keras"),
                    "kimg": kimg, "networks": [k for k in ("G", "D", "G_ema") if getattr(bundle, k) is not None]}
    if grow:
        out.transfer["grown_from"] = res
    return out


def _block_res(name: str) -> int | None:
    """The resolution of the block an official weight name is in ('synthesis.b64.conv0.weight' -> 64)."""
    m = re.search(r"(?:^|\.)b(\d+)\.", name)
    return int(m[1]) if m else None


def _fromrgb(name: str) -> bool:
    return ".fromrgb." in f".{name}"


def copy_weights(dst, src) -> list[str]:
    """Copy every weight of `src` into `dst` by its official name, with the same shapes. Returns the names of
    `dst`'s weights that `src` has not, which keep their initial values: the blocks above `src`'s resolution
    when `dst` is grown from it, and the fromRGB layers of a progressive D below its top. `src`'s fromRGB layers
    below its top (a D that was grown, unused at full resolution) are left out when `dst` has none."""
    from networks.stylegan2 import official_state
    a, b = official_state(dst), official_state(src)
    top = src.get_config()["img_resolution"]
    new = [k for k in a if k not in b]
    left = [k for k in b if k not in a]
    bad = [k for k in new if not ((_block_res(k) or 0) > top or _fromrgb(k))]
    bad += [k for k in left if not (_fromrgb(k) and (_block_res(k) or 0) < top)]
    if bad:
        raise UserError(f"the network's {src.name} does not fit the one built for training: {len(bad)} "
                        f"weight(s) differ, e.g. {sorted(bad)[0]}")
    for key, var in a.items():
        if key not in b:
            continue
        if tuple(var.shape) != tuple(b[key].shape):
            raise UserError(f"the network's {key} has shape {tuple(b[key].shape)}; training built "
                            f"{tuple(var.shape)}")
        var.assign(b[key])
    return new


def freeze_layers(D, n: int) -> list[str]:
    """Freeze D's first `n` layers as StyleGAN2-ADA's --freezed (Freeze-D): layers counted from the highest
    resolution down, fromrgb, conv0, conv1, skip in each block; the 4x4 head is never frozen. Returns the
    frozen layers' official names."""
    layers = [(f"b{r}.{layer.name}", layer) for r in D.resolutions
              for layer in getattr(D, f"b{r}").layers_in_order()]
    if not 0 <= n <= len(layers):
        raise UserError(f"--freezed {n}: D has {len(layers)} layers that can be frozen (0 to {len(layers)})")
    for _, layer in layers[:n]:
        layer.trainable = False
    return [name for name, _ in layers[:n]]


def conflicting_flags(given: dict, saved: TrainConfig) -> list[str]:
    """`--flag VALUE (the run has OTHER)` for each flag given with --resume RUN whose value differs from the run's
    own options (`given`: flag name -> value; the same value is no conflict)."""
    out = []
    for name, value in given.items():
        have = getattr(saved, name, None)
        same = value == have
        if name == "data" and value and have:
            same = Path(value).resolve() == Path(have).resolve()
        if not same:
            out.append(f"--{name} {value} (the run has {have})")
    return out
