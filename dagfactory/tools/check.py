"""Load a dags folder in a real Airflow DagBag and say, per file, what Airflow would say;
then import the callables its configs name, as a worker would, and call-check them.

This is the parent half, in the command line's process: it compiles the configs behind
the folder's files into the calls their DAG files make, starts the child
(:mod:`.check_child`, in a process with its own ``AIRFLOW_HOME``, see :mod:`.airflow`;
the command line never imports Airflow) and turns the JSON the child writes into
reports and problems. A misspelled name, a missing module or an ``op_kwargs`` key the
function does not take is found here, not on a worker at run time.

User code runs at import, and may hang or end the process: each import is bounded
(``timeout``, Airflow's own ``dagbag_import_timeout`` default), the child is killed when
it makes no progress for longer than that, and a child that ended before writing its
result is reported at the file it was importing, never as an empty folder.
"""

from __future__ import annotations

import json
import signal
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagfactory.compile import Compilation, compile_config
from dagfactory.compile.header import recorded_source
from dagfactory.compile.references import Reference
from dagfactory.configs import ConfigSource, display_name
from dagfactory.output.bundle import FOLDER
from dagfactory.output.plan import recorded_config
from dagfactory.problems import Problem
from dagfactory.tools.airflow import ChildExit, airflow_env, python_with_airflow

# Airflow records cycles and duplicate DAG ids as import errors named after the exception.
KINDS = {
    "AirflowDagCycleException": "cycle",
    "AirflowDagDuplicatedIdException": "duplicate dag id",
}
# The child half: fills the DagBag and probes the callables in a process with Airflow.
CHILD = "dagfactory.tools.check_child"
LOG_TAIL = 5000
# Seconds a DAG file's or a callable module's import may take: Airflow's default
# ``dagbag_import_timeout``.
IMPORT_TIMEOUT = 30.0
# Seconds beyond an import's timeout the child may go without progress before it is
# killed: starting Airflow, and the slack of an alarm the user code held off.
STALL_GRACE = 60.0


@dataclass
class FileReport:
    """One Python file of the folder: the DAGs it defines, or what went wrong."""

    path: str
    dag_ids: list[str] = field(default_factory=list)
    kind: str | None = None  # "import error", "cycle" or "duplicate dag id"
    detail: str = ""


@dataclass
class CheckResult:
    """Per file what the DagBag made of it; ``callables``: each reference that does not hold."""

    files: list[FileReport]
    log: str = ""
    exit_code: int = 0  # the child's
    callables: list[Problem] = field(default_factory=list)

    @property
    def problems(self) -> list[FileReport]:
        return [report for report in self.files if report.kind]


def configured_references(folder: Path) -> tuple[list[Reference], list[Problem]]:
    """The callables named by the configs of the generated files in ``folder``.

    Each file's config is the one its header names, compiled as ``render`` compiles it
    (its defaults files from the project down), once however many files name it. A
    file whose config is gone is stale, and one it cannot read unknown: a warning
    each, and nothing to check. A config that no longer compiles gives its problems.
    """
    references: list[Reference] = []
    problems: list[Problem] = []
    sources: dict[str, list[Path]] = {}
    # Bundled output (dagfactory.output.bundle) keeps each DAG's file in a subfolder.
    for path in sorted([*folder.glob("*.py"), *(folder / FOLDER).glob("*.py")]):
        try:
            source = recorded_source(path)
        except OSError as exc:
            message = (
                f"cannot read it: {exc.strerror}; whether dagfactory generated it is"
                " unknown, so its config's callables are not checked"
            )
            problems.append(_unchecked(path, message))
            continue
        if source is not None:
            sources.setdefault(source, []).append(path)
    for source, paths in sources.items():
        config = recorded_config(source, folder)
        if not config.is_file():
            stale = (
                f"stale: generated from {display_name(config)}, which is not there;"
                " its callables are not checked (`dagfactory render --prune` removes it)"
            )
            problems += [_unchecked(path, stale) for path in paths]
            continue
        compilation = _compile(config)
        if compilation.compiled is None:
            problems += compilation.problems
        else:
            references += compilation.compiled.references
    return references, problems


def _compile(config: Path) -> Compilation:
    """The config as ``render`` compiled it: the defaults files of its project
    (:mod:`dagfactory.project`) down to its folder; problems named as a render names them."""
    name = display_name(config)
    defaults = ConfigSource(config, name).defaults
    return compile_config(config, name, defaults)


def _unchecked(path: Path, message: str) -> Problem:
    """A warning at a file of the folder whose config's callables are not checked."""
    return Problem.in_file(display_name(path), message, severity="warning")


