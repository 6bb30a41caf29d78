"""Typed run configs: a dataclass schema, a YAML file, and ``key.sub=value`` overrides.

Every app's CLI goes through :func:`cli_main`: ``rq-<app> <command> --config FILE.yaml
key.sub=value ...``. The schema is an OmegaConf structured config, so an unknown key or a
value of the wrong type fails with a :class:`ConfigError` that names the key and where the
value came from. Needs the ``train`` extra (omegaconf).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rq_core.checkpoints import CheckpointError
from rq_core.runs import StageChangedError

__all__ = ["ConfigError", "check_run_dir", "cli_main", "load_config", "save_config"]


def _chmod_like_new_file(path: str) -> None:
    """mkstemp creates 0600 files; give the final file the mode open() would (umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


class ConfigError(ValueError):
    """A config key that does not exist, a value of the wrong type, or a missing value."""


def _describe(
    error: OmegaConfBaseException, source: str, fallback_key: str | None = None
) -> ConfigError:
    key = getattr(error, "full_key", None) or getattr(error, "key", None) or fallback_key
    # OmegaConf's own message ends with a "full_key: ... object_type=..." block; keep its
    # first line, which says what was wrong.
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = f" (from {source})" if source else ""
    if key:
        return ConfigError(f"config key '{key}'{where}: {reason}")
    return ConfigError(f"config{where}: {reason}")


def _yaml_problem(error: Exception, position: bool = True) -> str:
    """One line saying what is wrong with a piece of YAML (yaml's own message spans lines);
    ``position``: add yaml's line and column (meaningful for a file, not for one value)."""
    problem = getattr(error, "problem", None) or getattr(error, "context", None)
    mark = getattr(error, "problem_mark", None) if position else None
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    text = problem or (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{text}{where}"


def _base(schema: Any) -> DictConfig:
    if isinstance(schema, DictConfig):
        base = schema.copy()
    elif dataclasses.is_dataclass(schema):
        base = OmegaConf.structured(schema)
    elif isinstance(schema, Mapping):
        base = OmegaConf.create(dict(schema))
    else:
        raise TypeError(
            "schema must be a dataclass (type or instance), a dict or a DictConfig, "
            f"got {type(schema).__name__}"
        )
    # Struct mode: assigning or merging a key the schema lacks is an error.
    OmegaConf.set_struct(base, True)
    return base


def _check_overrides(overrides: Iterable[str]) -> list[str]:
    checked = []
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        checked.append(item)
    return checked


def app_config_dir(package: str, checkout_dir: str | os.PathLike) -> Path:
    """Where an app's config files are: the package data ``<package>/configs`` when the app was
    installed from a wheel, else ``checkout_dir`` (an editable install reads the checkout)."""
    from importlib.resources import files

    packaged = files(package) / "configs"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(checkout_dir)


def load_config(
    schema: Any, config_path: str | os.PathLike | None = None, overrides: Iterable[str] = ()
) -> DictConfig:
    """Defaults from ``schema``, then the YAML file, then dotted ``overrides``; validated.

    Args:
        schema: a dataclass type or instance (typed: OmegaConf structured config), or a dict
            of defaults (keys checked, types of plain dicts are not).
        config_path: a YAML file whose keys must all exist in the schema.
        overrides: ``"key.sub=value"`` strings, applied last (YAML syntax for the value).

    Returns: the merged config (struct mode: unknown keys stay errors), interpolations
    resolved.

    Raises: :class:`ConfigError` naming the offending key and its source; FileNotFoundError.

    >>> @dataclasses.dataclass
    ... class Schema:
    ...     lr: float = 0.1
    ...     name: str = "run"
    >>> load_config(Schema, overrides=["lr=0.5"]).lr
    0.5
    >>> load_config(Schema, overrides=["lr=fast"])  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    rq_core.config.ConfigError: config key 'lr' (from override 'lr=fast'): Value 'fast' of type
    'str' could not be converted to Float
    """
    config = _base(schema)
    if config_path is not None:
        path = Path(config_path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            from_file = OmegaConf.load(path)
        except Exception as error:  # YAML syntax errors come from yaml, not OmegaConf
            raise ConfigError(f"cannot parse {path}: {_yaml_problem(error)}") from error
        if not isinstance(from_file, DictConfig):
            raise ConfigError(f"{path} must hold a mapping at the top level")
        try:
            config = OmegaConf.merge(config, from_file)
        except OmegaConfBaseException as error:
            raise _describe(error, str(path)) from None
    for item in _check_overrides(overrides):
        try:
            parsed = OmegaConf.from_dotlist([item])
        except yaml.YAMLError as error:  # e.g. `trainer.max_steps=[1`: the value is not YAML
            raise ConfigError(
                f"override '{item}': its value is not valid YAML ({_yaml_problem(error, False)})"
            ) from None
        try:
            config = OmegaConf.merge(config, parsed)
        except OmegaConfBaseException as error:
            raise _describe(error, f"override '{item}'", item.split("=", 1)[0]) from None
    try:
        OmegaConf.resolve(config)
    except OmegaConfBaseException as error:
        raise _describe(error, "interpolation") from None
    missing = sorted(OmegaConf.missing_keys(config))
    if missing:
        raise ConfigError(
            f"config keys without a value (set them in the file or as key=value): {missing}"
        )
    return config


def save_config(config: DictConfig | Mapping[str, Any], run_dir: str | os.PathLike) -> Path:
    """Write the resolved config to ``RUN_DIR/config.yaml`` atomically; return its path.

    >>> import tempfile
    >>> path = save_config({"lr": 0.1}, tempfile.mkdtemp())
    >>> path.read_text()
    'lr: 0.1\\n'
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not isinstance(config, DictConfig):
        config = OmegaConf.create(dict(config))
    text = OmegaConf.to_yaml(config, resolve=True)
    target = run_dir / "config.yaml"
    handle, temporary = tempfile.mkstemp(dir=run_dir, prefix=".config.yaml.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        _chmod_like_new_file(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def check_run_dir(run_dir: str | os.PathLike, key: str = "run_dir") -> Path:
    """Check that a run can write ``run_dir``, without leaving anything behind; return it.

    The directory must be a directory or creatable: no file at its place or above it, and
    its nearest existing directory must let us create entries (tried for real, with a
    temporary directory removed at once: permission bits do not tell, e.g. for root or on a
    read-only mount).

    Raises: :class:`ConfigError`, one line naming ``key``, the path and the problem.
    """
    path = Path(run_dir).expanduser().absolute()
    named = f"{key}={run_dir}"
    existing = path
    # os.path (not pathlib): False instead of an exception for a path we may not stat.
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not os.path.isdir(existing):
        if existing == path:
            raise ConfigError(f"{named}: {path} is a file, not a directory")
        raise ConfigError(f"{named}: cannot create {path}: {existing} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".rq-write-check-"))
    except OSError as error:
        reason = error.strerror or type(error).__name__
        what = "is not writable" if existing == path else f"cannot be created in {existing}"
        raise ConfigError(f"{named}: {path} {what} ({reason})") from None
    return path


# What a command raises for a mistake in what the user gave it (never for a bug): cli_main
# prints these as one line and exits 2.
# A FileNotFoundError names the file the user pointed at (a checkpoint, a cache, a folder).
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    CheckpointError,
    StageChangedError,
    FileNotFoundError,
)


def _exit_with(prog: str, command: str | None, message: str) -> None:
    """Print ``prog command: error: message`` on one line of stderr and exit with status 2."""
    where = f"{prog} {command}" if command else prog
    one_line = " ".join(str(message).split())
    print(f"{where}: error: {one_line}", file=sys.stderr)
    raise SystemExit(2)


def cli_main(
    commands: Mapping[str, Callable[[DictConfig], Any]],
    schemas: Mapping[str, Any],
    default_configs: Mapping[str, str | os.PathLike | None],
    argv: list[str] | None = None,
    prog: str | None = None,
    description: str | None = None,
) -> Any:
    """Parse ``<command> [--config FILE.yaml] [--print-config] [key.sub=value ...]`` and run.

    Args:
        commands: name -> function taking the validated config.
        schemas: name -> schema (dataclass) of that command's config.
        default_configs: name -> YAML used when ``--config`` is omitted (``None``: schema
            defaults only).
        argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns: what the command returned. Bad arguments (argparse's usage message), a
    :class:`ConfigError` (a wrong key, type or malformed override, or one the command raises,
    e.g. ``trainer.resume`` when no checkpoint loads), a config's ``run_dir`` that cannot be
    written (checked before the command runs, see :func:`check_run_dir`), and the
    :data:`USER_ERRORS` a command raises (a checkpoint that a weights-only load refuses or that
    is damaged, :class:`rq_core.checkpoints.CheckpointError`; a run dir that holds a result
    made with other settings, :class:`rq_core.runs.StageChangedError`) print one line naming
    the problem on stderr and exit with status 2, without a traceback.

    >>> @dataclasses.dataclass
    ... class Hello:
    ...     name: str = "world"
    >>> cli_main({"hello": lambda c: f"hello {c.name}"}, {"hello": Hello}, {"hello": None},
    ...          argv=["hello", "name=you"])
    'hello you'
    """
    missing = set(commands) ^ set(schemas)
    if missing:
        raise ValueError(
            f"commands and schemas must name the same commands; differ in {sorted(missing)}"
        )
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, function in commands.items():
        summary = (function.__doc__ or "").strip().splitlines()
        default = default_configs.get(name)
        sub = subparsers.add_parser(
            name,
            help=summary[0] if summary else None,
            description=(function.__doc__ or "").strip() or None,
        )
        sub.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"YAML config (default: {default if default else 'built-in defaults'})",
        )
        sub.add_argument(
            "--print-config",
            action="store_true",
            help="print the resolved config and exit",
        )
        sub.add_argument("overrides", nargs="*", metavar="key.sub=value", help="dotted overrides")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    config_path = args.config if args.config is not None else default_configs.get(args.command)
    prog = parser.prog
    try:
        config = load_config(schemas[args.command], config_path, args.overrides)
    except (ConfigError, FileNotFoundError) as error:
        _exit_with(prog, args.command, str(error))
    if args.print_config:
        print(OmegaConf.to_yaml(config, resolve=True), end="")
        return None
    if "run_dir" in config and config.run_dir:
        # Before the command: a run_dir that cannot be written must not cost a data preparation.
        try:
            check_run_dir(config.run_dir)
        except ConfigError as error:
            _exit_with(prog, args.command, str(error))
    try:
        return commands[args.command](config)
    except USER_ERRORS as error:
        # Raised by the command for what the user gave it: a checkpoint that is refused or
        # damaged, trainer.resume when no checkpoint loads, a run dir made with other settings.
        _exit_with(prog, args.command, str(error))
