"""Read docker/Dockerfile without a Docker engine: build args, stages, pip/apt steps.

One Dockerfile serves every app; docker/compose.yaml passes each service's build args. Shared
by test_dockerfiles.py (lint rules, requirement sets; fast), test_app_wheels.py (the wheels
carry their configs) and test_docker_replay.py (replays the pip steps in fresh virtual
environments; slow).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rq_demo.apps import APPS as APP_SPECS
from rq_demo.apps import AppSpec

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"

# The apps, one AppSpec each (scripts/rq_demo/apps.py, shared with the main job), by folder.
APPS: dict[str, AppSpec] = {app.name: app for app in APP_SPECS}

# Distributions that only one modality brings, by modality package folder.
MODALITY_MARKERS: dict[str, set[str]] = {
    app.modality: set(app.modality_distributions) for app in APP_SPECS
}


def compose() -> dict:
    import yaml

    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def build_args(app: str) -> dict[str, str]:
    """The build args docker/compose.yaml passes for ``app``'s image."""
    args = compose()["services"][app]["build"].get("args") or {}
    return {key: "" if value is None else str(value) for key, value in args.items()}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the (joined) line, build args substituted
    line: int  # 1-based line of the instruction's first line
    raw: str = ""  # the rest of the line as written (what a RUN's shell gets)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)  # build args in scope at the end

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def substitute(text: str, values: dict[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` of the build args in scope replaced; anything else (``$PATH``)
    kept, as Docker does for instructions (and the shell does for RUN with ARGs as env)."""

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return values[name] if name in values else match.group(0)

    return _VARIABLE.sub(replace, text)


def parse(path: Path = DOCKERFILE, args: dict[str, str] | None = None) -> list[Stage]:
    """Stages of a Dockerfile built with build ``args`` (continuation lines joined, comments
    and blanks dropped; ARGs scoped per stage as Docker scopes them)."""
    args = dict(args or {})
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
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
        keyword, _, rest = text.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        scope = stages[-1].args if stages else global_args
        if keyword == "ARG":
            name, has_default, default = rest.partition("=")
            if name in args:
                value = args[name]
            elif has_default:
                value = substitute(default.strip().strip('"'), scope)
            else:
                value = global_args.get(name, "")
            scope[name] = value
        # FROM sees only the global ARGs (those before the first FROM), as in Docker.
        values = global_args if keyword == "FROM" else scope
        instruction = Instruction(keyword, substitute(rest, values), start, rest)
        if keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif keyword != "ARG":
            raise ValueError(f"{path}:{start}: {keyword} before the first FROM")
    return stages


def stage_named(stages: list[Stage], name: str) -> Stage:
    (stage,) = [s for s in stages if s.name == name]
    return stage


def shell_commands(run_args: str) -> list[list[str]]:
    """The simple commands of a RUN (split on && ; ||), each as argv; RUN flags and the shell
    keywords that open a command (``if``, ``then``, ...) dropped."""
    lexer = shlex.shlex(run_args, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # words as the shell splits them; `;` `&&` `||` apart
    words = list(lexer)
    while words and words[0].startswith("--"):  # --mount=..., --network=...
        words.pop(0)
    commands, current = [], []
    for word in words:
        if word in ("&&", ";", "||"):
            if current:
                commands.append(current)
            current = []
        elif not current and word in ("if", "then", "else", "elif", "do", "fi", "done"):
            continue
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


_OPTIONS_WITH_VALUE = ("--wheel-dir", "-w", "-c", "--constraint", "--find-links", "-f", "-r")


def pip_targets(argv: list[str], subcommand: str) -> list[str]:
    """The positional arguments of ``pip <subcommand>`` (paths, wheel files, requirements)."""
    targets, skip_next = [], False
    for word in argv[argv.index(subcommand) + 1 :]:
        if skip_next:
            skip_next = False
        elif word in _OPTIONS_WITH_VALUE:
            skip_next = True
        elif not word.startswith("-"):
            targets.append(word)
    return targets


def wheel_sources(stage: Stage) -> list[str]:
    """Local paths the builder stage turns into wheels (``pip wheel ... PATH...``)."""
    return [t for argv in pip_commands(stage, "wheel") for t in pip_targets(argv, "wheel")]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's ``patterns`` keep ``relative`` (a path below the repository
    root, / separated) out of the build context."""
    parts = relative.split("/")
    for pattern in patterns:
        plain = pattern.removeprefix("**/")
        for i in range(len(parts)):
            prefix = "/".join(parts[: i + 1])
            if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(parts[i], plain):
                return True
    return False


def _load_requirements_script():
    """docker/requirements.py as a module (it is a script of the image, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "rq_docker_requirements", DOCKER / "requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


requirements_script = _load_requirements_script()

# Where the runtime stage copies the members' pyproject.toml files (the checkout's tree below it).
PROJECTS_IN_IMAGE = "/opt/rq/projects/"


def dependency_requirements(stage: Stage, root: Path = ROOT) -> list[str]:
    """The requirement lines the stage's ``python3 .../requirements.py ...`` prints, computed
    with the same arguments from the pyproject.toml files under ``root`` (the checkout; the
    image holds copies of them)."""
    for run in stage.all("RUN"):
        for argv in shell_commands(run.args):
            if len(argv) > 1 and Path(argv[1]).name == "requirements.py":
                words = argv[2 : argv.index(">")] if ">" in argv else argv[2:]
                mapped = [
                    str(root / w.removeprefix(PROJECTS_IN_IMAGE))
                    if w.startswith(PROJECTS_IN_IMAGE) else w
                    for w in words
                ]  # fmt: skip
                app, members, extras = requirements_script.parse_arguments(mapped)
                return requirements_script.third_party_requirements(app, members, extras)
    raise AssertionError("no RUN calls docker/requirements.py")


def pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


def env_value(stage: Stage, key: str) -> str | None:
    for env in stage.all("ENV"):
        for word in shlex.split(env.args):
            name, sep, value = word.partition("=")
            if sep and name == key:
                return value
    return None


# ------------------------------------------------------------------ fresh environments


def run_checked(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=3000, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def installed_distributions(python: Path) -> set[str]:
    """Normalized names of every distribution ``python``'s environment holds."""
    listed = run_checked(
        [str(python), "-c",
         "import importlib.metadata as m; "
         "print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"],
    ).stdout  # fmt: skip
    return {normalize(line.strip()) for line in listed.splitlines() if line.strip()}


def copy_sources(stage: Stage, workdir: Path) -> Path:
    """Replay the stage's ``COPY src dst`` from the checkout into ``workdir`` (its WORKDIR),
    leaving out the build leftovers .dockerignore keeps out of the context."""
    ignore = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".*cache", "runs")
    for copy in stage.all("COPY"):
        words = copy.args.split()
        if any(w.startswith("--") for w in words):
            continue
        source, target = ROOT / words[0], workdir / words[-1]
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return workdir
