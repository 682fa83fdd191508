"""How problems and progress reach people and machines: text, JSON or GitHub annotations.

Text is the default and reads ``PATH:LINE:COL: error: <spec path>: <message>`` on
stderr, coloured only when stderr is a terminal and ``NO_COLOR`` is unset (no-color.org).
JSON and GitHub workflow commands go to stdout, where CI tools read them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TextIO

from dagfactory.errors import SpecError, format_spec_path

FORMATS = ("text", "json", "github")

_RED, _BOLD, _RESET = "\033[31m", "\033[1m", "\033[0m"


def use_colour(stream: TextIO) -> bool:
    """Colour only for a person at a terminal who has not asked for none."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def error_summary(errors: list[SpecError]) -> str:
    """``3 errors in 1 file; nothing written``."""
    files = len({error.file for error in errors})
    return (
        f"{len(errors)} error{'s' if len(errors) != 1 else ''} in "
        f"{files} file{'s' if files != 1 else ''}; nothing written"
    )


def text_line(error: SpecError, *, colour: bool) -> str:
    """The one-line text form; with ``colour``, the location bold and ``error`` red."""
    if not colour:
        return str(error)
    where = f"{error.file}:{error.line}:{error.column}:"
    path = format_spec_path(error.spec_path)
    return f"{_BOLD}{where}{_RESET} {_RED}error:{_RESET} {path}: {error.message}"


def github_line(error: SpecError) -> str:
    """A GitHub Actions ``::error`` workflow command that annotates the line in a pull request."""

    def escape_data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def escape_property(text: str) -> str:
        return escape_data(text).replace(":", "%3A").replace(",", "%2C")

    properties = ",".join(
        [
            f"file={escape_property(error.file)}",
            f"line={error.line}",
            f"col={error.column}",
            f"title={escape_property('dagfactory ' + format_spec_path(error.spec_path))}",
        ]
    )
    message = f"{format_spec_path(error.spec_path)}: {error.message}"
    return f"::error {properties}::{escape_data(message)}"


def json_document(errors: list[SpecError]) -> str:
    """Every error as one JSON array of objects, for tools."""
    return json.dumps(
        [
            {
                "file": error.file,
                "line": error.line,
                "column": error.column,
                "spec_path": format_spec_path(error.spec_path),
                "message": error.message,
            }
            for error in errors
        ],
        indent=2,
    )


def report_errors(errors: list[SpecError], output_format: str) -> None:
    """Print ``errors`` in ``output_format``; the summary line always goes to stderr."""
    if output_format == "json":
        print(json_document(errors))
    elif output_format == "github":
        for error in errors:
            print(github_line(error))
    else:
        colour = use_colour(sys.stderr)
        for error in errors:
            print(text_line(error, colour=colour), file=sys.stderr)
    print(error_summary(errors), file=sys.stderr)


class Progress:
    """A one-line progress bar on stderr for long batches, drawn only on a terminal."""

    WIDTH = 30
    MIN_ITEMS = 20  # short batches finish before a bar would be read
    INTERVAL = 0.1  # seconds between redraws

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.drawn = False
        self.last_draw = 0.0

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total < self.MIN_ITEMS:
            return
        now = time.monotonic()
        if done < total and now - self.last_draw < self.INTERVAL:
            return
        self.last_draw = now
        filled = self.WIDTH * done // total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """Erase the bar so that the summary line starts clean."""
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False
