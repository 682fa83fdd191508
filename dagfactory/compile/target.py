"""The oldest Airflow a config targets, and what the older versions lack.

A config (or, for a whole project, a ``defaults.yaml`` above it) names with
``target_airflow`` the oldest Airflow its DAG must run on, as ruff's ``target-version``
names a Python. The generated file is the same on every supported version, so a feature
the target lacks is an error at validate time, at the value that uses it, never a file
that breaks when the task runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dagfactory.compile.document import Document, walk
from dagfactory.problems import Problem

# The Airflow versions the compatibility run proves, oldest first.
SUPPORTED_AIRFLOW = ("2.10", "2.11", "3.0", "3.1", "3.2", "3.3", "3.4")
# Without target_airflow a config targets Airflow 3 (what dagfactory rendered for before).
DEFAULT_TARGET = "3.0"

RUN_AFTER = "dag_run.run_after"
# Airflow 2's DagRun has no run_after: Jinja's `default` then takes the logical date,
# which every Airflow 2 run has; on Airflow 3 run_after is always set and wins.
PORTABLE_RUN_AFTER = "dag_run.run_after | default(dag_run.logical_date)"
_BARE_RUN_AFTER = re.compile(r"\bdag_run\.run_after\b(?!\s*\|\s*default\s*\()")

# Trigger rules newer than the oldest supported Airflow, with the version that added them.
TRIGGER_RULE_SINCE = {"all_done_min_one_success": "3.1"}
# Airflow's human-in-the-loop operators (the approval section) came in 3.1.
APPROVAL_SINCE = "3.1"


def version(text: str) -> tuple[int, int]:
    """``"2.10"`` as ``(2, 10)``, so that versions compare as numbers."""
    major, minor = text.split(".")
    return int(major), int(minor)


def target_of(data: dict[str, Any]) -> str:
    """The version a config targets (an invalid value is the schema's to report)."""
    target = data.get("target_airflow")
    return target if target in SUPPORTED_AIRFLOW else DEFAULT_TARGET


def run_after_expression(target: str) -> str:
    """What a template writes for the time a run was due, on every version from ``target``."""
    return PORTABLE_RUN_AFTER if version(target) < (3, 0) else RUN_AFTER


def target_errors(doc: Document) -> Iterator[Problem]:
    """Each value that uses what the targeted Airflow lacks, with the fix."""
    target = target_of(doc.data)
    declared = (
        f'target_airflow is "{target}" ({doc.where(("target_airflow",))})'
        if "target_airflow" in doc.data
        else f'target_airflow is "{target}" by default'
    )
    targeted = version(target)
    if "approval" in doc.data and targeted < version(APPROVAL_SINCE):
        yield doc.error(
            ("approval",),
            f"approval waits for a person with Airflow's ApprovalOperator, which came "
            f"in Airflow {APPROVAL_SINCE}, and {declared}: an older Airflow cannot load "
            f'the DAG; raise target_airflow to "{APPROVAL_SINCE}" if no older Airflow '
            "runs it, or remove approval",
            key=True,
        )
    for path, value in walk(doc.data):
        if not isinstance(value, str):
            continue
        since = TRIGGER_RULE_SINCE.get(value)
        if path[-1:] == ("trigger_rule",) and since and targeted < version(since):
            yield doc.error(
                path,
                f"trigger rule {value!r} came in Airflow {since}, and {declared}: an "
                "older Airflow cannot load the DAG; use another rule, or raise "
                f'target_airflow to "{since}" if no older Airflow runs it',
            )
        if targeted < (3, 0) and "{" in value and _BARE_RUN_AFTER.search(value):
            yield doc.error(
                path,
                f"{RUN_AFTER} is undefined on Airflow 2 (it came in 3.0), and {declared}: "
                f"the task would fail there; write {{{{ {PORTABLE_RUN_AFTER} }}}} "
                "(the logical date on Airflow 2), or raise target_airflow to "
                '"3.0" if no Airflow 2 runs it',
            )
