"""The LightningModule that pretrains a DABS encoder with one algorithm of the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from rq_core.checkpoints import load_checkpoint, save_checkpoint
from torch import Tensor

from rq_dabs.algorithms import PretrainingAlgorithm
from rq_dabs.encoder import DomainAgnosticTransformer, TransformerConfig
from rq_dabs.specs import spec_from_dict

__all__ = ["DABSPretraining", "OptimizerConfig", "load_encoder", "save_encoder"]


@dataclass
class OptimizerConfig:
    """AdamW (the reference builds ``torch.optim.AdamW`` for ``name: adam`` in
    ``base_system.py``); the app config embeds it as ``optim``."""

    lr: float = 1e-4  # DABS conf/pretrain.yaml optim.lr
    weight_decay: float = 1e-4  # DABS conf/pretrain.yaml optim.weight_decay

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(
                f"lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )


class DABSPretraining(L.LightningModule):
    """Encoder + algorithm; a batch is DABS's ``(index, *inputs, label)`` (label unused).

    The embedding modules are left out of the optimizer when the algorithm does not train
    them (RQ without straight-through): they get zero gradient, and leaving them out also
    keeps AdamW's decoupled weight decay from moving them, so they stay at initialization.
    """

    def __init__(
        self,
        model: DomainAgnosticTransformer,
        algorithm: PretrainingAlgorithm,
        optimizer: OptimizerConfig | None = None,
    ) -> None:
        super().__init__()
        if not algorithm.has_objective:
            raise ValueError(f"algorithm {algorithm.name!r} has nothing to pretrain")
        self.model = model
        self.algorithm = algorithm
        self.optim = optimizer or OptimizerConfig()
        if not algorithm.trains_embedding:
            self.model.embed_modules.requires_grad_(False)

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        inputs = batch[1:-1]
        loss, metrics = self.algorithm.loss(self.model, inputs)
        size = inputs[0].shape[0]
        # One name in every app: the metrics CSV's `train/loss` column (per logged step).
        self.log(
            "train/loss",
            loss.detach(),
            prog_bar=True,
            on_step=True,
            on_epoch=False,
            batch_size=size,
            sync_dist=False,
        )
        for name, value in metrics.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False, batch_size=size)
        return loss

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.optim.lr, weight_decay=self.optim.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Enough to rebuild the encoder without the config that made it.
        checkpoint["dabs_encoder"] = self.model.hyperparameters()
        checkpoint["dabs_algorithm"] = self.algorithm.name


def save_encoder(model: DomainAgnosticTransformer, path: str | Path) -> Path:
    """Write the encoder's weights and what rebuilds it (specs + sizes) to ``path``, through
    rq-core's one writer of weights files (atomic, weights-only)."""
    payload = {"dabs_encoder": model.hyperparameters(), "state_dict": model.state_dict()}
    return save_checkpoint(path, payload)


def load_encoder(path: str | Path) -> DomainAgnosticTransformer:
    """Rebuild an encoder from :func:`save_encoder`'s file or a :class:`DABSPretraining`
    Lightning checkpoint (read weights-only: :func:`rq_core.checkpoints.load_checkpoint`)."""
    checkpoint = load_checkpoint(path)
    if "dabs_encoder" not in checkpoint:
        raise ValueError(f"{path} is not a rq-dabs encoder or checkpoint (no 'dabs_encoder')")
    info = checkpoint["dabs_encoder"]
    model = DomainAgnosticTransformer(
        [spec_from_dict(s) for s in info["specs"]], TransformerConfig(**info["config"])
    )
    state = checkpoint["state_dict"]
    if any(k.startswith("model.") for k in state):
        state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    model.load_state_dict(state)
    return model
