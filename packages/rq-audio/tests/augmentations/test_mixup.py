import math

import pytest
import torch
from rq_audio.augmentations import MixupBYOLA, log_mixup_exp


def test_first_call_passes_through_then_mixes_with_memory():
    mix = MixupBYOLA(ratio=0.4, memory_size=4)
    x = torch.zeros(3, 1, 4, 5)
    assert torch.equal(mix(x), x) and mix.num_filled == 3
    # Inputs at log(1) mixed with memory entries at log(1): log((1-a) + a) = 0 whatever a.
    torch.testing.assert_close(
        mix(torch.zeros(3, 1, 4, 5)), torch.zeros(3, 1, 4, 5), atol=1e-6, rtol=0
    )
    assert mix.num_filled == 4  # FIFO capped at memory_size


def test_mixing_weight_is_per_sample_and_below_ratio():
    ratio = 0.4
    mix = MixupBYOLA(ratio=ratio, memory_size=64)
    mix(torch.full((64, 1, 2, 2), math.log(3.0)))  # memory: exp(z) = 3
    out = mix(torch.zeros(64, 1, 2, 2), generator=torch.Generator().manual_seed(0))  # exp(x) = 1
    alpha = (out.exp() - 1) / 2  # (1 - a) * 1 + a * 3 = 1 + 2a
    per_sample = alpha.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1], atol=1e-5)  # one weight per sample
    assert per_sample.min() >= -1e-6 and per_sample.max() <= ratio + 1e-6
    assert per_sample[:, 0].std() > 0.05  # drawn, not fixed


def test_log_mixup_exp_formula_and_linear_mode():
    x, z = torch.tensor([0.0]), torch.tensor([math.log(5.0)])
    torch.testing.assert_close(
        log_mixup_exp(x, z, 0.25), torch.log(torch.tensor([0.75 + 1.25])), atol=1e-6, rtol=0
    )
    mix = MixupBYOLA(ratio=0.0, memory_size=8, log_mixup_exp=False)
    mix(torch.randn(2, 1, 3, 3))
    y = torch.randn(2, 1, 3, 3)
    torch.testing.assert_close(mix(y), y)  # ratio 0: nothing of the memory


def test_bad_arguments():
    with pytest.raises(ValueError, match="ratio"):
        MixupBYOLA(ratio=1.5)
    with pytest.raises(ValueError, match="memory_size"):
        MixupBYOLA(memory_size=0)


def test_rank_state_restores_the_memory_so_mixing_continues_identically():
    # What a training checkpoint carries per rank (rq_core.training.RunCheckpoint): a fresh
    # module given the state mixes with the same memory as the one that kept running.
    running = MixupBYOLA(memory_size=6)
    for _ in range(3):
        running(torch.randn(4, 1, 8, 5))
    state = running.rank_state_dict()
    assert state["memory"].shape == (6, 1, 8, 5) and state["num_filled"] == 6
    assert "memory" not in running.state_dict(), "per-rank state stays out of state_dict"
    restored = MixupBYOLA(memory_size=6)
    copied = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
    restored.load_rank_state_dict(copied)
    x = torch.randn(4, 1, 8, 5)
    torch.manual_seed(0)
    expected = running(x)
    torch.manual_seed(0)
    assert torch.equal(restored(x), expected)
    assert torch.equal(restored.memory, running.memory) and restored._write == running._write
    empty = MixupBYOLA(memory_size=6)
    empty.load_rank_state_dict(MixupBYOLA(memory_size=6).rank_state_dict())
    assert empty.memory is None and empty.num_filled == 0
    with pytest.raises(ValueError, match="memory_size=3"):
        MixupBYOLA(memory_size=3).load_rank_state_dict(state)
