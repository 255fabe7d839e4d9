"""Check kept apart: how faithful the projection of real photos is, plain (W) and with pivotal tuning, and whether
edits of the tuned reconstructions move the project's age and gender classifiers as edits of random faces do.

    python benchmarks/inversion.py PHOTO [PHOTO ...] --data utkface64 [--network utkface-64] [--json out.json]
        [--variant edit:locality=edit,locality_alpha=8 ...]

Each photo is aligned to the network's framing as `run_generator.py --mode project` does, projected into W
(the pivot), then tuned (latent/tuning.py). Printed per photo: PSNR and SSIM of the pivot and of the tuned
reconstruction against the aligned photo, and the seconds each took; each --variant (tuning settings that differ
from the defaults) is tuned from the same pivot. A photo whose face is not found is reported and skipped.

With --data (a labelled UTKFace dataset), age and gender classifiers are trained on its faces (--classifiers
keeps them) and the network's shipped directions are applied from -3 to +3 std: to the reconstructions (tuned
generator), to the pivots (untuned generator) and to random faces (seeds 100000 on); the mean change of
predicted age and the share of gender predictions flipped are compared.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import benchlib  # noqa: F401  (the repo on sys.path)

from common.cli import start_tensorflow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--network", default="utkface-64")
    ap.add_argument("--data", default=None, help="labelled dataset for the age and gender classifiers")
    ap.add_argument("--pivot-steps", type=int, default=300)
    ap.add_argument("--w-prior", type=float, default=0.0, help="weight of the P-space prior on the pivot's w")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:key=value,... TuneConfig fields that differ from the defaults (repeatable)")
    ap.add_argument("--classifiers", default=None, help="folder to keep the trained classifiers in and reuse")
    ap.add_argument("--distance", default="pixel")
    ap.add_argument("--encoder", action="store_true", help="start the projection from the network's encoder")
    ap.add_argument("--random-faces", type=int, default=100)
    ap.add_argument("--classifier-images", type=int, default=8000)
    ap.add_argument("--classifier-epochs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/inversion")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    start_tensorflow()
    import dataclasses

    import numpy as np

    from alignment.faces import load_framing
    from latent import directions as dirs
    from latent.attributes import edit_strength, train_attribute_classifier
    from latent.modes import aligned_target
    from latent.projector import ProjectConfig, apply_noise, noise_variables, project
    from latent.runner import LatentRunner
    from latent.seeds import seed_to_z
    from latent.tuning import TuneConfig, psnr, ssim, tune
    from networks.locate import directions_folder, find_network, framing_file
    from networks.serialize import load_network

    path = find_network(args.network)
    G = load_network(path).G_ema
    net_id = dirs.network_id(path.name, G)
    framing = load_framing(framing_file(args.network))
    own_noise = [v.numpy() for v in noise_variables(G)]
    detector = None
    if args.distance == "inception":                      # the FID Inception features in the pivot's distance
        from metrics.metrics import Detector
        detector = Detector()
    encoder = None
    if args.encoder:
        from latent.encoder import load_encoder
        from networks.locate import encoder_file
        encoder = load_encoder(encoder_file(args.network), net_id, G.w_dim, G.num_ws)
    variants = {"default": TuneConfig()}
    for spec in args.variant:
        name, _, fields = spec.partition(":")
        kw = {}
        for item in filter(None, fields.split(",")):
            key, _, value = item.partition("=")
            kind = type(getattr(TuneConfig(), key))
            kw[key] = kind(value)
        variants[name] = dataclasses.replace(TuneConfig(), **kw)
    print(f"network {net_id}; pivot {args.pivot_steps} steps ({args.distance}, prior {args.w_prior:g}); "
          f"tuning {variants}")

    clfs, edits = {}, {}
    if args.data:
        folder = directions_folder(args.network, None)
        for name in ("age", "gender"):
            t = time.perf_counter()
            kept = Path(args.classifiers or "/nonexistent") / f"{name}.keras"
            if kept.is_file():
                import keras
                from latent.attributes import AttributeClassifier, attribute_target
                from datasets.format import discover
                meta = json.loads(kept.with_suffix(".json").read_text())
                target = attribute_target(discover(args.data).manifest, name)
                target.scale = meta["scale"]
                clfs[name] = AttributeClassifier(keras.saving.load_model(kept, compile=False), target, meta["res"],
                                                 meta["heldout"])
            else:
                clfs[name] = train_attribute_classifier(args.data, name, max_images=args.classifier_images,
                                                        epochs=args.classifier_epochs)
                if args.classifiers:
                    Path(args.classifiers).mkdir(parents=True, exist_ok=True)
                    clfs[name].model.save(kept)
                    kept.with_suffix(".json").write_text(json.dumps(
                        {"scale": clfs[name].target.scale, "res": clfs[name].res, "heldout": clfs[name].heldout}))
            edits[name] = dirs.load_direction(folder, name, None, net_id, G.w_dim)
            print(f"{name} classifier: {clfs[name].heldout} ({time.perf_counter() - t:.0f} s)")

    def strengths(gen, ws) -> dict:
        runner = LatentRunner(gen, batch=16)
        return {name: edit_strength(runner, clfs[name], *edits[name], ws) for name in clfs}

    rows = []
    from common.errors import UserError
    for i, photo in enumerate(args.photos):
        out = Path(args.work) / f"{i:02d}"
        out.mkdir(parents=True, exist_ok=True)
        try:
            target = aligned_target(photo, G.img_resolution, G.img_channels, framing, "the network's framing", out)
        except UserError as exc:
            print(f"{Path(photo).name}: skipped ({exc})")
            continue
        t = time.perf_counter()
        w_start = encoder.w(target[None])[0] if encoder is not None else None
        pcfg = ProjectConfig(steps=args.pivot_steps, distance=args.distance, w_prior=args.w_prior)
        res = project(G, target, pcfg, detector, w_start=w_start)
        t_pivot = time.perf_counter() - t
        apply_noise(G, res.noise)
        row = {"photo": Path(photo).name, "psnr_w": psnr(res.image, target), "ssim_w": ssim(res.image, target),
               "seconds_pivot": t_pivot, "variants": {}}
        if clfs:
            row["edits_w"] = strengths(G, res.w[None])
        line = f"{row['photo']}: W {row['psnr_w']:.2f} dB / SSIM {row['ssim_w']:.3f} ({t_pivot:.0f} s)"
        for name, tcfg in variants.items():
            tuning = tune(G, res.w, target, tcfg)
            v = {"psnr": psnr(tuning.image, target), "ssim": ssim(tuning.image, target), "seconds": tuning.seconds}
            if clfs:
                v["edits"] = strengths(tuning.G, res.w[None])
            row["variants"][name] = v
            line += f"; {name} {v['psnr']:.2f} dB / SSIM {v['ssim']:.3f} ({v['seconds']:.0f} s)"
        rows.append(row)
        print(line, flush=True)
    summary = {k: float(np.median([r[k] for r in rows])) for k in ("psnr_w", "ssim_w", "seconds_pivot")}
    for name in variants:
        for k in ("psnr", "ssim", "seconds"):
            summary[f"{name}_{k}"] = float(np.median([r["variants"][name][k] for r in rows]))
    print("median over %d photos: " % len(rows) + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    if clfs:
        apply_noise(G, own_noise)
        z = np.concatenate([seed_to_z(100000 + s, G.z_dim) for s in range(args.random_faces)])
        random = strengths(G, LatentRunner(G).map(z))
        summary["edits_random"] = random
        for attr, key in (("age", "mean_change"), ("gender", "flipped")):
            got = {"random faces": random[attr][key],
                   "untuned pivots": float(np.mean([r["edits_w"][attr][key] for r in rows]))}
            for name in variants:
                got[name] = float(np.mean([r["variants"][name]["edits"][attr][key] for r in rows]))
            summary[f"{attr}_{key}"] = got
            print(f"{attr} edit -3..3 std, {key}: " + ", ".join(f"{k} {v:.3f}" for k, v in got.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"variants": {k: dataclasses.asdict(v) for k, v in variants.items()},
                                               "pivot_steps": args.pivot_steps, "w_prior": args.w_prior,
                                               "rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
