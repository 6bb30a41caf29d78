"""Per-rank checks run by test_distributed.py under ``torchrun --nproc_per_node=2``.

``python -m torch.distributed.run --nproc_per_node=2 ddp_workers.py OUT_DIR`` writes
``OUT_DIR/rank{r}.pt`` with each rank's losses, gradients and memory bank.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from rq_core import distributed
from rq_core.losses.memory_bank import MemoryBank
from rq_core.losses.ntxent import NTXentLoss
from torch import nn
from torch.nn.parallel import DistributedDataParallel

BATCH_PER_RANK = 4


def full_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    world = 2 * BATCH_PER_RANK
    return (
        torch.randn(world, 6, generator=generator, dtype=torch.float64),
        torch.randn(world, 6, generator=generator, dtype=torch.float64),
    )


def toy_encoder() -> nn.Module:
    torch.manual_seed(1)
    return nn.Linear(6, 4).double()


def ntxent_under_ddp(gather: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    rank = dist.get_rank()
    x0, x1 = full_batch()
    rows = slice(rank * BATCH_PER_RANK, (rank + 1) * BATCH_PER_RANK)
    model = DistributedDataParallel(toy_encoder())
    loss = NTXentLoss(temperature=0.3, gather_distributed=gather)(model(x0[rows]), model(x1[rows]))
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.module.named_parameters()}


def main(out_dir: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    result: dict[str, object] = {"world_size": distributed.world_size(), "rank": distributed.rank()}
    result["loss"], result["grads"] = ntxent_under_ddp(gather=True)
    result["loss_without_gather"], _ = ntxent_under_ddp(gather=False)

    # gather_with_grad: each rank's slice receives the sum of every rank's upstream gradient.
    x = torch.full((2, 3), float(rank + 1), dtype=torch.float64, requires_grad=True)
    gathered = distributed.gather_with_grad(x)
    weights = torch.arange(gathered.numel(), dtype=torch.float64).reshape(gathered.shape)
    (gathered * weights * (rank + 1)).sum().backward()
    result["gathered"] = gathered.detach()
    result["gather_grad"] = x.grad.clone()

    # Memory bank: both ranks apply the updates of the whole global batch.
    torch.manual_seed(2)
    bank = MemoryBank(size=16, dim=4, momentum=0.5)
    features = torch.randn(2 * BATCH_PER_RANK, 4, generator=torch.Generator().manual_seed(3))
    indices = torch.arange(2 * BATCH_PER_RANK) * 2
    rows = slice(rank * BATCH_PER_RANK, (rank + 1) * BATCH_PER_RANK)
    bank.update(features[rows], indices[rows])
    result["bank"] = bank.bank.clone()

    torch.save(result, out_dir / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
