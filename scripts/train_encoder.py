"""Train the encoder shipped with a network (latent/encoder.py): its own faces, then real faces of a dataset.

    python scripts/train_encoder.py --network utkface-64 --data utkface64 --out models/utkface-64/encoder.keras

Prints the held-out figures the model card quotes: the w error on generated faces held out, and the PSNR of the
encoder's guess alone on held-out real faces (the last `--heldout` records of the dataset level).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import start_tensorflow  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", default="utkface-64")
    ap.add_argument("--data", required=True, help="real faces at the network's resolution (a dataset)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--reals", type=int, default=4000)
    ap.add_argument("--real-epochs", type=int, default=1)
    ap.add_argument("--heldout", type=int, default=200)
    args = ap.parse_args()
    start_tensorflow()
    import numpy as np

    from latent.directions import network_id
    from latent.encoder import read_faces, train_encoder
    from latent.runner import LatentRunner
    from latent.tuning import psnr
    from networks.locate import find_network
    from networks.serialize import load_network
    path = find_network(args.network)
    G = load_network(path).G_ema
    net_id = network_id(path.name, G)
    faces = read_faces(args.data, G.img_resolution, args.reals + args.heldout)
    reals, held = faces[:-args.heldout], faces[-args.heldout:]
    enc = train_encoder(G, net_id, args.samples, args.epochs, reals, args.real_epochs)
    guess = LatentRunner(G).synthesize(enc.w(held))
    scores = [psnr(a, b) for a, b in zip(guess, held)]
    enc.figures.update(samples=args.samples, epochs=args.epochs, reals=len(reals), real_epochs=args.real_epochs,
                       heldout_reals=len(held), heldout_psnr_median=float(np.median(scores)))
    enc.save(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 2**20:.1f} MB): the encoder alone redraws "
          f"{len(held)} held-out real faces at a median PSNR of {np.median(scores):.2f} dB")


if __name__ == "__main__":
    main()
