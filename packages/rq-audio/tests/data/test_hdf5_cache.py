import logging
import pickle
import warnings

import h5py
import numpy as np
import pytest
import soundfile
import torch
from rq_audio.data.audio_io import load_audio
from rq_audio.data.hdf5_cache import AudioClipDataset, prepare_audio_cache, read_cache_index
from rq_audio.data.metadata import read_metadata
from rq_core.skipped import read_skipped_csv
from torch.utils.data import DataLoader


def test_roundtrip_keeps_audio_labels_and_splits(tone_folder, tmp_path):
    root, meta = tone_folder
    summary = prepare_audio_cache(root, tmp_path / "c.h5", metadata=meta, progress=False)
    rows = read_metadata(meta)
    assert summary.num_written == len(rows) and summary.num_skipped == 0
    index = read_cache_index(summary.path)
    assert index.file_names == [r.file_name for r in rows]
    assert index.labels == [r.label for r in rows] and index.splits == [r.split for r in rows]
    ds = AudioClipDataset(summary.path, 16000)
    for i in (0, len(rows) - 1):
        expected = load_audio(root / rows[i].file_name)
        np.testing.assert_allclose(ds[i].numpy(), expected, atol=1.5 / 32767)  # PCM16 storage


def test_a_folder_of_links_to_folders_lists_their_union(tmp_path):
    # A union of folders given as a directory of symlinks (issue 15): every file once, named
    # through the link, read through it; a link back up the tree is not walked twice.
    for name, count in (("notes", 2), ("words", 3)):
        (tmp_path / name).mkdir()
        for i in range(count):
            soundfile.write(tmp_path / name / f"{i}.wav", np.full(3200, 0.1, np.float32), 16000)
    union = tmp_path / "union"
    union.mkdir()
    (union / "notes").symlink_to(tmp_path / "notes", target_is_directory=True)
    (union / "words").symlink_to(tmp_path / "words", target_is_directory=True)
    (tmp_path / "words" / "loop").symlink_to(union, target_is_directory=True)
    summary = prepare_audio_cache(union, tmp_path / "u.h5", progress=False)
    assert (summary.num_written, summary.num_skipped) == (5, 0)
    assert read_cache_index(summary.path).file_names == [
        "notes/0.wav",
        "notes/1.wav",
        "words/0.wav",
        "words/1.wav",
        "words/2.wav",
    ]
    # the folder given may itself be a link
    (tmp_path / "linked").symlink_to(union, target_is_directory=True)
    linked = prepare_audio_cache(tmp_path / "linked", tmp_path / "l.h5", progress=False)
    assert linked.num_written == 5


def test_folder_without_metadata_and_bad_files_skipped_and_counted(tmp_path, caplog):
    root = tmp_path / "mixed"
    root.mkdir()
    for i in range(4):
        soundfile.write(root / f"ok{i}.wav", np.full(3200, 0.1 * i, np.float32), 16000)
    (root / "broken.wav").write_bytes(b"RIFF....garbage")
    soundfile.write(root / "tiny.flac", np.zeros(10, np.float32), 16000)
    (root / "notes.txt").write_text("not audio: ignored")
    with caplog.at_level(logging.WARNING, logger="rq_audio"):
        summary = prepare_audio_cache(root, tmp_path / "m.h5", progress=False)
    assert (summary.num_written, summary.num_skipped) == (4, 2)
    assert sorted(summary.skipped) == [("broken.wav", "unreadable"), ("tiny.flac", "too_short")]
    assert any("skipping broken.wav (unreadable)" in m for m in caplog.messages)
    with h5py.File(summary.path) as h5:
        assert h5.attrs["num_skipped"] == 2
    # the skip report beside the cache: file, fixed reason, the reader's message
    assert summary.skipped_csv == tmp_path / "m.skipped.csv"
    rows = sorted(read_skipped_csv(summary.path))
    assert [r[:2] for r in rows] == [("broken.wav", "unreadable"), ("tiny.flac", "too_short")]
    assert "too short" in rows[1][2] and "tiny.flac" in rows[1][2]


