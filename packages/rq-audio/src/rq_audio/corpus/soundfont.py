"""The General MIDI soundfont that ships inside the ``pretty_midi`` wheel (TimGM6mb.sf2).

The wheel is fetched with ``pip download --no-deps pretty_midi`` into the cache and the
soundfont is taken out of its zip; pretty_midi itself is never installed or imported.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = ["SOUNDFONT_MEMBER", "fetch_soundfont"]

SOUNDFONT_MEMBER = "pretty_midi/TimGM6mb.sf2"


def fetch_soundfont(cache_dir: Path) -> Path:
    """Return ``cache_dir/TimGM6mb.sf2``, downloading the pretty_midi wheel once if needed."""
    target = Path(cache_dir) / "TimGM6mb.sf2"
    if target.is_file() and target.stat().st_size > 0:
        return target
    wheel_dir = Path(cache_dir) / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(wheel_dir.glob("pretty_midi-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "-q", "-d", str(wheel_dir), "pretty_midi"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(wheel_dir.glob("pretty_midi-*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(
                "could not download the pretty_midi wheel (it carries the soundfont): "
                f"{' '.join(cmd)} said: {result.stderr.strip()[-500:]}"
            )
    with zipfile.ZipFile(wheels[-1]) as zf:
        if SOUNDFONT_MEMBER not in zf.namelist():
            raise RuntimeError(f"{wheels[-1].name} has no {SOUNDFONT_MEMBER}")
        tmp = target.with_suffix(".sf2.partial")
        tmp.write_bytes(zf.read(SOUNDFONT_MEMBER))
        tmp.replace(target)
    return target
