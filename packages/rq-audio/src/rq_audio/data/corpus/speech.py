"""The corpus's speakers: espeak-ng accents x voice variants x rate x pitch.

The synthesis itself is rq-core's one espeak-ng driver (:mod:`rq_core.espeak`, shared with
rq-dabs's speech domain; docs/decisions.md, "One shape").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACCENTS", "VARIANTS", "Speaker"]

ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-029",
    "en-us-nyc",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
)


@dataclass(frozen=True)
class Speaker:
    accent: str
    variant: str
    rate: int  # words per minute
    pitch: int  # 0-100

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def name(self) -> str:
        return f"{self.accent}_{self.variant}_r{self.rate}_p{self.pitch}"
