import pytest
import torch
from rq_dabs.algorithms import EMix, RQSimCLR, Scratch, ShED
from rq_dabs.learner import DABSPretraining, load_encoder, save_encoder


def _optimized(module):
    opt = module.configure_optimizers()
    return {id(p) for group in opt.param_groups for p in group["params"]}


def test_rq_leaves_the_embedding_out_of_the_optimizer(sensor_model):
    module = DABSPretraining(sensor_model, RQSimCLR(gather_distributed=False))
    ids = _optimized(module)
    assert all(id(p) not in ids for p in sensor_model.embed_modules.parameters())
    assert id(sensor_model.pos_embedding) in ids


@pytest.mark.parametrize("algorithm", [RQSimCLR(straight_through=True), EMix()])
def test_other_algorithms_train_the_embedding(sensor_model, algorithm):
    ids = _optimized(DABSPretraining(sensor_model, algorithm))
    assert all(id(p) in ids for p in sensor_model.embed_modules.parameters())


def test_shed_predictor_is_optimized_and_scratch_has_nothing_to_train(sensor_model):
    shed = ShED(dim=32)
    assert id(shed.predictor.weight) in _optimized(DABSPretraining(sensor_model, shed))
    with pytest.raises(ValueError, match="nothing to pretrain"):
        DABSPretraining(sensor_model, Scratch())


def test_encoder_round_trips(tmp_path, sensor_model):
    path = save_encoder(sensor_model, tmp_path / "e.pt")
    again = load_encoder(path).eval()
    x = torch.randn(2, 20, 3)
    assert torch.equal(again([x], prehead=True), sensor_model.eval()([x], prehead=True))
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a rq-dabs encoder"):
        load_encoder(tmp_path / "other.pt")
