"""The one error type every stage reports, located in the user's file."""

from __future__ import annotations

from dataclasses import dataclass

SpecPath = tuple[str | int, ...]


class SetupError(RuntimeError):
    """Something a command needs is not installed (Airflow, CairoSVG): exit code 2."""


def format_spec_path(path: SpecPath) -> str:
    """Render ``("trainers", "models", 1, "task_id")`` as ``trainers.models[1].task_id``.

    A key that is empty or holds spaces, line breaks or other unprintable characters is
    quoted (``op_kwargs['a\\n']``), so every error stays on one readable line.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part or not part.isprintable() or " " in part:
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


@dataclass(frozen=True)
class SpecError:
    """A problem in a config, at ``file:line:column``, ready to print."""

    file: str
    line: int
    column: int
    spec_path: SpecPath
    message: str

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)

    def __str__(self) -> str:
        where = format_spec_path(self.spec_path)
        return f"{self.file}:{self.line}:{self.column}: error: {where}: {self.message}"


class ConfigError(Exception):
    """Raised with every problem found in one or more configs."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__("\n".join(map(str, errors)))
        self.errors = sorted(errors, key=SpecError.sort_key)
