"""``dagfactory run``: render one config and run its DAG once on an embedded Airflow.

What the run leaves is what a person looks for after it: the XComs (the trainers'
metrics) whether it succeeded or not, and each task's log. The metadata database lives
in a temporary Airflow home unless ``--home`` names one to keep; the task logs are kept
either way, in that home's ``logs/`` or else in the project's ``.dagfactory/runs/``, in
Airflow's layout (``dag_id=.../run_id=.../task_id=.../attempt=N.log``).

A DAG with an approval task waits for a person, which a local run cannot: ``--approve``
or ``--reject`` answers it, through Airflow's own REST route; without either, the run
is refused with how a deployment answers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.commands.arguments import (
    Command,
    FromProject,
    add_out,
    add_templates,
)
from dagfactory.commands.batch import compile_configs, failed, write, writing_to
from dagfactory.output.plan import Plan, plan_render
from dagfactory.problems import EXIT_PROBLEMS, Problem, UsageError
from dagfactory.project import working_project
from dagfactory.report import Outcome, Reporter

if TYPE_CHECKING:
    from dagfactory.compile.pipeline import Pipeline
    from dagfactory.tools.run import RunResult

Say = Callable[[str], None]


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="CONFIG_OR_DAG_ID",
        help="a config file, or the dag_id of a config in --configs",
    )
    parser.add_argument(
        "--configs",
        type=Path,
        default=FromProject("configs"),
        metavar="DIR",
        help="where to look up a dag_id (default: configs/)",
    )
    add_out(
        parser,
        "output folder, used as Airflow's dags folder (default: generated_dags/)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        metavar="DIR",
        help="Airflow home to run in and keep: its metadata DB, and the task logs in its "
        "logs/ (default: a temporary home, whose task logs are kept in the project's "
        ".dagfactory/runs/)",
    )
    parser.add_argument(
        "--logs",
        action="store_true",
        help="also print every task's log (what it printed and what Airflow logged for "
        "it), grouped by task, in the order they ran; a failed task's log end is "
        "printed either way",
    )
    answer = parser.add_mutually_exclusive_group()
    answer.add_argument(
        "--approve",
        dest="answer",
        action="store_const",
        const="Approve",
        help="answer the DAG's approval task with Approve (publish runs), as a person "
        "does on a deployment: through Airflow's REST API",
    )
    answer.add_argument(
        "--reject",
        dest="answer",
        action="store_const",
        const="Reject",
        help="answer the DAG's approval task with Reject (publish is skipped)",
    )
    add_templates(parser)


def main(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return run(
        args.target,
        args.configs,
        args.out,
        home=args.home,
        templates=args.templates,
        show_logs=args.logs,
        answer=args.answer,
        say=reporter.say,
    )


def run(
    target: str,
    configs: Path,
    out_dir: Path,
    *,
    say: Say,
    home: Path | None = None,
    templates: Path | None = None,
    show_logs: bool = False,
    answer: str | None = None,
) -> Outcome:
    """Render one config (by file or DAG id), run its DAG on an embedded Airflow, show its
    XComs, and with ``show_logs`` every task's log; ``answer`` (Approve or Reject) is
    given to its approval task.

    The run takes a while: what was written and that it starts are told at once,
    through ``say`` (the reporter's), not in the outcome.
    """
    import tempfile

    from dagfactory.tools.run import run_dag

    by_file = Path(target).is_file()
    batch = compile_configs(
        [Path(target)] if by_file else [configs], templates=templates
    )
    if batch.errors:
        return failed(batch)
    units = [u for u in batch.rendered if by_file or u.dag_id == target]
    if not units:
        raise UsageError(f"no config in {configs} has dag_id {target!r}")
    (unit,) = units
    _check_answer(unit.pipeline, answer)
    project = working_project()
    with writing_to(out_dir, project.root) as guard:
        plan = plan_render([unit], out_dir, shard_size=project.shard_size)
        if plan.blocked:
            return Outcome(EXIT_PROBLEMS, plan.blocked, notes=["nothing written"])
        # Only this config's files: stale files (and leftovers) are `render`'s business.
        only_this = Plan(
            plan.total, plan.changes, ignore_file=plan.ignore_file, shards=plan.shards
        )
        outcome = write(only_this, journal=guard.journal_path)
    if outcome.exit_code:
        return outcome
    pipeline = unit.pipeline
    for line in outcome.output:
        say(line.rstrip("\n"))
    say(
        f"running {pipeline.dag.dag_id} on an embedded Airflow"
        " (SQLite metadata DB; retries off for a local run)..."
    )
    if pipeline.approval is not None:
        say(
            f"{pipeline.approval.task_id} waits for a person: answering {answer} through"
            " Airflow's REST API, as a person does on a deployment"
        )
    if home is not None:
        result = run_dag(pipeline.dag.dag_id, out_dir, home, answer=answer)
    else:
        runs = working_project().root / ".dagfactory" / "runs"
        with tempfile.TemporaryDirectory(prefix="dagfactory-airflow-") as temporary:
            result = run_dag(
                pipeline.dag.dag_id, out_dir, Path(temporary), runs, answer=answer
            )
    return _run_outcome(pipeline, result, show_logs)


def _check_answer(pipeline: Pipeline, answer: str | None) -> None:
    """A DAG that waits for a person needs --approve or --reject; no other DAG takes one."""
    approval = pipeline.approval
    if approval is None and answer is not None:
        raise UsageError(
            f"{pipeline.dag.dag_id} has no approval task: --{answer.lower()} answers"
            " nothing; remove it"
        )
    if approval is not None and answer is None:
        raise UsageError(
            f"{pipeline.dag.dag_id} waits at {approval.task_id} for a person to approve"
            " the winner, which a local run cannot do: pass --approve (publish runs) or"
            f" --reject (publish is skipped). {_how_people_answer(pipeline)}"
        )


def _how_people_answer(pipeline: Pipeline) -> str:
    """How a deployment's people answer the approval task: the UI, or the REST call."""
    task_id = pipeline.approval.task_id
    return (
        "On a deployment a person answers in Airflow's UI (the run's Required"
        " Actions) or over its REST API: PATCH /api/v2/dags/"
        f"{pipeline.dag.dag_id}/dagRuns/RUN_ID/taskInstances/{task_id}/-1/hitlDetails"
        ' with {"chosen_options": ["Approve"], "params_input": {}} (or "Reject")'
    )


def _run_outcome(pipeline: Pipeline, result: RunResult, show_logs: bool) -> Outcome:
    """The XComs whether the run succeeded or not (a failed run's trainers that did
    finish pushed their metrics), the winner or what failed, and where the logs are."""
    from dagfactory.report import task_log_sections, xcom_table

    outcome = Outcome()
    if result.run_id is not None:
        if show_logs:
            for line in task_log_sections(result.task_logs):
                outcome.say(line)
        for answer in result.answers:
            outcome.say(f"{answer.request} -> {answer.status} {answer.response}")
        outcome.say(f"DAG run {result.run_id}: {result.state}\n")
        for line in xcom_table(result.xcoms):
            outcome.say(line)
    if result.succeeded:
        chooser = pipeline.chooser
        winner = result.pushed(chooser.task_id, chooser.push_key)
        outcome.say(
            f"\nwinner ({chooser.mode} {chooser.metric or chooser.xcom_key}): {json.dumps(winner)}"
        )
    if result.logs_folder is not None:
        outcome.say(f"task logs: {_shown(result.logs_folder)}")
    if result.succeeded:
        return outcome
    message = f"DAG run of {pipeline.dag.dag_id} ended in state {result.state}"
    # What failed and why first; each failed task's log end after it, for what came
    # before (Airflow's whole log's end where a task left none).
    failed = [failure.text for failure in result.failures]
    detail = "\n".join([*failed, *_failed_logs(result)])
    outcome.exit_code = EXIT_PROBLEMS
    outcome.problems.append(Problem.general(message, detail=detail.lstrip()))
    # ...and again last, where a person reading a terminal looks first.
    outcome.notes += [line.split("\n")[0] for line in failed]
    return outcome


def _failed_logs(result: RunResult) -> list[str]:
    """Each failed task's log end, headed; Airflow's log end if a failure has none."""
    from dagfactory.tools.run import tail

    lines = []
    without_log = not result.failures
    for failure in result.failures:
        logs = result.logs_of(failure)
        without_log |= not logs
        for log in logs:
            lines += ["", f"end of the log of {failure.label} ({_shown(log.path)}):"]
            lines.append(tail(log.read()).rstrip("\n"))
    if without_log:
        lines += ["", "end of Airflow's log:", result.log_tail()]
    return lines


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is under it, as typed."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


COMMAND = Command(
    "run",
    "render a config and run its DAG on an embedded Airflow",
    "Render the config (if needed), run its DAG once end to end with Airflow's "
    "dag.test() on a SQLite metadata database in a temporary Airflow home (retries off: "
    "each task is tried once), then print what went through XCom and the winner, or "
    "what went through XCom, each failed task, its exception and the end of its log; "
    "last, where the task logs are kept. Needs Airflow: pip install 'dagfactory[airflow]'.",
    arguments,
    main,
)
