"""The rules of the ``registry`` section: the winner registered in MLflow.

The registry task registers the file a trainer returns under ``artifact``, and with
``only_if_better`` compares the winner with the version the alias points at. These
checks refuse what cannot work there before anything runs: trainers that cannot
return a file, an alias MLflow reserves, a comparison whose direction was never
written, credentials copied into the DAG file. Same form as :mod:`.checks_ml`, run
through :data:`.checks.CHECKS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from dagfactory.compile.checks_runtime import interpreter_problems
from dagfactory.compile.document import Document, as_mapping
from dagfactory.compile.vocabulary import runs_bash
from dagfactory.problems import Problem

# Aliases MLflow keeps for itself: "latest" in any case, and version names such as v3.
_RESERVED_ALIAS = re.compile(r"latest|[vV]\d+", re.IGNORECASE)


def registry_section(doc: Document) -> Iterator[Problem]:
    """A registry needs trainers that return an artifact, an alias MLflow allows, a
    written direction for ``only_if_better``, and no credentials in the tracking URI."""
    registry = as_mapping(doc.data.get("registry"))
    if not registry:
        return
    trainers = as_mapping(doc.data.get("trainers"))
    bash = [
        model.get("task_id")
        for model in doc.trainer_models
        if isinstance(model, dict) and runs_bash(model, trainers)
    ]
    if bash:
        yield doc.error(
            ("registry",),
            "registers the file the winner returns under 'artifact', but bash trainers"
            f" push text ({', '.join(map(repr, bash))}); give every trainer a"
            " python_callable that returns {'<metric>': ..., 'artifact': <path>}",
            key=True,
        )
    mlflow = as_mapping(registry.get("mlflow"))
    alias = mlflow.get("alias")
    if isinstance(alias, str) and _RESERVED_ALIAS.fullmatch(alias):
        yield doc.error(
            ("registry", "mlflow", "alias"),
            f"MLflow reserves the alias {alias!r} ('latest' and version names such as"
            " v1); choose another, such as champion",
        )
    if mlflow.get("only_if_better") is True and "mode" not in as_mapping(
        doc.data.get("chooser")
    ):
        yield doc.error(
            ("registry", "mlflow", "only_if_better"),
            "compares the winner with the registered champion in chooser.mode's"
            " direction, which is not written; set chooser.mode: max (higher is"
            " better, such as accuracy) or min (such as a loss)",
        )
    uri = mlflow.get("tracking_uri")
    if isinstance(uri, str) and urlsplit(uri).password is not None:
        yield doc.error(
            ("registry", "mlflow", "tracking_uri"),
            "holds a password, which would be copied into the DAG file; remove it"
            " and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or"
            " MLFLOW_TRACKING_TOKEN) on the workers",
        )
    if isinstance(registry.get("runtime"), dict):
        yield from interpreter_problems(
            doc, ("registry", "runtime"), registry["runtime"]
        )


REGISTRY_CHECKS = (registry_section,)
