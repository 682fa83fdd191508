"""The child half of ``dagfactory check``: runs in a process that has Airflow, never in the CLI's.

``python -m dagfactory.tools.check_child FOLDER RESULT_FILE CALLS_FILE FINDINGS_FILE
PROGRESS_FILE TIMEOUT`` fills a DagBag from FOLDER as Airflow's DAG processor does (the
dags folder on ``sys.path``; each file's path a line of PROGRESS_FILE as its import
starts, so that the file a dead or hung process was in is known) and writes what it
holds to RESULT_FILE as JSON; then, in the same process and so with the same
``sys.path`` a task has, imports each ``module:function`` that CALLS_FILE lists and
binds to its signature what the DAG file passes, one JSON line per call to
FINDINGS_FILE: ``null``, or a list of findings ``[message, detail, keyword]``, the
keyword set when the finding is about that ``op_kwargs`` key (the parent reports it
where the key is written). Files, not stdout: Airflow logs there.

Each import is bounded by TIMEOUT seconds: Airflow bounds each DAG file's with an
alarm (``dagbag_import_timeout``, which the parent sets to TIMEOUT), and an alarm here
bounds each callable module's, as the same user code at import would hang either.

It imports Airflow and the standard library, never the compiler (no YAML, templates or
schema): the parent (:mod:`.check`) compiled the configs and hands over only the calls.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import os
import pkgutil
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from dagfactory.configs import display_name
from dagfactory.tools.airflow_api import fill_dagbag

# Names of a module offered when none is close to a misspelled one.
LISTED_NAMES = 10
# Where Airflow's providers live, and the kinds of module a provider's package holds.
PROVIDERS = "airflow.providers."
KINDS = {"operators", "hooks", "sensors", "triggers", "utils", "decorators"}
# The providers dagfactory has an extra for (pyproject.toml), by package name.
PROVIDER_EXTRAS = {"docker": "docker", "cncf-kubernetes": "kubernetes"}
# The Docker daemon DockerOperator uses when neither docker_url nor DOCKER_HOST says.
DEFAULT_DOCKER_URL = "unix://var/run/docker.sock"
DOCKER_TIMEOUT = 10


class ImportTimeout(BaseException):
    """A module's import outlasted its time. A BaseException, so that user code that
    catches every Exception around what blocks does not swallow it."""


def record_dagbag(folder: str, result_file: str, progress_file: str) -> None:
    """Fill a DagBag from ``folder`` and dump what it holds as JSON: per file its DAG
    ids, and each file's import error. Each file is a line of ``progress_file`` first."""
    with open(progress_file, "a", encoding="utf-8") as progress:

        def importing(path: str) -> None:
            progress.write(str(Path(path).resolve()) + "\n")
            progress.flush()

        bag = fill_dagbag(folder, importing)
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


def probe_callables(
    calls_file: str, findings_file: str, folder: str, timeout: float
) -> None:
    """After :func:`record_dagbag`: import each call's function, bind its arguments.

    Writes one JSON line per call as soon as it is checked (``null``, or its findings),
    so that a call whose import ends the process is known: the first one
    without a line. ``folder`` is the dags folder, named when a module is not found;
    each module's import ends after ``timeout`` seconds.
    """
    # Filling the DagBag leaves Airflow's SIGSEGV handler in place, which returns to the
    # faulting instruction: an import that crashes Python would fault forever under it.
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    modules: dict[str, ModuleType | tuple[str, str]] = {}
    with open(findings_file, "a", encoding="utf-8") as findings:
        for call in json.loads(Path(calls_file).read_text("utf-8")):
            found = _probe(call, modules, folder, timeout)
            findings.write(json.dumps(found) + "\n")
            findings.flush()


# A finding: its message, its detail, and the op_kwargs key it is about (or None).
Finding = tuple[str, str, str | None]


def _probe(
    call: dict[str, Any],
    modules: dict[str, ModuleType | tuple[str, str]],
    folder: str,
    timeout: float,
) -> list[Finding] | None:
    """What goes wrong when a task calls ``call``, or None."""
    module_name, _, function_name = call["target"].partition(":")
    if module_name not in modules:
        modules[module_name] = _import(module_name, folder, timeout)
    module = modules[module_name]
    if isinstance(module, tuple):
        message, detail = module
        return [(message, detail, None)]
    if not hasattr(module, function_name):
        hint = _suggest(module, function_name)
        return [(f"{module_name} has no function {function_name!r}; {hint}", "", None)]
    function = getattr(module, function_name)
    if not callable(function):
        kind = type(function).__name__
        return [
            (f"{module_name}.{function_name} is a {kind}, not a function", "", None)
        ]
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: nothing to bind to
    findings = _bind(function_name, signature, call)
    if call.get("gpu_daemon") is not None:
        findings += _gpu_findings(call["gpu_daemon"])
    return findings or None


