#!/usr/bin/env bash
# `make demo`: what ships with the repo, on CPU, offline. First the face model this project trained on UTKFace
# (models/utkface-64): 100 faces, style mixing, an interpolation video, age and gender edits, a projection of a
# real face. Then "train your own": sample photos -> TFRecords -> a short training run -> faces from its snapshot.
# DEMO_OUT (default demo/) moves the outputs; DEMO_QUICK=1 is the reduced variant the test suite runs. A rerun
# replaces its own outputs (--overwrite).
set -euo pipefail
PY=${1:-.venv/bin/python}
cd "$(dirname "$0")/.."
OUT=${DEMO_OUT:-demo}
QUICK=${DEMO_QUICK:-0}
SEEDS=0-99; FRAMES=20; PROJ_STEPS=300; TUNE_STEPS=200; TRAIN_KIMG=1; KPT=0.25
if [ "$QUICK" = 1 ]; then SEEDS=0-15; FRAMES=4; PROJ_STEPS=4; TUNE_STEPS=4; TRAIN_KIMG=0.064; KPT=0.032; fi
NET=utkface-64          # the shipped model (models/utkface-64/G_ema-D.keras, see its MODEL_CARD.md)
SHIP=$OUT/utkface-64
mkdir -p "$OUT"
T0=$SECONDS
echo "== 1. the shipped face model: faces for seeds $SEEDS and a grid -> $SHIP/"
$PY run_generator.py --overwrite --network $NET --seeds $SEEDS --grid --outdir "$SHIP"
echo "== 2. style mixing: the coarse layers (pose, face shape) of the column faces on the row faces"
$PY run_generator.py --overwrite --network $NET --mode style-mix --rows 0,1,2,3 --cols 4,5,6,7 --styles coarse --outdir "$SHIP"
echo "== 3. an interpolation video through seeds 0-5"
$PY run_generator.py --overwrite --network $NET --mode interpolate --seeds 0-5 --frames $FRAMES --loop --outdir "$SHIP"
echo "== 4. age and gender edits (directions learned from the UTKFace labels, shipped with the model)"
$PY run_generator.py --overwrite --network $NET --seeds 0-5 --edit age=-3..3 --edit gender=-3..3 --outdir "$SHIP"
echo "== 5. your own photo: a raw photo (data/photos, public domain) aligned to the model's framing, projected"
echo "   into its latent space, the network tuned to it (pivotal tuning: the same person back), then made older"
echo "   and younger"
$PY run_generator.py --overwrite --network $NET --mode project --target data/photos/eileen-collins.jpg \
    --num_steps $PROJ_STEPS --tune_steps $TUNE_STEPS --outdir "$SHIP/projection"
$PY run_generator.py --overwrite --network $NET --projected-w "$SHIP/projection/projected_w.npz" --edit age=-3..3 \
    --outdir "$SHIP/projection"
echo "== 5b. the model outside Python: a web page that draws faces in your browser, opened from disk"
$PY run_generator.py --overwrite --network $NET --export_web "$SHIP/web"
echo "   (the shipped model's part took $((SECONDS - T0)) s)"

echo "== 6. train your own: data/faces (160 UTKFace photos, 200x200 JPEG) -> $OUT/faces-tfrecords"
$PY dataset_tool/create.py data/faces "$OUT/faces-tfrecords" --res 64 --labels utkface --overwrite
$PY dataset_tool/create.py --info "$OUT/faces-tfrecords"
echo "== 7. contact sheet of the 64x64 level -> $OUT/faces-sheet.png"
$PY dataset_tool/extract.py "$OUT/faces-tfrecords" "$OUT/faces-png" --res 64 --grid "$OUT/faces-sheet.png" \
    --overwrite
echo "== 8. a short training run at 32x32 (a tiny network, $TRAIN_KIMG kimg: colour blobs, not faces yet)"
rm -rf "$OUT/runs"
$PY run_training.py --data "$OUT/faces-tfrecords" --res 32 --cfg small --cbase 1024 --cmax 64 --batch 16 \
    --mirror --kimg $TRAIN_KIMG --kimg-per-tick $KPT --snap 2 --outdir "$OUT/runs"
echo "== 9. images from your run's newest snapshot -> $OUT/generated/"
$PY run_generator.py --overwrite --network "$OUT/runs/00000-faces-tfrecords-small-32" --seeds 0-15 --grid --outdir "$OUT/generated"
echo
echo "The shipped model: $SHIP/grid.png, stylemix.png, interpolate.mp4, edit-age.png, edit-gender.png and"
echo "projection/ (aligned.png, proj-w.png, proj.png, edit-age.png); open $SHIP/web/index.html in a browser. Your run: $OUT/faces-sheet.png, $OUT/runs/00000-*/fakes*.png,"
echo "$OUT/generated/grid.png. Faces like the shipped model's need hours of training: see README."
echo "demo finished in $((SECONDS - T0)) s"