def check_folder(
    folder: Path,
    references: Sequence[Reference] = (),
    timeout: float | None = None,
    stall_grace: float = STALL_GRACE,
) -> CheckResult:
    """What a real Airflow DagBag makes of every file in ``folder``, and of each
    reference; each file's and each module's import bounded by ``timeout`` seconds
    (None: :data:`IMPORT_TIMEOUT`, Airflow's own default)."""
    timeout = IMPORT_TIMEOUT if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix="dagfactory-check-") as home:
        result_file = Path(home, "dagbag.json")
        calls_file, findings_file = Path(home, "calls.json"), Path(home, "findings")
        progress_file = Path(home, "progress")
        calls = [
            {
                "target": reference.target,
                "keywords": reference.keywords,
                "written": reference.written,
                "positional": reference.positional,
                "optional": reference.optional,
                "passes": reference.passes,
                "gpu_daemon": reference.gpu_daemon,
            }
            for reference in references
        ]
        calls_file.write_text(json.dumps(calls), "utf-8")
        findings_file.touch()
        progress_file.touch()
        env = airflow_env(Path(home), folder)
        env["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] = str(timeout)
        child = python_with_airflow(
            [
                "-m",
                CHILD,
                str(folder.resolve()),
                str(result_file),
                str(calls_file),
                str(findings_file),
                str(progress_file),
                str(timeout),
            ],
            env,
            progress=(progress_file, findings_file),
            stall_seconds=timeout + stall_grace,
        )
        if not result_file.exists():
            imported = progress_file.read_text("utf-8").splitlines()
            files = _unfinished(imported, child, timeout + stall_grace)
            return CheckResult(files, child.log, child.returncode)
        document = json.loads(result_file.read_text("utf-8"))
        findings = findings_file.read_text("utf-8").splitlines()
    result = CheckResult(_file_reports(document), child.log, child.returncode)
    result.callables = _callable_problems(
        references, findings, _ended(child, timeout + stall_grace), child.log
    )
    return result


def _ended(child: ChildExit, stall_seconds: float) -> str:
    """``exited with code 0``, ``was killed by signal 11 (Segmentation fault)``, or
    that it was killed for making no progress."""
    if child.stalled:
        return f"made no progress for {stall_seconds:g} s and was killed"
    if child.returncode < 0:
        signal_number = -child.returncode
        return (
            f"was killed by signal {signal_number} ({signal.strsignal(signal_number)})"
        )
    return f"exited with code {child.returncode}"


def _unfinished(
    imported: list[str], child: ChildExit, stall_seconds: float
) -> list[FileReport]:
    """The child ended before writing what the DagBag held: the file it was importing,
    as that file's problem (none when it died before the first; the caller says so)."""
    if not imported:
        return []
    *before, last = imported
    earlier = f"{_files(len(before))} imported before it, " if before else ""
    detail = (
        f"the check's Airflow process {_ended(child, stall_seconds)} while importing "
        "this file, before it wrote what the DagBag held; not reported: "
        f"{earlier}the files after it (not imported) and the callables (not checked)"
    )
    return [FileReport(display_name(Path(last)), kind="import error", detail=detail)]


def _file_reports(document: dict[str, Any]) -> list[FileReport]:
    paths = sorted(set(document["files"]) | set(document["errors"]))
    reports = []
    for path in paths:
        report = FileReport(
            display_name(Path(path)), sorted(document["dags"].get(path, []))
        )
        error = document["errors"].get(path)
        if error is not None:
            exception = error.split(":", 1)[0]
            report.kind = KINDS.get(exception, "import error")
            report.detail = error.strip()
        reports.append(report)
    return reports


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _callable_problems(
    references: Sequence[Reference], findings: list[str], ended: str, log: str
) -> list[Problem]:
    """A problem per finding of each reference that does not hold (one about an op_kwargs
    key where that key is written); the reference the child died on says so."""
    problems = []
    for reference, line in zip(references, findings, strict=False):
        for message, detail, keyword in json.loads(line) or ():
            if keyword is None:
                problems.append(reference.problem(message, detail))
            else:
                problems += reference.keyword_problems(keyword, message, detail)
    if len(findings) < len(references):
        fatal = references[len(findings)]
        unchecked = len(references) - len(findings) - 1
        message = (
            f"checking {fatal.target} ended the check: its Python process {ended}"
            + (f"; {unchecked} more callables were not checked" if unchecked else "")
        )
        problems.append(fatal.problem(message, log[-LOG_TAIL:]))
    return problems
