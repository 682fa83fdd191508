"""The one problem type: everything a user must see, as data that the reporters print.

A config error, a file in the way, a stale file, a write or template failure, a file
Airflow cannot load, a failed DAG run: each is a :class:`Problem`, located as precisely
as it can be (``file:line:column`` and a spec path for configs, a file for outputs,
nothing for the tool itself). Commands return them; :mod:`dagfactory.report` prints
them in every format. Errors that stop a command early are :class:`DagfactoryError`
exceptions that carry their exit code and their problem, as click's exceptions do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

SpecPath = tuple[str | int, ...]
Severity = Literal["error", "warning"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
SHOWN_KEY_CHARACTERS = 80


def format_spec_path(path: SpecPath) -> str:
    """Render ``("trainers", "models", 1, "task_id")`` as ``trainers.models[1].task_id``.

    A key that is empty or holds spaces, line breaks or other unprintable characters is
    quoted (``op_kwargs['a\\n']``), and a very long one cut short, so every error stays
    on one readable line.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif len(part) > SHOWN_KEY_CHARACTERS:  # a key of 100,000 characters
            text += f"[{part[:SHOWN_KEY_CHARACTERS]!r}…]"
        elif not part or not part.isprintable() or " " in part:
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


@dataclass(frozen=True)
class Problem:
    """Something wrong, and where: a config value, a whole file, or (no file) the run itself.

    ``line``, ``column`` and ``spec_path`` are set for a value in a config; ``detail``
    holds what a person may need under the one-line message (a traceback, a log tail).
    """

    file: str | None
    line: int | None
    column: int | None
    spec_path: SpecPath | None
    message: str
    severity: Severity = "error"
    detail: str = ""

    @classmethod
    def in_file(cls, file: str, message: str, **options: str) -> Problem:
        """A problem with a whole file (an output in the way, a DAG file Airflow rejects)."""
        return cls(file, None, None, None, message, **options)

    @classmethod
    def general(cls, message: str, **options: str) -> Problem:
        """A problem of the command itself (a template, a DAG run), in no user file."""
        return cls(None, None, None, None, message, **options)

    @property
    def located(self) -> bool:
        """Whether it points at a value in a config (``file:line:column`` and a spec path)."""
        return self.line is not None and self.spec_path is not None

    @property
    def where(self) -> str:
        """``file:line:column``, ``file`` or ``dagfactory``: what a text line starts with."""
        if self.file is None:
            return "dagfactory"
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def text(self) -> str:
        """The message, after the spec path when there is one."""
        if self.spec_path is None:
            return self.message
        return f"{format_spec_path(self.spec_path)}: {self.message}"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.message)

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.text}"

    def to_json(self) -> dict[str, Any]:
        """The problem as plain JSON data, each field by its name (the render cache keeps
        warnings so): a record that outlives the process must not depend on field order."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "spec_path": None if self.spec_path is None else list(self.spec_path),
            "message": self.message,
            "severity": self.severity,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Any) -> Problem:
        """The problem :meth:`to_json` made; raises :class:`ValueError` for any other shape."""
        if not isinstance(data, dict) or data.keys() != _PROBLEM_FIELDS:
            raise ValueError(f"not a problem: {data!r:.80}")
        spec_path = data["spec_path"]
        if not (
            _optional(data["file"], str)
            and _optional(data["line"], int)
            and _optional(data["column"], int)
            and (
                spec_path is None
                or isinstance(spec_path, list)
                and all(_of(part, (str, int)) for part in spec_path)
            )
            and isinstance(data["message"], str)
            and data["severity"] in ("error", "warning")
            and isinstance(data["detail"], str)
        ):
            raise ValueError(f"not a problem: {data!r:.80}")
        return cls(
            **{**data, "spec_path": None if spec_path is None else tuple(spec_path)}
        )


_PROBLEM_FIELDS = {field.name for field in fields(Problem)}


def _of(value: object, kind: type | tuple[type, ...]) -> bool:
    """Whether ``value`` is of ``kind``; a bool is not taken for an int."""
    return isinstance(value, kind) and not isinstance(value, bool)


def _optional(value: object, kind: type | tuple[type, ...]) -> bool:
    return value is None or _of(value, kind)


class DagfactoryError(Exception):
    """A problem that ends a command at once; it knows its exit code, as click's do."""

    exit_code = EXIT_PROBLEMS

    def problem(self) -> Problem:
        return Problem.general(str(self))


class UsageError(DagfactoryError):
    """dagfactory was called in a way it cannot act on (a missing path, a bad option)."""

    exit_code = EXIT_USAGE


class SetupError(DagfactoryError):
    """Something a command needs is not installed (Airflow, CairoSVG)."""

    exit_code = EXIT_USAGE


class TemplateError(DagfactoryError):
    """A template broke a rendering rule, or failed to render: no config can be rendered."""
