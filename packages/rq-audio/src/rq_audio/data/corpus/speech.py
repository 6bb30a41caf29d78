"""The corpus's speakers: espeak-ng accents x voice variants x rate x pitch.

The synthesis itself is rq-core's one espeak-ng driver (:mod:`rq_core.espeak`, shared with
rq-dabs's speech domain; docs/decisions.md, "One shape").
"""

from __future__ import annotations

from dataclasses import dataclass

from rq_core.espeak import ENGLISH_ACCENTS, VOICE_VARIANTS

__all__ = ["ACCENTS", "VARIANTS", "Speaker"]

# Every English accent and every variant espeak-ng ships (rq_core.espeak).
ACCENTS = ENGLISH_ACCENTS
VARIANTS = VOICE_VARIANTS


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
