import pytest
import torch
from rq_dabs.encoder import DomainAgnosticTransformer, TransformerConfig
from rq_dabs.specs import Input1dSpec, Input2dSpec, InputTokensSpec


def test_paper_sizes_are_the_defaults():
    cfg = TransformerConfig()
    assert (cfg.dim, cfg.depth, cfg.heads, cfg.dim_head, cfg.mlp_dim, cfg.dropout, cfg.out_dim) == (
        256,
        12,
        8,
        64,
        512,
        0.1,
        128,
    )
    model = DomainAgnosticTransformer([Input1dSpec(320, 5, 52)])
    assert len(model.blocks) == 12
    assert model.pos_embedding.shape == (1, 65, 256)  # CLS + 64 segments


def test_outputs_for_image_plus_caption(tiny_config):
    specs = [Input2dSpec(32, 8, 3), InputTokensSpec(6, 50)]
    model = DomainAgnosticTransformer(specs, tiny_config).eval()
    inputs = [torch.randn(3, 3, 32, 32), torch.randint(0, 50, (3, 6))]
    tokens = model.embed(inputs)
    assert tokens.shape == (3, 16 + 6, 32)
    assert model.encode(tokens).shape == (3, 16)
    assert model.encode(tokens, prehead=True).shape == (3, 32)
    assert model.encode(tokens, prepool=True).shape == (3, 23, 32)


def test_mean_pool_is_the_mean_over_all_positions_cls_included(tiny_config):
    model = DomainAgnosticTransformer([Input1dSpec(20, 5, 3)], tiny_config).eval()
    tokens = model.embed([torch.randn(2, 20, 3)])
    every = model.encode(tokens, prepool=True)
    assert torch.allclose(model.encode(tokens, prehead=True), every.mean(1), atol=1e-6)


def test_samples_do_not_interact_in_eval_mode(tiny_config):
    model = DomainAgnosticTransformer([Input1dSpec(20, 5, 3)], tiny_config).eval()
    x = torch.randn(4, 20, 3)
    full = model([x], prehead=True)
    one = model([x[2:3]], prehead=True)
    assert torch.allclose(full[2:3], one, atol=1e-5)


def test_wrong_number_of_inputs_raises(tiny_config):
    model = DomainAgnosticTransformer([Input1dSpec(20, 5, 3)], tiny_config)
    with pytest.raises(ValueError, match="expected 1 inputs"):
        model.embed([torch.randn(1, 20, 3), torch.randn(1, 20, 3)])
    with pytest.raises(ValueError, match="pool"):
        TransformerConfig(pool="max")
