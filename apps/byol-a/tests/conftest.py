"""A tiny config (tone folder, 8-channel encoder, a few steps) for the CLI tests."""

from __future__ import annotations

import pytest
import yaml
from rq_audio.testing import write_tone_folder


def write_tiny_config(tmp_path):
    """Write the tone folder and ``tiny.yaml`` under ``tmp_path``; return the YAML's path
    (also used by the cross-app CLI tests in tests/cli)."""
    root = tmp_path / "tones"
    meta = write_tone_folder(root, classes=3, per_split=(6, 2, 2))
    cfg = {
        "run_dir": str(tmp_path / "run"),
        "data": {
            "pretrain": {
                "audio_dir": str(root),
                "metadata": str(meta),
                "cache": str(tmp_path / "cache" / "pretrain.h5"),
            },
            "unit_sec": 0.5,
            "batch_size": 8,
            "num_workers": 0,
        },
        "model": {
            "feature_dim": 32,
            "projection_hidden_dim": 32,
            "projection_dim": 16,
            "encoder_channels": 8,
        },
        "trainer": {
            "max_epochs": None,
            "max_steps": 3,
            "checkpoint_every_n_steps": 0,
            "log_every_n_steps": 1,
            "tensorboard": False,
            "progress_bar": False,
            "accelerator": "cpu",
            "devices": "1",
        },
        "evaluate": {
            "seeds": [42],
            "probe": {"lr": 0.01, "max_epochs": 30, "patience": 10},
            "tasks": [
                {
                    "name": "tones",
                    "audio_dir": str(root),
                    "metadata": str(meta),
                    "cache": str(tmp_path / "cache" / "tones.h5"),
                    "unit_sec": 1.0,
                }
            ],
        },
        "embed": {
            "source": {
                "audio_dir": str(root),
                "metadata": str(meta),
                "cache": str(tmp_path / "cache" / "tones.h5"),
            }
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def tiny_config(tmp_path):
    return write_tiny_config(tmp_path)
