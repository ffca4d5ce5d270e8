#!/bin/sh
# A GPU hour for the fm realtime2 run: continues training/fm/checkpoint.pt on CUDA with
# every GPU of the machine under torchrun (DistributedDataParallel, nccl), then exports
# the weights next to the checkpoint. Ready to run on a fresh machine with this repository:
#   training/fm/gpu.sh [MINUTES] [BATCH]        (defaults: 50 minutes, 8 samples per GPU)
# Data: $NVC_DATA (default /work/data) with video/ and photos/ (../shared/DATA.md).
# Commit checkpoint.pt and log.jsonl afterwards: the next CPU or GPU run continues them.
set -eu
cd "$(dirname "$0")/../.."
OUT=training/fm
DATA=${NVC_DATA:-/work/data}
MINUTES=${1:-50}
GPUS=$(python -c "import torch; print(torch.cuda.device_count())")
[ "$GPUS" -ge 1 ] || { echo "no CUDA device" >&2; exit 1; }
BATCH=$(( ${2:-8} * GPUS ))
RESUME=""
[ -f "$OUT/checkpoint.pt" ] && RESUME=--resume
export OMP_NUM_THREADS=4
python -m torch.distributed.run --standalone --nproc_per_node "$GPUS" -m nvc.cli train fm \
    --out "$OUT" $RESUME --variant realtime2 --device cuda \
    --init nvc/codec/conditional/weights/fm-realtime.pt \
    --videos "$DATA/video/vtest.avi@0-600" --videos "$DATA/video/box.mp4" \
    --images "$DATA/photos" \
    --intra-steps 0 --inter-steps 0 --multi-steps 0 --mixed-steps 200000 --frames 3 \
    --batch "$BATCH" --crop 256 --lr 3e-4 --minutes "$MINUTES"
python -m nvc.codec.conditional.export "$OUT/checkpoint.pt" "$OUT/fm-realtime2.pt"
