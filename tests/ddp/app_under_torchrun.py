"""Run an app's CLI under torchrun and save every rank's final weights.

``torchrun --nproc_per_node 2 tests/ddp/app_under_torchrun.py MODULE [app arguments]``

MODULE is the app's CLI module (``rq_mid_net.cli``). Before the app is imported,
``rq_core.training.fit`` is wrapped so that, once the app's own ``fit`` call returns, each rank
writes ``RUN_DIR/weights.rank{R}.pt`` (its module's state_dict) and ``RUN_DIR/steps.rank{R}``
(the trainer's global step). The app runs unchanged otherwise: its config, data loading,
DDP setup and checkpointing are the ones a user gets.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import rq_core.training
import torch

_fit = rq_core.training.fit


def fit_and_save_weights(module, run_dir, *args, **kwargs):
    trainer = _fit(module, run_dir, *args, **kwargs)
    run_dir = Path(run_dir)
    rank = trainer.global_rank
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    torch.save(state, run_dir / f"weights.rank{rank}.pt")
    (run_dir / f"steps.rank{rank}").write_text(f"{trainer.global_step} {trainer.world_size}")
    return trainer


rq_core.training.fit = fit_and_save_weights

if __name__ == "__main__":
    cli = importlib.import_module(sys.argv[1])
    sys.exit(cli.main(sys.argv[2:]))
