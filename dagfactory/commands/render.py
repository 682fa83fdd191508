"""``dagfactory render``: every config into its DAG file, or with ``--check`` and
``--diff`` what that would change."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import functools
import time
from collections.abc import Sequence
from pathlib import Path

from dagfactory.build import Batch, Rendered
from dagfactory.commands.arguments import (
    Command,
    add_out,
    add_paths,
    add_templates,
)
from dagfactory.commands.batch import (
    compile_configs,
    failed,
    stale_reason,
    write,
    writing_to,
)
from dagfactory.commands.watch import Watched, add_watch, watch
from dagfactory.compile.render import TemplateCache
from dagfactory.output.cache import RenderCache
from dagfactory.output.guard import Leftovers
from dagfactory.output.plan import Action, Plan, output_path, plan_render
from dagfactory.output.writer import Staging
from dagfactory.problems import EXIT_PROBLEMS
from dagfactory.project import working_project
from dagfactory.report import Outcome, Reporter, plural


def arguments(parser: argparse.ArgumentParser) -> None:
    add_paths(parser)
    add_out(parser, "output folder (default: generated_dags/)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_const",
        dest="mode",
        const=Mode.CHECK,
        help="write nothing; name every output that would be created, updated or removed "
        "as stale, each with its unified diff, and exit 1 if there is one (for CI)",
    )
    mode.add_argument(
        "--diff",
        action="store_const",
        dest="mode",
        const=Mode.DIFF,
        help="write nothing; print a unified diff of what would change, and exit 1 if "
        "anything would",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="also remove stale generated files (whose config is gone) from the output folder",
    )
    parser.set_defaults(mode=Mode.WRITE)
    parser.add_argument(
        "--config-errors",
        choices=("list", "summary"),
        default="list",
        help="how invalid configs are shown: each error (list, the default), or one "
        "line naming them, their errors left to `dagfactory validate` where it runs "
        "beside (the pre-commit hooks); either way nothing is written and the exit "
        "code is 1",
    )
    add_templates(parser)
    add_watch(parser, "render")
    parser.add_argument(
        "--force",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="overwrite this output file although dagfactory did not generate it; "
        "name each such file (repeat the option): any other one still stops the render",
    )


class Mode(enum.Enum):
    """What a render does with what it compiled."""

    WRITE = "write"  # write every changed file
    CHECK = "check"  # write nothing; name each file that would change, with its diff
    DIFF = "diff"  # write nothing; print the diffs alone (a patch)


def main(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    once = functools.partial(
        render,
        args.paths,
        args.out,
        mode=args.mode,
        prune=args.prune,
        force=args.force,
        templates=args.templates,
        jobs=args.jobs,
        config_errors=args.config_errors,
    )
    if not args.watch:
        return once()
    # What a render writes is never watched: it would start the next render.
    written = [args.out, working_project().root / ".dagfactory"]
    watched = Watched.of(args.paths, templates=args.templates, ignored=written)
    return watch(once, reporter, watched, doing="rendering")


def render(
    paths: list[Path],
    out_dir: Path,
    *,
    mode: Mode = Mode.WRITE,
    prune: bool = False,
    force: Sequence[Path] = (),
    templates: Path | None = None,
    jobs: int | None = None,
    config_errors: str = "list",
) -> Outcome:
    """Compile every config and write its DAG file; in the check and diff modes, only
    show what would change (writing nothing, not even under a temporary name).

    The output folder's lock is held from before planning to the last write; what a
    dead render left there is finished or removed first (or, in the check and diff
    modes, reported).
    """
    started = time.perf_counter()
    project = working_project()
    root = project.root
    writing = mode is Mode.WRITE
    with writing_to(out_dir, root, create=writing) as guard:
        leftovers = guard.leftovers()
        if writing:
            guard.recover(leftovers)
        cache = RenderCache.of_project(root)
        outcome = _render(
            paths,
            out_dir,
            cache,
            leftovers,
            guard.journal_path,
            started,
            mode=mode,
            prune=prune,
            force=force,
            templates=templates,
            jobs=jobs,
            config_errors=config_errors,
            shard_size=project.shard_size,
        )
    if writing and leftovers:
        _tell_recovered(outcome, leftovers)
    return outcome


def _render(
    paths: list[Path],
    out_dir: Path,
    cache: RenderCache,
    leftovers: Leftovers,
    journal: Path | None,
    started: float,
    *,
    mode: Mode,
    prune: bool,
    force: Sequence[Path],
    templates: Path | None,
    jobs: int | None,
    config_errors: str,
    shard_size: int | None,
) -> Outcome:
    writing = mode is Mode.WRITE
    # Check and diff stage nothing: they write nothing, not even under a temporary name.
    staging = Staging(journal)
    try:
        batch = compile_configs(
            paths,
            jobs=jobs,
            cache=cache,
            out_dir=out_dir,
            shard_size=shard_size,
            templates=templates,
            template_cache=TemplateCache.for_user() if writing else None,
            on_rendered=(
                functools.partial(_stage, staging, cache, out_dir, shard_size)
                if writing
                else None
            ),
        )
        if batch.errors:
            return failed(batch) if config_errors == "list" else _invalid(batch)
        plan = plan_render(
            batch.rendered,
            out_dir,
            force,
            staged=staging,
            replaced=cache.replaced,
            shard_size=shard_size,
            prune=prune,
        )
        if plan.blocked:
            return Outcome(EXIT_PROBLEMS, plan.blocked, notes=["nothing written"])
        if writing:
            outcome = write(plan, prune=prune, staging=staging)
        else:
            outcome = _preview(plan, leftovers, diff=mode is Mode.DIFF)
    finally:
        staging.discard()
    outcome.problems[:0] = [*batch.problems, *plan.warnings]
    if outcome.exit_code or not writing:
        return outcome
    cache.save()
    written = len(plan.changes)
    removed = f", {len(plan.stale)} stale removed" if prune else ""
    shards = f", {plural(len(plan.shards), 'shard')} written" if plan.shards else ""
    elapsed = time.perf_counter() - started
    outcome.say(
        f"rendered {plural(plan.total, 'DAG')}: {written} written, {plan.total - written} unchanged, "
        f"0 errors{removed}{shards} in {elapsed:.2f} s"
    )
    return outcome


def _tell_recovered(outcome: Outcome, leftovers: Leftovers) -> None:
    """What the render finished or removed of a dead render's, told first."""
    lines = [
        f"finished renaming {final} (a render was interrupted while renaming)"
        for _, final in leftovers.unfinished
    ]
    lines += [
        f"removed {path} (a temporary file an interrupted render left)"
        for path in leftovers.temporary
    ]
    outcome.output[:0] = [f"{line}\n" for line in lines]


