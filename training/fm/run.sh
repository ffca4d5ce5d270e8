#!/bin/sh
# The accumulating CPU training run of the fm `realtime2` model (see README.md here).
# Continues from checkpoint.pt when there is one; stops after MINUTES (default 60), at
# learning rate LR (default 3e-4, before the cosine factor of train.py).
#   nice -n 5 training/fm/run.sh 45 [LR]
# Data: /work/data/video (../shared/DATA.md says how to fetch it). Held out (never
# trained on): cup.mp4, vtest.avi from frame 600 on, tree.avi.
set -eu
cd "$(dirname "$0")/../.."
OUT=training/fm
DATA=${NVC_DATA:-/work/data}
RESUME=""
[ -f "$OUT/checkpoint.pt" ] && RESUME=--resume
export OMP_NUM_THREADS=1
exec python -m nvc.cli train fm --out "$OUT" $RESUME --variant realtime2 \
    --init nvc/codec/conditional/weights/fm-realtime.pt \
    --videos "$DATA/video/vtest.avi@0-600" --videos "$DATA/video/box.mp4" \
    --images "$DATA/photos" \
    --intra-steps 0 --inter-steps 0 --multi-steps 0 --mixed-steps 200000 --frames 3 \
    --batch 8 --crop 256 --lr "${2:-3e-4}" --threads 1 --minutes "${1:-60}"
