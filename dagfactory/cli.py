"""The ``dagfactory`` command line: arguments in, :mod:`dagfactory.commands` called, its
outcome handed to a :class:`~dagfactory.report.Reporter`, and the exit code it carries.

Exit codes (as ruff's): 0 success; 1 problems found (invalid configs, outputs out of
date under ``--check`` or ``--diff``, a file in the way, a DAG file Airflow cannot load,
a failed DAG run); 2 usage or setup errors (Airflow or CairoSVG missing included).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from dagfactory import __version__, commands
from dagfactory.problems import DagfactoryError
from dagfactory.report import FORMATS, Outcome, Reporter

DEFAULT_CONFIGS = Path("configs")
DEFAULT_OUT = Path("generated_dags")

EPILOG = "Exit codes: 0 success; 1 problems found; 2 usage or setup error."


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    reporter = Reporter(args.format)
    try:
        outcome = args.handler(args, reporter)
    except DagfactoryError as exc:
        outcome = Outcome(exc.exit_code, [exc.problem()])
    except KeyboardInterrupt:
        return 130
    return reporter.report(outcome)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagfactory",
        description="Render declarative YAML train-and-choose pipelines into Airflow 3 DAG files.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--version", action="version", version=f"dagfactory {__version__}"
    )
    subcommands = parser.add_subparsers(
        title="commands", required=True, metavar="COMMAND"
    )

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(
            name, help=help_text, description=description, epilog=EPILOG
        )
        sub.add_argument(
            "--format",
            choices=FORMATS,
            default="text",
            help="how to report problems: text (PATH:LINE:COL: error: ..., on stderr), "
            "json (one array on stdout; everything else on stderr) or github (::error "
            "workflow commands that annotate a pull request, on stdout); default: text",
        )
        return sub

    def add_paths(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "paths",
            nargs="*",
            type=Path,
            default=[DEFAULT_CONFIGS],
            metavar="PATH",
            help="YAML config files or folders searched for *.yaml and *.yml (default: configs/)",
        )
        sub.add_argument(
            "--jobs",
            "-j",
            type=_positive_int,
            metavar="N",
            help="compile configs in N processes (default: one per CPU for batches of "
            "200 configs or more, else 1)",
        )

    def add_output(sub: argparse.ArgumentParser, help_text: str) -> None:
        sub.add_argument("--output", "-o", type=Path, metavar="FILE", help=help_text)

    def add_templates(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--templates",
            type=Path,
            metavar="DIR",
            help="a folder whose dag.py.j2 replaces the built-in template "
            "(it may extend builtin/dag.py.j2)",
        )

    render = command(
        "render",
        "render configs into DAG files",
        "Validate every config, then write one DAG file per config into the output folder. "
        "Nothing is written if any config is invalid; unchanged files are not touched; "
        "files dagfactory did not generate are never overwritten or removed. A generated "
        "file whose config is gone is stale: --check and --diff report it, --prune removes it.",
    )
    add_paths(render)
    render.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="output folder (default: generated_dags/)",
    )
    mode = render.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="write nothing; name every output that would be created, updated or removed "
        "as stale, each with its unified diff, and exit 1 if there is one (for CI)",
    )
    mode.add_argument(
        "--diff",
        action="store_true",
        help="write nothing; print a unified diff of what would change, and exit 1 if "
        "anything would",
    )
    render.add_argument(
        "--prune",
        action="store_true",
        help="also remove stale generated files (whose config is gone) from the output folder",
    )
    add_templates(render)
    render.add_argument(
        "--force",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="overwrite this output file although dagfactory did not generate it; "
        "name each such file (repeat the option): any other one still stops the render",
    )
    render.set_defaults(handler=_render_command)

    validate = command(
        "validate",
        "validate configs only",
        "Check every config against the schema and the semantic rules; write nothing.",
    )
    add_paths(validate)
    validate.set_defaults(handler=_validate_command)

    run = command(
        "run",
        "render a config and run its DAG on an embedded Airflow",
        "Render the config (if needed), run its DAG once end to end with Airflow's "
        "dag.test() on a SQLite metadata database in a temporary Airflow home (retries off: "
        "each task is tried once), then print what went through XCom and the winner, or "
        "each failed task and its exception. Needs Airflow: pip install 'dagfactory[airflow]'.",
    )
    run.add_argument(
        "target",
        metavar="CONFIG_OR_DAG_ID",
        help="a config file, or the dag_id of a config in --configs",
    )
    run.add_argument(
        "--configs",
        type=Path,
        default=DEFAULT_CONFIGS,
        metavar="DIR",
        help="where to look up a dag_id (default: configs/)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="output folder, used as Airflow's dags folder (default: generated_dags/)",
    )
    run.add_argument(
        "--home",
        type=Path,
        metavar="DIR",
        help="Airflow home to keep the metadata DB and logs in (default: a temporary one)",
    )
    add_templates(run)
    run.set_defaults(handler=_run_command)

    check = command(
        "check",
        "load a dags folder in a real Airflow DagBag and prove its callables",
        "Load every file of the folder in a real Airflow DagBag (in a child process with its "
        "own Airflow home) and report, per file, import errors with their traceback, cycles "
        "and duplicate DAG ids; then import every module:function the generated files' "
        "configs name, as a worker would, and check that each accepts what the DAG passes "
        "it, reporting each problem at the config's line and column. Exit 1 on any problem. "
        "Needs Airflow: pip install 'dagfactory[airflow]'.",
    )
    check.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="the dags folder to load (default: generated_dags/)",
    )
    check.set_defaults(handler=_check_command)

    graph = command(
        "graph",
        "draw a config's DAG (Mermaid, SVG or PNG)",
        "Draw the DAG a config describes, from the validated spec (no Airflow needed): "
        "Mermaid text on stdout (paste it into Markdown; GitHub draws it), or a picture "
        "with --output FILE.svg (no extra dependency) or FILE.png "
        "(pip install 'dagfactory[png]', which needs the Cairo library).",
    )
    graph.add_argument("config", type=Path, metavar="CONFIG", help="a config file")
    add_output(graph, "write a picture instead: FILE.svg or FILE.png")
    graph.set_defaults(handler=_graph_command)

    init = command(
        "init",
        "start a project: a commented config and the code it calls",
        "Write a starter project that validates, renders and runs as it is: a commented "
        "config, configs/NAME.yaml (or --output FILE), and the package of stub trainers "
        "it calls, NAME_tasks/ in the dags folder (--out). An existing file is never "
        "overwritten.",
    )
    init.add_argument(
        "name",
        nargs="?",
        default="my_pipeline",
        metavar="NAME",
        help="the DAG id, and the config's file name (default: my_pipeline)",
    )
    add_output(init, "where to write the config (default: configs/NAME.yaml)")
    init.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="the dags folder, where the code package goes (default: generated_dags/)",
    )
    init.set_defaults(handler=_init_command)

    schema = command(
        "schema",
        "print the JSON Schema of a config",
        "Print the JSON Schema (Draft 2020-12) that configs are validated against, for "
        "editors and other tools.",
    )
    schema.set_defaults(handler=_schema_command)
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 1, got {text!r}"
        )
    return int(text)


def _validate_command(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return commands.validate(args.paths, jobs=args.jobs)


def _render_command(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return commands.render(
        args.paths,
        args.out,
        check=args.check,
        diff=args.diff,
        prune=args.prune,
        force=args.force,
        templates=args.templates,
        jobs=args.jobs,
    )


def _run_command(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return commands.run(
        args.target,
        args.configs,
        args.out,
        home=args.home,
        templates=args.templates,
        say=reporter.say,
    )


def _check_command(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return commands.check(args.folder)


def _graph_command(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return commands.graph(args.config, args.output)


def _init_command(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return commands.init(args.name, args.output, args.out)


def _schema_command(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return commands.schema()
