"""The ``dagfactory`` command line: arguments in, the command called, its outcome handed
to a :class:`~dagfactory.report.Reporter`, and the exit code it carries.

Each command declares its own arguments (:mod:`dagfactory.commands`); this shell only
parses, fills in the defaults the project sets, runs the command asked for, and turns
an error that ends it into its exit code.

Exit codes (as ruff's): 0 success; 1 problems found (invalid configs, outputs out of
date under ``--check`` or ``--diff``, a file in the way, a DAG file Airflow cannot load,
a failed DAG run); 2 usage or setup errors (Airflow or CairoSVG missing included).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dagfactory import __version__
from dagfactory.commands import COMMANDS
from dagfactory.commands.arguments import EPILOG, settle
from dagfactory.problems import DagfactoryError
from dagfactory.report import Outcome, Reporter


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    reporter = Reporter(args.format)
    try:
        outcome = args.command.run(settle(args), reporter)
    except DagfactoryError as exc:
        outcome = Outcome(exc.exit_code, [exc.problem()])
    except KeyboardInterrupt:
        return 130
    return reporter.report(outcome)


def parser() -> argparse.ArgumentParser:
    """``dagfactory``'s parser: ``--version``, and each command's own."""
    top = argparse.ArgumentParser(
        prog="dagfactory",
        description="Render declarative YAML train-and-choose pipelines into DAG files "
        "for Airflow 2.10 to 3.4.",
        epilog=EPILOG,
    )
    top.add_argument("--version", action="version", version=f"dagfactory {__version__}")
    subcommands = top.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(subcommands)
    return top