def test_every_skipped_file_is_named_in_the_log_with_two_reader_threads(tmp_path, caplog):
    """Issue 13: with 2 reader threads, skipped files' warnings did not reach the log
    (warnings.catch_warnings() in the reader threads is not thread-safe and left an "ignore"
    filter behind). Each skipped file must be named in the log, and no filter may leak."""
    root = tmp_path / "mixed"
    root.mkdir()
    for i in range(16):
        soundfile.write(root / f"ok{i:02d}.wav", np.full(3200, 0.01 * i, np.float32), 16000)
    bad = [f"bad{i}.wav" for i in range(6)]  # libsndfile fails, so the fallback reader runs
    for name in bad:
        (root / name).write_bytes(b"RIFF....garbage")
    filters_before = list(warnings.filters)
    with caplog.at_level(logging.WARNING, logger="rq_audio"):
        summary = prepare_audio_cache(root, tmp_path / "c.h5", num_threads=2, progress=False)
    assert summary.num_skipped == 6
    skip_lines = [m for m in caplog.messages if "skipping" in m]
    assert [name for name in bad if any(name in m for m in skip_lines)] == bad, caplog.text
    assert all("(unreadable)" in m for m in skip_lines)
    assert warnings.filters == filters_before
    assert [r[0] for r in read_skipped_csv(tmp_path / "c.h5")] == bad


def test_mostly_broken_folder_is_an_error(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    soundfile.write(root / "ok.wav", np.zeros(3200, np.float32), 16000)
    for i in range(3):
        (root / f"bad{i}.wav").write_bytes(b"nope")
    with pytest.raises(RuntimeError, match="3 of 4 files.*b.skipped.csv"):
        prepare_audio_cache(root, tmp_path / "b.h5", progress=False)
    assert not (tmp_path / "b.h5").exists()
    # the files that failed are listed even though no cache was written
    failed = sorted(r[0] for r in read_skipped_csv(tmp_path / "b.h5"))
    assert failed == ["bad0.wav", "bad1.wav", "bad2.wav"]


def test_clips_are_cut_to_unit_length(tone_cache):
    train = AudioClipDataset(tone_cache, 8000, random_crop=True, seed=0)
    evaluation = AudioClipDataset(tone_cache, 8000)
    full = AudioClipDataset(tone_cache, 16000)
    assert train[0].shape == (8000,) and evaluation[0].shape == (8000,)
    assert torch.equal(evaluation[0], full[0][:8000])  # deterministic: from the start
    crops = {tuple(train[0][:4].tolist()) for _ in range(5)}
    assert len(crops) > 1  # random start in training
    padded = AudioClipDataset(tone_cache, 20000)[0]
    assert padded.shape == (20000,) and float(padded[:1000].abs().max()) == 0.0


def test_lazy_open_per_worker(tone_cache):
    ds = AudioClipDataset(tone_cache, 16000, label_to_index={"class0": 0, "class1": 1, "class2": 2})
    assert ds._h5 is None  # nothing opened at construction
    ds[0]
    assert ds._h5 is not None
    clone = pickle.loads(pickle.dumps(ds))  # what DataLoader workers receive
    assert clone._h5 is None
    loader = DataLoader(ds, batch_size=5, num_workers=2)
    labels = torch.cat([y for _, y in loader])
    assert labels.tolist() == [ds[i][1] for i in range(len(ds))]


def test_missing_cache_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare"):
        AudioClipDataset(tmp_path / "none.h5", 100)


def test_a_seeded_key_crops_the_same_in_any_process_and_worker(tone_cache):
    """(index, seed) keys from ResumableSampler(sample_seeds=True): the crop depends on the
    seed alone, not on the process or worker that loads the clip (a resumed run has other
    workers with other seeds)."""
    from rq_core.training import resumable_loader

    train = AudioClipDataset(tone_cache, 8000, random_crop=True)
    other_process = AudioClipDataset(tone_cache, 8000, random_crop=True)
    assert torch.equal(train[(3, 11)], other_process[(3, 11)])
    assert not torch.equal(train[(3, 11)], train[(3, 12)]), "another seed, another crop"
    assert torch.equal(train[(3, 11)][:100], train[(3, 11)][:100])

    def epoch_batches(num_workers, epoch):
        loader = resumable_loader(train, 4, seed=5, num_workers=num_workers, sample_seeds=True)
        loader.sampler.set_epoch(epoch)
        return torch.cat(list(loader))

    in_process = epoch_batches(0, 1)
    assert torch.equal(in_process, epoch_batches(2, 1)), "two workers load the same crops"
    assert not torch.equal(in_process, epoch_batches(0, 2)), "the next epoch crops anew"
