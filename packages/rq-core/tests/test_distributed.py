"""Two CPU processes with gloo under torchrun: gathered NT-Xent, memory bank, Lightning DDP."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rq_core import distributed
from rq_core.losses.memory_bank import MemoryBank
from rq_core.losses.ntxent import NTXentLoss

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import ddp_workers  # noqa: E402  (the same data and model the ranks build)

pytestmark = pytest.mark.ddp


def _torchrun(*args: str, timeout: int = 240) -> None:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` (a free port is picked for us)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(variable, None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *args,
    ]
    # A session of its own, so that a hang kills the workers too, not only torchrun.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"torchrun did not finish in {timeout} s: {stderr[-4000:]}") from None
    assert process.returncode == 0, (stdout[-3000:], stderr[-6000:])


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    _torchrun(str(HERE / "ddp_workers.py"), str(out))
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def test_helpers_are_the_identity_without_a_process_group():
    x = torch.randn(3, 2)
    assert distributed.world_size() == 1 and distributed.rank() == 0
    assert distributed.gather_with_grad(x) is x and distributed.gather_without_grad(x) is x


def test_ranks_see_the_world(rank_results):
    assert [r["world_size"] for r in rank_results] == [2, 2]
    assert [r["rank"] for r in rank_results] == [0, 1]


def test_gathered_ntxent_equals_one_process_on_the_concatenated_batch(rank_results):
    x0, x1 = ddp_workers.full_batch()
    model = ddp_workers.toy_encoder()
    loss = NTXentLoss(temperature=0.3, gather_distributed=False)(model(x0), model(x1))
    loss.backward()
    mean_rank_loss = (rank_results[0]["loss"] + rank_results[1]["loss"]) / 2
    assert torch.allclose(mean_rank_loss, loss.detach(), atol=1e-12)
    for result in rank_results:  # DDP averaged the gradients: same on both ranks
        for name, parameter in model.named_parameters():
            assert torch.allclose(result["grads"][name], parameter.grad, atol=1e-12), name
    # Without the gather each rank only sees its own negatives: a different loss.
    without = (rank_results[0]["loss_without_gather"] + rank_results[1]["loss_without_gather"]) / 2
    assert not torch.allclose(without, loss.detach(), atol=1e-6)


def test_gather_with_grad_concatenates_and_sums_upstream_gradients(rank_results):
    expected = torch.cat([torch.full((2, 3), 1.0), torch.full((2, 3), 2.0)]).double()
    weights = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    for rank, result in enumerate(rank_results):
        assert torch.equal(result["gathered"], expected)
        # Rank r's loss is sum(gathered * weights * (r + 1)); summed over ranks: 3 * weights.
        assert torch.equal(result["gather_grad"], 3 * weights[2 * rank : 2 * rank + 2])


def test_memory_bank_stays_identical_across_ranks_and_matches_one_process(rank_results):
    assert torch.equal(rank_results[0]["bank"], rank_results[1]["bank"])
    torch.manual_seed(2)
    bank = MemoryBank(size=16, dim=4, momentum=0.5)
    features = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    bank.update(features, torch.arange(8) * 2)
    assert torch.allclose(rank_results[0]["bank"], bank.bank, atol=1e-6)


def test_lightning_ddp_ends_with_identical_weights_on_both_ranks(tmp_path):
    _torchrun(
        str(HERE / "toy_training.py"),
        str(tmp_path),
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.max_epochs=2",
    )
    weights = [
        torch.load(tmp_path / f"final_weights.rank{r}.pt", weights_only=True) for r in (0, 1)
    ]
    assert weights[0].keys() == weights[1].keys()
    # Every parameter is identical. BatchNorm running statistics are per-rank buffers on
    # CPU (no SyncBatchNorm there; DDP broadcasts rank 0's before each forward), so the
    # last step leaves them slightly different: they are not weights.
    import toy_training

    parameters = [name for name, _ in toy_training.ToyModule().named_parameters()]
    assert len(parameters) == 12  # online network and its EMA copy
    for name in parameters:
        assert torch.equal(weights[0][name], weights[1][name]), name
    initial = ddp_workers_free_initial_weights()
    assert not torch.equal(weights[0]["net.0.weight"], initial["net.0.weight"]), "it trained"
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    # 64 samples, batch 8, 2 ranks: 4 steps per epoch.
    assert checkpoint["global_step"] == 8
    streams = checkpoint["rng_states"]
    assert len(streams) == 2 and not torch.equal(streams[0]["torch"], streams[1]["torch"])


def ddp_workers_free_initial_weights() -> dict[str, torch.Tensor]:
    import toy_training

    return toy_training.ToyModule().state_dict()
