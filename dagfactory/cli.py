"""The ``dagfactory`` command line: a thin shell over load, validate, render and write.

Exit codes (as ruff's): 0 success; 1 problems found (invalid configs, outputs out of
date under ``--check``, a file in the way, a failed DAG run); 2 usage or setup errors.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory import __version__
from dagfactory.cache import RenderCache
from dagfactory.errors import SpecError
from dagfactory.pipeline import Batch, compile_configs, discover, render_outputs
from dagfactory.render import TemplateError
from dagfactory.runner import AirflowUnavailable, RunResult, XComEntry, run_dag
from dagfactory.writer import Output, Status, WriteError, write_all

if TYPE_CHECKING:
    from dagfactory.model import Pipeline

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIGS = Path("configs")
DEFAULT_OUT = Path("generated_dags")

EPILOG = "Exit codes: 0 success; 1 problems found; 2 usage or setup error."


class UsageError(Exception):
    """A problem with how dagfactory was called, reported without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, FileNotFoundError, AirflowUnavailable) as exc:
        print(f"dagfactory: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TemplateError as exc:
        print(f"dagfactory: error: {exc}; nothing written", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagfactory",
        description="Render declarative YAML train-and-choose pipelines into Airflow 3 DAG files.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--version", action="version", version=f"dagfactory {__version__}"
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help_text, description=description, epilog=EPILOG
        )

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
        "files dagfactory did not generate are never overwritten.",
    )
    add_paths(render)
    render.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="output folder (default: generated_dags/)",
    )
    render.add_argument(
        "--check",
        action="store_true",
        help="write nothing; print a diff and exit 1 if any output is missing or stale",
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
        "Render the config (if needed), run its DAG end to end with `airflow dags test` on a "
        "SQLite metadata database in a temporary Airflow home, then print what went through "
        "XCom and the winner. Needs Airflow: pip install 'dagfactory[airflow]'.",
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
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 1, got {text!r}"
        )
    return int(text)


def _report(errors: list[SpecError]) -> None:
    for error in errors:
        print(error, file=sys.stderr)
    files = len({error.file for error in errors})
    plural = "s" if len(errors) != 1 else ""
    print(
        f"{len(errors)} error{plural} in {files} file{'s' if files != 1 else ''}; nothing written",
        file=sys.stderr,
    )


def _compile(
    paths: list[Path],
    jobs: int | None = None,
    cache: RenderCache | None = None,
    templates: Path | None = None,
) -> Batch | None:
    configs = discover(paths)
    if not configs:
        raise UsageError(
            f"no configs (*.yaml, *.yml) found in {', '.join(map(str, paths))}"
        )
    batch = compile_configs(configs, jobs, cache, templates)
    if batch.errors:
        _report(batch.errors)
        return None
    return batch


def _write(
    outputs: list[Output], total: int, *, check: bool, force: Sequence[Path] = ()
) -> tuple[int, int]:
    """Write (or, with ``check``, diff) every output; refuse all if any is in the way.

    ``total`` counts the DAG files of the batch, ``outputs`` and those already known to
    be up to date. A file dagfactory did not generate is in the way unless ``force``
    names it. Returns the exit code and how many outputs were (or would be) written.
    """
    forced = {path.resolve() for path in force}
    unknown = forced - {output.path.resolve() for output in outputs}
    if unknown:
        raise UsageError(
            f"--force {min(unknown)}: not a file this render writes; name an output file"
        )
    statuses = {output: output.status() for output in outputs}
    foreign = [
        output
        for output, status in statuses.items()
        if status is Status.FOREIGN and output.path.resolve() not in forced
    ]
    for output in foreign:
        print(
            f"{output.path}: error: this file was not generated by dagfactory; refusing to overwrite it. "
            f"Move it away, change dag.dag_id in {output.source}, or pass --force {output.path}",
            file=sys.stderr,
        )
    if foreign:
        print("nothing written", file=sys.stderr)
        return EXIT_PROBLEMS, 0
    changed = [
        output for output, status in statuses.items() if status is not Status.UNCHANGED
    ]
    if check:
        for output in changed:
            sys.stdout.write(output.diff())
        if changed:
            print(
                f"{len(changed)} of {total} DAG files would change; run `dagfactory render`",
                file=sys.stderr,
            )
            return EXIT_PROBLEMS, len(changed)
        print(f"{total} DAG files up to date")
        return EXIT_OK, 0
    try:
        write_all([(output.path, output.content) for output in changed])
    except WriteError as exc:
        print(
            f"{exc.path}: error: cannot write it ({exc.reason}); it is unchanged.",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS, 0
    for output in changed:
        print(f"wrote {output.path}")
    return EXIT_OK, len(changed)


def _render_command(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cache = RenderCache.from_file()
    batch = _compile(args.paths, args.jobs, cache, args.templates)
    if batch is None:
        return EXIT_PROBLEMS
    total = len(batch.compiled)
    outputs = render_outputs(batch, args.out)
    code, written = _write(outputs, total, check=args.check, force=args.force)
    if code == EXIT_OK and not args.check:
        cache.save()
        elapsed = time.perf_counter() - started
        print(
            f"rendered {total} DAGs: {written} written, {total - written} unchanged in {elapsed:.2f} s"
        )
    return code


def _validate_command(args: argparse.Namespace) -> int:
    batch = _compile(args.paths, args.jobs, RenderCache.from_file())
    if batch is None:
        return EXIT_PROBLEMS
    print(f"{len(batch.compiled)} configs valid")
    return EXIT_OK


def _run_command(args: argparse.Namespace) -> int:
    target = Path(args.target)
    paths = [target] if target.is_file() else [args.configs]
    batch = _compile(paths, templates=args.templates)
    if batch is None:
        return EXIT_PROBLEMS
    if not target.is_file():
        batch.compiled = [c for c in batch.compiled if c.dag_id == args.target]
        if not batch.compiled:
            raise UsageError(f"no config in {args.configs} has dag_id {args.target!r}")
    (pipeline,) = batch.pipelines
    code, _ = _write(render_outputs(batch, args.out), 1, check=False)
    if code != EXIT_OK:
        return code
    print(
        f"running {pipeline.dag.dag_id} on an embedded Airflow (SQLite metadata DB)...",
        flush=True,
    )
    if args.home:
        result = run_dag(pipeline.dag.dag_id, args.out, args.home)
    else:
        with tempfile.TemporaryDirectory(prefix="dagfactory-airflow-") as home:
            result = run_dag(pipeline.dag.dag_id, args.out, Path(home))
    return _print_run(pipeline, result)


def _print_run(pipeline: Pipeline, result: RunResult) -> int:
    if not result.succeeded:
        print(result.log[-5000:], file=sys.stderr)
        print(
            f"DAG run of {pipeline.dag.dag_id} ended in state {result.state}",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    print(f"DAG run {result.run_id}: {result.state}\n")
    _print_table(result.xcoms)
    chooser = pipeline.chooser
    winner = next(
        (
            x.value
            for x in result.xcoms
            if x.task_id == chooser.task_id and x.key == chooser.push_key
        ),
        None,
    )
    print(f"\nwinner ({chooser.mode} {chooser.xcom_key}): {winner}")
    return EXIT_OK


def _print_table(xcoms: list[XComEntry]) -> None:
    header = ("key", "value", "task_id", "dag_id", "logical_date", "timestamp")
    rows = [header] + [
        (
            x.key,
            repr(x.value),
            x.task_id,
            x.dag_id,
            str(x.logical_date),
            str(x.timestamp),
        )
        for x in xcoms
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
