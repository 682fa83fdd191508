"""What rendering a batch would do to the output folder, decided before anything is written.

Each DAG file of the batch is created, updated or left unchanged; a file that
dagfactory did not generate is never replaced (unless ``--force`` names it) and blocks
the whole render; a generated file whose config no longer produces it is stale, to be
removed on ``--prune``. Beside the DAG files, the folder's ``.airflowignore`` lists the
user code the configs call that lives there (a package such as ``ml_demo/``), so that
Airflow does not parse it as DAG files on every cycle. :mod:`.writer` carries a plan
out; ``render --check`` and ``--diff`` only show it.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dagfactory.compile.header import GENERATED_MARKER, is_generated, recorded_source
from dagfactory.configs import display_name
from dagfactory.problems import Problem, UsageError


class Rendered(Protocol):
    """A valid config's DAG file as a batch knows it (``content`` None: already current)."""

    @property
    def dag_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def content(self) -> str | None: ...
    @property
    def code_modules(self) -> tuple[str, ...]: ...
    @property
    def recorded_as(self) -> str: ...


IGNORE_FILE = ".airflowignore"
_IGNORE_HEADER = (
    f"{GENERATED_MARKER}: the code your configs call, which Airflow must not parse as\n"
    "# DAG files. `dagfactory render` keeps this file: do not edit it.\n"
)


def output_path(out_dir: Path, dag_id: str) -> Path:
    """Where the DAG file of ``dag_id`` goes: the one naming rule of outputs."""
    return out_dir / f"{dag_id}.py"


def recorded_name(config: Path, out_dir: Path) -> str:
    """How a file in ``out_dir`` names its config: relative to the folder holding
    ``out_dir`` (the project), so that it is the same from any working directory."""
    return _recorded_folder(os.path.dirname(config), out_dir, os.getcwd()) + config.name


@functools.lru_cache(maxsize=256)
def _recorded_folder(folder: str, out_dir: Path, cwd: str) -> str:
    """``folder`` relative to the project, with a final slash (nothing for the project):
    worked out once per folder of configs, from ``cwd`` (a relative ``out_dir`` means
    another folder after a change of directory)."""
    project = Path(cwd, out_dir).parent
    relative = Path(os.path.relpath(Path(cwd, folder), project)).as_posix()
    return "" if relative == "." else f"{relative}/"


def recorded_config(recorded: str, out_dir: Path) -> Path:
    """The config a file in ``out_dir`` names (see :func:`recorded_name`)."""
    return out_dir.absolute().parent / recorded


