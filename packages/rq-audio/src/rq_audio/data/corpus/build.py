"""Build the offline audio corpus: 1-second instrument notes and spoken keywords at 16 kHz.

Two downstream tasks in the EVAR metadata format (file_name,label,split):

- ``instrument_family`` (10 General MIDI families, NSynth-like): in every family, programs
  0-4 are train, 5 valid, 6-7 test -- the test instruments are never heard in training, as in
  NSynth, whose test split holds unseen instruments.
- ``keyword`` (the 10 words of Speech Commands V2/12): speakers (accent x voice variant x rate
  x pitch) are split 60/20/20 % -- test voices are unseen, as Speech Commands splits by speaker.

The pretraining set (``pretrain.csv``) is the train split of both tasks plus extra unlabeled
notes and words drawn from train instruments and train speakers only, so nothing of the
valid/test splits is seen in pretraining. Fixed seeds: the same arguments make the same files
when the corpus is built once per process (as `rq-byol-a demo` does). espeak-ng keeps synthesis
state between calls (wave phase, noise generators; re-seeding it does not reset them), so a
second build in the same process gives slightly different spoken words; notes stay identical.

>>> corpus = build_offline_corpus(notes_per_family=2, speakers=5, progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile
from rq_core.espeak import Espeak
from rq_core.runs import atomic_write, cache_root
from tqdm.auto import tqdm

from rq_audio.data.audio_io import resample
from rq_audio.data.corpus.instruments import FAMILIES, NoteRenderer, NoteSpec
from rq_audio.data.corpus.soundfont import locate_soundfont
from rq_audio.data.corpus.speech import ACCENTS, VARIANTS, Speaker
from rq_audio.data.metadata import MetadataRow, write_metadata

__all__ = ["CorpusSettings", "OfflineCorpus", "add_background_noise", "build_offline_corpus"]

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SAMPLE_RATE = 16000
CLIP_SEC = 1.0
_VERSION = 1
# GM program offset within its family -> split: test instruments are never heard in training.
SPLIT_OF_PROGRAM = {
    0: "train",
    1: "train",
    2: "train",
    3: "train",
    4: "train",
    5: "valid",
    6: "test",
    7: "test",
}


@dataclass(frozen=True)
class CorpusSettings:
    notes_per_family: int = 100
    speakers: int = 60
    takes_per_word: int = 2
    unlabeled_notes: int = 400
    unlabeled_words: int = 400
    seed: int = 0
    # (low, high): every spoken word (keyword clips and unlabeled words) gets coloured background
    # noise at an SNR drawn uniformly in [low, high] dB, as Speech Commands' clips carry room and
    # microphone noise; None keeps the synthetic voices clean.
    word_snr_db: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.word_snr_db is not None:
            low, high = (float(v) for v in self.word_snr_db)
            if not low <= high:
                raise ValueError(
                    f"word_snr_db must be (low, high) with low <= high, got {self.word_snr_db}"
                )
            object.__setattr__(self, "word_snr_db", (low, high))

    def key(self) -> str:
        # Unset options stay out of the key, so corpora made before they existed keep theirs.
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        text = json.dumps({"version": _VERSION, **fields}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class OfflineCorpus:
    """Where the corpus lives: audio under ``root``, one metadata.csv per task."""

    root: Path
    tasks: dict[str, Path]
    pretrain_metadata: Path
    unit_sec: float = CLIP_SEC


def _sounding(wav: np.ndarray) -> np.ndarray:
    """Mask of the samples louder than 1/1000 of the peak (the rest counts as silence)."""
    return np.abs(wav) > 1e-3 * (np.abs(wav).max() + 1e-12)


def _fit_clip(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trim silence at the ends, place in a 1 s clip at a random offset, random level."""
    n = int(CLIP_SEC * SAMPLE_RATE)
    loud = np.flatnonzero(_sounding(wav))
    if len(loud):
        wav = wav[loud[0] : loud[-1] + 1]
    wav = wav[:n]
    out = np.zeros(n, np.float32)
    start = int(rng.integers(0, n - len(wav) + 1))
    out[start : start + len(wav)] = wav
    peak = np.abs(out).max()
    if peak > 0:
        out *= rng.uniform(0.3, 0.9) / peak
    return out


