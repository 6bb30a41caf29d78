import pytest
import torch
import torch.nn.functional as F
from rq_core.losses.memory_bank import MemoryBank


def test_bank_entries_are_unit_vectors_and_update_moves_by_momentum():
    torch.manual_seed(0)
    bank = MemoryBank(size=6, dim=4, momentum=0.5)
    assert torch.allclose(bank.bank.norm(dim=1), torch.ones(6))
    before = bank.bank.clone()
    features = torch.randn(2, 4)
    bank.update(features, torch.tensor([1, 4]))
    expected = F.normalize(0.5 * before[[1, 4]] + 0.5 * F.normalize(features, dim=1), dim=1)
    assert torch.allclose(bank.bank[[1, 4]], expected, atol=1e-6)
    untouched = [0, 2, 3, 5]
    assert torch.equal(bank.bank[untouched], before[untouched])


def test_loss_is_cross_entropy_of_similarities_over_temperature():
    torch.manual_seed(0)
    bank = MemoryBank(size=5, dim=3, temperature=0.1)
    features, indices = torch.randn(4, 3), torch.tensor([0, 2, 3, 3])
    logits = F.normalize(features, dim=1) @ bank.bank.T / 0.1
    expected = F.cross_entropy(logits, indices)
    assert torch.allclose(bank(features, indices, update=False), expected)


def test_forward_updates_only_in_training_mode_and_backward_still_works():
    bank = MemoryBank(size=5, dim=3)
    before = bank.bank.clone()
    features = torch.randn(2, 3, requires_grad=True)
    bank.eval()
    bank(features, torch.tensor([0, 1])).backward()
    assert torch.equal(bank.bank, before)
    bank.train()
    features.grad = None
    loss = bank(features, torch.tensor([0, 1]))
    loss.backward()  # the out-of-place update keeps the saved bank valid for backward
    assert features.grad is not None and not torch.equal(bank.bank, before)


def test_instance_discrimination_loss_falls_over_20_steps():
    torch.manual_seed(0)
    data = torch.randn(32, 8)
    encoder = torch.nn.Linear(8, 16)
    bank = MemoryBank(size=32, dim=16, momentum=0.5, temperature=0.1)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-2)
    indices = torch.arange(32)
    losses = []
    for _ in range(20):
        loss = bank(encoder(data + 0.05 * torch.randn_like(data)), indices)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_bank_is_a_buffer_saved_in_state_dict():
    bank = MemoryBank(size=4, dim=2)
    assert "bank" in bank.state_dict()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda b: b(torch.randn(2, 5), torch.tensor([0, 1])), ValueError, r"\(batch, 4\)"),
        (lambda b: b(torch.randn(2, 4), torch.tensor([0])), ValueError, "indices must be"),
        (lambda b: b(torch.randn(2, 4), torch.tensor([0, 10])), ValueError, r"\[0, 10\)"),
        (lambda b: b(torch.randn(2, 4), torch.tensor([0.0, 1.0])), TypeError, "int64"),
    ],
)
def test_bad_inputs_raise_naming_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(MemoryBank(size=10, dim=4))


def test_bad_construction_raises():
    with pytest.raises(ValueError, match="momentum"):
        MemoryBank(4, 2, momentum=1.0)
    with pytest.raises(ValueError, match="temperature"):
        MemoryBank(4, 2, temperature=0)
