"""HDF5 cache of 16 kHz waveforms: written once by ``prepare``, read lazily per worker.

Layout of one file (all datasets 1-D, one row per clip except ``audio``)::

    audio       int16   every clip's samples, concatenated (PCM16: half the size of float32)
    offsets     int64   start of clip i in ``audio``
    lengths     int64   its number of samples
    file_names  str     path relative to the source folder
    labels      str     "" when there is no metadata
    splits      str     train/valid/test, or ""
    folds       int64   fold number, or -1
    attrs: sample_rate, num_skipped, source

Beside ``name.h5`` goes ``name.skipped.csv`` (:mod:`rq_core.skipped`): one row per file that
was skipped, with a fixed reason code (:class:`~rq_audio.data.audio_io.AudioSkipReason`) and the
reader's message; each skipped file is also named in the log (logger ``rq_audio.data.hdf5_cache``).

>>> import numpy as np, soundfile, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> soundfile.write(d / "a.wav", np.zeros(16000, np.float32), 16000)
>>> summary = prepare_audio_cache(d, d / "cache.h5", progress=False)
>>> summary.num_written, summary.num_skipped
(1, 0)
>>> AudioClipDataset(d / "cache.h5", unit_samples=15200)[0].shape
torch.Size([15200])
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from rq_core.runs import atomic_output
from rq_core.skipped import write_skipped_csv
from torch.utils.data import Dataset
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from rq_audio.data.audio_io import AUDIO_EXTENSIONS, AudioReadError, crop_or_pad, load_audio
from rq_audio.data.metadata import MetadataRow, read_metadata

__all__ = [
    "AudioClipDataset",
    "CacheSummary",
    "list_audio_files",
    "prepare_audio_cache",
    "read_cache_index",
]

log = logging.getLogger(__name__)

_STR = h5py.string_dtype("utf-8")


@dataclass
class CacheSummary:
    """What ``prepare`` did: clips written, files skipped as ``(file, reason)`` pairs (reason
    codes of :class:`~rq_audio.data.audio_io.AudioSkipReason`) and where the skip report is."""

    path: Path
    num_written: int
    num_skipped: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_csv: Path | None = None


def list_audio_files(root: str | Path) -> list[str]:
    """Audio files under ``root`` (by extension), as sorted paths relative to it. Links to
    folders are followed, so a folder of links to other folders lists their union (each real
    folder once: a link back up the tree is not walked into again).

    >>> import tempfile
    >>> base = Path(tempfile.mkdtemp())
    >>> (base / "notes").mkdir(); _ = (base / "notes" / "a.wav").write_bytes(b"")
    >>> (base / "union").mkdir(); (base / "union" / "notes").symlink_to(base / "notes")
    >>> list_audio_files(base / "union")
    ['notes/a.wav']
    """
    root = Path(root)
    files, walked = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in walked:  # a link cycle, or a second link to a folder already listed
            subfolders.clear()
            continue
        walked.add(real)
        subfolders.sort()
        relative = Path(folder).relative_to(root)
        files += [
            str(relative / name)
            for name in names
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS and (Path(folder) / name).is_file()
        ]
    return sorted(files)


def _list_rows(root: Path, metadata: str | Path | None) -> list[MetadataRow]:
    if metadata is not None:
        return read_metadata(metadata)
    files = list_audio_files(root)
    if not files:
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {root}")
    return [MetadataRow(name, "", None, None) for name in files]


def prepare_audio_cache(
    root: str | Path,
    out_path: str | Path,
    *,
    metadata: str | Path | None = None,
    sample_rate: int = 16000,
    max_seconds: float | None = None,
    min_seconds: float = 0.1,
    max_failure_fraction: float = 0.5,
    num_threads: int = 2,
    progress: bool = True,
) -> CacheSummary:
    """Read every clip under ``root`` (or listed in ``metadata``) into one HDF5 file.

    Args:
        root: folder holding the audio files (metadata file names are relative to it).
        out_path: the .h5 file to write (replaced atomically when complete).
        metadata: optional EVAR metadata.csv (file_name,label,split|fold).
        sample_rate: target rate in Hz; files are averaged to mono and resampled.
        max_seconds: keep at most this many seconds of each clip (from the start).
        min_seconds: shorter files are skipped as too short.
        max_failure_fraction: more than this fraction of files failing is an error.
        num_threads: reader threads (libsndfile and soxr release the GIL).

    Missing, unreadable, empty, non-finite and too-short files are skipped, each named in the
    log (a warning of logger ``rq_audio.data.hdf5_cache``) and listed in ``<cache>.skipped.csv``.
    """
    root, out_path = Path(root), Path(out_path)
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder not found: {root}")
    rows = _list_rows(root, metadata)
    min_samples = max(1, int(round(min_seconds * sample_rate)))
    max_samples = None if max_seconds is None else int(round(max_seconds * sample_rate))

    def read(row: MetadataRow) -> np.ndarray | AudioReadError:
        # Runs in a reader thread: failures are returned, and reported by the main thread.
        try:
            wav = load_audio(root / row.file_name, sample_rate, min_samples=min_samples)
        except AudioReadError as e:
            return e
        return wav if max_samples is None else wav[:max_samples]

    skipped: list[tuple[str, str, str]] = []  # (file, reason, detail)
    kept: list[MetadataRow] = []
    offsets, lengths = [], []
    total = 0
    # Skip warnings go through the log; while the bar is shown they are printed above it.
    console = logging_redirect_tqdm() if progress else contextlib.nullcontext()
    # The cache appears whole or not at all: a killed or refused prepare leaves no file.
    with atomic_output(out_path, suffix=".h5") as tmp:
        with console, h5py.File(tmp, "w") as h5, ThreadPoolExecutor(max(1, num_threads)) as pool:
            audio = h5.create_dataset(
                "audio", shape=(0,), maxshape=(None,), dtype=np.int16, chunks=(1 << 16,)
            )
            for row, wav in tqdm(
                zip(rows, pool.map(read, rows)),
                total=len(rows),
                desc=f"prepare {root.name}",
                disable=not progress,
            ):
                if isinstance(wav, AudioReadError):
                    skipped.append((row.file_name, wav.reason.value, str(wav)))
                    log.warning("skipping %s (%s): %s", row.file_name, wav.reason.value, wav)
                    continue
                pcm = np.clip(np.round(wav * 32767.0), -32768, 32767).astype(np.int16)
                audio.resize((total + len(pcm),))
                audio[total:] = pcm
                offsets.append(total)
                lengths.append(len(pcm))
                total += len(pcm)
                kept.append(row)
            if len(skipped) > max_failure_fraction * len(rows):
                report = write_skipped_csv(out_path, skipped)
                raise RuntimeError(
                    f"{len(skipped)} of {len(rows)} files under {root} could not be read "
                    f"(first: {skipped[0][2]}; all listed in {report}); "
                    "refusing to write a cache of the rest"
                )
            h5.create_dataset("offsets", data=np.asarray(offsets, np.int64))
            h5.create_dataset("lengths", data=np.asarray(lengths, np.int64))
            h5.create_dataset("file_names", data=[r.file_name for r in kept], dtype=_STR)
            h5.create_dataset("labels", data=[r.label for r in kept], dtype=_STR)
            h5.create_dataset("splits", data=[r.split or "" for r in kept], dtype=_STR)
            h5.create_dataset(
                "folds", data=np.asarray([-1 if r.fold is None else r.fold for r in kept], np.int64)
            )
            h5.attrs["sample_rate"] = sample_rate
            h5.attrs["num_skipped"] = len(skipped)
            h5.attrs["source"] = str(root)
    report = write_skipped_csv(out_path, skipped)
    if skipped:
        log.warning(
            "prepare %s: %d of %d files skipped (listed in %s)",
            root,
            len(skipped),
            len(rows),
            report,
        )
    return CacheSummary(out_path, len(kept), len(skipped), [s[:2] for s in skipped], report)


@dataclass(frozen=True)
class CacheIndex:
    """The per-clip columns of a cache (small; read eagerly)."""

    sample_rate: int
    lengths: np.ndarray
    file_names: list[str]
    labels: list[str]
    splits: list[str]
    folds: np.ndarray
    num_skipped: int


def read_cache_index(path: str | Path) -> CacheIndex:
    """Read everything but the audio from a cache written by :func:`prepare_audio_cache`."""
    with h5py.File(path, "r") as h5:
        return CacheIndex(
            int(h5.attrs["sample_rate"]),
            h5["lengths"][:],
            [s.decode() for s in h5["file_names"][:]],
            [s.decode() for s in h5["labels"][:]],
            [s.decode() for s in h5["splits"][:]],
            h5["folds"][:],
            int(h5.attrs["num_skipped"]),
        )


class AudioClipDataset(Dataset):
    """Fixed-length clips from an HDF5 cache; the file is opened lazily, once per process.

    Each DataLoader worker (and each DDP rank) opens its own handle on first access, so the
    dataset pickles cleanly and no HDF5 handle is shared across ``fork``.

    Args:
        path: the cache.
        unit_samples: clip length returned (padded centred / cropped).
        random_crop: random start (training) or from the start (evaluation).
        indices: the rows to serve (default all).
        label_to_index: if given, items are ``(wav, label_index)``.
        seed: base seed of the per-worker crop RNG (None: from torch's seed).

    An item's key is a row position ``i``, or an ``(i, seed)`` pair as
    :class:`rq_core.training.ResumableSampler` yields with ``sample_seeds=True``: the random
    crop is then drawn from that seed alone, so it depends on the epoch and the clip, not on
    the worker that loads it (which a resumed run cannot reproduce). With a plain ``i`` the
    crop comes from a per-process generator (``seed``).

    Items: ``(unit_samples,)`` float32 tensors (or a tuple with an int64 label).
    """

    def __init__(
        self,
        path: str | Path,
        unit_samples: int,
        *,
        random_crop: bool = False,
        indices: Sequence[int] | None = None,
        label_to_index: dict[str, int] | None = None,
        seed: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"cache not found: {self.path} (run `prepare` first)")
        self.unit_samples = int(unit_samples)
        self.random_crop = random_crop
        self.label_to_index = label_to_index
        self.seed = seed
        with h5py.File(self.path, "r") as h5:
            self.offsets = h5["offsets"][:]
            self.lengths = h5["lengths"][:]
            self.labels = [s.decode() for s in h5["labels"][:]] if label_to_index else None
        self.indices = np.arange(len(self.offsets)) if indices is None else np.asarray(indices)
        self._h5: h5py.File | None = None
        self._pid: int | None = None
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_h5"] = state["_pid"] = state["_rng"] = None
        return state

    def _open(self) -> h5py.File:
        pid = os.getpid()
        if self._h5 is None or self._pid != pid:
            self._h5 = h5py.File(self.path, "r")
            self._pid = pid
            info = torch.utils.data.get_worker_info()
            base = self.seed if self.seed is not None else torch.initial_seed()
            self._rng = np.random.default_rng([base % (2**63), 0 if info is None else info.id])
        return self._h5

    def __getitem__(self, key: int | tuple[int, int]):
        h5 = self._open()
        rng = self._rng
        if isinstance(key, tuple):  # (index, seed) from ResumableSampler(sample_seeds=True)
            i, sample_seed = key
            rng = np.random.default_rng(sample_seed)
        else:
            i = key
        row = int(self.indices[i])
        start, n = int(self.offsets[row]), int(self.lengths[row])
        if not self.random_crop and n > self.unit_samples:
            n = self.unit_samples  # read only what the deterministic crop keeps
        pcm = h5["audio"][start : start + n]
        wav = crop_or_pad(
            pcm.astype(np.float32) / 32767.0,
            self.unit_samples,
            random_crop=self.random_crop,
            rng=rng,
        )
        wav = torch.from_numpy(np.ascontiguousarray(wav))
        if self.label_to_index is not None:
            return wav, self.label_to_index[self.labels[row]]
        return wav
