"""Fixtures shared by the rq-audio tests: tiny labelled tone folders and their caches."""

from __future__ import annotations

import pytest
import torch
from rq_audio.data.hdf5_cache import prepare_audio_cache
from rq_audio.testing import write_tone_folder


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


@pytest.fixture
def tone_folder(tmp_path):
    """(root, metadata.csv) of 3 tone classes x (6 train, 2 valid, 2 test) one-second clips."""
    root = tmp_path / "tones"
    return root, write_tone_folder(root)


@pytest.fixture
def tone_cache(tone_folder, tmp_path):
    root, meta = tone_folder
    return prepare_audio_cache(root, tmp_path / "tones.h5", metadata=meta, progress=False).path
