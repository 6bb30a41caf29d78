"""rq_core.training.devices: what a config asks for, and the refusal without GPUs."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from rq_core.training.devices import (
    GPUUnavailableError,
    config_from_cli_args,
    describe_devices,
    requested_gpus,
    require_gpu_if_requested,
)


@pytest.mark.parametrize(
    ("cfg", "needed"),
    [
        ({}, 0),
        ({"trainer": {"accelerator": "auto", "devices": "4"}}, 0),  # auto falls back to CPU
        ({"trainer": {"accelerator": "cpu"}, "device": "cpu"}, 0),
        ({"trainer": {"accelerator": "gpu"}}, 1),
        ({"trainer": {"accelerator": "CUDA", "devices": "4"}}, 4),
        ({"trainer": {"accelerator": "gpu", "devices": "0,2,3"}}, 3),
        ({"trainer": {"accelerator": "gpu", "devices": "-1"}}, 1),
        ({"device": "cuda"}, 1),
        ({"evaluate": {"device": "cuda:1"}}, 1),
    ],
)
def test_requested_gpus(cfg, needed):
    assert requested_gpus(cfg) == needed
    assert requested_gpus(OmegaConf.create(cfg)) == needed


def test_refusal_names_the_request_and_the_fix():
    cfg = {"trainer": {"accelerator": "gpu", "devices": "2"}}
    with pytest.raises(GPUUnavailableError, match=r"asks for 2 GPU\(s\).*no GPU is visible"):
        require_gpu_if_requested(cfg, gpus=[])
    with pytest.raises(GPUUnavailableError, match=r"only 1 GPU\(s\) are visible"):
        require_gpu_if_requested(cfg, gpus=["NVIDIA H100"])
    assert require_gpu_if_requested(cfg, gpus=["NVIDIA H100"] * 2) == 2
    assert require_gpu_if_requested({"trainer": {"accelerator": "cpu"}}, gpus=[]) == 0


def test_describe_devices_lists_each_gpu():
    text = describe_devices(["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"])
    assert "2 GPU(s) visible" in text and "cuda:1  NVIDIA H100" in text
    assert "no GPU visible" in describe_devices([])


def test_config_from_cli_args_merges_file_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("trainer:\n  accelerator: cpu\n  devices: '1'\nother: ${trainer.devices}\n")
    cfg = config_from_cli_args(["pretrain", "--config", str(path), "trainer.accelerator=gpu", "-v"])
    assert cfg["trainer"] == {"accelerator": "gpu", "devices": "1"}
    assert requested_gpus(cfg) == 1
    assert config_from_cli_args([f"--config={path}"])["trainer"]["accelerator"] == "cpu"
    assert config_from_cli_args(["torchrun", "--nproc_per_node", "8", "rq-x", "pretrain"]) == {}