def _gpu_findings(docker_url: str) -> list[Finding]:
    """A GPU request the Docker daemon cannot honour: it answers, and lists no nvidia
    runtime (which the NVIDIA Container Toolkit's setup registers). A daemon that does
    not answer here is not judged: the worker's may."""
    import docker  # the docker provider's own dependency, imported just before

    url = docker_url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL
    try:
        info = docker.APIClient(base_url=url, timeout=DOCKER_TIMEOUT).info()
    except Exception:  # no daemon there, or none we may reach: nothing to tell
        return []
    runtimes = sorted(info.get("Runtimes") or {})
    if "nvidia" in runtimes:
        return []
    return [
        (
            f"the Docker daemon at {url} cannot give a container GPUs: its runtimes"
            f" are {', '.join(runtimes) or 'none'}, not nvidia; install the NVIDIA"
            " Container Toolkit on that host (nvidia-ctk runtime configure"
            " --runtime=docker), or remove gpus",
            "",
            None,
        )
    ]


def _bind(
    function_name: str, signature: inspect.Signature, call: dict[str, Any]
) -> list[Finding]:
    """Each key the config writes (``call["written"]``) that ``signature`` does not take
    (about that key, with the nearest parameter), then what binding the rest, corrected,
    still lacks (about the call): a keyword a helper adds, a missing parameter.

    A misspelled key often leaves a required parameter unset too: binding as if each
    key were corrected reports only a mistake of its own.
    """
    accepts, passes = _accepts(signature), call["passes"]
    unknown, corrected = _unknown_keywords(
        signature, call.get("written", []), call["keywords"]
    )
    findings: list[Finding] = []
    for keyword in unknown:
        close = corrected.get(keyword)
        hint = f" (did you mean {close!r}?)" if close else ""
        message = (
            f"{function_name}() got an unexpected keyword argument {keyword!r}{hint}; "
            f"{accepts} ({passes})"
        )
        findings.append((message, "", keyword))
    known = [keyword for keyword in call["keywords"] if keyword not in unknown]
    known += _accepted(signature, call.get("optional", ()))
    try:
        signature.bind(
            *[None] * call["positional"],
            **dict.fromkeys([*known, *corrected.values()]),
        )
    except TypeError as exc:
        findings.append((f"{function_name}() {exc}; {accepts} ({passes})", "", None))
    return findings


def _unknown_keywords(
    signature: inspect.Signature, written: list[str], passed: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The ``written`` keywords no parameter of ``signature`` takes by name (none when
    it takes ``**kwargs``), and for each that has one the nearest parameter not passed."""
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return [], {}
    by_name = {
        p.name
        for p in parameters
        if p.kind
        in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    unknown = [keyword for keyword in written if keyword not in by_name]
    free = sorted(by_name - set(passed))
    corrected = {}
    for keyword in unknown:
        close = difflib.get_close_matches(keyword, free, n=1)
        if close:
            corrected[keyword] = close[0]
            free.remove(close[0])
    return unknown, corrected


def _accepted(signature: inspect.Signature, optional: Sequence[str]) -> list[str]:
    """The ``optional`` keywords a call passes to this signature: those it names, or
    all of them when it takes ``**kwargs`` (as ``_call_with_winner`` does)."""
    parameters = signature.parameters.values()
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return list(optional)
    return [name for name in optional if name in signature.parameters]


def _import(
    module_name: str, folder: str, timeout: float
) -> ModuleType | tuple[str, str]:
    """The module, or what went wrong importing it (message, traceback)."""
    try:
        return _import_within(module_name, timeout)
    except ImportTimeout as exc:
        return (
            f"importing {module_name} did not finish within {timeout:g} s: its code "
            "blocks at import (check's --timeout sets the limit)",
            _failed(module_name, exc)[1],
        )
    except ModuleNotFoundError as exc:
        if exc.name and f"{module_name}.".startswith(f"{exc.name}."):
            if exc.name.startswith(PROVIDERS):
                return _missing_provider(module_name), ""
            return _missing(exc.name, exc, folder), ""
        return _failed(module_name, exc)
    except (Exception, SystemExit) as exc:  # the module's own code failed
        return _failed(module_name, exc)


def _import_within(module_name: str, seconds: float) -> ModuleType:
    """``import_module``, ended by :class:`ImportTimeout` after ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise ImportTimeout(f"no import after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return importlib.import_module(module_name)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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


def _missing_provider(module_name: str) -> str:
    """An Airflow provider that is not installed, named as pip installs it."""
    parts = module_name[len(PROVIDERS) :].split(".")
    package = "-".join(parts[: next((i for i, p in enumerate(parts) if p in KINDS), 1)])
    distribution = f"apache-airflow-providers-{package}"
    extra = PROVIDER_EXTRAS.get(package)
    pinned = f", or 'dagfactory[{extra}]', which pins it" if extra else ""
    return (
        f"cannot import {module_name}: the provider {distribution} is not installed"
        f" in this Airflow; install it where the DAG runs (pip install"
        f" {distribution}{pinned})"
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


def main(argv: list[str]) -> None:
    """Record the DagBag, then probe the calls: both in this one process."""
    folder, result_file, calls_file, findings_file, progress_file, timeout = argv
    record_dagbag(folder, result_file, progress_file)
    probe_callables(calls_file, findings_file, folder, float(timeout))


if __name__ == "__main__":
    main(sys.argv[1:])
