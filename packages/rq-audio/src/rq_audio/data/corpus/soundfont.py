"""The General MIDI soundfont of the demo corpus: TimGM6mb.sf2, inside the installed
``pretty_midi`` distribution.

``pretty_midi`` is a pinned dependency of the ``corpus`` extra (``pip install
"rq-audio[corpus]"``); the file is found through the distribution's file list
(``importlib.metadata``), so pretty_midi is never imported and nothing is downloaded at run
time: the corpus builds with no network. The file's SHA-256 is checked, so a different
soundfont (another pretty_midi release) cannot change the corpus silently.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from rq_core.archives import file_digest

__all__ = [
    "PRETTY_MIDI_PIN",
    "SOUNDFONT_MEMBER",
    "SOUNDFONT_SHA256",
    "SoundfontError",
    "locate_soundfont",
]

# The version the `corpus` extra pins (packages/rq-audio/pyproject.toml); its wheel carries
# the soundfont (5.99 MB, Tim Brechbill's TimGM6mb, GPL-2).
PRETTY_MIDI_PIN = "pretty_midi==0.2.11.post0"
SOUNDFONT_MEMBER = "pretty_midi/TimGM6mb.sf2"
SOUNDFONT_SHA256 = "82475b91a76de15cb28a104707d3247ba932e228bada3f47bba63c6b31aaf7a1"
_FIX = f'pip install "rq-audio[corpus]" (or: pip install {PRETTY_MIDI_PIN})'


class SoundfontError(RuntimeError):
    """The soundfont is not installed, or is not the pinned one."""


def locate_soundfont(distribution: str = "pretty_midi") -> Path:
    """Path of TimGM6mb.sf2 inside the installed ``distribution``; raises
    :class:`SoundfontError` naming the fix when it is missing or differs."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise SoundfontError(
            f"the demo corpus needs the General MIDI soundfont {Path(SOUNDFONT_MEMBER).name}, "
            f"which comes with the {distribution} package; it is not installed: {_FIX}"
        ) from None
    path = Path(dist.locate_file(SOUNDFONT_MEMBER))
    if not path.is_file():
        raise SoundfontError(
            f"{distribution} {dist.version} is installed but has no {SOUNDFONT_MEMBER} "
            f"(looked at {path}): {_FIX}"
        )
    digest = file_digest(path)
    if digest != SOUNDFONT_SHA256:
        raise SoundfontError(
            f"{path} has sha256 {digest}, not the pinned soundfont's {SOUNDFONT_SHA256} "
            f"({distribution} {dist.version}; the corpus is defined with {PRETTY_MIDI_PIN}): "
            f"{_FIX}"
        )
    return path
