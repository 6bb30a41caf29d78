"""The app registry (scripts/rq_demo/apps.py) against the repository: one typed record per
app, matching its pyproject, configs and modality, and the very records the docker tests
read."""

import dataclasses
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
from rq_demo.apps import APPS, ROOT, AppSpec, app_named

sys.path.insert(0, str(ROOT / "tests" / "docker"))
import dockerfiles  # noqa: E402


def test_one_record_per_app_folder():
    folders = {p.name for p in (ROOT / "apps").iterdir() if (p / "pyproject.toml").is_file()}
    names = [app.name for app in APPS]
    assert len(names) == len(set(names)) and set(names) == folders
    assert all(app_named(app.name) is app for app in APPS)
    with pytest.raises(KeyError, match="no app named 'nope'"):
        app_named("nope")


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_a_record_matches_its_app(app: AppSpec):
    project = tomllib.loads((app.folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == app.distribution
    assert project["scripts"][app.script] == f"{app.package}.cli:main"
    assert (app.folder / "src" / app.package / "cli.py").is_file()
    assert (ROOT / "packages" / app.modality / "pyproject.toml").is_file()
    assert app.modality in app.modality_distributions
    assert app.demo_config.is_file() and app.quick_config.is_file()
    assert app.config(quick=True) == app.quick_config
    assert 0 < app.expected.quick < app.expected.full
    for command in app.paper_commands:
        words = shlex.split(command)
        assert words[0] == app.script
        if "--config" in words:
            assert (ROOT / words[words.index("--config") + 1]).is_file(), command


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        APPS[0].name = "other"  # type: ignore[misc]


def test_the_docker_tests_read_the_same_records():
    assert list(dockerfiles.APPS) == [app.name for app in APPS]
    assert all(dockerfiles.APPS[app.name] is app for app in APPS)
    assert dockerfiles.MODALITY_MARKERS == {
        app.modality: set(app.modality_distributions) for app in APPS
    }
    assert Path(dockerfiles.ROOT) == ROOT
