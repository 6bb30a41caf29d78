import numpy as np
import pytest
import torch
from rq_audio.data.hdf5_cache import prepare_audio_cache
from rq_audio.data.metadata import MetadataRow, read_metadata, write_metadata
from rq_audio.evaluate import (
    embed_cache,
    evaluate_task,
    load_encoder,
    random_encoder,
)
from rq_audio.learner import BYOLA
from rq_audio.pretrain import save_encoder
from rq_core.linear_probe import ProbeSettings

FAST = ProbeSettings(lr=1e-2, max_epochs=60, patience=20)


def test_embeddings_have_one_row_per_clip(tone_cache):
    encoder, log_mel = random_encoder(feature_dim=32, channels=8)
    features = embed_cache(encoder, log_mel, tone_cache, unit_sec=0.5, progress=False)
    assert features.shape == (30, 32) and np.isfinite(features).all()


def test_tone_classes_are_separable_by_a_random_encoder(tone_cache):
    encoder, log_mel = random_encoder(feature_dim=64, channels=8)
    r = evaluate_task(
        encoder, log_mel, tone_cache, unit_sec=1.0, seeds=(42,), settings=FAST, progress=False
    )
    assert r["num_classes"] == 3 and r["num_test"] == 6
    assert r["accuracy_mean"] > 0.6  # chance is 1/3


def test_fold_metadata_runs_leave_one_fold_out(tone_folder, tmp_path):
    root, meta = tone_folder
    rows = [
        MetadataRow(r.file_name, r.label, None, 1 + i % 3)
        for i, r in enumerate(read_metadata(meta))
    ]
    write_metadata(tmp_path / "folds.csv", rows)
    cache = prepare_audio_cache(
        root, tmp_path / "folds.h5", metadata=tmp_path / "folds.csv", progress=False
    ).path
    encoder, log_mel = random_encoder(feature_dim=32, channels=8)
    r = evaluate_task(
        encoder, log_mel, cache, unit_sec=1.0, seeds=(42,), settings=FAST, progress=False
    )
    assert r["folds"] == [1, 2, 3]


def test_unlabelled_cache_is_refused(tone_folder, tmp_path):
    root, _ = tone_folder
    cache = prepare_audio_cache(root, tmp_path / "nolabel.h5", progress=False).path
    encoder, log_mel = random_encoder(feature_dim=32, channels=8)
    with pytest.raises(ValueError, match="no label"):
        evaluate_task(encoder, log_mel, cache, unit_sec=1.0, progress=False)


def test_saved_encoder_roundtrip(tmp_path):
    m = BYOLA(
        feature_dim=32,
        projection_hidden_dim=32,
        projection_dim=16,
        encoder_channels=8,
        log_mel={"backend": "torchaudio"},
        norm_stats=(-3.0, 2.0),
    )
    path = save_encoder(m, tmp_path / "enc.pt")
    encoder, log_mel, stats = load_encoder(path)
    assert stats == (-3.0, 2.0) and log_mel.backend == "torchaudio"
    x = torch.randn(2, 1, 64, 96)
    torch.testing.assert_close(encoder(x), m.encoder.eval()(x))
    with pytest.raises(FileNotFoundError, match="pretrain"):
        load_encoder(tmp_path / "none.pt")


@pytest.mark.parametrize(
    "augmentations", [None, [{"name": "mixup", "ratio": 0.4, "memory_size": 16}]]
)
def test_random_encoder_is_the_initial_encoder_of_a_pretraining_with_that_seed(augmentations):
    # The demo's random-init row is a paired baseline: the weights its pretrainings start from.
    encoder, _ = random_encoder(feature_dim=32, channels=8, seed=5)
    torch.manual_seed(5)
    start = BYOLA(
        feature_dim=32,
        projection_hidden_dim=16,
        projection_dim=8,
        encoder_channels=8,
        augmentations=augmentations,
    ).encoder.state_dict()
    assert all(torch.equal(v, start[k]) for k, v in encoder.state_dict().items())
    other, _ = random_encoder(feature_dim=32, channels=8, seed=6)
    assert not all(torch.equal(v, start[k]) for k, v in other.state_dict().items())
