"""The ``dagfactory`` command line: a thin shell over load, validate, render and write,
and over the modules that check, draw, scaffold and report.

Exit codes (as ruff's): 0 success; 1 problems found (invalid configs, outputs out of
date under ``--check`` or ``--diff``, a file in the way, a DAG file Airflow cannot load,
a failed DAG run); 2 usage or setup errors (Airflow or CairoSVG missing included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory import __version__
from dagfactory.cache import RenderCache
from dagfactory.errors import SetupError
from dagfactory.pipeline import Batch, compile_configs, discover, render_outputs
from dagfactory.render import TemplateError
from dagfactory.report import FORMATS, Progress, report_errors
from dagfactory.writer import (
    Output,
    Status,
    WriteError,
    recorded_source,
    removal_diff,
    stale_files,
    write_all,
    write_atomic,
)

if TYPE_CHECKING:
    from dagfactory.model import Pipeline
    from dagfactory.runner import RunResult, XComEntry

# The modules behind check, run, graph, init and schema are imported by their commands
# only: render, the command run on every commit, does not pay for them.

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
    except (UsageError, FileNotFoundError, SetupError) as exc:
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
            "--format",
            choices=FORMATS,
            default="text",
            help="how to report config errors: text (PATH:LINE:COL: error: ..., on stderr), "
            "json (an array on stdout) or github (::error workflow commands that annotate "
            "a pull request, on stdout); default: text",
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

    check = command(
        "check",
        "load a dags folder in a real Airflow DagBag",
        "Load every file of the folder in a real Airflow DagBag (in a child process with its "
        "own Airflow home) and report, per file, import errors with their traceback, cycles "
        "and duplicate DAG ids. Exit 1 on any problem. Needs Airflow: "
        "pip install 'dagfactory[airflow]'.",
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
        "write a commented starter config",
        "Write a commented starter config that validates and renders as it is, to "
        "configs/NAME.yaml (or --output FILE). An existing file is never overwritten.",
    )
    init.add_argument(
        "name",
        nargs="?",
        default="my_pipeline",
        metavar="NAME",
        help="the DAG id, and the config's file name (default: my_pipeline)",
    )
    add_output(init, "where to write the config (default: configs/NAME.yaml)")
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


def _compile(
    paths: list[Path],
    output_format: str = "text",
    *,
    jobs: int | None = None,
    cache: RenderCache | None = None,
    templates: Path | None = None,
) -> Batch | None:
    """Every config compiled, or None after reporting every error of the batch."""
    configs = discover(paths)
    if not configs:
        raise UsageError(
            f"no configs (*.yaml, *.yml) found in {', '.join(map(str, paths))}"
        )
    progress = Progress("validating")
    try:
        batch = compile_configs(configs, jobs, cache, templates, progress.update)
    finally:
        progress.close()
    if batch.errors:
        report_errors(batch.errors, output_format)
        return None
    return batch


def _statuses(
    outputs: list[Output], force: Sequence[Path] = ()
) -> dict[Output, Status] | None:
    """Each output's status, or None (after saying why) if a file dagfactory did not write is in the way.

    A file dagfactory did not generate is in the way unless ``force`` names it.
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
        return None
    return statuses


def _write(outputs: list[Output], force: Sequence[Path] = ()) -> tuple[int, int]:
    """Write every changed output, or none if any is in the way (unless ``force`` names it).

    Returns the exit code and how many outputs were written.
    """
    statuses = _statuses(outputs, force)
    if statuses is None:
        return EXIT_PROBLEMS, 0
    changed = [
        output for output, status in statuses.items() if status is not Status.UNCHANGED
    ]
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


def _stale_reason(path: Path) -> str:
    return f"stale: generated from {recorded_source(path)}, which no longer produces it"


def _preview(
    outputs: list[Output],
    total: int,
    stale: list[Path],
    *,
    diff: bool,
    force: Sequence[Path] = (),
) -> int:
    """``--check`` or ``--diff``: what rendering would change; writes nothing.

    ``--check`` names each file that would change, each followed by its unified diff;
    ``--diff`` prints the diffs alone (a patch). ``total`` counts the batch's DAG files:
    ``outputs`` and those already known to be up to date.
    """
    statuses = _statuses(outputs, force)
    if statuses is None:
        return EXIT_PROBLEMS
    changed = {
        output: status
        for output, status in statuses.items()
        if status is not Status.UNCHANGED
    }
    for output, status in changed.items():
        if not diff:
            print(f"would {status.value} {output.path} (from {output.source})")
        sys.stdout.write(output.diff())
    for path in stale:
        if not diff:
            print(f"would remove {path} ({_stale_reason(path)})")
        sys.stdout.write(removal_diff(path))
    if changed:
        print(
            f"{len(changed)} of {total} DAG files would change; run `dagfactory render`",
            file=sys.stderr,
        )
    if stale:
        print(
            f"{len(stale)} stale generated file{'s' if len(stale) != 1 else ''} would be removed; "
            "run `dagfactory render --prune`",
            file=sys.stderr,
        )
    if changed or stale:
        return EXIT_PROBLEMS
    print(f"{total} DAG files up to date")
    return EXIT_OK


