"""BYOL-A as a LightningModule: waveforms in, log-mel + augmentation on the device, BYOL loss.

One training step (byol-a train.py / v2 train_v2.py, batched):

1. waveforms (B, N) -> log-mel (B, 1, 64, T) on the device (:class:`LogMelSpectrogram`);
2. pre-norm with training-set statistics (:class:`PrecomputedNorm`);
3. two views, each through the augmentation chain with its own draws (RQ or Mixup after
   RandomResizeCrop);
4. post-norm over the 2B views together (:class:`NormalizeBatch`);
5. online encoder -> projector (2048 -> 4096 -> 256) -> predictor (256 -> 4096 -> 256); target
   encoder -> projector, an EMA copy (decay 0.99, config.yaml ema_decay);
6. symmetric BYOL loss; Adam, lr 3e-4 (config.yaml lr); EMA update after each step.

>>> import torch
>>> m = BYOLA(feature_dim=64, projection_hidden_dim=32, projection_dim=16)
>>> loss = m.training_step(torch.randn(4, 15200), 0)
>>> loss.shape
torch.Size([])
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from rq_core.heads import BYOLPredictionHead, BYOLProjectionHead
from rq_core.losses.byol import BYOLLoss
from rq_core.momentum import deactivate_requires_grad, update_momentum
from torch import Tensor

from rq_audio.augmentations import build_augmentation_chain
from rq_audio.augmentations.chain import AUGMENTATIONS
from rq_audio.encoder import AudioNTT2020
from rq_audio.log_mel import LogMelSpectrogram
from rq_audio.normalization import NormalizeBatch, PrecomputedNorm

__all__ = ["BYOLA", "METHOD_CHAINS", "MIXUP_AUGMENTATIONS", "RQ_AUGMENTATIONS", "method_chain"]

# byol_a/augmentations.py RandomResizeCrop defaults, as byol-a train.py uses them.
_RANDOM_RESIZE_CROP = {
    "name": "random_resize_crop",
    "virtual_crop_scale": [1.0, 1.5],
    "freq_scale": [0.6, 1.5],
    "time_scale": [0.6, 1.5],
}
# The paper's audio setting (Wu et al., ICCV 2023, Sec. 5.3): BYOL-A with Mixup replaced by
# RQ, 5 bins, after random resized crop; one quantizer per spectrogram (`sample`), as the
# authors' module does on BYOL-A's (B, 1, F, T) input (docs/decisions.md, "RQ channel modes").
RQ_AUGMENTATIONS: list[dict] = [
    _RANDOM_RESIZE_CROP,
    {"name": "rq", "num_bins": 5, "channel_mode": "sample"},
]
# BYOL-A v1 (nttcslab/byol-a train.py AugmentationModule, config.yaml): Mixup (ratio 0.4,
# memory 2048, log-mixup-exp) then random resized crop.
MIXUP_AUGMENTATIONS: list[dict] = [
    {"name": "mixup", "ratio": 0.4, "memory_size": 2048, "log_mixup_exp": True},
    _RANDOM_RESIZE_CROP,
]
# The method presets: ``method=rq`` (the paper) and ``method=mixup`` (the BYOL-A baseline).
METHOD_CHAINS: dict[str, list[dict]] = {"rq": RQ_AUGMENTATIONS, "mixup": MIXUP_AUGMENTATIONS}


def method_chain(
    method: str, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> list[dict]:
    """The preset chain of ``method`` (a key of :data:`METHOD_CHAINS`), with ``overrides``
    (``{entry name: {key: value}}``) set on the entries of that name. An override of a block
    the chain does not hold is skipped (one override list serves every preset); a name that
    is no block at all is an error.

    >>> method_chain("rq", {"rq": {"channel_mode": "frequency"}})[-1]
    {'name': 'rq', 'num_bins': 5, 'channel_mode': 'frequency'}
    >>> [entry["name"] for entry in method_chain("mixup", {"rq": {"num_bins": 8}})]
    ['mixup', 'random_resize_crop']
    """
    if method not in METHOD_CHAINS:
        raise ValueError(f"method={method!r} is not one of {sorted(METHOD_CHAINS)}")
    overrides = {name: dict(values) for name, values in (overrides or {}).items()}
    unknown = sorted(set(overrides) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(
            f"chain_overrides: {unknown} name no augmentation; known: {sorted(AUGMENTATIONS)}"
        )
    chain = copy.deepcopy(METHOD_CHAINS[method])
    for entry in chain:
        entry.update(overrides.get(entry["name"], {}))
    return chain


class BYOLA(L.LightningModule):
    """BYOL-A learner (see the module docstring).

    Args:
        n_mels, feature_dim: encoder input bins and embedding size (64, 2048 in BYOL-A).
        projection_hidden_dim, projection_dim: BYOL heads (4096, 256: config.yaml proj_dim,
            proj_size).
        ema_decay: target network EMA (0.99, config.yaml).
        lr: Adam learning rate (3e-4, config.yaml).
        augmentations: the chain as a config list (default: the paper's RQ chain).
        log_mel: keyword arguments of :class:`LogMelSpectrogram`.
        norm_stats: (mean, std) of the training set's log-mel; set later with
            :meth:`set_norm_stats` if unknown at construction.
        encoder_channels: AudioNTT2020 conv width (64 in BYOL-A; smaller for CPU demos).
    """

    def __init__(
        self,
        n_mels: int = 64,
        feature_dim: int = 2048,
        projection_hidden_dim: int = 4096,
        projection_dim: int = 256,
        ema_decay: float = 0.99,
        lr: float = 3e-4,
        augmentations: Sequence[Mapping] | None = None,
        log_mel: Mapping | None = None,
        norm_stats: tuple[float, float] = (0.0, 1.0),
        encoder_channels: int = 64,
    ) -> None:
        super().__init__()
        if not 0.0 <= ema_decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1], got {ema_decay}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        augmentations = list(RQ_AUGMENTATIONS if augmentations is None else augmentations)
        self.save_hyperparameters(
            {
                "n_mels": n_mels,
                "feature_dim": feature_dim,
                "projection_hidden_dim": projection_hidden_dim,
                "projection_dim": projection_dim,
                "ema_decay": ema_decay,
                "lr": lr,
                "augmentations": [dict(a) for a in augmentations],
                "log_mel": dict(log_mel or {}),
                "encoder_channels": encoder_channels,
            }
        )
        self.ema_decay = ema_decay
        self.lr = lr
        self.to_log_mel = LogMelSpectrogram(n_mels=n_mels, **dict(log_mel or {}))
        self.pre_norm = PrecomputedNorm(*norm_stats)
        self.augment = build_augmentation_chain(augmentations)
        self.post_norm = NormalizeBatch()
        self.encoder = AudioNTT2020(n_mels=n_mels, d=feature_dim, channels=encoder_channels)
        self.projector = BYOLProjectionHead(feature_dim, projection_hidden_dim, projection_dim)
        self.predictor = BYOLPredictionHead(projection_dim, projection_hidden_dim, projection_dim)
        self.target_encoder = deactivate_requires_grad(copy.deepcopy(self.encoder))
        self.target_projector = deactivate_requires_grad(copy.deepcopy(self.projector))
        self.criterion = BYOLLoss()

    def set_norm_stats(self, mean: float, std: float) -> None:
        self.pre_norm.set_stats(mean, std)

    @torch.no_grad()
    def make_views(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """Waveforms (B, N) -> two post-normalized augmented views, each (B, 1, n_mels, T)."""
        lms = self.pre_norm(self.to_log_mel(wav).unsqueeze(1))
        views = torch.cat([self.augment(lms), self.augment(lms)])
        views = self.post_norm(views)
        return views[: wav.shape[0]], views[wav.shape[0] :]

    def forward(self, lms: Tensor) -> Tensor:
        """Embeddings of normalized log-mel (B, 1, n_mels, T) -> (B, feature_dim)."""
        return self.encoder(lms)

    def byol_loss(self, view0: Tensor, view1: Tensor) -> Tensor:
        B = view0.shape[0]
        both = torch.cat([view0, view1])  # one pass: BatchNorm sees both views, as byol_pytorch
        p = self.predictor(self.projector(self.encoder(both)))
        with torch.no_grad():
            z = self.target_projector(self.target_encoder(both))
        return self.criterion(p[:B], p[B:], z[:B], z[B:])

    def training_step(self, batch, batch_idx: int) -> Tensor:
        wav = batch[0] if isinstance(batch, (list, tuple)) else batch
        view0, view1 = self.make_views(wav)
        loss = self.byol_loss(view0, view1)
        if self._trainer is not None:  # also usable as a plain module (tests, benchmarks)
            # `train/loss` per step (the metrics.csv column every app has, read by name by the
            # main job) and its epoch mean as `train/loss_epoch`, as rq_points' learner does.
            size = wav.shape[0]
            self.log(
                "train/loss",
                loss,
                prog_bar=True,
                on_step=True,
                on_epoch=False,
                batch_size=size,
                sync_dist=True,
            )
            self.log(
                "train/loss_epoch",
                loss,
                on_step=False,
                on_epoch=True,
                batch_size=size,
                sync_dist=True,
            )
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # After the optimizer step: the target follows the online network (BYOL-A updates in
        # on_before_zero_grad, i.e. once per step too).
        update_momentum(self.encoder, self.target_encoder, self.ema_decay)
        update_momentum(self.projector, self.target_projector, self.ema_decay)

    def configure_optimizers(self):
        params = [
            *self.encoder.parameters(),
            *self.projector.parameters(),
            *self.predictor.parameters(),
        ]
        return torch.optim.Adam(params, lr=self.lr)

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """The online encoder's weights (what downstream evaluation loads)."""
        return {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()}
