import pytest
from rq_dabs.specs import Input1dSpec, Input2dSpec, InputTokensSpec, spec_from_dict


def test_token_counts_of_the_dabs_domains():
    assert Input2dSpec(224, 16, 3).num_tokens == 196  # natural images, x-rays, spectrograms
    assert Input2dSpec(32, 4, 3).num_tokens == 64  # CIFAR-10 small
    assert Input1dSpec(320, 5, 52).num_tokens == 64  # PAMAP2
    assert InputTokensSpec(128, 30522).num_tokens == 128  # BERT ids


def test_bad_specs_raise_with_the_sizes():
    with pytest.raises(ValueError, match="multiple of segment_size"):
        Input1dSpec(321, 5, 52)
    with pytest.raises(ValueError, match="patch_size"):
        Input2dSpec(30, 4, 3)
    with pytest.raises(ValueError, match="input_type"):
        spec_from_dict({"input_type": "3d"})


def test_spec_round_trips_through_a_dict():
    from dataclasses import asdict

    for spec in (Input2dSpec((32, 16), 4, 1), Input1dSpec(20, 5, 6), InputTokensSpec(8, 100)):
        assert spec_from_dict(asdict(spec)) == spec
