"""Instrument notes rendered from a General MIDI soundfont with tinysoundfont (NSynth-like).

General MIDI groups its 128 programs in families of 8 (0-7 piano, 24-31 guitar, ...); a
note's label is its family, and its program, pitch and velocity are free extra labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FAMILIES", "NoteSpec", "NoteRenderer"]

# family -> (first GM program, MIDI pitch range); pitch ranges keep each family in its
# natural register (basses low, pipes high).
FAMILIES: dict[str, tuple[int, tuple[int, int]]] = {
    "piano": (0, (36, 84)),
    "chromatic_percussion": (8, (48, 90)),
    "organ": (16, (36, 84)),
    "guitar": (24, (40, 76)),
    "bass": (32, (28, 55)),
    "strings": (40, (43, 84)),
    "brass": (56, (40, 77)),
    "reed": (64, (45, 81)),
    "pipe": (72, (60, 96)),
    "synth_lead": (80, (40, 84)),
}


@dataclass(frozen=True)
class NoteSpec:
    family: str
    program: int
    pitch: int
    velocity: int
    hold_sec: float


class NoteRenderer:
    """Render single notes to mono float32 at ``sample_rate`` from a .sf2 file."""

    def __init__(self, soundfont: Path, sample_rate: int = 16000) -> None:
        import tinysoundfont

        self.sample_rate = sample_rate
        self.synth = tinysoundfont.Synth(samplerate=sample_rate)
        self.sfid = self.synth.sfload(str(soundfont))

    def render(self, note: NoteSpec, total_sec: float) -> np.ndarray:
        s = self.synth
        s.program_select(0, self.sfid, 0, note.program)
        s.noteon(0, note.pitch, note.velocity)
        hold = int(note.hold_sec * self.sample_rate)
        total = int(total_sec * self.sample_rate)
        on = np.frombuffer(s.generate(hold), np.float32)
        s.noteoff(0, note.pitch)
        off = np.frombuffer(s.generate(total - hold), np.float32)
        s.sounds_off()  # silence the release tail so the next note starts clean
        stereo = np.concatenate([on, off]).reshape(-1, 2)
        return stereo.mean(axis=1).astype(np.float32)
