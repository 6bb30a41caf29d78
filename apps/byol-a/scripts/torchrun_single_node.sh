#!/usr/bin/env bash
# rq-byol-a pretraining on every GPU of one machine: torchrun starts one process per GPU, and
# rq-core's trainer (Lightning) picks DDP up from torchrun's environment.
#   apps/byol-a/scripts/torchrun_single_node.sh [key=value overrides...]
#   NPROC=4 CONFIG=my.yaml apps/byol-a/scripts/torchrun_single_node.sh run_dir=runs/byol-a-4gpu
# data.batch_size is per process: 256/N keeps the paper's global batch of 256 (docs/scaling.md).
set -euo pipefail
CONFIG=${CONFIG:-apps/byol-a/configs/audioset_paper.yaml}
NPROC=${NPROC:-$(nvidia-smi --list-gpus | wc -l)}
# The HDF5 caches are written once, by one process, before the ranks start.
rq-byol-a prepare --config "$CONFIG" "$@"
torchrun --standalone --nproc_per_node "$NPROC" --no-python \
    rq-byol-a pretrain --config "$CONFIG" \
    trainer.accelerator=gpu trainer.devices="$NPROC" trainer.num_nodes=1 "$@"
