"""``dagfactory check``: load a dags folder in a real Airflow DagBag and prove the
callables its configs name."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagfactory.commands.arguments import Command, FromProject, positive_int
from dagfactory.problems import EXIT_PROBLEMS, Problem, UsageError
from dagfactory.report import Outcome, Reporter


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=FromProject("out"),
        metavar="DIR",
        help="the dags folder to load (default: generated_dags/)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_int,
        metavar="SECONDS",
        help="how long the import of one DAG file or one callable's module may take "
        "before it is reported as blocking (as Airflow's dagbag_import_timeout; "
        "default: 30)",
    )


def main(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return check(args.folder, timeout=args.timeout)


def check(folder: Path, *, timeout: float | None = None) -> Outcome:
    """Load ``folder`` in a real Airflow DagBag, then prove the callables its configs name.

    Each file's problems are in its line of the listing (``listed``); the problems of
    the configs behind the files, a callable's at the line and column it is written,
    are not, and come after it in every format.
    """
    from dagfactory.report import check_listing, check_summary, config_summary
    from dagfactory.tools.check import check_folder, configured_references

    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    references, config_problems = configured_references(folder)
    result = check_folder(folder, references, timeout=timeout)
    if not result.files:
        message = (
            f"the Airflow process failed (exit code {result.exit_code})"
            if result.exit_code
            else "Airflow found no DAG file to load"
        )
        problem = Problem.in_file(str(folder), message, detail=result.log[-5000:])
        return Outcome(EXIT_PROBLEMS, [problem, *config_problems])
    outcome = Outcome()
    for line in check_listing(result):
        outcome.say(line)
    outcome.listed = [
        Problem.in_file(report.path, report.kind, detail=report.detail)
        for report in result.problems
    ]
    outcome.problems = sorted(config_problems + result.callables, key=Problem.sort_key)
    errors = [p for p in outcome.all_problems if p.severity == "error"]
    if not errors:
        outcome.say(check_summary(result))
        return outcome
    outcome.exit_code = EXIT_PROBLEMS
    outcome.notes.append(check_summary(result))
    in_configs = [problem for problem in errors if problem.located]
    if in_configs:
        outcome.notes.append(config_summary(in_configs))
    return outcome


COMMAND = Command(
    "check",
    "load a dags folder in a real Airflow DagBag and prove its callables",
    "Load every file of the folder in a real Airflow DagBag (in a child process with its "
    "own Airflow home) and report, per file, import errors with their traceback, cycles "
    "and duplicate DAG ids; then import every module:function the generated files' "
    "configs name, as a worker would, and check that each accepts what the DAG passes "
    "it, reporting each problem at the config's line and column. Exit 1 on any problem. "
    "Needs Airflow: pip install 'dagfactory[airflow]'.",
    arguments,
    main,
)
