"""BYOL-A's Mixup with a memory of past inputs, on whole batches.

Every sample is mixed with one spectrogram drawn from a FIFO memory of past inputs, in the
linear-power domain ("log-mixup-exp"): ``log((1 - a) exp(x) + a exp(z) + eps)`` with
``a ~ U(0, ratio)`` per sample. BYOL-A v1 (the paper's baseline): ratio 0.4, memory 2048
(byol_a/augmentations.py, train.py); v2 uses 0.2 / 512.

The memory holds the inputs of previous calls (the reference also pushes each input after
mixing it, so the very first inputs pass through unmixed). It lives on the input's device
and is per process (per DDP rank), as in the reference. It is not in ``state_dict`` (it
differs per rank); training checkpoints carry every rank's memory through
:meth:`MixupBYOLA.rank_state_dict` (see :class:`rq_core.training.RunCheckpoint`), so a
resumed run mixes with what the uninterrupted one would have.

>>> import torch
>>> mix = MixupBYOLA(memory_size=8)
>>> x = torch.randn(4, 1, 64, 96)
>>> torch.equal(mix(x), x)   # empty memory: nothing to mix with yet
True
>>> mix(torch.randn(4, 1, 64, 96)).shape
torch.Size([4, 1, 64, 96])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MixupBYOLA", "log_mixup_exp"]


def log_mixup_exp(x: Tensor, z: Tensor, alpha: Tensor | float) -> Tensor:
    """``log((1 - alpha) * exp(x) + alpha * exp(z) + eps)``; alpha broadcasts against x."""
    mixed = (1.0 - alpha) * x.exp() + alpha * z.exp()
    return (mixed + torch.finfo(x.dtype).eps).log()


class MixupBYOLA(nn.Module):
    """Mixup against a FIFO memory of past inputs (B, C, F, T).

    Args:
        ratio: upper bound of the mixing weight of the memory sample (alpha in BYOL-A).
        memory_size: number of past inputs kept.
        log_mixup_exp: mix in the exp domain (True, BYOL-A) or linearly on the log-mel.
    """

    def __init__(
        self, ratio: float = 0.4, memory_size: int = 2048, log_mixup_exp: bool = True
    ) -> None:
        super().__init__()
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        if memory_size < 1:
            raise ValueError(f"memory_size must be >= 1, got {memory_size}")
        self.ratio = float(ratio)
        self.memory_size = int(memory_size)
        self.log_mixup_exp = log_mixup_exp
        self.memory: Tensor | None = None
        self.num_filled = 0
        self._write = 0

    def reset(self) -> None:
        self.memory, self.num_filled, self._write = None, 0, 0

    def rank_state_dict(self) -> dict[str, Tensor | int]:
        """This process's memory: ``memory`` (memory_size, ...) or an empty tensor, the
        number of filled rows and the next write position."""
        memory = self.memory if self.memory is not None else torch.empty(0)
        return {"memory": memory, "num_filled": self.num_filled, "write": self._write}

    def load_rank_state_dict(self, state: dict[str, Tensor | int]) -> None:
        """Inverse of :meth:`rank_state_dict` (the memory moves to the input's device)."""
        memory = state["memory"]
        if not isinstance(memory, Tensor) or memory.numel() == 0:
            self.reset()
            return
        if memory.shape[0] != self.memory_size:
            raise ValueError(
                f"a saved Mixup memory of {memory.shape[0]} inputs does not fit memory_size="
                f"{self.memory_size}"
            )
        self.memory = memory.clone()
        self.num_filled, self._write = int(state["num_filled"]), int(state["write"])

    def _push(self, x: Tensor) -> None:
        x = x.detach()
        if self.memory is None or self.memory.shape[1:] != x.shape[1:]:
            self.memory = x.new_zeros((self.memory_size, *x.shape[1:]))
            self.num_filled, self._write = 0, 0
        n = min(x.shape[0], self.memory_size)
        x = x[-n:]
        idx = (self._write + torch.arange(n, device=x.device)) % self.memory_size
        self.memory[idx] = x
        self._write = (self._write + n) % self.memory_size
        self.num_filled = min(self.num_filled + n, self.memory_size)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.ndim < 2:
            raise ValueError(f"expected a batch (B, ...), got shape {tuple(x.shape)}")
        if self.memory is not None and self.memory.device != x.device:
            self.memory = self.memory.to(x.device)  # a restored memory comes on the CPU
        ready = (
            self.memory is not None and self.num_filled > 0 and self.memory.shape[1:] == x.shape[1:]
        )
        if ready:
            B = x.shape[0]
            pick = torch.randint(self.num_filled, (B,), device=x.device, generator=generator)
            z = self.memory[pick]
            shape = (B,) + (1,) * (x.ndim - 1)
            alpha = self.ratio * torch.rand(
                shape, device=x.device, dtype=x.dtype, generator=generator
            )
            out = log_mixup_exp(x, z, alpha) if self.log_mixup_exp else (1 - alpha) * x + alpha * z
        else:
            out = x
        self._push(x)
        return out

    def extra_repr(self) -> str:
        return (
            f"ratio={self.ratio}, memory_size={self.memory_size}, "
            f"log_mixup_exp={self.log_mixup_exp}"
        )
