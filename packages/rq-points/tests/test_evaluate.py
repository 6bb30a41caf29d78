import numpy as np
import pytest
from rq_points.evaluate import PointFeatures, class_ratio_subset, part_iou, segmentation_probe


def test_class_ratio_subset_takes_ceil_per_class():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 101)
    sub = class_ratio_subset(labels, 0.05, seed=1)
    assert [int((labels[sub] == c).sum()) for c in range(3)] == [1, 1, 6]
    assert len(np.unique(sub)) == len(sub)


def test_part_iou_by_hand():
    # shape 0 (class 0, parts 0-1): part 0 IoU 1/3, part 1 IoU 1/3; shape 1 (class 1, parts 2-4):
    # all correct on parts 2 and 3, part 4 absent in both -> 1.
    pred = np.array([0, 0, 1, 1, 2, 3])
    gt = np.array([0, 1, 1, 0, 2, 3])
    r = part_iou(pred, gt, np.array([0, 0, 0, 0, 1, 1]), np.array([0, 1]), [(0, 2), (2, 5)])
    assert np.isclose(r["instance_miou"], 100 * (1 / 3 + 1.0) / 2)
    assert np.isclose(r["class_miou"], r["instance_miou"])


def test_segmentation_probe_learns_separable_parts():
    rng = np.random.default_rng(0)

    def make(n_shapes):
        labels = rng.integers(0, 2, size=(n_shapes, 50))
        feats = rng.normal(size=(n_shapes, 50, 4)) + 3 * labels[..., None]
        return PointFeatures(
            feats.reshape(-1, 4).astype(np.float32),
            labels.reshape(-1),
            np.repeat(np.arange(n_shapes), 50),
            np.zeros(n_shapes, int),
        )

    r = segmentation_probe(
        make(20), make(5), [(0, 2)], hidden=8, epochs=10, batch_size=64, seeds=(0,)
    )
    assert r["instance_miou_mean"] > 90


@pytest.mark.slow  # ~20 s idle, over a minute on the loaded CI machine
def test_finetuning_runs_and_changes_the_backbone(tmp_path):
    import torch
    from rq_points.data.shape_cache import ShapeCache, write_shape_cache
    from rq_points.data.sources import procedural_sources
    from rq_points.encoder import MidNet, MidNetConfig
    from rq_points.evaluate import finetune_classification, finetune_segmentation

    sources, meta = procedural_sources(2, 128)
    write_shape_cache(
        tmp_path / "c.h5",
        sources,
        class_names=meta["class_names"],
        part_names=meta["part_names"],
        num_clusters=4,
        progress=False,
    )
    cache = ShapeCache(tmp_path / "c.h5")
    cfg = MidNetConfig(
        depth=4,
        stages=2,
        channels=16,
        global_channels=16,
        shape_dim=8,
        point_dim=8,
        point_hidden=8,
        resblock_num=1,
    )
    net = MidNet(cfg)
    before = [p.detach().clone() for p in net.parameters()]
    idx = np.arange(len(cache))
    r = finetune_classification(
        net, cache, idx[:8], idx[8:], epochs=1, batch_size=4, progress=False
    )
    assert 0 <= r["accuracy"] <= 100 and r["num_test"] == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    ranges = [(a, a + len(p)) for a, p in zip(cache.part_offsets, cache.part_names)]
    s = finetune_segmentation(
        MidNet(cfg),
        cache,
        idx[:8],
        idx[8:],
        ranges,
        epochs=1,
        batch_size=4,
        hidden=8,
        progress=False,
    )
    assert 0 < s["instance_miou"] <= 100 and s["num_shapes"] == 4
