#!/usr/bin/env bash
# rq-mid-net pretraining on NNODES machines with NPROC GPUs each (torchrun, c10d rendezvous).
# Run the same command on every node, with the same RDZV_HOST (a host all nodes reach):
#   NNODES=2 NPROC=8 RDZV_HOST=node001 apps/mid-net/scripts/torchrun_multi_node.sh run_dir=/shared/runs/mid-net
# RUN_DIR and the data must be on a filesystem every node sees: rank 0 writes the checkpoints
# and every rank reads them back on resume.
# optim.batch_size is per process; SGD: scale optim.lr linearly with the global batch (docs/scaling.md).
set -euo pipefail
CONFIG=${CONFIG:-apps/mid-net/configs/shapenet_paper.yaml}
NNODES=${NNODES:?set NNODES, the number of machines}
NPROC=${NPROC:-$(nvidia-smi --list-gpus | wc -l)}
RDZV_HOST=${RDZV_HOST:?set RDZV_HOST, the host of the rendezvous (e.g. the first node)}
RDZV_PORT=${RDZV_PORT:-29500}
JOB_ID=${JOB_ID:-rq-mid-net}
# Prepare the caches beforehand, once (e.g. on the first node): rq-mid-net prepare --config "$CONFIG" "$@"
torchrun --nnodes "$NNODES" --nproc_per_node "$NPROC" \
    --rdzv_backend c10d --rdzv_endpoint "$RDZV_HOST:$RDZV_PORT" --rdzv_id "$JOB_ID" \
    --no-python \
    rq-mid-net pretrain --config "$CONFIG" \
    trainer.accelerator=gpu trainer.devices="$NPROC" trainer.num_nodes="$NNODES" "$@"
