"""A tiny rq-mid-net config shared by the CLI tests."""

import pytest

TINY = [
    "device=cpu",
    "data.num_points=256",
    "data.shapes_per_class=4",
    "data.num_clusters=8",
    "classify_data=${data}",
    "segment_data=${data}",
    "classify_data.splits=[train,valid,test]",
    "model.depth=4",
    "model.channels=16",
    "model.global_channels=16",
    "model.shape_dim=8",
    "model.point_dim=8",
    "model.point_hidden=8",
    "model.resblock_num=1",
    "model.stages=2",
    "optim.batch_size=4",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.log_every_n_steps=1",
    "trainer.tensorboard=false",
    "trainer.progress_bar=false",
    "trainer.checkpoint_every_n_steps=0",
    "classify.ratios=[0.5,1.0]",
    "classify.seeds=[42]",
    "classify.probe_epochs=5",
    "segment.ratios=[1.0]",
    "segment.points_per_shape=64",
    "segment.hidden=8",
    "segment.epochs=1",
    "segment.seeds=[42]",
]


@pytest.fixture
def tiny_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("RQ_CACHE", str(tmp_path / "cache"))
    return list(TINY)
