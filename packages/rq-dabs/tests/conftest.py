"""Shared helpers of the rq-dabs tests: tiny models and specs that run in milliseconds."""

from __future__ import annotations

import hashlib
import importlib
import io
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from rq_dabs.encoder import DomainAgnosticTransformer, TransformerConfig
from rq_dabs.specs import Input1dSpec, Input2dSpec, InputTokensSpec

TINY = TransformerConfig(dim=32, depth=1, heads=2, dim_head=16, mlp_dim=64, out_dim=16)


@pytest.fixture
def tiny_config() -> TransformerConfig:
    return TransformerConfig(**vars(TINY))


@pytest.fixture
def sensor_model() -> DomainAgnosticTransformer:
    torch.manual_seed(0)
    return DomainAgnosticTransformer([Input1dSpec(20, 5, 3)], TransformerConfig(**vars(TINY)))


def make_inputs(specs, batch: int, generator: torch.Generator | None = None):
    """Random inputs matching ``specs``."""
    out = []
    for s in specs:
        if isinstance(s, InputTokensSpec):
            out.append(torch.randint(0, s.vocab_size, (batch, s.seq_len), generator=generator))
        elif isinstance(s, Input1dSpec):
            out.append(torch.randn(batch, s.seq_len, s.in_channels, generator=generator))
        elif isinstance(s, Input2dSpec):
            out.append(torch.randn(batch, s.in_channels, *s.input_size, generator=generator))
    return out


# Data-script helpers: tiny archives served from a local mirror folder (no network).

SCRIPTS = Path(__file__).resolve().parents[3] / "data_scripts" / "dabs"


def script(name):
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SCRIPTS))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def zip_file(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def image_bytes(rng, size=(40, 30), fmt="JPEG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
        buf, format=fmt
    )
    return buf.getvalue()


def run_pinned(module, name, archives: dict[str, Path], root: Path, mirror: Path, prepare=None):
    """Run ``module``'s script on the set ``name`` with its sources' digests replaced by the
    tiny archives' MD5s (file names and URLs kept)."""
    from rq_dabs.data.download import Source

    original = module.PUBLIC[name]
    sources = []
    for source in original.sources:
        path = archives[source.filename]
        sources.append(Source(source.url, source.filename, md5=md5(path)))
    public = {name: module.PublicSet(sources, prepare=prepare or original.prepare)}
    return module.main(
        ["--root", str(root), "--mirror", str(mirror), "--only", name], public=public
    )


@pytest.fixture
def dabs_data() -> types.SimpleNamespace:
    """This module, for its archive helpers (``script``, ``tar_gz``, ``run_pinned``, ...)."""
    names = ("script", "md5", "tar_gz", "zip_file", "image_bytes", "run_pinned")
    return types.SimpleNamespace(**{name: globals()[name] for name in names})
