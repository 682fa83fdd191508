"""Load a dags folder in a real Airflow DagBag and say, per file, what Airflow would say;
then import the callables its configs name, as a worker would, and call-check them.

The DagBag is filled in a child process with its own ``AIRFLOW_HOME`` (see
:mod:`.airflow`), so the command line never imports Airflow; the child writes what
it found as JSON to files, away from Airflow's logging on stdout. It fills the bag
as Airflow's DAG processor does (the dags folder on ``sys.path``), then, in the same
process and so with the same ``sys.path`` a task has, imports each ``module:function``
the generated files' configs name and binds to its signature what the DAG file
passes: a misspelled name, a missing module or an ``op_kwargs`` key the function does
not take is found here, not on a worker at run time.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import pkgutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from dagfactory.compile import Compiled, compile_config
from dagfactory.compile.header import recorded_source
from dagfactory.compile.references import Reference
from dagfactory.configs import ConfigSource, display_name
from dagfactory.output.plan import recorded_config
from dagfactory.problems import Problem
from dagfactory.tools.airflow import airflow_env, python_with_airflow

# Airflow records cycles and duplicate DAG ids as import errors named after the exception.
KINDS = {
    "AirflowDagCycleException": "cycle",
    "AirflowDagDuplicatedIdException": "duplicate dag id",
}
# Names of a module offered when none is close to a misspelled one.
LISTED_NAMES = 10
LOG_TAIL = 5000


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
    (its defaults files from the project down), once however many files
    name it. A file whose config is gone is stale: a warning, and nothing to check. A
    config that no longer compiles gives its problems.
    """
    references: list[Reference] = []
    problems: list[Problem] = []
    sources: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.py")):
        source = recorded_source(path)
        if source is not None:
            sources.setdefault(source, []).append(path)
    for source, paths in sources.items():
        config = recorded_config(source, folder)
        if not config.is_file():
            problems += [_stale(path, display_name(config)) for path in paths]
            continue
        compiled = _compile(config, folder)
        if isinstance(compiled, list):
            problems += compiled
        else:
            references += compiled.references
    return references, problems


def _compile(config: Path, folder: Path) -> Compiled | list[Problem]:
    """The config as ``render`` compiled it: defaults from the project (the folder
    holding the dags folder) down; problems named as a render names them."""
    name = display_name(config)
    defaults = ConfigSource(config, name, folder.absolute().parent).defaults
    return compile_config(config, name, defaults)


def _stale(path: Path, source: str) -> Problem:
    return Problem.in_file(
        display_name(path),
        f"stale: generated from {source}, which is not there; its callables are not "
        "checked (`dagfactory render --prune` removes it)",
        severity="warning",
    )


def fill_dagbag(folder: str, result_file: str) -> None:
    """Runs in the child: fill a DagBag from ``folder`` and dump what it holds as JSON.

    Filled as the DAG processor and the task runner fill it, with the dags folder on
    ``sys.path`` where tasks find the user's modules.
    """
    from dagfactory.tools.airflow_api import fill_dagbag as filled

    bag = filled(folder)
    dags: dict[str, list[str]] = {}
    for dag_id, dag in bag.dags.items():
        dags.setdefault(str(Path(dag.fileloc).resolve()), []).append(dag_id)
    document = {
        "files": sorted(str(Path(path).resolve()) for path in bag.file_last_changed),
        "dags": dags,
        "errors": {
            str(Path(folder, path).resolve()): text
            for path, text in bag.import_errors.items()
        },
    }
    Path(result_file).write_text(json.dumps(document), "utf-8")


def probe_callables(calls_file: str, findings_file: str, folder: str) -> None:
    """Runs in the child, after :func:`fill_dagbag`: import each call's function, bind its arguments.

    Writes one JSON line per call as soon as it is checked (``null``, or a message and
    its detail), so that a call whose import ends the process is known: the first one
    without a line. ``folder`` is the dags folder, named when a module is not found.
    """
    # Filling the DagBag leaves Airflow's SIGSEGV handler in place, which returns to the
    # faulting instruction: an import that crashes Python would fault forever under it.
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    modules: dict[str, ModuleType | tuple[str, str]] = {}
    with open(findings_file, "a", encoding="utf-8") as findings:
        for call in json.loads(Path(calls_file).read_text("utf-8")):
            finding = _probe(call, modules, folder)
            findings.write(json.dumps(finding) + "\n")
            findings.flush()


def _probe(
    call: dict[str, Any],
    modules: dict[str, ModuleType | tuple[str, str]],
    folder: str,
) -> tuple[str, str] | None:
    """What goes wrong when a task calls ``call`` (message, detail), or None."""
    module_name, _, function_name = call["target"].partition(":")
    if module_name not in modules:
        modules[module_name] = _import(module_name, folder)
    module = modules[module_name]
    if isinstance(module, tuple):
        return module
    if not hasattr(module, function_name):
        hint = _suggest(module, function_name)
        return f"{module_name} has no function {function_name!r}; {hint}", ""
    function = getattr(module, function_name)
    if not callable(function):
        kind = type(function).__name__
        return f"{module_name}.{function_name} is a {kind}, not a function", ""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: nothing to bind to
    keywords = [*call["keywords"], *_accepted(signature, call.get("optional", ()))]
    try:
        signature.bind(*[None] * call["positional"], **dict.fromkeys(keywords))
    except TypeError as exc:
        return f"{function_name}() {exc}; {_accepts(signature)} ({call['passes']})", ""
    return None


