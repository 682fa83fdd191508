"""The rules of a trainer's ``runtime``: another interpreter to run it in.

A trainer with a runtime runs in an ExternalPythonOperator (``python``) or a
PythonVirtualenvOperator (``requirements``): Airflow runs the generated
``_train_elsewhere`` there, which has no task instance to push or pull XComs with. So
such a trainer returns its metric, its operator pushes it under ``return_value``, and
these checks refuse what that cannot honour (a bash trainer, another XCom key, inputs,
mapped trainers). Same form as :mod:`.checks_ml`, run through :data:`.checks.CHECKS`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from dagfactory.compile.document import Document, as_mapping
from dagfactory.compile.vocabulary import DEFAULT_XCOM_KEY, runs_bash, runs_kubernetes
from dagfactory.problems import Problem, SpecPath


def _runtimes(trainers: dict[str, Any]) -> Iterator[tuple[SpecPath, dict[str, Any]]]:
    """Each runtime written in the trainers section, with its path (a kubernetes
    runtime's rules are :mod:`.checks_kubernetes`')."""
    if isinstance(trainers.get("runtime"), dict) and not runs_kubernetes(trainers):
        yield ("trainers", "runtime"), trainers["runtime"]
    listed = trainers.get("models")
    for index, model in enumerate(listed if isinstance(listed, list) else []):
        model = as_mapping(model)
        if isinstance(model.get("runtime"), dict) and not runs_kubernetes(model):
            yield ("trainers", "models", index, "runtime"), model["runtime"]


def interpreter_problems(
    doc: Document, path: SpecPath, runtime: dict[str, Any]
) -> Iterator[Problem]:
    """What is wrong with a runtime wherever it is written: a relative interpreter
    path, or a virtualenv's keys beside an existing interpreter."""
    python = runtime.get("python")
    if isinstance(python, str) and not posixpath.isabs(python):
        yield doc.error(
            (*path, "python"),
            f"{python!r} is not an absolute path; the worker runs it from any"
            " folder: write the interpreter's full path, such as"
            " /opt/envs/train/bin/python",
        )
    if "python" in runtime:
        for key in ("venv_cache_path", "system_site_packages"):
            if key in runtime:
                yield doc.error(
                    (*path, key),
                    f"{key} is for a virtualenv built from requirements, not"
                    " an existing python: remove it",
                    key=True,
                )


def trainer_runtime(doc: Document) -> Iterator[Problem]:
    """A runtime only on python trainers, with an absolute interpreter path, the
    default XCom key, no inputs and no mapping (see the module's docstring)."""
    trainers = as_mapping(doc.data.get("trainers"))
    models = [as_mapping(model) for model in doc.trainer_models]
    for path, runtime in _runtimes(trainers):
        if "docker" in runtime:  # its own rules: checks_docker
            continue
        own = path[1] == "models"
        model = models[path[2]] if own and path[2] < len(models) else {}
        if (
            runs_bash(model, trainers)
            if own
            else all(runs_bash(m, trainers) for m in models)
        ):
            yield doc.error(
                path,
                "runs a python trainer in another interpreter; a bash trainer has"
                " none to choose: remove runtime, or use python_callable",
                key=True,
            )
            continue
        yield from interpreter_problems(doc, path, runtime)
        if trainers.get("xcom_key", DEFAULT_XCOM_KEY) != DEFAULT_XCOM_KEY:
            yield doc.error(
                path,
                "a trainer in another interpreter returns its metric, pushed under"
                f" {DEFAULT_XCOM_KEY!r}; remove trainers.xcom_key, or the runtime",
                key=True,
            )
        if trainers.get("mapped"):
            yield doc.error(
                path,
                "mapped trainers all run in the worker's interpreter; remove"
                " mapped, or the runtime",
                key=True,
            )
        inputs = {
            **as_mapping(trainers.get("inputs")),
            **as_mapping(model.get("inputs")),
        }
        if inputs:
            yield doc.error(
                path,
                "a trainer in another interpreter cannot pull a download's result"
                f" (inputs {', '.join(map(repr, inputs))}); load it in the trainer's"
                " function, or remove the runtime",
                key=True,
            )


RUNTIME_CHECKS = (trainer_runtime,)
