#!/usr/bin/env bash
# rq-dabs pretraining on every GPU of one machine: torchrun starts one process per GPU, and
# rq-core's trainer (Lightning) picks DDP up from torchrun's environment.
#   apps/dabs/scripts/torchrun_single_node.sh [key=value overrides...]
#   NPROC=4 CONFIG=my.yaml apps/dabs/scripts/torchrun_single_node.sh run_dir=runs/dabs-4gpu
# batch_size is per process; NT-Xent gathers every rank's negatives (docs/scaling.md).
set -euo pipefail
CONFIG=${CONFIG:-apps/dabs/configs/paper.yaml}
NPROC=${NPROC:-$(nvidia-smi --list-gpus | wc -l)}
# Embedded domains are built on first use; real DABS data comes prepared (data_root).
torchrun --standalone --nproc_per_node "$NPROC" --no-python \
    rq-dabs pretrain --config "$CONFIG" \
    trainer.accelerator=gpu trainer.devices="$NPROC" trainer.num_nodes=1 "$@"