def _accepted(signature: inspect.Signature, optional: Sequence[str]) -> list[str]:
    """The ``optional`` keywords a call passes to this signature: those it names, or
    all of them when it takes ``**kwargs`` (as ``_call_with_winner`` does)."""
    parameters = signature.parameters.values()
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return list(optional)
    return [name for name in optional if name in signature.parameters]


def _import(module_name: str, folder: str) -> ModuleType | tuple[str, str]:
    """The module, or what went wrong importing it (message, traceback)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and f"{module_name}.".startswith(f"{exc.name}."):
            return _missing(exc.name, exc, folder), ""
        return _failed(module_name, exc)
    except (Exception, SystemExit) as exc:  # the module's own code failed
        return _failed(module_name, exc)


def _missing(name: str, exc: ModuleNotFoundError, folder: str) -> str:
    """``cannot import ...``, where it was looked for, and the nearest module there."""
    package, _, last = name.rpartition(".")
    # The first missing module's package did import: the modules beside it are known.
    places = getattr(sys.modules.get(package), "__path__", []) if package else [folder]
    close = difflib.get_close_matches(
        last, [module.name for module in pkgutil.iter_modules(places)], n=1
    )
    nearest = f"{package}.{close[0]}" if package and close else "".join(close)
    hint = f"; did you mean {nearest!r}?" if close else ""
    return (
        f"cannot import {name}: {exc} (looked for in the dags folder "
        f"{display_name(Path(folder))}, which Airflow puts on sys.path, and in the "
        f"installed packages){hint}"
    )


def _failed(module_name: str, exc: BaseException) -> tuple[str, str]:
    """The message and the traceback from the user's first frame on (no import machinery)."""
    machinery = {__file__, importlib.__file__}
    frames = exc.__traceback__
    while frames is not None and (
        frames.tb_frame.f_code.co_filename in machinery
        or frames.tb_frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        frames = frames.tb_next
    detail = traceback.format_exception(type(exc), exc, frames)
    message = f"importing {module_name} failed: {type(exc).__name__}: {exc}"
    return message, "".join(detail).rstrip()


def _suggest(module: ModuleType, name: str) -> str:
    """``did you mean 'train'?``, or the module's public callables."""
    names = sorted(
        key
        for key, value in vars(module).items()
        if not key.startswith("_") and callable(value)
    )
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    if not names:
        return "it has no public function"
    more = len(names) - LISTED_NAMES
    return f"it has: {', '.join(names[:LISTED_NAMES])}" + (
        f" and {more} more" if more > 0 else ""
    )


def _accepts(signature: inspect.Signature) -> str:
    """``it accepts: depth, seed``: the parameters, as a person would pass them."""
    stars = {
        inspect.Parameter.VAR_POSITIONAL: "*",
        inspect.Parameter.VAR_KEYWORD: "**",
    }
    names = [
        stars.get(parameter.kind, "") + name
        for name, parameter in signature.parameters.items()
    ]
    return f"it accepts: {', '.join(names)}" if names else "it takes no arguments"


def check_folder(folder: Path, references: Sequence[Reference] = ()) -> CheckResult:
    """What a real Airflow DagBag makes of every file in ``folder``, and of each reference."""
    with tempfile.TemporaryDirectory(prefix="dagfactory-check-") as home:
        result_file = Path(home, "dagbag.json")
        calls_file, findings_file = Path(home, "calls.json"), Path(home, "findings")
        calls = [
            {
                "target": reference.target,
                "keywords": reference.keywords,
                "positional": reference.positional,
                "optional": reference.optional,
                "passes": reference.passes,
            }
            for reference in references
        ]
        calls_file.write_text(json.dumps(calls), "utf-8")
        findings_file.touch()
        probe = (
            "from dagfactory.tools.check import fill_dagbag, probe_callables; "
            f"fill_dagbag({str(folder.resolve())!r}, {str(result_file)!r}); "
            f"probe_callables({str(calls_file)!r}, {str(findings_file)!r}, "
            f"{str(folder.resolve())!r})"
        )
        child = python_with_airflow(["-c", probe], airflow_env(Path(home), folder))
        log = child.stdout + child.stderr
        if not result_file.exists():
            return CheckResult([], log, child.returncode)
        document = json.loads(result_file.read_text("utf-8"))
        findings = findings_file.read_text("utf-8").splitlines()
    result = CheckResult(_file_reports(document), log, child.returncode)
    result.callables = _callable_problems(references, findings, child.returncode, log)
    return result


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


def _callable_problems(
    references: Sequence[Reference], findings: list[str], exit_code: int, log: str
) -> list[Problem]:
    """A problem per reference that does not hold; the one the child died on says so."""
    problems = []
    for reference, line in zip(references, findings, strict=False):
        finding = json.loads(line)
        if finding is not None:
            problems.append(reference.problem(*finding))
    if len(findings) < len(references):
        fatal = references[len(findings)]
        unchecked = len(references) - len(findings) - 1
        ended = (
            f"was killed by signal {-exit_code} ({signal.strsignal(-exit_code)})"
            if exit_code < 0
            else f"exited with code {exit_code}"
        )
        message = (
            f"checking {fatal.target} ended the check: its Python process {ended}"
            + (f"; {unchecked} more callables were not checked" if unchecked else "")
        )
        problems.append(fatal.problem(message, log[-LOG_TAIL:]))
    return problems