class Action(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REMOVE = "remove"  # stale: generated from a config that no longer produces it


@dataclass(frozen=True)
class PlannedFile:
    """One file of the output folder and what the render does to it.

    ``source`` is the config it is generated from (for a stale file: the config its
    header names); ``content`` is what it is to hold (nothing, for a stale file).
    """

    path: Path
    action: Action
    source: str
    content: str = ""

    def diff(self) -> str:
        """A unified diff from what is on disk to what the render leaves there."""
        label = (
            "stale: its config is gone"
            if self.action is Action.REMOVE
            else f"from {self.source}"
        )
        try:
            current = self.path.read_text("utf-8")
        except FileNotFoundError:
            current = ""
        import difflib  # here: only --check and --diff show diffs

        lines = difflib.unified_diff(
            current.splitlines(keepends=True),
            self.content.splitlines(keepends=True),
            fromfile=f"{self.path} (on disk)",
            tofile=f"{self.path} ({label})",
        )
        return "".join(lines)


@dataclass
class Plan:
    """Every file the render touches, and the files in its way (it may then do nothing)."""

    total: int  # the DAG files of the batch, up to date ones included
    files: list[PlannedFile] = field(default_factory=list)
    blocked: list[Problem] = field(default_factory=list)
    ignore_file: PlannedFile | None = None
    warnings: list[Problem] = field(default_factory=list)

    @property
    def changes(self) -> list[PlannedFile]:
        """The DAG files to create or update, in config order."""
        return [f for f in self.files if f.action in (Action.CREATE, Action.UPDATE)]

    @property
    def writes(self) -> list[PlannedFile]:
        """Every file to write: the changed DAG files, then the ``.airflowignore``."""
        extra = [self.ignore_file] if self.ignore_file is not None else []
        return [
            *self.changes,
            *(f for f in extra if f.action in (Action.CREATE, Action.UPDATE)),
        ]

    @property
    def stale(self) -> list[PlannedFile]:
        return [f for f in self.files if f.action is Action.REMOVE]


def plan_render(
    rendered: Sequence[Rendered],
    out_dir: Path,
    force: Sequence[Path] = (),
    staged: Container[Path] = (),
    replaced: Mapping[str, bool | None] | None = None,
) -> Plan:
    """What rendering a batch into ``out_dir`` does; ``force`` names foreign files to replace.

    A config without content needs nothing (its file is already current) unless its
    file is among the ``staged`` ones, already written under a temporary name because
    it differs from what is there; the writer renames those. ``replaced`` tells of a
    file (by name as given) already read this run and known to differ from its new
    content whether it is generated (None: missing), so it is not read again. Raises :class:`~dagfactory.problems.UsageError` when ``force`` names
    a file this render does not write.
    """
    outputs = [(output_path(out_dir, unit.dag_id), unit) for unit in rendered]
    forced = {path.resolve() for path in force}
    # Resolving a path costs a system call per folder level: only for --force.
    unknown = forced - {path.resolve() for path, _ in outputs} if forced else set()
    if unknown:
        raise UsageError(
            f"--force {min(unknown)}: not a file this render writes; name an output file"
        )
    plan = Plan(total=len(outputs))
    for path, unit in outputs:
        if unit.content is None and path not in staged:
            continue
        action = _action(path, unit.content, replaced or {})
        if action is None and path.resolve() not in forced:
            plan.blocked.append(
                Problem.in_file(
                    str(path),
                    "this file was not generated by dagfactory; refusing to overwrite it. "
                    f"Move it away, change dag.dag_id in {unit.source}, or pass --force {path}",
                )
            )
            continue
        plan.files.append(
            PlannedFile(path, action or Action.UPDATE, unit.source, unit.content or "")
        )
    plan.files += _stale_files(out_dir, outputs)
    _plan_ignore_file(
        plan, out_dir, {m for unit in rendered for m in unit.code_modules}
    )
    return plan


def _plan_ignore_file(plan: Plan, out_dir: Path, modules: set[str]) -> None:
    """The ``.airflowignore`` listing each module the configs call that is in ``out_dir``.

    Entries dagfactory listed before are kept while their code is still there, so that
    rendering some of the configs does not drop what the others call.
    """
    path = out_dir / IGNORE_FILE
    try:
        current = path.read_text("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        current = None
    except (OSError, UnicodeDecodeError):
        current = ""  # unreadable: not ours
    if current is not None and not current.startswith(GENERATED_MARKER):
        listed = set(current.split())
        missing = [e for e in _ignore_entries(out_dir, modules) if e not in listed]
        if missing:
            plan.warnings.append(
                Problem.in_file(
                    str(path),
                    "not written by dagfactory, so left as it is; add "
                    f"{', '.join(missing)} to it, or Airflow parses that code as DAG files",
                    severity="warning",
                )
            )
        return
    earlier = {
        line.rstrip("/").removesuffix(".py")
        for line in (current or "").splitlines()
        if line and not line.startswith("#")
    }
    entries = _ignore_entries(out_dir, modules | earlier)
    if current is None and not entries:
        return
    content = _IGNORE_HEADER + "".join(f"{entry}\n" for entry in entries)
    action = (
        Action.UNCHANGED
        if content == current
        else (Action.CREATE if current is None else Action.UPDATE)
    )
    plan.ignore_file = PlannedFile(path, action, "the code the configs call", content)


def _ignore_entries(out_dir: Path, modules: set[str]) -> list[str]:
    """``package/`` or ``module.py`` for each of ``modules`` that lives in ``out_dir``."""
    entries = []
    for module in sorted(modules):
        if (out_dir / module).is_dir():
            entries.append(f"{module}/")
        elif (out_dir / f"{module}.py").is_file():
            entries.append(f"{module}.py")
    return entries


def _action(
    path: Path, content: str | None, replaced: Mapping[str, bool | None]
) -> Action | None:
    """What writing ``content`` to ``path`` is; None when a foreign file is in the way.

    ``content`` None is a file known to differ from what ``path`` holds.
    """
    name = os.fspath(path)
    if name in replaced:
        generated = replaced[name]
        return (
            Action.CREATE
            if generated is None
            else (Action.UPDATE if generated else None)
        )
    try:
        current = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return Action.CREATE  # writing will say why the folder cannot hold it
    except OSError:
        return None  # a folder or an unreadable file: in the way, so never replaced
    if content is not None and current == content.encode():
        return Action.UNCHANGED
    return Action.UPDATE if is_generated(current) else None


def _stale_files(
    out_dir: Path, outputs: list[tuple[Path, Rendered]]
) -> list[PlannedFile]:
    """Generated files in ``out_dir`` that no config produces any more.

    A file is stale when it is not one of this batch's outputs and the config its
    header names is gone, or is one of this batch's configs (which now renders to
    another file). Files of configs outside this batch, and files dagfactory did not
    generate, are never stale.
    """
    # every output is out_dir / NAME (output_path), as is every file the glob finds:
    # comparing names compares the files, without making 2,000 paths absolute
    current = {path.name for path, _ in outputs}
    sources = {unit.recorded_as for _, unit in outputs}
    stale = []
    for path in sorted(out_dir.glob("*.py"), key=lambda path: path.name):
        if path.name in current:
            continue
        source = recorded_source(path)
        if source is None:
            continue
        config = recorded_config(source, out_dir)
        if source in sources or not config.is_file():
            stale.append(PlannedFile(path, Action.REMOVE, display_name(config)))
    return stale
