#!/bin/sh
# Container entry point of every rq image: say which GPUs the container sees, refuse a config
# that asks for a GPU when none is visible (rq_core.training.devices, exit status 3), then run
# the app ($RQ_APP, e.g. rq-byol-a) with the container's arguments.
#   docker run IMAGE pretrain --config ...           -> rq-<app> pretrain --config ...
#   docker run IMAGE torchrun --nproc_per_node 8 --no-python rq-<app> pretrain ...
#                                                     -> one process per GPU inside the container
set -eu
app="${RQ_APP:?RQ_APP must name the app command, e.g. rq-byol-a}"
# The check reads --config and key=value overrides wherever they are in the arguments.
python -m rq_core.training.devices "$@"
case "${1:-}" in
    torchrun | python | python3 | bash | sh | "$app")
        exec "$@"
        ;;
esac
exec "$app" "$@"
