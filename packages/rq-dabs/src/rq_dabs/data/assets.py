"""Pinned data files of the offline DABS demo: fetched once, verified, then read with no network.

The demo's sensor domain (BasicMotions, from the UEA archive) ships inside the ``aeon`` wheel on
PyPI. ``rq-dabs fetch-assets`` (:func:`fetch_assets`; ``./dev setup`` runs it, the dabs docker
image runs it at build time) downloads that exact wheel from its pinned URL, checks the wheel's
SHA-256, takes out only the files listed in :data:`ASSETS`, checks each file's SHA-256 and
writes it under the assets folder. The demo then reads them through :func:`asset_path`, which
never touches the network: a missing or altered file is a :class:`MissingAssetError` naming the
file and the command that fetches it.

The assets folder is ``$RQ_ASSETS``, default ``$RQ_CACHE/assets`` (``~/.cache/rq/assets``);
the dabs image sets ``RQ_ASSETS=/opt/rq/assets``.

>>> sorted(a.name for a in ASSETS)
['basic_motions/BasicMotions_TEST.ts', 'basic_motions/BasicMotions_TRAIN.ts']
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rq_core.archives import ChecksumError, download, file_digest, verify_checksum
from rq_core.runs import atomic_output, cache_root

__all__ = [
    "AEON_WHEEL",
    "ASSETS",
    "Asset",
    "MissingAssetError",
    "PinnedWheel",
    "asset_path",
    "assets_root",
    "fetch_assets",
]

FETCH_COMMAND = "rq-dabs fetch-assets"


@dataclass(frozen=True)
class PinnedWheel:
    """One exact file of PyPI: its URL and the SHA-256 PyPI publishes for it."""

    filename: str
    url: str
    sha256: str


@dataclass(frozen=True)
class Asset:
    """A file taken out of a pinned wheel: ``name`` under the assets folder, ``member`` in
    the wheel, and the file's own SHA-256."""

    name: str
    wheel: PinnedWheel
    member: str
    sha256: str


# aeon 1.6.0 (BSD-3): https://pypi.org/project/aeon/1.6.0/ ; digest as listed on PyPI's
# simple index. Only its bundled BasicMotions files are used; aeon is never installed.
AEON_WHEEL = PinnedWheel(
    "aeon-1.6.0-py3-none-any.whl",
    "https://files.pythonhosted.org/packages/7d/49/"
    "034d8d142106e035fce019d8ee6f04d3ac8842490cd33f811d4df8e15da3/aeon-1.6.0-py3-none-any.whl",
    "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409",
)
ASSETS: tuple[Asset, ...] = (
    Asset(
        "basic_motions/BasicMotions_TRAIN.ts",
        AEON_WHEEL,
        "aeon/datasets/data/BasicMotions/BasicMotions_TRAIN.ts",
        "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6",
    ),
    Asset(
        "basic_motions/BasicMotions_TEST.ts",
        AEON_WHEEL,
        "aeon/datasets/data/BasicMotions/BasicMotions_TEST.ts",
        "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc",
    ),
)


class MissingAssetError(FileNotFoundError):
    """A pinned asset is not in the assets folder (or is not the pinned file)."""


def assets_root() -> Path:
    """``$RQ_ASSETS``, else ``$RQ_CACHE/assets``, else ``~/.cache/rq/assets``."""
    if os.environ.get("RQ_ASSETS"):
        return Path(os.environ["RQ_ASSETS"]).expanduser()
    return cache_root("assets")


def _asset(name: str) -> Asset:
    for asset in ASSETS:
        if asset.name == name:
            return asset
    raise KeyError(f"unknown asset {name!r}; known: {[a.name for a in ASSETS]}")


def _is_valid(path: Path, asset: Asset) -> bool:
    return path.is_file() and file_digest(path) == asset.sha256


def asset_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """The verified local file of asset ``name``; no network. Raises
    :class:`MissingAssetError` (one line: the file and the command that fetches it)."""
    asset = _asset(name)
    path = (Path(root) if root is not None else assets_root()) / asset.name
    if not path.is_file():
        raise MissingAssetError(
            f"missing asset {path}: run `{FETCH_COMMAND}` once (it needs network; "
            "set RQ_ASSETS to use another folder)"
        )
    if not _is_valid(path, asset):
        raise MissingAssetError(
            f"asset {path} is not the pinned file (sha256 differs): run `{FETCH_COMMAND}` "
            "to replace it"
        )
    return path


def fetch_assets(
    root: str | os.PathLike | None = None,
    *,
    wheel: str | os.PathLike | None = None,
    assets: Sequence[Asset] = ASSETS,
) -> list[Path]:
    """Put every asset in ``root`` (default :func:`assets_root`); idempotent.

    Files already there and verified are kept, and nothing is downloaded when all are. Else
    the wheel is downloaded from its pinned URL (or taken from ``wheel``: a local copy or a
    mirror's URL, for a machine without access to PyPI) and refused unless its SHA-256 is the
    pinned one (:class:`~rq_core.archives.ChecksumError`); each file taken out of it is
    verified too. Returns the assets' paths.
    """
    root = Path(root) if root is not None else assets_root()
    todo = [a for a in assets if not _is_valid(root / a.name, a)]
    if todo:
        with tempfile.TemporaryDirectory(prefix="rq-assets-") as tmp:
            for pinned in dict.fromkeys(a.wheel for a in todo):
                local = _wheel_file(pinned, wheel, Path(tmp))
                _extract(local, [a for a in todo if a.wheel == pinned], root)
    return [root / a.name for a in assets]


def _wheel_file(pinned: PinnedWheel, source: str | os.PathLike | None, tmp: Path) -> Path:
    """The verified wheel: downloaded into ``tmp``, or the given local file / URL."""
    if source is not None and Path(source).is_file():
        verify_checksum(source, pinned.sha256)
        return Path(source)
    url = str(source) if source is not None else pinned.url
    try:
        return download(url, tmp / pinned.filename, expected=pinned.sha256)
    except urllib.error.URLError as err:
        raise ConnectionError(
            f"cannot download {url} ({err.reason}); on a machine without network, copy "
            f"{pinned.filename} there and pass wheel=PATH, or copy a filled assets folder"
        ) from err


def _extract(wheel: Path, assets: Sequence[Asset], root: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for asset in assets:
            if asset.member not in names:
                raise ChecksumError(f"{wheel.name} has no {asset.member}: not the pinned wheel")
            # a file that fails its checksum never appears under the asset's name
            with atomic_output(root / asset.name) as tmp:
                tmp.write_bytes(z.read(asset.member))
                verify_checksum(tmp, asset.sha256)
