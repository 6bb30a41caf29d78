#!/usr/bin/env bash
# rq-byol-a pretraining on NNODES machines with NPROC GPUs each (torchrun, c10d rendezvous).
# Run the same command on every node, with the same RDZV_HOST (a host all nodes reach):
#   NNODES=2 NPROC=8 RDZV_HOST=node001 apps/byol-a/scripts/torchrun_multi_node.sh run_dir=/shared/runs/byol-a
# RUN_DIR and the data must be on a filesystem every node sees: rank 0 writes the checkpoints
# and every rank reads them back on resume.
# data.batch_size is per process: 256/N keeps the paper's global batch of 256 (docs/scaling.md).
set -euo pipefail
CONFIG=${CONFIG:-apps/byol-a/configs/audioset_paper.yaml}
NNODES=${NNODES:?set NNODES, the number of machines}
NPROC=${NPROC:-$(nvidia-smi --list-gpus | wc -l)}
RDZV_HOST=${RDZV_HOST:?set RDZV_HOST, the host of the rendezvous (e.g. the first node)}
RDZV_PORT=${RDZV_PORT:-29500}
JOB_ID=${JOB_ID:-rq-byol-a}
# Prepare the caches beforehand, once (e.g. on the first node): rq-byol-a prepare --config "$CONFIG" "$@"
torchrun --nnodes "$NNODES" --nproc_per_node "$NPROC" \
    --rdzv_backend c10d --rdzv_endpoint "$RDZV_HOST:$RDZV_PORT" --rdzv_id "$JOB_ID" \
    --no-python \
    rq-byol-a pretrain --config "$CONFIG" \
    trainer.accelerator=gpu trainer.devices="$NPROC" trainer.num_nodes="$NNODES" "$@"
