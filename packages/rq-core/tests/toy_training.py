"""A tiny deterministic training run, used by test_training.py and test_distributed.py.

Run as a script: ``python toy_training.py RUN_DIR [key=value ...]`` (keys of ``ToyConfig``).
Writes ``RUN_DIR/final_weights.pt`` (rank-suffixed under DDP) when training finishes.
With ``block_at_step=k`` it writes ``RUN_DIR/reached_step`` after step k and then waits,
so a test can SIGKILL it at a known point.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule
from rq_core.config import load_config
from rq_core.momentum import cosine_momentum, deactivate_requires_grad, update_momentum
from rq_core.training import ResumableSampler, TrainerConfig, fit
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@dataclass
class ToyConfig:
    num_samples: int = 64
    batch_size: int = 8
    block_at_step: int = -1
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            max_epochs=3,
            checkpoint_every_n_steps=3,
            log_every_n_steps=1,
            accelerator="cpu",
            devices="1",
            progress_bar=False,
            tensorboard=False,
            deterministic=True,
        )
    )


class ToyModule(LightningModule):
    """Regression MLP with dropout and input noise: uses the global RNG every step."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)  # same initial weights in every run and on every rank
        # BatchNorm: buffers in the EMA copy, and a CPU DDP run must not try SyncBatchNorm.
        self.net = nn.Sequential(
            nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Dropout(0.2), nn.Linear(16, 1)
        )
        # A frozen momentum copy, updated after every step (as BYOL's target network).
        self.model_ema = deactivate_requires_grad(copy.deepcopy(self.net))

    def training_step(self, batch, batch_index):
        x, y = batch
        x = x + 0.1 * torch.randn_like(x)  # an "augmentation" drawn inside the step
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        self.log("train/loss", loss)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_index) -> None:
        max_steps = self.trainer.estimated_stepping_batches
        update_momentum(self.net, self.model_ema, cosine_momentum(self.global_step, max_steps))

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class BlockAtStep(Callback):
    def __init__(self, run_dir: Path, step: int) -> None:
        self.run_dir, self.step = run_dir, step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            (self.run_dir / "reached_step").write_text(str(self.step))
            while True:  # wait for the test's SIGKILL
                time.sleep(0.1)


def toy_loader(num_samples: int, batch_size: int) -> DataLoader:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(num_samples, 4, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3
    dataset = TensorDataset(x, y)
    return DataLoader(dataset, batch_size=batch_size, sampler=ResumableSampler(dataset, seed=3))


def main(argv: list[str]) -> None:
    run_dir = Path(argv[0])
    cfg = load_config(ToyConfig, overrides=argv[1:])
    callbacks = [BlockAtStep(run_dir, cfg.block_at_step)] if cfg.block_at_step >= 0 else []
    module = ToyModule()
    trainer = fit(
        module,
        run_dir,
        cfg.trainer,
        train_dataloaders=toy_loader(cfg.num_samples, cfg.batch_size),
        config=cfg,
        callbacks=callbacks,
    )
    suffix = f".rank{trainer.global_rank}" if trainer.world_size > 1 else ""
    torch.save(
        {k: v.detach().clone() for k, v in module.state_dict().items()},
        run_dir / f"final_weights{suffix}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
