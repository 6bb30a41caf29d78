import pytest
import torch
from rq_audio.augmentations import (
    MixupBYOLA,
    RandomQuantizeAudio,
    RandomResizeCrop,
    build_augmentation_chain,
)


def test_chain_from_config_list_in_order():
    chain = build_augmentation_chain(
        [
            {"name": "mixup", "ratio": 0.4, "memory_size": 16},
            {"name": "random_resize_crop", "virtual_crop_scale": [1.0, 1.5]},
            {"name": "rq", "num_bins": 5, "channel_mode": "frequency"},
        ]
    )
    assert [type(b) for b in chain.blocks] == [MixupBYOLA, RandomResizeCrop, RandomQuantizeAudio]
    assert chain.blocks[1].virtual_crop_scale == (1.0, 1.5)
    x = torch.randn(4, 1, 64, 96)
    a, b = chain(x), chain(x)
    assert a.shape == x.shape and not torch.equal(a, b)  # two views differ


def test_unknown_names_and_arguments_are_named():
    with pytest.raises(ValueError, match="unknown name 'specaugment'"):
        build_augmentation_chain([{"name": "specaugment"}])
    with pytest.raises(ValueError, match=r"#0 \(rq\)"):
        build_augmentation_chain([{"name": "rq", "bins": 5}])
