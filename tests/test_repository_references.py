"""The repository cites only files it holds: ARCHITECTURE.md and shared/DATA.md were planning
documents outside it; docs/architecture.md is the map now."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GONE = ("ARCHITECTURE.md", "shared/DATA.md")


def test_no_tracked_file_cites_a_document_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    citing = []
    for name in tracked:
        path = ROOT / name
        if name == Path(__file__).relative_to(ROOT).as_posix() or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files
        for number, line in enumerate(text.splitlines(), 1):
            # docs/architecture.md is in the repository; the old upper-case plan is not
            if any(gone in line for gone in GONE):
                citing.append(f"{name}:{number}: {line.strip()[:90]}")
    assert not citing, "cites files not in the repository:\n" + "\n".join(citing)
