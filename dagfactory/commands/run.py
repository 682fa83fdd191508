"""``dagfactory run``: render one config and run its DAG once on an embedded Airflow."""

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
        help="Airflow home to keep the metadata DB and logs in (default: a temporary one)",
    )
    add_templates(parser)


def main(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return run(
        args.target,
        args.configs,
        args.out,
        home=args.home,
        templates=args.templates,
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
) -> Outcome:
    """Render one config (by file or DAG id), run its DAG on an embedded Airflow, show its XComs.

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
    with writing_to(out_dir, working_project().root) as guard:
        plan = plan_render([unit], out_dir)
        if plan.blocked:
            return Outcome(EXIT_PROBLEMS, plan.blocked, notes=["nothing written"])
        # Only this config's files: stale files (and leftovers) are `render`'s business.
        only_this = Plan(plan.total, plan.changes, ignore_file=plan.ignore_file)
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
    if home is not None:
        result = run_dag(pipeline.dag.dag_id, out_dir, home)
    else:
        with tempfile.TemporaryDirectory(prefix="dagfactory-airflow-") as temporary:
            result = run_dag(pipeline.dag.dag_id, out_dir, Path(temporary))
    return _run_outcome(pipeline, result)


def _run_outcome(pipeline: Pipeline, result: RunResult) -> Outcome:
    from dagfactory.report import xcom_table

    if not result.succeeded:
        message = f"DAG run of {pipeline.dag.dag_id} ended in state {result.state}"
        # What failed and why first; the log's end after it, for what came before.
        failed = [failure.text for failure in result.failures]
        detail = "\n".join([*failed, "", "end of Airflow's log:", result.log_tail()])
        # ...and again last, where a person reading a terminal looks first.
        return Outcome(
            EXIT_PROBLEMS,
            [Problem.general(message, detail=detail.lstrip())],
            notes=[line.split("\n")[0] for line in failed],
        )
    chooser = pipeline.chooser
    winner = result.pushed(chooser.task_id, chooser.push_key)
    outcome = Outcome()
    outcome.say(f"DAG run {result.run_id}: {result.state}\n")
    for line in xcom_table(result.xcoms):
        outcome.say(line)
    outcome.say(f"\nwinner ({chooser.mode} {chooser.xcom_key}): {json.dumps(winner)}")
    return outcome


COMMAND = Command(
    "run",
    "render a config and run its DAG on an embedded Airflow",
    "Render the config (if needed), run its DAG once end to end with Airflow's "
    "dag.test() on a SQLite metadata database in a temporary Airflow home (retries off: "
    "each task is tried once), then print what went through XCom and the winner, or "
    "each failed task and its exception. Needs Airflow: pip install 'dagfactory[airflow]'.",
    arguments,
    main,
)
