"""Which accelerators a process sees, and a readable failure when a GPU config meets none.

Every app's container runs ``python -m rq_core.training.devices <cli args>`` before the app
(docker/entrypoint.sh): it prints the visible GPUs and exits 3 with a sentence saying what to
do when the config asks for a GPU (``trainer.accelerator=gpu``/``cuda``, a ``cuda`` device for
evaluation, or more GPUs than are visible) and CUDA sees none. Lightning's own error in that
case is a stack trace from deep inside the trainer; this check runs first and says why.

>>> requested_gpus({"trainer": {"accelerator": "cpu"}})
0
>>> requested_gpus({"trainer": {"accelerator": "gpu", "devices": "0,1"}})
2
>>> requested_gpus({"trainer": {"accelerator": "auto"}, "evaluate": {"device": "cuda:0"}})
1
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "GPUUnavailableError",
    "config_from_cli_args",
    "describe_devices",
    "require_gpu_if_requested",
    "requested_gpus",
]

_GPU_ACCELERATORS = {"gpu", "cuda"}
# Config keys (dotted) that name a torch device for evaluation/embedding outside the trainer.
_DEVICE_KEYS = ("device", "evaluate.device", "embed.device", "transfer.device")


class GPUUnavailableError(RuntimeError):
    """The config asks for GPUs that this process cannot see."""


def _plain(cfg: Any) -> Any:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=False)
    except ImportError:  # pragma: no cover - omegaconf comes with the train extra
        pass
    return cfg


def _get(cfg: Any, dotted: str) -> Any:
    node = _plain(cfg)
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def requested_gpus(cfg: Any) -> int:
    """How many GPUs per process ``cfg`` needs: 0 when it can run on CPU.

    ``trainer.accelerator`` gpu/cuda needs ``trainer.devices`` GPUs (a count, ids "0,1", or
    at least one for "auto"/-1); a ``device``/``evaluate.device``-style key starting with
    ``cuda`` needs one. ``accelerator: auto`` falls back to the CPU, so it needs none.
    """
    needed = 0
    accelerator = str(_get(cfg, "trainer.accelerator") or "auto").strip().lower()
    if accelerator in _GPU_ACCELERATORS:
        devices = str(_get(cfg, "trainer.devices") or "auto").strip()
        if "," in devices or devices.startswith("["):
            needed = len([d for d in devices.strip("[]").split(",") if d.strip()])
        else:
            try:
                needed = max(int(devices), 1)  # -1 means "all": at least one
            except ValueError:
                needed = 1  # "auto"
    for key in _DEVICE_KEYS:
        value = _get(cfg, key)
        if isinstance(value, str) and value.strip().lower().startswith("cuda"):
            needed = max(needed, 1)
    return needed


def _visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def describe_devices(gpus: Sequence[str] | None = None) -> str:
    """One paragraph: torch/CUDA versions and every visible GPU (or that there is none)."""
    import torch

    gpus = _visible_gpus() if gpus is None else list(gpus)
    lines = [
        f"torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none (CPU build)'}; "
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}"
    ]
    if gpus:
        lines.append(f"{len(gpus)} GPU(s) visible:")
        lines += [f"  cuda:{i}  {name}" for i, name in enumerate(gpus)]
    else:
        lines.append("no GPU visible: training runs on the CPU unless the config asks for a GPU")
    return "\n".join(lines)


def require_gpu_if_requested(cfg: Any, gpus: Sequence[str] | None = None) -> int:
    """Raise :class:`GPUUnavailableError` when ``cfg`` needs more GPUs than are visible.

    Returns the number of GPUs the config needs (0: CPU is fine).
    """
    needed = requested_gpus(cfg)
    if needed == 0:
        return 0
    gpus = _visible_gpus() if gpus is None else list(gpus)
    if len(gpus) >= needed:
        return needed
    what = (
        f"trainer.accelerator={_get(cfg, 'trainer.accelerator')} "
        f"trainer.devices={_get(cfg, 'trainer.devices')}"
    )
    seen = f"only {len(gpus)} GPU(s) are visible" if gpus else "no GPU is visible to this process"
    raise GPUUnavailableError(
        f"the config asks for {needed} GPU(s) ({what} or a cuda device), but {seen}.\n"
        "  In Docker: run with `--gpus all` (docker run) or a GPU reservation (compose.yaml),\n"
        "  and install the NVIDIA Container Toolkit on the host; check with `nvidia-smi`.\n"
        "  Under SLURM/torchrun: request GPUs (--gres=gpu:N) and keep --nproc_per_node <= N.\n"
        "  To run on the CPU instead: trainer.accelerator=cpu (or auto) and device=cpu."
    )


def config_from_cli_args(argv: Sequence[str]) -> dict[str, Any]:
    """The parts of an app config that choose devices, read from ``rq-<app>`` arguments.

    ``--config FILE.yaml`` (or ``--config=FILE``) is loaded, then every ``key.sub=value``
    override is applied; the command name and other flags are ignored. Only YAML parsing is
    done here (no schema), so this works for every app.
    """
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({})
    overrides = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" and i + 1 < len(args):
            cfg = OmegaConf.merge(cfg, OmegaConf.load(Path(args[i + 1])))
            i += 2
            continue
        if arg.startswith("--config="):
            cfg = OmegaConf.merge(cfg, OmegaConf.load(Path(arg.split("=", 1)[1])))
        elif "=" in arg and not arg.startswith("-"):
            overrides.append(arg)
        i += 1
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    # Interpolations may point at keys the schema would add; keep them unresolved.
    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rq_core.training.devices [rq-<app> arguments]``: print, then check."""
    argv = list(sys.argv[1:] if argv is None else argv)
    gpus = _visible_gpus()
    print(f"[devices] {describe_devices(gpus)}".replace("\n", "\n[devices] "), flush=True)
    try:
        cfg = config_from_cli_args(argv)
    except Exception as error:  # a bad --config is the app's to report, with its own message
        print(f"[devices] could not read the config to check it: {error}", flush=True)
        return 0
    try:
        require_gpu_if_requested(cfg, gpus)
    except GPUUnavailableError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
