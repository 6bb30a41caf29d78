"""Read docker/*/Dockerfile without a Docker engine: instructions, stages, pip/apt steps.

Shared by test_dockerfiles.py (lint rules, requirement sets; fast) and
test_docker_replay.py (replays the pip steps in fresh virtual environments; slow).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"

# app folder -> (modality package folder, console script)
APPS = {
    "byol-a": ("rq-audio", "rq-byol-a"),
    "mid-net": ("rq-points", "rq-mid-net"),
    "dabs": ("rq-dabs", "rq-dabs"),
}

# Distributions that only one modality brings (PEP 503 normalized names).
MODALITY_MARKERS = {
    "rq-audio": {"rq-audio", "torchaudio", "soundfile", "librosa", "nnaudio"},
    "rq-points": {"rq-points", "ocnn"},
    "rq-dabs": {"rq-dabs"},
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the (joined) line
    line: int  # 1-based line of the instruction's first line


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(path: Path) -> list[Stage]:
    """Stages of a Dockerfile (continuation lines joined, comments and blanks dropped)."""
    stages: list[Stage] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = (pending + stripped).strip()
        pending = ""
        keyword, _, args = text.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword not in ("ARG",):
            raise ValueError(f"{path}:{start}: {instruction.keyword} before the first FROM")
    return stages


def shell_commands(run_args: str) -> list[list[str]]:
    """The simple commands of a RUN (split on && and ;), each as argv; RUN flags dropped."""
    words = shlex.split(run_args)
    while words and words[0].startswith("--"):  # --mount=..., --network=...
        words.pop(0)
    commands, current = [], []
    for word in words:
        if word in ("&&", ";", "||"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(word)
    if current:
        commands.append(current)
    return commands


def pip_commands(stage: Stage, subcommand: str) -> list[list[str]]:
    """argv of every ``... pip <subcommand> ...`` in the stage's RUN instructions."""
    found = []
    for run in stage.all("RUN"):
        for argv in shell_commands(run.args):
            names = [Path(a).name for a in argv]
            if "pip" in names and subcommand in argv:
                found.append(argv)
    return found


def wheel_sources(stage: Stage) -> list[str]:
    """Local paths the builder stage turns into wheels (``pip wheel ... PATH...``)."""
    sources = []
    for argv in pip_commands(stage, "wheel"):
        tail = argv[argv.index("wheel") + 1 :]
        skip_next = False
        for word in tail:
            if skip_next:
                skip_next = False
                continue
            if word in ("--wheel-dir", "-w", "-c", "--constraint", "--find-links", "-f"):
                skip_next = True
                continue
            if not word.startswith("-"):
                sources.append(word)
    return sources


def pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


def env_value(stage: Stage, key: str) -> str | None:
    for env in stage.all("ENV"):
        for word in shlex.split(env.args):
            name, sep, value = word.partition("=")
            if sep and name == key:
                return value
    return None
