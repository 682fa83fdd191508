"""Inside one compatibility virtualenv: load the rendered DAGs and run each one, on this Airflow.

``python probe.py DAGS_FOLDER RESULT_FILE [DAG_ID ...]`` (all DAGs when none; with
``--last-run DAG_ID ...`` it runs nothing and checks each DAG's latest run, one that
``airflow dags test`` made) runs in a child process whose environment
points Airflow at its own home and an already migrated SQLite database. It fills one
DagBag with every warning recorded (the generated files must raise no deprecation
warning), then runs every DAG once with ``dag.test()`` and reads the run back through
Airflow's own models: the trainers' XComs, the chooser's winner, the branch taken, the
result of each step that receives the winner (publish, a python on_pass) and each
failed task's exception. It checks them against what the DAG's own operators say
should happen (the winner is the best of the XComs read back) and writes one verdict
per check as JSON: ``{"check": [ok, detail]}``. The scikit-learn example is also
checked against its files: the model it published, loaded back, scores the winner's
accuracy on the test split it saved.

It runs on every supported Airflow (2.10 to 3.4), so it tries each import where the
newer releases keep it first.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

# DAGs whose chooser must fail: their trainers push values that are not finite numbers.
EXPECTED_TO_FAIL = {"failing_trainers"}
# The scikit-learn example (configs/digits_classifiers.yaml): its download and publish
# tasks' ids.
DIGITS = {"digits_classifiers": ("prepare_data", "save_best_model")}


# Airflow marks deprecated imports with subclasses of each (3.x: FutureWarning).
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def dagbag_and_deprecations(folder: Path) -> tuple[Any, list[str], list[str]]:
    """The DagBag of ``folder`` and the deprecation warnings raised while filling it.

    First those the generated files cause: raised at a line of a file in ``folder``, or
    by Airflow while it imported one of them (the DagBag keeps those per file: imports
    of deprecated Airflow modules and classes). Second the rest, which Airflow or its
    dependencies raise whatever the DAGs are (e.g. pathspec's in Airflow's file
    discovery, Flask's on Airflow 2). The bag is filled as ``check`` and ``run`` fill
    it; Airflow is imported before the recording starts, as its import is not the DAGs'.
    """
    from dagfactory.tools.airflow_api import dagbag_class, fill_dagbag

    dagbag_class()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = fill_dagbag(str(folder))
    per_file = "\n".join(
        line
        for lines in getattr(bag, "captured_warnings", {}).values()
        for line in lines
    )
    ours, theirs = [], []
    for w in caught:
        if issubclass(w.category, DEPRECATIONS):
            text = f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
            inside = Path(w.filename).resolve().is_relative_to(folder.resolve())
            # Airflow's own deprecations met importing a generated file: a deprecated
            # module or class it uses. A third-party library's (Flask's, on 2.x) is not.
            from_airflow = "/airflow/" in Path(w.filename).as_posix()
            mine = inside or (from_airflow and str(w.message) in per_file)
            (ours if mine else theirs).append(text)
    return bag, list(dict.fromkeys(ours)), list(dict.fromkeys(theirs))


def record_failures() -> dict[tuple[str, int], str]:
    """Each failed task's exception as Airflow hands it to listeners, keyed by (task, map index)."""
    from airflow.listeners import hookimpl

    from dagfactory.tools.airflow_api import add_listener

    errors: dict[tuple[str, int], str] = {}

    class FailureRecorder:
        @hookimpl
        def on_task_instance_failed(self, task_instance: Any, error: Any) -> None:
            key = (task_instance.task_id, task_instance.map_index)
            errors[key] = f"{type(error).__name__}: {error}"

    add_listener(FailureRecorder())
    return errors


def read_run(run: Any) -> tuple[dict[str, str], dict[tuple[str, int, str], Any]]:
    """The run's task states (``task`` or ``task[i]``) and XComs by (task, map index, key)."""
    from airflow.utils.session import create_session

    from dagfactory.tools.airflow_api import stored_xcoms

    with create_session() as session:
        instances = run.get_task_instances(session=session)
        states = {_name(ti.task_id, ti.map_index): str(ti.state) for ti in instances}
        rows = stored_xcoms(session, run.run_id, run.dag_id)
        xcoms = {(x.task_id, x.map_index, x.key): x.value for x in rows}
    return states, xcoms


def _name(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def tasks_calling(dag: Any, callable_name: str) -> list[tuple[str, dict[str, Any]]]:
    """Each task whose callable is the generated ``callable_name``, with its ``op_kwargs``."""
    return [
        (task.task_id, dict(task.op_kwargs))
        for task in dag.tasks
        if getattr(getattr(task, "python_callable", None), "__name__", None)
        == callable_name
    ]


def operator_kwargs(dag: Any, callable_name: str) -> tuple[str, dict[str, Any]] | None:
    """The first task whose callable is the generated ``callable_name``, and its ``op_kwargs``."""
    return next(iter(tasks_calling(dag, callable_name)), None)


def score(value: Any, metric: str | None) -> float | None:
    """The finite number a trainer's XCom stands for (text from bash trainers too), or None."""
    if metric is not None:
        value = value.get(metric) if isinstance(value, dict) else None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def trainer_values(
    chooser: dict[str, Any], xcoms: dict[tuple[str, int, str], Any]
) -> list[tuple[str, Any]]:
    """Each trainer's name and what it pushed under the chooser's key, in the chooser's order."""
    key = chooser["xcom_key"]
    if isinstance(chooser["task_ids"], str):  # one mapped task: its map indexes
        mapped = chooser["task_ids"]
        if "map_count" in chooser:
            indexes = range(chooser["map_count"])
        else:
            indexes = sorted(i for (t, i, k) in xcoms if t == mapped and k == key)
        return [(f"{mapped}[{i}]", xcoms.get((mapped, i, key))) for i in indexes]
    return [(t, xcoms.get((t, -1, key))) for t in chooser["task_ids"]]


def verify_run(dag: Any, failures: dict[tuple[str, int], str]) -> list[str]:
    """Run ``dag`` once and return what went wrong (nothing when it behaved)."""
    for task in dag.tasks:
        task.retries = 0
    failures.clear()
    from dagfactory.tools.airflow_api import activate_assets, keep_one_execution_api

    activate_assets(dag)  # on 3.0, an Asset a task announces must be known first
    keep_one_execution_api()
    return verify_outcome(dag, dag.test(), failures)  # a failed run is returned


def last_run(dag_id: str) -> Any:
    """The latest run of ``dag_id`` in the database (one ``airflow dags test`` made)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        return session.scalars(query.order_by(DagRun.id.desc())).first()


def verify_outcome(
    dag: Any, run: Any, failures: dict[tuple[str, int], str]
) -> list[str]:
    """What went wrong in ``run`` of ``dag``, read back from the database."""
    if run is None:
        return [f"no run of {dag.dag_id} in the database"]
    states, xcoms = read_run(run)
    found = operator_kwargs(dag, "_choose")
    if found is None:
        return ["no chooser task (calling _choose) in the DAG"]
    chooser_id, chooser = found
    trainers = trainer_values(chooser, xcoms)
    if not trainers:
        return [f"no trainer pushed under {chooser['xcom_key']!r}: {states}"]
    scores = [score(value, chooser.get("metric")) for _, value in trainers]
    if dag.dag_id in EXPECTED_TO_FAIL:
        return verify_failure(run, states, chooser_id, trainers, scores, failures)
    if str(run.state) != "success":
        failed = "; ".join(f"{_name(*key)}: {error}" for key, error in failures.items())
        return [f"run {run.state}: {failed or states}"]
    best = (max if chooser["mode"] == "max" else min)(scores)
    index = scores.index(best)
    expected = {"task_id": trainers[index][0], "value": best}
    winner = xcoms.get((chooser_id, -1, chooser["push_key"]))
    problems = []
    if winner is None or {k: winner.get(k) for k in expected} != expected:
        problems.append(f"winner {winner}, expected {expected} from {trainers}")
        winner = expected
    problems += verify_branch(dag, states, best)
    problems += verify_winner_steps(dag, states, xcoms, winner)
    if dag.dag_id in DIGITS:
        problems += verify_digits(dag, xcoms, trainers[index], winner)
    return problems


def verify_failure(
    run: Any,
    states: dict[str, str],
    chooser_id: str,
    trainers: list[tuple[str, Any]],
    scores: list[float | None],
    failures: dict[tuple[str, int], str],
) -> list[str]:
    """The run failed at the chooser, whose exception names every trainer without a number."""
    bad = [
        (name, value)
        for (name, value), s in zip(trainers, scores, strict=True)
        if s is None
    ]
    if not bad:
        return [f"every trainer pushed a number ({trainers}): nothing to fail on"]
    if str(run.state) != "failed" or states.get(chooser_id) != "failed":
        return [
            f"run {run.state}, {chooser_id} {states.get(chooser_id)}: expected failed"
        ]
    message = failures.get((chooser_id, -1), "")
    missing = [
        f"{name} pushed {'nothing' if value is None else repr(value)}"
        for name, value in bad
        if f"{name} pushed {'nothing' if value is None else repr(value)}" not in message
    ]
    if missing:
        return [
            f"{chooser_id}'s failure {message!r} does not say: {'; '.join(missing)}"
        ]
    return []


def verify_branch(dag: Any, states: dict[str, str], best: float) -> list[str]:
    """The branch after the chooser ran the follow-up the winner's value calls for."""
    found = operator_kwargs(dag, "_branch")
    if found is None:
        return []
    _, branch = found
    threshold = branch["threshold"]
    passed = best >= threshold if branch["mode"] == "max" else best <= threshold
    taken, skipped = (
        (branch["on_pass"], branch["on_fail"])
        if passed
        else (branch["on_fail"], branch["on_pass"])
    )
    # Each side is a task id, a list of them (a gated publish follows on_pass), or None.
    expected = {task: "success" for task in _task_ids(taken)}
    expected.update({task: "skipped" for task in _task_ids(skipped)})
    found = {task: states.get(task) for task in expected}
    if found != expected:
        return [
            f"branch: {found}, expected {expected} (winner {best}, threshold {threshold})"
        ]
    return []


def _task_ids(side: str | list[str] | None) -> list[str]:
    return [] if side is None else [side] if isinstance(side, str) else list(side)


def verify_winner_steps(
    dag: Any,
    states: dict[str, str],
    xcoms: dict[tuple[str, int, str], Any],
    winner: dict[str, Any],
) -> list[str]:
    """Each python step that receives the winner (publish, on_pass) and ran returned what
    its callable returns when called with the winner.

    ``_call_with_winner`` passes the callable the winner's fields that its signature
    names (all of them when it takes ``**kwargs``), on top of its op_kwargs. A step the
    threshold branch skipped is left to :func:`verify_branch`.
    """
    problems = []
    for task_id, step in tasks_calling(dag, "_call_with_winner"):
        if states.get(task_id) == "skipped":
            continue
        function = load(step["function"])
        parameters = inspect.signature(function).parameters.values()
        fields = winner
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            named = {p.name for p in parameters}
            fields = {name: value for name, value in winner.items() if name in named}
        expected = function(**{**step["arguments"], **fields})
        returned = xcoms.get((task_id, -1, "return_value"))
        if states.get(task_id) != "success" or returned != expected:
            problems.append(
                f"{task_id} {states.get(task_id)} returned {returned!r}, expected {expected!r}"
            )
    return problems


def load(ref: str) -> Any:
    """The function ``module:function`` names, imported from the dags folder."""
    module_name, _, function_name = ref.partition(":")
    return getattr(__import__(module_name, fromlist=[function_name]), function_name)


def verify_digits(
    dag: Any,
    xcoms: dict[tuple[str, int, str], Any],
    best: tuple[str, Any],
    winner: dict[str, Any],
) -> list[str]:
    """The scikit-learn example kept the best model's file and published that model.

    The winner's artifact is the file the most accurate trainer pushed, and the published
    model, loaded back, scores the winner's accuracy on the test split the run saved.
    """
    download_id, publish_id = DIGITS[dag.dag_id]
    best_id, best_pushed = best
    if winner.get("artifact") != best_pushed["artifact"]:
        return [
            f"winner's artifact {winner.get('artifact')!r}, {best_id} pushed {best_pushed}"
        ]
    published = xcoms.get((publish_id, -1, "return_value"))
    data_path = xcoms.get((download_id, -1, "return_value"))
    if published is None or data_path is None:
        return [f"published {published!r} from the data {data_path!r}"]
    score = load("ml_demo.digits:score")
    rescored = float(score(load("ml_demo.digits:load_model")(published), data_path))
    if rescored != winner["value"]:
        return [f"the published {published} scores {rescored}, the winner {winner}"]
    return []


def main(folder: Path, result_file: Path, only: list[str]) -> None:
    """Write the verdicts after each step, so that a run that hangs is named when killed."""
    sys.path.insert(0, str(folder))  # as Airflow's workers import the user's code
    if only[:1] == ["--last-run"]:  # check what `airflow dags test` left, run nothing
        from dagfactory.tools.airflow_api import fill_dagbag

        bag = fill_dagbag(str(folder))
        verdicts = {}
        for dag_id in only[1:]:
            problems = verify_outcome(bag.dags[dag_id], last_run(dag_id), {})
            verdicts[dag_id] = (not problems, "; ".join(problems))
        result_file.write_text(json.dumps(verdicts, indent=1), "utf-8")
        return
    verdicts: dict[str, tuple[bool, str]] = {}
    bag, deprecations, elsewhere = dagbag_and_deprecations(folder)
    files = sorted(p.name for p in folder.glob("*.py"))
    problems = [
        f"{Path(f).name}: {e.strip().splitlines()[-1]}"
        for f, e in bag.import_errors.items()
    ]
    problems += deprecations
    if len(bag.dags) < len(files):
        problems.append(f"{len(bag.dags)} DAGs from {len(files)} files")
    summary = f"{len(bag.dags)} DAGs from {len(files)} files"
    if elsewhere:
        summary += "; deprecations raised by Airflow itself: " + "; ".join(elsewhere)
    verdicts["dagbag"] = (not problems, "; ".join(problems) or summary)
    failures = record_failures()
    for dag_id in sorted(only or bag.dags):
        verdicts[dag_id] = (False, "still running when the probe was stopped")
        result_file.write_text(json.dumps(verdicts, indent=1), "utf-8")
        try:
            problems = verify_run(bag.dags[dag_id], failures)
        except Exception:
            problems = [traceback.format_exc(limit=-3).strip()]
        verdicts[dag_id] = (not problems, "; ".join(problems))
    result_file.write_text(json.dumps(verdicts, indent=1), "utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
