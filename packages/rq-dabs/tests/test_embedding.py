import pytest
import torch
from rq_dabs.embedding import PatchEmbedding2d, SegmentEmbedding1d, TokenEmbedding, build_embedding
from rq_dabs.specs import Input1dSpec, Input2dSpec, InputTokensSpec


@pytest.mark.parametrize(
    "spec, shape, tokens",
    [
        (Input2dSpec(224, 16, 3), (2, 3, 224, 224), 196),
        (Input2dSpec(32, 4, 3), (2, 3, 32, 32), 64),
        (Input2dSpec(224, 16, 1), (2, 1, 224, 224), 196),  # speech spectrogram
        (Input1dSpec(320, 5, 52), (2, 320, 52), 64),
    ],
)
def test_dense_inputs_become_one_token_per_patch_or_segment(spec, shape, tokens):
    module = build_embedding(spec, 256)
    out = module(torch.randn(shape))
    assert out.shape == (2, tokens, 256)
    assert module.num_tokens == tokens


def test_token_ids_are_looked_up():
    module = TokenEmbedding(InputTokensSpec(128, 30522), 256)
    ids = torch.randint(0, 30522, (2, 128))
    out = module(ids)
    assert out.shape == (2, 128, 256)
    assert torch.equal(out[1, 5], module.embed.weight[ids[1, 5]])


def test_patch_token_holds_exactly_its_patch():
    spec = Input2dSpec(8, 4, 2)
    module = PatchEmbedding2d(spec, 4)
    image = torch.zeros(1, 2, 8, 8)
    image[0, :, 4:, :4] = 1.0  # the bottom-left patch: token index 2 in row-major order
    out = module(image) - module.project.bias
    moved = out.abs().sum(-1) > 0
    assert moved.tolist() == [[False, False, True, False]]


def test_segment_token_holds_consecutive_steps():
    module = SegmentEmbedding1d(Input1dSpec(10, 5, 2), 3)
    series = torch.zeros(1, 10, 2)
    series[0, 7, 1] = 1.0  # step 7 is in the second segment
    out = module(series) - module.project.bias
    assert (out.abs().sum(-1) > 0).tolist() == [[False, True]]


def test_wrong_shapes_raise_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        build_embedding(Input2dSpec(32, 4, 3), 8)(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ValueError, match="time-major"):
        build_embedding(Input1dSpec(320, 5, 52), 8)(torch.zeros(1, 52, 320))
    with pytest.raises(TypeError, match="integers"):
        build_embedding(InputTokensSpec(4, 10), 8)(torch.zeros(1, 4))