def _stage(
    staging: Staging,
    cache: RenderCache,
    out_dir: Path,
    shard_size: int | None,
    unit: Rendered,
) -> Rendered:
    """Start writing a just-compiled config's file if it changes; keep only its digest."""
    path = output_path(out_dir, unit.dag_id, shard_size)
    if not cache.holds(path, unit.digest):
        staging.stage(path, unit.content)
    return dataclasses.replace(unit, content=None, pipeline=None)


def _invalid(batch: Batch) -> Outcome:
    """``--config-errors summary``: the invalid configs named in one line, their errors
    left to ``dagfactory validate``, so that where both run (the pre-commit hooks) each
    error is printed once. Problems in no config (a template's) are listed still:
    ``validate`` renders nothing and would not show them."""
    in_configs = [problem for problem in batch.errors if problem.file is not None]
    elsewhere = [problem for problem in batch.problems if problem.file is None]
    files = sorted({str(problem.file) for problem in in_configs})
    notes = []
    if files:
        notes.append(
            f"{plural(len(files), 'invalid config')} ({', '.join(files)}): "
            f"{plural(len(in_configs), 'error')}, shown by `dagfactory validate`; "
            "nothing written"
        )
    return Outcome(EXIT_PROBLEMS, elsewhere, notes=notes)


def _preview(plan: Plan, leftovers: Leftovers, *, diff: bool) -> Outcome:
    """``--check`` or ``--diff``: what rendering would change; writes nothing.

    ``--check`` names each file that would change, each followed by its unified diff,
    and what a dead render left; ``--diff`` prints the diffs alone (a patch).
    """
    outcome = Outcome()
    if not diff:
        for _, final in leftovers.unfinished:
            outcome.say(
                f"would finish renaming {final} (a render was interrupted while "
                "renaming: the folder holds old and new files)"
            )
        for path in leftovers.temporary:
            outcome.say(
                f"would remove {path} (a temporary file an interrupted render left)"
            )
    if leftovers:
        outcome.notes.append(
            "an interrupted render left the output folder unfinished; "
            "run `dagfactory render`"
        )
    extra = [plan.ignore_file] if plan.ignore_file is not None else []
    for planned in [*plan.files, *plan.shards, *extra]:
        if planned.action is Action.UNCHANGED:
            continue
        if not diff and planned.action is Action.REMOVE:
            outcome.say(f"would remove {planned.path} ({stale_reason(planned)})")
        elif not diff:
            outcome.say(
                f"would {planned.action.value} {planned.path} (from {planned.source})"
            )
        outcome.output.append(planned.diff())
    changes, stale = plan.changes, plan.stale
    if plan.shards:
        outcome.notes.append(
            f"{plural(len(plan.shards), 'shard file')} of the bundle would change; "
            "run `dagfactory render`"
        )
    if len(plan.writes) > len(changes) + len(plan.shards):
        outcome.notes.append(
            f"{plan.ignore_file.path} would change; run `dagfactory render`"
        )
    if changes:
        outcome.notes.append(
            f"{len(changes)} of {plural(plan.total, 'DAG file')} would change; run `dagfactory render`"
        )
    if stale:
        outcome.notes.append(
            f"{plural(len(stale), 'stale generated file')} would be removed; "
            "run `dagfactory render --prune`"
        )
    if plan.writes or stale or leftovers:
        outcome.exit_code = EXIT_PROBLEMS
    else:
        outcome.say(f"{plural(plan.total, 'DAG file')} up to date")
    return outcome


COMMAND = Command(
    "render",
    "render configs into DAG files",
    "Validate every config, then write one DAG file per config into the output folder. "
    "Nothing is written if any config is invalid; unchanged files are not touched; "
    "files dagfactory did not generate are never overwritten or removed. A generated "
    "file whose config is gone is stale: --check and --diff report it, --prune removes it.",
    arguments,
    main,
)