def _render_command(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cache = RenderCache.from_file()
    batch = _compile(
        args.paths, args.format, jobs=args.jobs, cache=cache, templates=args.templates
    )
    if batch is None:
        return EXIT_PROBLEMS
    total = len(batch.compiled)
    outputs = render_outputs(batch, args.out)
    stale = stale_files(args.out, _produced(batch, args.out))
    if args.check or args.diff:
        return _preview(outputs, total, stale, diff=args.diff, force=args.force)
    code, written = _write(outputs, force=args.force)
    if code != EXIT_OK:
        return code
    cache.save()
    removed = ""
    for path in stale:
        if args.prune:
            reason = _stale_reason(path)  # read from the file's header, before it goes
            path.unlink()
            print(f"removed {path} ({reason})")
        else:
            print(
                f"{path}: warning: {_stale_reason(path)}; `dagfactory render --prune` removes it",
                file=sys.stderr,
            )
    if args.prune:
        removed = f", {len(stale)} stale removed"
    elapsed = time.perf_counter() - started
    print(
        f"rendered {total} DAGs: {written} written, {total - written} unchanged, "
        f"0 errors{removed} in {elapsed:.2f} s"
    )
    return EXIT_OK


def _produced(batch: Batch, out_dir: Path) -> list[tuple[Path, str]]:
    """Every file the batch produces (rewritten or already up to date) and its config."""
    return [(out_dir / f"{unit.dag_id}.py", unit.source) for unit in batch.compiled]


def _validate_command(args: argparse.Namespace) -> int:
    batch = _compile(
        args.paths, args.format, jobs=args.jobs, cache=RenderCache.from_file()
    )
    if batch is None:
        return EXIT_PROBLEMS
    print(f"{len(batch.compiled)} configs valid")
    return EXIT_OK


def _run_command(args: argparse.Namespace) -> int:
    import tempfile

    from dagfactory.runner import run_dag

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
    code, _ = _write(render_outputs(batch, args.out))
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
    print(f"\nwinner ({chooser.mode} {chooser.xcom_key}): {json.dumps(winner)}")
    return EXIT_OK


def _print_table(xcoms: list[XComEntry]) -> None:
    """The XComs as Airflow's *Admin > XComs* list shows them: values as JSON, times in UTC.

    A Map Index column appears when a mapped task pushed something, as in Airflow.
    """
    mapped = any(x.map_index >= 0 for x in xcoms)
    header = ["Key", "Value", "Task ID", "Dag ID", "Logical Date", "Timestamp"]
    if mapped:
        header.insert(3, "Map Index")
    rows = [header]
    for x in xcoms:
        row = [
            x.key,
            json.dumps(x.value),
            x.task_id,
            x.dag_id,
            _utc(x.logical_date),
            _utc(x.timestamp),
        ]
        if mapped:
            row.insert(3, str(x.map_index) if x.map_index >= 0 else "")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def _utc(stored: str | None) -> str:
    """A metadata-database time (naive UTC) as ``2026-01-31T12:00:00Z``."""
    from datetime import datetime

    if stored is None:
        return ""
    moment = datetime.fromisoformat(stored).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


def _check_command(args: argparse.Namespace) -> int:
    from dagfactory.check import check_folder, print_check

    if not args.folder.is_dir():
        raise UsageError(f"{args.folder}: no such folder")
    result = check_folder(args.folder)
    if not result.files:
        print(result.log[-5000:], file=sys.stderr)
        print(f"{args.folder}: Airflow found no DAG file to load", file=sys.stderr)
        return EXIT_PROBLEMS
    print_check(result)
    return EXIT_PROBLEMS if result.problems else EXIT_OK


def _graph_command(args: argparse.Namespace) -> int:
    from dagfactory.graph import to_mermaid, to_svg, write_png

    batch = _compile([args.config])
    if batch is None:
        return EXIT_PROBLEMS
    (pipeline,) = batch.pipelines
    if args.output is None:
        sys.stdout.write(to_mermaid(pipeline))
        return EXIT_OK
    suffix = args.output.suffix.lower()
    if suffix == ".svg":
        write_atomic(args.output, to_svg(pipeline))
    elif suffix == ".png":
        write_png(args.output, to_svg(pipeline))
    else:
        raise UsageError(f"{args.output}: the picture's name must end in .svg or .png")
    print(f"wrote {args.output}")
    return EXIT_OK


def _init_command(args: argparse.Namespace) -> int:
    from dagfactory.starter import starter_config

    target = args.output or DEFAULT_CONFIGS / f"{args.name}.yaml"
    if target.exists():
        raise UsageError(f"{target} already exists; not overwriting it")
    text, errors = starter_config(args.name, target)
    if errors:
        problems = "; ".join(error.message for error in errors)
        raise UsageError(f"{args.name!r} cannot be a DAG id: {problems}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("x", encoding="utf-8") as stream:
        stream.write(text)
    print(f"wrote {target}; next: dagfactory validate {target}")
    return EXIT_OK


def _schema_command(args: argparse.Namespace) -> int:
    from dagfactory.starter import SCHEMA

    sys.stdout.write(SCHEMA.read_text("utf-8"))
    return EXIT_OK
