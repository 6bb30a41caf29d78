import re

import pytest
import soundfile
from rq_audio.data.corpus import CorpusSettings, build_offline_corpus
from rq_audio.data.metadata import read_metadata

pytest.importorskip(
    "tinysoundfont", reason="the corpus needs `pip install --no-deps tinysoundfont`"
)
pytest.importorskip("espeakng_loader", reason="the corpus needs espeakng-loader")

TINY = CorpusSettings(
    notes_per_family=8, speakers=5, takes_per_word=1, unlabeled_notes=4, unlabeled_words=4, seed=3
)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """An empty cache dir: the soundfont comes from the installed pretty_midi."""
    return tmp_path_factory.mktemp("rqcache")


def test_tiny_corpus_has_held_out_instruments_and_speakers(corpus_dir):
    corpus = build_offline_corpus(TINY, cache_dir=corpus_dir, progress=False)
    notes = read_metadata(corpus.tasks["instrument_family"])
    assert len(notes) == 80 and len({r.label for r in notes}) == 10
    for (
        r
    ) in notes:  # program offset within the family decides the split: unseen instruments in test
        offset = int(re.search(r"_p(\d+)_", r.file_name).group(1)) % 8
        assert r.split == ("train" if offset < 5 else "valid" if offset == 5 else "test")
    words = read_metadata(corpus.tasks["keyword"])
    assert len(words) == 50 and len({r.label for r in words}) == 10
    speaker_splits = {}
    for r in words:
        speaker_splits.setdefault(re.search(r"_s(\d+)_", r.file_name).group(1), set()).add(r.split)
    assert all(len(s) == 1 for s in speaker_splits.values())  # a voice never crosses splits
    pretrain = read_metadata(corpus.pretrain_metadata)
    held_out = {r.file_name for r in notes + words if r.split != "train"}
    assert len(pretrain) == 8 + sum(r.split == "train" for r in notes + words)
    assert not held_out & {r.file_name for r in pretrain}
    info = soundfile.info(corpus.root / words[0].file_name)
    assert (info.samplerate, info.frames, info.channels) == (16000, 16000, 1)


def test_same_settings_same_files_and_reuse(corpus_dir, tmp_path):
    corpus = build_offline_corpus(TINY, cache_dir=corpus_dir, progress=False)
    first = corpus.tasks["keyword"]
    stamp = first.stat().st_mtime_ns
    assert build_offline_corpus(TINY, cache_dir=corpus_dir, progress=False).root == corpus.root
    assert first.stat().st_mtime_ns == stamp  # complete corpus reused, not rebuilt
    again = build_offline_corpus(TINY, cache_dir=tmp_path / "other", progress=False)
    name = read_metadata(again.tasks["instrument_family"])[3].file_name
    assert (again.root / name).read_bytes() == (corpus.root / name).read_bytes()  # fixed seeds


def test_background_noise_meets_the_requested_snr_and_keeps_the_peak_below_one():
    import numpy as np
    from rq_audio.data.corpus.build import add_background_noise

    rng = np.random.default_rng(0)
    clip = np.zeros(16000, np.float32)
    clip[4000:12000] = 0.05 * np.sin(np.arange(8000) * 0.05)  # quiet: no peak rescaling
    for snr in (0.0, 10.0, 20.0):
        noisy = add_background_noise(clip, snr, rng)
        noise = noisy - clip
        measured = 10 * np.log10(np.mean(clip[4000:12000] ** 2) / np.mean(noise**2))
        assert abs(measured - snr) < 0.5 and np.abs(noisy).max() <= 0.99 + 1e-6
    loud = add_background_noise(np.full(16000, 0.98, np.float32), 0.0, rng)
    assert np.abs(loud).max() <= 0.99 + 1e-6


def test_noisy_words_change_only_the_spoken_clips(corpus_dir):
    import numpy as np

    noisy = build_offline_corpus(TINY, cache_dir=corpus_dir, progress=False, word_snr_db=(5, 5))
    clean = build_offline_corpus(TINY, cache_dir=corpus_dir, progress=False)
    assert (
        noisy.root != clean.root
        and CorpusSettings(**{**TINY.__dict__, "word_snr_db": None}).key() == TINY.key()
    )
    words = read_metadata(noisy.tasks["keyword"])
    assert [r.file_name for r in words] == [
        r.file_name for r in read_metadata(clean.tasks["keyword"])
    ]
    a, _ = soundfile.read(noisy.root / words[0].file_name)
    b, _ = soundfile.read(clean.root / words[0].file_name)
    silent = np.abs(b) == 0  # the clean clip's padding: noise everywhere in the noisy one
    assert silent.any() and np.abs(a[silent]).mean() > 1e-3
    with pytest.raises(ValueError, match="word_snr_db"):
        CorpusSettings(word_snr_db=(20, 5))


def test_soundfont_comes_from_the_installed_pretty_midi_without_network(monkeypatch):
    """The soundfont is read from the pinned pretty_midi distribution (never imported, never
    downloaded): with sockets and subprocesses refused, it is still found and verified."""
    import socket
    import subprocess
    import sys

    from rq_audio.data.corpus.soundfont import SOUNDFONT_SHA256, locate_soundfont
    from rq_core.archives import file_digest

    def refuse(*args, **kwargs):
        raise AssertionError("the soundfont lookup must not use the network or a subprocess")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.delitem(sys.modules, "pretty_midi", raising=False)
    path = locate_soundfont()
    assert path.name == "TimGM6mb.sf2" and file_digest(path) == SOUNDFONT_SHA256
    assert "pretty_midi" not in sys.modules  # located, not imported


def test_missing_soundfont_names_the_fix(tmp_path, monkeypatch):
    import importlib.metadata

    from rq_audio.data.corpus.soundfont import SoundfontError, locate_soundfont

    with pytest.raises(SoundfontError, match=r'not installed: pip install "rq-audio\[corpus\]"'):
        locate_soundfont("no-such-distribution-rq")

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(SoundfontError, match="pretty_midi package; it is not installed"):
        build_offline_corpus(TINY, cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "offline_audio").exists()  # failed before writing anything
