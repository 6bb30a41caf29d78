"""The run layer every app and the main job share: where caches live, which process builds a
shared file under DDP, whether a finished stage is reused, and how files and results are
written. Standard library only (no torch, no Lightning), so data builders use it too.

- :func:`cache_root`: ``cache_dir`` of a config, else ``$RQ_CACHE``, else ``~/.cache/rq``.
- :func:`atomic_output` / :func:`atomic_write`: a file appears whole or not at all.
- :func:`rank_zero_first`: under DDP rank 0 builds a file, the other ranks wait for it.
- :class:`Stage`: a fingerprinted record beside a stage's output that decides "reuse or
  redo" and names the settings that changed.
- :class:`ResultsTable` and :func:`write_results`: ``results.json`` + ``results.md`` from one
  table object.

>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> stage = Stage(run / "pretrain_rq", {"optim": {"lr": 0.03}})
>>> stage.check().state
'new'
>>> _ = stage.finish(seconds=12.5)
>>> Stage(run / "pretrain_rq", {"optim": {"lr": 0.03}}).check().state
'done'
>>> Stage(run / "pretrain_rq", {"optim": {"lr": 0.1}}).check().changed
['optim.lr']
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = [
    "CACHE_ENV",
    "RANK_ZERO_WAIT_S",
    "ResultsTable",
    "Stage",
    "StageCheck",
    "StageChangedError",
    "atomic_output",
    "atomic_write",
    "cache_root",
    "changed_keys",
    "process_rank",
    "rank_zero_first",
    "remove_stray_temporaries",
    "write_results",
]

CACHE_ENV = "RQ_CACHE"
# How long the other ranks wait for rank 0 to build a shared file: building the cache of a
# paper-size set (AudioSet, ShapeNet) takes hours on one process.
RANK_ZERO_WAIT_S = 24 * 3600.0

T = TypeVar("T")


# ------------------------------------------------------------------------------- places


def cache_root(*parts: str, override: str | os.PathLike | None = None) -> Path:
    """Where generated and downloaded data go: ``override`` (a config's ``cache_dir``), else
    ``$RQ_CACHE``, else ``~/.cache/rq``; then ``parts`` below it. Never the repository.

    >>> cache_root("points", override="/data/cache")
    PosixPath('/data/cache/points')
    """
    base = override or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "rq"
    return Path(base).expanduser().joinpath(*parts)


def process_rank() -> int:
    """Global rank of this process as its launcher set it, before any process group exists:
    torchrun's ``RANK``, else SLURM's ``SLURM_PROCID``, else ``LOCAL_RANK`` (Lightning's own
    launcher on one machine sets only that), else 0. Needs no torch;
    :func:`rq_core.seeding.process_rank` also asks an initialized process group.

    >>> process_rank() >= 0
    True
    """
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(variable, "")
        if value.isdigit():
            return int(value)
    return 0


# ------------------------------------------------------------------------------- files


def _mode_of_new_file() -> int:
    """The mode ``open()`` gives a new file under the current umask (mkstemp makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block ends without an error, the
    file written there is flushed to disk and renamed onto ``target`` (an atomic rename on
    POSIX filesystems), with the mode a new file gets. On an error it is removed and
    ``target`` stays as it was: a reader never sees a half-written file, and a kill at any
    moment leaves at worst a stray ``.NAME.*.tmp`` (see :func:`remove_stray_temporaries`).

    ``suffix`` ends the temporary name, for writers that insist on an extension
    (``numpy.savez`` appends ``.npz`` to a path without one).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("a,b\\n")
    >>> target.read_text()
    'a,b\\n'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.chmod(temporary, _mode_of_new_file())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # Make the rename itself durable: a power loss right after could otherwise undo it.
    _fsync_directory(target.parent)


def atomic_write(target: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``target`` through :func:`atomic_output`.

    >>> import tempfile
    >>> atomic_write(Path(tempfile.mkdtemp()) / "note.txt", "done").read_text()
    'done'
    """
    target = Path(target)
    with atomic_output(target) as temporary:
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)
    return target


def remove_stray_temporaries(target: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files a killed :func:`atomic_output` may have left beside
    ``target``; return them. Call it where a run starts, before anything writes ``target``.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".last.ckpt.x1y2.tmp").write_bytes(b"half")
    >>> [p.name for p in remove_stray_temporaries(folder / "last.ckpt")]
    ['.last.ckpt.x1y2.tmp']
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    stray = sorted(target.parent.glob(f".{target.name}.*.tmp"))
    for path in stray:
        path.unlink(missing_ok=True)
    return stray


def rank_zero_first(
    target: str | os.PathLike,
    build: Callable[[], T],
    *,
    timeout_s: float = RANK_ZERO_WAIT_S,
    poll_s: float = 1.0,
) -> T | None:
    """Build the shared file ``target`` once under DDP: rank 0 calls ``build()`` (which must
    write ``target`` atomically) unless it exists; every other rank waits until it appears.

    Returns what ``build`` returned on rank 0, ``None`` where nothing was built. If rank 0's
    build fails, it leaves ``TARGET.failed`` with the error, and the waiting ranks raise it
    instead of waiting out the deadline (a marker older than a minute before they started
    waiting is an earlier run's; rank 0 removes it when it starts).
    """
    target = Path(target)
    failed = target.with_name(target.name + ".failed")
    if process_rank() == 0:
        failed.unlink(missing_ok=True)
        if target.exists():
            return None
        try:
            return build()
        except BaseException as error:
            with contextlib.suppress(OSError):
                atomic_write(failed, f"{type(error).__name__}: {error}\n")
            raise
    started = time.time()
    deadline = time.monotonic() + timeout_s
    while not target.exists():
        with contextlib.suppress(OSError):
            if failed.stat().st_mtime >= started - 60:
                reason = failed.read_text().strip()
                raise RuntimeError(f"rank 0 failed to build {target}: {reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"rank {process_rank()}: waited {timeout_s / 3600:.1f} h for rank 0 to write "
                f"{target}"
            )
        time.sleep(poll_s)
    return None


# ------------------------------------------------------------------------------- stages


def _plain(value: Any) -> Any:
    """JSON-normal form: what a record holds and compares (tuples -> lists, paths -> str)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings, sorted.

    >>> changed_keys({"optim": {"lr": 1, "wd": 0}, "seed": 1}, {"optim": {"lr": 2, "wd": 0}})
    ['optim.lr', 'seed']
    """
    keys: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


class StageChangedError(ValueError):
    """A stage directory holds a result made with other settings, and the caller refuses to
    move it aside."""


@dataclass(frozen=True)
class StageCheck:
    """What :meth:`Stage.check` found.

    ``state``: ``new`` (nothing recorded), ``done`` (finished with these settings and this
    budget: reuse it), ``resume`` (same settings but unfinished or with another budget:
    continue from what is there, e.g. a killed pretraining or one given more steps),
    ``changed`` (made with other settings: ``changed`` names the keys), ``forced`` (a record
    exists but the caller asked to redo it).
    """

    state: Literal["new", "done", "resume", "changed", "forced"]
    changed: list[str] = field(default_factory=list)
    record: dict[str, Any] | None = None

    @property
    def reusable(self) -> bool:
        return self.state == "done"


class Stage:
    """A unit of work (a pretraining, a probe, a main-job stage) whose result is reused while
    the settings that made it are unchanged.

    The record is ``DIR/stage.json``: the settings (everything that shapes the result), the
    budget (what only extends it: steps, epochs), ``finished`` and the outputs
    :meth:`finish` stored. Settings are stored whole, not hashed, so a mismatch names keys.

    Args:
        directory: the stage's own folder (its outputs live there too).
        settings: a nested mapping of JSON-able values.
        budget: values that extend a finished stage rather than invalidate it.
        record: the record's file name.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        settings: Mapping[str, Any],
        *,
        budget: Mapping[str, Any] | None = None,
        record: str = "stage.json",
    ) -> None:
        self.directory = Path(directory)
        self.settings = _plain(dict(settings))
        self.budget = _plain(dict(budget or {}))
        self.path = self.directory / record

    def read(self) -> dict[str, Any] | None:
        """The record on disk (``None``: none, or one that cannot be read)."""
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def check(self, *, force: bool = False) -> StageCheck:
        """Compare the record on disk with this stage's settings and budget."""
        record = self.read()
        if record is None:
            return StageCheck("new")
        if force:
            return StageCheck("forced", record=record)
        changed = changed_keys(record.get("settings") or {}, self.settings)
        if changed:
            return StageCheck("changed", changed, record)
        if record.get("budget", {}) != self.budget or not record.get("finished"):
            return StageCheck("resume", record=record)
        return StageCheck("done", record=record)

    def prepare(
        self, *, force: bool = False, on_change: Literal["supersede", "refuse"]
    ) -> StageCheck:
        """Check, then make the folder ready for a run: a result made with other settings (or
        any result, with ``force``) is moved aside to ``DIR.superseded-<time>`` (kept, never
        deleted) or refused with :class:`StageChangedError` naming the changed keys. Then the
        record is written as started (rank 0 only). Returns the check."""
        check = self.check(force=force)
        if check.state in ("changed", "forced"):
            why = (
                f"settings changed ({', '.join(check.changed[:8])})"
                if check.changed
                else "redo requested (force)"
            )
            if on_change == "refuse" and check.state == "changed":
                raise StageChangedError(
                    f"{self.directory} holds a result made with other settings: {why}; use "
                    "another run_dir, or move that one away to run again"
                )
            aside = self.move_aside()
            print(f"[stage] {self.directory}: {why}; the old result is kept at {aside}")
            check = StageCheck(check.state, check.changed)
        if check.state != "done" and process_rank() == 0:
            self._write(finished=False)
        return check

    def move_aside(self) -> Path:
        """Rename the stage folder to ``DIR.superseded-YYYYmmdd-HHMMSS[-n]``; return it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.directory.with_name(f"{self.directory.name}.superseded-{stamp}")
        n = 1
        while aside.exists():
            aside = self.directory.with_name(f"{self.directory.name}.superseded-{stamp}-{n}")
            n += 1
        self.directory.rename(aside)
        return aside

    def finish(self, **outputs: Any) -> Path:
        """Record the stage as finished with these settings and ``outputs`` (JSON-able)."""
        return self._write(finished=True, outputs=outputs)

    def outputs(self) -> dict[str, Any]:
        """What :meth:`finish` stored (empty if unfinished)."""
        record = self.read() or {}
        return dict(record.get("outputs") or {})

    def _write(self, *, finished: bool, outputs: Mapping[str, Any] | None = None) -> Path:
        record = {
            "settings": self.settings,
            "budget": self.budget,
            "finished": finished,
            "outputs": _plain(dict(outputs or {})),
        }
        return atomic_write(self.path, json.dumps(record, indent=1, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------- results


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


@dataclass
class ResultsTable:
    """One results table: the same object writes ``results.json`` and ``results.md``.

    ``rows`` are mappings from column name to value; a value is a number, a string, or any
    object whose ``str()`` is its cell (e.g. a mean with an interval) and that
    :func:`json.dumps` can write through ``to_json`` (a dataclass or ``to_json()`` method).
    ``title`` becomes a heading at the level the caller asks for, so a report can nest an
    app's table under its own headings.

    >>> t = ResultsTable(
    ...     "Linear probe", ["method", "keyword"], [{"method": "rq", "keyword": 93.04}]
    ... )
    >>> print(t.markdown(level=3))
    ### Linear probe
    <BLANKLINE>
    | method | keyword |
    |---|---|
    | rq | 93.0 |
    <BLANKLINE>
    """

    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digits: int = 1

    def add(self, **row: Any) -> None:
        unknown = sorted(set(row) - set(self.columns))
        if unknown:
            raise KeyError(f"table {self.title!r} has no columns {unknown}")
        self.rows.append(row)

    def markdown(self, level: int = 2) -> str:
        lines = [f"{'#' * level} {self.title}", ""] if self.title else []
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        for row in self.rows:
            cells = [_cell(row.get(c), self.digits) for c in self.columns]
            lines.append("| " + " | ".join(cells) + " |")
        if self.notes:
            lines += [""] + list(self.notes)
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [{k: _json_value(v) for k, v in row.items()} for row in self.rows],
            "notes": list(self.notes),
            "digits": self.digits,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResultsTable:
        """Rebuild a table from :meth:`to_json`: cells come back as plain JSON values, and
        intervals (the JSON of :class:`rq_core.uncertainty.Estimate` / ``Comparison``) as
        those objects, so the rebuilt table's markdown is the original's."""
        return cls(
            data.get("title", ""),
            list(data["columns"]),
            [{k: _cell_from_json(v) for k, v in r.items()} for r in data.get("rows", [])],
            list(data.get("notes", [])),
            int(data.get("digits", 1)),
        )


def _cell_from_json(value: Any) -> Any:
    """An interval's JSON back as the object (numpy is imported only for such tables)."""
    if not isinstance(value, Mapping) or not {"low", "high"} <= set(value):
        return value
    from dataclasses import fields

    from rq_core.uncertainty import Comparison, Estimate

    kind = Comparison if "difference" in value else Estimate if "value" in value else None
    if kind is None:
        return value
    return kind(**{f.name: value[f.name] for f in fields(kind) if f.name in value})


def _json_value(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    return value


def write_results(
    run_dir: str | os.PathLike,
    tables: ResultsTable | Sequence[ResultsTable],
    data: Mapping[str, Any] | None = None,
    *,
    title: str | None = None,
) -> tuple[Path, Path]:
    """Write ``RUN_DIR/results.json`` (``data`` plus the tables under ``"tables"``) and
    ``RUN_DIR/results.md`` (``title`` as a level-1 heading, then each table at level 2),
    both atomically; return their paths.
    """
    run_dir = Path(run_dir)
    tables = [tables] if isinstance(tables, ResultsTable) else list(tables)
    payload = dict(data or {})
    if "tables" in payload:
        raise ValueError("results data must not use the key 'tables' (the tables go there)")
    payload["tables"] = [t.to_json() for t in tables]
    json_path = atomic_write(
        run_dir / "results.json", json.dumps(payload, indent=2, default=_json_value) + "\n"
    )
    parts = [f"# {title}\n"] if title else []
    parts += [t.markdown(level=2) for t in tables]
    md_path = atomic_write(run_dir / "results.md", "\n".join(parts))
    return json_path, md_path
