"""How outcomes reach people and machines: text, JSON or GitHub annotations.

Every command returns an :class:`Outcome`: its problems (:class:`~dagfactory.problems.Problem`),
what it tells a person, and its exit code. A :class:`Reporter` prints it in the format
asked for:

- ``text`` (the default): what the command did on stdout; problems as
  ``PATH:LINE:COL: error: <spec path>: <message>`` on stderr, coloured only when
  stderr is a terminal and ``NO_COLOR`` is unset (no-color.org).
- ``json``: one JSON array of problems on stdout, for tools; everything else on stderr.
- ``github``: problems as ``::error``/``::warning`` workflow commands on stdout, which
  annotate a pull request; everything else as in text.

A summary of what went wrong always goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from dagfactory.problems import EXIT_OK, Problem, format_spec_path

if TYPE_CHECKING:
    from dagfactory.tools.check import CheckResult
    from dagfactory.tools.run import TaskLog, XComEntry

FORMATS = ("text", "json", "github")

_RED, _YELLOW, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[1m", "\033[0m"


@dataclass
class Outcome:
    """What a command did and found: printed by a :class:`Reporter`, its code the exit status.

    ``output`` is what the command tells a person (lines, diffs), in order; ``notes``
    are closing lines about what went wrong (stderr). ``listed`` are problems that
    ``output`` already shows a person (``check``'s listing of files): text does not
    print them again, json and github print them before ``problems``.
    """

    exit_code: int = EXIT_OK
    problems: list[Problem] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    listed: list[Problem] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        """Add a line for a person."""
        self.output.append(text + "\n")

    @property
    def all_problems(self) -> list[Problem]:
        """Every problem, listed or not: what tools are given."""
        return [*self.listed, *self.problems]


def use_colour(stream: TextIO) -> bool:
    """Colour only for a person at a terminal who has not asked for none."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def plural(count: int, noun: str) -> str:
    """``1 DAG``, ``2 DAGs``: a count and its noun, which takes an ``s`` unless it is one."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def error_summary(problems: list[Problem]) -> str:
    """``3 errors in 1 file; nothing written``."""
    files = len({problem.file for problem in problems})
    return (
        f"{plural(len(problems), 'error')} in {plural(files, 'file')}; nothing written"
    )


def one_line(text: str) -> str:
    """``text`` with each line break or other control character escaped as Python
    writes it (``\\n``, ``\\x1b``): a file name or value holding one must not break the
    one line a problem is, nor send a terminal its escape sequences."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def text_line(problem: Problem, *, colour: bool) -> str:
    """The one-line text form; with ``colour``, the location bold and the severity coloured."""
    where, text = one_line(problem.where), one_line(problem.text)
    if not colour:
        return f"{where}: {problem.severity}: {text}"
    tint = _RED if problem.severity == "error" else _YELLOW
    return f"{_BOLD}{where}:{_RESET} {tint}{problem.severity}:{_RESET} {text}"


def github_line(problem: Problem) -> str:
    """A GitHub Actions workflow command that annotates the problem's line in a pull request."""

    def escape_data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def escape_property(text: str) -> str:
        return escape_data(text).replace(":", "%3A").replace(",", "%2C")

    title = "dagfactory"
    if problem.spec_path is not None:
        title += " " + format_spec_path(problem.spec_path)
    properties = []
    if problem.file is not None:
        properties.append(f"file={escape_property(one_line(problem.file))}")
    if problem.line is not None:
        properties += [f"line={problem.line}", f"col={problem.column}"]
    properties.append(f"title={escape_property(one_line(title))}")
    message = one_line(problem.text) + (f"\n{problem.detail}" if problem.detail else "")
    return f"::{problem.severity} {','.join(properties)}::{escape_data(message)}"


def json_document(problems: list[Problem]) -> str:
    """Every problem as one JSON array of objects, for tools."""
    return json.dumps(
        [
            {
                "file": problem.file,
                "line": problem.line,
                "column": problem.column,
                "spec_path": (
                    None
                    if problem.spec_path is None
                    else format_spec_path(problem.spec_path)
                ),
                "message": problem.message,
                "severity": problem.severity,
                "detail": problem.detail,
            }
            for problem in problems
        ],
        indent=2,
    )


class Reporter:
    """Prints outcomes (and live progress lines) in one of :data:`FORMATS`."""

    def __init__(
        self,
        output_format: str = "text",
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.format = output_format
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        # In JSON, stdout holds the one document; what people read goes to stderr.
        self.people = self.stderr if output_format == "json" else self.stdout

    def say(self, text: str) -> None:
        """A line for a person now, before the outcome (a long step starting)."""
        print(text, file=self.people, flush=True)

    def report(self, outcome: Outcome) -> int:
        """Print ``outcome``; return its exit code."""
        self.people.write("".join(outcome.output))
        self.people.flush()  # before stderr, so that a merged log keeps the order
        if self.format == "json":
            print(json_document(outcome.all_problems), file=self.stdout)
        elif self.format == "github":
            for problem in outcome.all_problems:
                print(github_line(problem), file=self.stdout)
        else:
            colour = use_colour(self.stderr)
            for problem in outcome.problems:
                if problem.detail:
                    print(problem.detail, file=self.stderr)
                print(text_line(problem, colour=colour), file=self.stderr)
        for note in outcome.notes:
            print(note, file=self.stderr)
        self.stdout.flush()
        return outcome.exit_code


def check_listing(result: CheckResult) -> list[str]:
    """One line per file (``ok`` and its DAG ids, or the problem), details indented."""
    width = max((len(report.path) for report in result.files), default=0)
    lines = []
    for report in result.files:
        if report.kind is None:
            dag_ids = ", ".join(report.dag_ids) or "(no DAG)"
            lines.append(f"ok     {report.path.ljust(width)}  {dag_ids}")
            continue
        # A bundle's shard loads its other DAGs when one fails (dagfactory.output.bundle).
        loaded = f" (loaded: {', '.join(report.dag_ids)})" if report.dag_ids else ""
        lines.append(f"error  {report.path}: {report.kind}{loaded}")
        lines += [f"         {line}" for line in report.detail.splitlines()]
    return lines


def check_summary(result: CheckResult) -> str:
    """``checked 6 files: 6 DAGs loaded, 0 import errors, 0 cycles, 0 duplicate dag ids``."""
    counts = {kind: 0 for kind in ("import error", "cycle", "duplicate dag id")}
    for report in result.problems:
        counts[report.kind] += 1
    dags = sum(len(report.dag_ids) for report in result.files)
    kinds = ", ".join(plural(count, kind) for kind, count in counts.items())
    return f"checked {plural(len(result.files), 'file')}: {plural(dags, 'DAG')} loaded, {kinds}"


def config_summary(problems: list[Problem]) -> str:
    """``2 errors in 1 config``: what ``check`` found wrong in the configs behind the files."""
    files = len({problem.file for problem in problems})
    return (
        f"{len(problems)} error{'s' if len(problems) != 1 else ''} in "
        f"{files} config{'s' if files != 1 else ''}"
    )


def xcom_table(xcoms: list[XComEntry]) -> list[str]:
    """The XComs as Airflow's *Admin > XComs* list shows them: values as JSON, times in UTC.

    A Map Index column appears when a mapped task pushed something, as in Airflow.
    """
    mapped = any(x.map_index >= 0 for x in xcoms)
    header = ["Key", "Value", "Task ID", "Dag ID", "Logical Date", "Timestamp"]
    if mapped:
        header.insert(3, "Map Index")
    rows = [header]
    for x in xcoms:
        row = [
            x.key,
            json.dumps(x.value),
            x.task_id,
            x.dag_id,
            _utc(x.logical_date),
            _utc(x.timestamp),
        ]
        if mapped:
            row.insert(3, str(x.map_index) if x.map_index >= 0 else "")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]


def task_log_sections(logs: list[TaskLog]) -> list[str]:
    """Every task's log, grouped by task id in the order the tasks first ran (a mapped
    task's instances together, by map index), each under a ``==> task <==`` heading as
    ``tail`` heads the files it prints, and a blank line after each."""
    from dagfactory.tools.run import task_label

    first_run = {}
    for log in logs:
        first_run.setdefault(log.task_id, len(first_run))
    lines = []
    for log in sorted(
        logs, key=lambda log: (first_run[log.task_id], log.map_index, log.try_number)
    ):
        lines.append(f"==> {task_label(log.task_id, log.map_index)} <==")
        lines += log.read().splitlines() or ["(no output)"]
        lines.append("")
    return lines


def _utc(stored: str | None) -> str:
    """A metadata-database time (naive UTC) as ``2026-01-31T12:00:00Z``."""
    from datetime import datetime

    if stored is None:
        return ""
    moment = datetime.fromisoformat(stored).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


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