def add_background_noise(clip: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``clip`` plus noise of random colour (spectrum 1/f^b, b in [0, 2]: white to brown) whose
    power is ``snr_db`` below the clip's power over its sounding part; peak kept below 1."""
    n = len(clip)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    noise = np.fft.irfft(spectrum / freqs ** (rng.uniform(0.0, 2.0) / 2), n)
    sounding = _sounding(clip)
    signal_power = float(np.mean(clip[sounding] ** 2)) if sounding.any() else 0.0
    noise *= np.sqrt(signal_power / 10 ** (snr_db / 10) / np.mean(noise**2))
    out = (clip + noise).astype(np.float32)
    peak = np.abs(out).max()
    return out * (0.99 / peak) if peak > 0.99 else out


def _note(rng: np.random.Generator, family: str, program_offsets: list[int]) -> NoteSpec:
    first, (lo, hi) = FAMILIES[family]
    return NoteSpec(
        family,
        first + int(rng.choice(program_offsets)),
        int(rng.integers(lo, hi + 1)),
        int(rng.integers(60, 128)),
        float(rng.uniform(0.4, 0.9)),
    )


def _speakers(rng: np.random.Generator, count: int) -> list[Speaker]:
    seen, out = set(), []
    while len(out) < count:
        s = Speaker(
            str(rng.choice(ACCENTS)),
            str(rng.choice(VARIANTS)),
            int(rng.integers(120, 260)),
            int(rng.integers(20, 90)),
        )
        if s.voice not in seen or len(seen) >= len(ACCENTS) * len(VARIANTS):
            seen.add(s.voice)
            out.append(s)
    return out


def _say(synth: Espeak, text: str, speaker: Speaker) -> np.ndarray:
    return synth.say(text, speaker.voice, speaker.rate, speaker.pitch)


def _resample_to_16k(wav: np.ndarray, rate: int) -> np.ndarray:
    """float32 samples in [-1, 1) (rq_core.espeak's, the engine's int16 / 32768) at 16 kHz."""
    return resample(wav.astype(np.float32), rate, SAMPLE_RATE)


def build_offline_corpus(
    settings: CorpusSettings | None = None,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    **overrides,
) -> OfflineCorpus:
    """Make (or reuse) the corpus under ``cache_dir/offline_audio/<settings key>``.

    Keyword overrides set :class:`CorpusSettings` fields (``notes_per_family=...``).
    Building is skipped when a complete corpus with the same settings exists.
    """
    settings = CorpusSettings(**overrides) if settings is None else replace(settings, **overrides)
    cache_dir = cache_root(override=cache_dir)  # $RQ_CACHE or ~/.cache/rq when not given
    root = cache_dir / "offline_audio" / settings.key()
    corpus = OfflineCorpus(
        root,
        {"instrument_family": root / "instrument_family.csv", "keyword": root / "keyword.csv"},
        root / "pretrain.csv",
    )
    if (root / "COMPLETE").is_file():
        return corpus
    sf2 = locate_soundfont()  # before anything is written: a missing one is a clear error
    if root.exists():
        shutil.rmtree(root)  # a half-written corpus from an interrupted run
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(settings.seed)
    renderer = NoteRenderer(sf2, SAMPLE_RATE)
    synth = Espeak()

    def word_clip(wav: np.ndarray) -> np.ndarray:
        clip = _fit_clip(wav, rng)
        if settings.word_snr_db is None:
            return clip
        return add_background_noise(clip, float(rng.uniform(*settings.word_snr_db)), rng)

    def save(rel: str, wav: np.ndarray) -> str:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = (
            io.BytesIO()
        )  # one write per file: libsndfile's flush per file is slow on some disks
        soundfile.write(buffer, wav, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        path.write_bytes(buffer.getvalue())
        return rel

    instrument_rows, keyword_rows, pretrain_rows = [], [], []
    bar = tqdm(
        total=len(FAMILIES) * settings.notes_per_family
        + settings.speakers * len(KEYWORDS) * settings.takes_per_word
        + settings.unlabeled_notes
        + settings.unlabeled_words,
        desc="offline corpus",
        disable=not progress,
    )
    for family in FAMILIES:
        for k in range(settings.notes_per_family):
            note = _note(rng, family, list(range(8)))
            split = SPLIT_OF_PROGRAM[note.program - FAMILIES[family][0]]
            rel = save(
                f"audio/instruments/{family}_{k:04d}_p{note.program}_n{note.pitch}.wav",
                _fit_clip(renderer.render(note, 1.2), rng),
            )
            instrument_rows.append(MetadataRow(rel, family, split))
            bar.update()

    speakers = _speakers(rng, settings.speakers)
    n_train, n_valid = int(0.6 * len(speakers)), int(0.2 * len(speakers))
    speaker_split = {
        s: ("train" if i < n_train else "valid" if i < n_train + n_valid else "test")
        for i, s in enumerate(speakers)
    }
    for i, speaker in enumerate(speakers):
        for word in KEYWORDS:
            for take in range(settings.takes_per_word):
                jitter = Speaker(
                    speaker.accent,
                    speaker.variant,
                    speaker.rate + int(rng.integers(-15, 16)),
                    int(np.clip(speaker.pitch + rng.integers(-5, 6), 0, 100)),
                )
                wav = _resample_to_16k(_say(synth, word, jitter), synth.sample_rate)
                rel = save(f"audio/keywords/{word}_s{i:03d}_t{take}.wav", word_clip(wav))
                keyword_rows.append(MetadataRow(rel, word, speaker_split[speaker]))
                bar.update()

    # Unlabeled extras for pretraining, from train instruments and train speakers only.
    train_speakers = [s for s in speakers if speaker_split[s] == "train"]
    train_programs = [p for p, s in SPLIT_OF_PROGRAM.items() if s == "train"]
    for k in range(settings.unlabeled_notes):
        note = _note(rng, str(rng.choice(list(FAMILIES))), train_programs)
        pretrain_rows.append(
            MetadataRow(
                save(
                    f"audio/unlabeled/note_{k:05d}.wav", _fit_clip(renderer.render(note, 1.2), rng)
                ),
                "",
                "train",
            )
        )
        bar.update()
    vocabulary = KEYWORDS + (
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "bed",
        "bird",
        "cat",
        "dog",
        "happy",
        "house",
        "marvin",
        "sheila",
        "tree",
        "wow",
    )
    for k in range(settings.unlabeled_words):
        speaker = train_speakers[int(rng.integers(len(train_speakers)))]
        wav = _resample_to_16k(_say(synth, str(rng.choice(vocabulary)), speaker), synth.sample_rate)
        pretrain_rows.append(
            MetadataRow(save(f"audio/unlabeled/word_{k:05d}.wav", word_clip(wav)), "", "train")
        )
        bar.update()
    bar.close()

    pretrain_rows += [r for r in instrument_rows + keyword_rows if r.split == "train"]
    write_metadata(corpus.tasks["instrument_family"], instrument_rows)
    write_metadata(corpus.tasks["keyword"], keyword_rows)
    write_metadata(corpus.pretrain_metadata, pretrain_rows)
    atomic_write(root / "settings.json", json.dumps(asdict(settings), indent=2))
    atomic_write(root / "COMPLETE", "ok\n")
    return corpus
