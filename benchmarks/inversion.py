"""Check kept apart: how faithful the projection of real photos is, plain (W) and with pivotal tuning, and whether
edits of the tuned reconstructions move the project's age and gender classifiers as edits of random faces do.

    python benchmarks/inversion.py PHOTO [PHOTO ...] --data utkface64 [--network utkface-64] [--json out.json]

Each photo is aligned to the network's framing as `run_generator.py --mode project` does, projected into W
(the pivot), then tuned (latent/tuning.py). Printed per photo: PSNR and SSIM of the pivot and of the tuned
reconstruction against the aligned photo, and the seconds each took. With --data (a labelled UTKFace dataset),
age and gender classifiers are trained on its faces and the network's shipped directions are applied from -3 to
+3 std: to the reconstructions (tuned generator), to the pivots (untuned generator) and to random faces (seeds
100000 on); the mean change of predicted age and the share of gender predictions flipped are compared.
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
    ap.add_argument("--tune-steps", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--locality-every", type=int, default=None)
    ap.add_argument("--alpha", type=float, default=None)
    ap.add_argument("--distance", default="pixel")
    ap.add_argument("--random-faces", type=int, default=100)
    ap.add_argument("--classifier-images", type=int, default=8000)
    ap.add_argument("--classifier-epochs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/inversion")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    start_tensorflow()
    import dataclasses

    import numpy as np

    from dataset_tool.align import load_framing
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
    tcfg = TuneConfig()
    for key, value in (("steps", args.tune_steps), ("lr", args.lr), ("locality_every", args.locality_every),
                       ("locality_alpha", args.alpha)):
        if value is not None:
            tcfg = dataclasses.replace(tcfg, **{key: value})
    print(f"network {net_id}; pivot {args.pivot_steps} steps ({args.distance}); tuning {tcfg}")

    clfs, edits = {}, {}
    if args.data:
        folder = directions_folder(args.network, None)
        for name in ("age", "gender"):
            t = time.perf_counter()
            clfs[name] = train_attribute_classifier(args.data, name, max_images=args.classifier_images,
                                                    epochs=args.classifier_epochs)
            edits[name] = dirs.load_direction(folder, name, None, net_id, G.w_dim)
            print(f"{name} classifier: {clfs[name].heldout} ({time.perf_counter() - t:.0f} s)")

    def strengths(gen, ws) -> dict:
        runner = LatentRunner(gen, batch=16)
        return {name: edit_strength(runner, clfs[name], *edits[name], ws) for name in clfs}

    rows, recon_w, pivots = [], [], []
    for i, photo in enumerate(args.photos):
        out = Path(args.work) / f"{i:02d}"
        out.mkdir(parents=True, exist_ok=True)
        target = aligned_target(photo, G.img_resolution, G.img_channels, framing, "the network's framing", out)
        t = time.perf_counter()
        res = project(G, target, ProjectConfig(steps=args.pivot_steps, distance=args.distance))
        t_pivot = time.perf_counter() - t
        apply_noise(G, res.noise)
        tuning = tune(G, res.w, target, tcfg)
        row = {"photo": Path(photo).name, "psnr_w": psnr(res.image, target), "ssim_w": ssim(res.image, target),
               "psnr_pti": psnr(tuning.image, target), "ssim_pti": ssim(tuning.image, target),
               "seconds_pivot": t_pivot, "seconds_tune": tuning.seconds}
        if clfs:
            row["edits_pti"] = strengths(tuning.G, res.w[None])
            row["edits_w"] = strengths(G, res.w[None])
        rows.append(row)
        print(f"{row['photo']}: W {row['psnr_w']:.2f} dB / SSIM {row['ssim_w']:.3f} ({t_pivot:.0f} s) -> PTI "
              f"{row['psnr_pti']:.2f} dB / SSIM {row['ssim_pti']:.3f} ({tuning.seconds:.0f} s)", flush=True)
        recon_w.append(res.w)
        pivots.append(tuning.image)
    summary = {k: float(np.median([r[k] for r in rows])) for k in ("psnr_w", "ssim_w", "psnr_pti", "ssim_pti",
                                                                   "seconds_pivot", "seconds_tune")}
    print("median: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    if clfs:
        apply_noise(G, own_noise)
        z = np.concatenate([seed_to_z(100000 + s, G.z_dim) for s in range(args.random_faces)])
        random = strengths(G, LatentRunner(G).map(z))
        summary["edits_random"] = random
        for name, key in (("age", "mean_change"), ("gender", "flipped")):
            pti = np.mean([r["edits_pti"][name][key] for r in rows])
            w = np.mean([r["edits_w"][name][key] for r in rows])
            summary[f"{name}_{key}"] = {"random": random[name][key], "pti": float(pti), "w": float(w)}
            print(f"{name} edit -3..3 std, {key}: random faces {random[name][key]:.3f}, tuned reconstructions "
                  f"{pti:.3f}, untuned pivots {w:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": dataclasses.asdict(tcfg), "pivot_steps": args.pivot_steps,
                                               "rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
