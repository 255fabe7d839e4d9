#!/usr/bin/env bash
# `make demo`: the whole flow on what ships with the repo, on CPU, in a few minutes:
# sample faces -> TFRecords (verified, contact sheet) -> a short training run -> faces from its snapshot.
set -euo pipefail
PY=${1:-.venv/bin/python}
mkdir -p demo
echo "== 1. dataset: data/faces (160 UTKFace photos, 200x200 JPEG) -> demo/faces-tfrecords"
$PY dataset_tool/create.py data/faces demo/faces-tfrecords --res 64 --labels utkface --overwrite
echo "== 2. summary and verification"
$PY dataset_tool/create.py --info demo/faces-tfrecords
echo "== 3. contact sheet of the 64x64 level -> demo/faces-sheet.png"
$PY dataset_tool/extract.py demo/faces-tfrecords demo/faces-png --res 64 --grid demo/faces-sheet.png
echo "== 4. a short training run at 32x32 (a tiny network, 1 kimg: expect colour blobs, not faces yet)"
rm -rf demo/runs
$PY run_training.py --data demo/faces-tfrecords --res 32 --cfg small --cbase 1024 --cmax 64 --batch 16 \
    --mirror --kimg 1 --kimg-per-tick 0.25 --snap 2 --outdir demo/runs
echo "== 5. images from the run's newest snapshot -> demo/generated/"
$PY run_generator.py --network demo/runs/00000-faces-tfrecords-small-32 --seeds 0-15 --grid --outdir demo/generated
echo "== 6. latent space: a style-mixing grid and an interpolation video -> demo/generated/"
$PY run_generator.py --network demo/runs/00000-faces-tfrecords-small-32 --mode style-mix --rows 1,2,3 \
    --cols 4,5,6 --styles coarse --outdir demo/generated
$PY run_generator.py --network demo/runs/00000-faces-tfrecords-small-32 --mode interpolate --seeds 0-3 \
    --frames 15 --loop --outdir demo/generated
echo
echo "Look at demo/faces-sheet.png (the data), demo/runs/00000-*/fakes*.png (training progress),"
echo "demo/generated/grid.png, stylemix.png and interpolate.mp4. Real faces need real training: see README."
