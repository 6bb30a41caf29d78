#!/usr/bin/env bash
# rq-mid-net pretraining on every GPU of one machine: torchrun starts one process per GPU, and
# rq-core's trainer (Lightning) picks DDP up from torchrun's environment.
#   apps/mid-net/scripts/torchrun_single_node.sh [key=value overrides...]
#   NPROC=4 CONFIG=my.yaml apps/mid-net/scripts/torchrun_single_node.sh run_dir=runs/mid-net-4gpu
# optim.batch_size is per process; SGD: scale optim.lr linearly with the global batch (docs/scaling.md).
set -euo pipefail
CONFIG=${CONFIG:-apps/mid-net/configs/shapenet_paper.yaml}
NPROC=${NPROC:-$(nvidia-smi --list-gpus | wc -l)}
# The HDF5 caches are written once, by one process, before the ranks start.
rq-mid-net prepare --config "$CONFIG" "$@"
torchrun --standalone --nproc_per_node "$NPROC" --no-python \
    rq-mid-net pretrain --config "$CONFIG" \
    trainer.accelerator=gpu trainer.devices="$NPROC" trainer.num_nodes=1 "$@"
