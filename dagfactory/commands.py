"""What each command does, from its arguments to an :class:`~dagfactory.report.Outcome`.

The core the command line calls: each function runs the stages in order (discover →
compile → plan → write, or a tool) and says what happened as data. It prints nothing
itself; :mod:`dagfactory.report` does, in the format asked for. Errors that end a
command at once are raised as :class:`~dagfactory.problems.DagfactoryError`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.build import Batch, Rendered, compile_batch
from dagfactory.compile.render import TemplateCache
from dagfactory.configs import discover
from dagfactory.output.cache import RenderCache
from dagfactory.output.plan import Action, Plan, output_path, plan_render
from dagfactory.output.writer import Staging, apply
from dagfactory.problems import (
    EXIT_PROBLEMS,
    Problem,
    TemplateError,
    UsageError,
)
from dagfactory.report import Outcome, Progress, error_summary, plural

if TYPE_CHECKING:
    from dagfactory.compile.spec import Pipeline
    from dagfactory.output.plan import PlannedFile
    from dagfactory.tools.run import RunResult

# The modules behind check, run, graph, init and schema are imported by their commands
# only: render, the command run on every commit, does not pay for them.

Say = Callable[[str], None]


def _compile(
    paths: list[Path],
    *,
    jobs: int | None = None,
    cache: RenderCache | None = None,
    out_dir: Path | None = None,
    templates: Path | None = None,
    template_cache: TemplateCache | None = None,
    render: bool = True,
    on_rendered: Callable[[Rendered], Rendered] | None = None,
) -> Batch | Outcome:
    """Every config compiled, or the outcome that reports every problem of the batch."""
    configs = discover(paths)
    if not configs:
        raise UsageError(
            f"no configs (*.yaml, *.yml) found in {', '.join(map(str, paths))}"
        )
    progress = Progress("validating")
    try:
        batch = compile_batch(
            configs,
            jobs=jobs,
            cache=cache,
            out_dir=out_dir,
            templates=templates,
            template_cache=template_cache,
            on_progress=progress.update,
            on_rendered=on_rendered,
            render=render,
        )
    except TemplateError as exc:
        return Outcome(EXIT_PROBLEMS, [Problem.general(f"{exc}; nothing written")])
    finally:
        progress.close()
    if batch.errors:
        return Outcome(
            EXIT_PROBLEMS, batch.problems, notes=[error_summary(batch.errors)]
        )
    return batch


def validate(paths: list[Path], *, jobs: int | None = None) -> Outcome:
    """Compile every config; write nothing (and render nothing: no file is needed)."""
    batch = _compile(paths, jobs=jobs, cache=RenderCache.from_file(), render=False)
    if isinstance(batch, Outcome):
        return batch
    outcome = Outcome(problems=list(batch.problems))  # its warnings
    outcome.say(f"{plural(len(batch.rendered), 'config')} valid")
    return outcome


def render(
    paths: list[Path],
    out_dir: Path,
    *,
    check: bool = False,
    diff: bool = False,
    prune: bool = False,
    force: Sequence[Path] = (),
    templates: Path | None = None,
    jobs: int | None = None,
) -> Outcome:
    """Compile every config and write its DAG file; with ``check`` or ``diff``, only show what would change."""
    started = time.perf_counter()
    cache = RenderCache.from_file()
    # --check and --diff write nothing, not even under a temporary name.
    staging = None if check or diff else Staging()
    template_cache = None if staging is None else TemplateCache.for_user()
    stage = (
        None if staging is None else functools.partial(_stage, staging, cache, out_dir)
    )
    try:
        batch = _compile(
            paths,
            jobs=jobs,
            cache=cache,
            out_dir=out_dir,
            templates=templates,
            template_cache=template_cache,
            on_rendered=stage,
        )
        if isinstance(batch, Outcome):
            return batch
        staged = () if staging is None else staging
        plan = plan_render(
            batch.rendered, out_dir, force, staged=staged, replaced=cache.replaced
        )
        if plan.blocked:
            return Outcome(EXIT_PROBLEMS, plan.blocked, notes=["nothing written"])
        if staging is None:
            outcome = _preview(plan, diff=diff)
            outcome.problems[:0] = [*batch.problems, *plan.warnings]
            return outcome
        outcome = _write(plan, prune=prune, staging=staging)
    finally:
        if staging is not None:
            staging.discard()
    outcome.problems[:0] = [*batch.problems, *plan.warnings]
    if outcome.exit_code:
        return outcome
    cache.save()
    written = len(plan.changes)
    removed = f", {len(plan.stale)} stale removed" if prune else ""
    elapsed = time.perf_counter() - started
    outcome.say(
        f"rendered {plural(plan.total, 'DAG')}: {written} written, {plan.total - written} unchanged, "
        f"0 errors{removed} in {elapsed:.2f} s"
    )
    return outcome


def _stage(
    staging: Staging, cache: RenderCache, out_dir: Path, unit: Rendered
) -> Rendered:
    """Start writing a just-compiled config's file if it changes; keep only its digest."""
    path = output_path(out_dir, unit.dag_id)
    if not cache.holds(path, unit.digest):
        staging.stage(path, unit.content)
    return dataclasses.replace(unit, content=None, pipeline=None)


def _stale_reason(stale: PlannedFile) -> str:
    return f"stale: generated from {stale.source}, which no longer produces it"


def _write(
    plan: Plan, *, prune: bool = False, staging: Staging | None = None
) -> Outcome:
    """Carry the plan out: its changes, and with ``prune`` its stale files."""
    applied = apply(plan, prune=prune, staging=staging)
    if applied.failure is not None:
        return Outcome(EXIT_PROBLEMS, [applied.failure])
    outcome = Outcome()
    for planned in applied.written:
        outcome.say(f"wrote {planned.path}")
    for stale in applied.removed:
        outcome.say(f"removed {stale.path} ({_stale_reason(stale)})")
    if not prune:
        outcome.problems += [
            Problem.in_file(
                str(stale.path),
                f"{_stale_reason(stale)}; `dagfactory render --prune` removes it",
                severity="warning",
            )
            for stale in plan.stale
        ]
    return outcome


def _preview(plan: Plan, *, diff: bool) -> Outcome:
    """``--check`` or ``--diff``: what rendering would change; writes nothing.

    ``--check`` names each file that would change, each followed by its unified diff;
    ``--diff`` prints the diffs alone (a patch).
    """
    outcome = Outcome()
    extra = [plan.ignore_file] if plan.ignore_file is not None else []
    for planned in [*plan.files, *extra]:
        if planned.action is Action.UNCHANGED:
            continue
        if not diff and planned.action is Action.REMOVE:
            outcome.say(f"would remove {planned.path} ({_stale_reason(planned)})")
        elif not diff:
            outcome.say(
                f"would {planned.action.value} {planned.path} (from {planned.source})"
            )
        outcome.output.append(planned.diff())
    changes, stale = plan.changes, plan.stale
    if len(plan.writes) > len(changes):
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
    if plan.writes or stale:
        outcome.exit_code = EXIT_PROBLEMS
    else:
        outcome.say(f"{plural(plan.total, 'DAG file')} up to date")
    return outcome


def run(
    target: str,
    configs: Path,
    out_dir: Path,
    *,
    home: Path | None = None,
    templates: Path | None = None,
    say: Say = print,
) -> Outcome:
    """Render one config (by file or DAG id), run its DAG on an embedded Airflow, show its XComs."""
    import tempfile

    from dagfactory.tools.run import run_dag

    by_file = Path(target).is_file()
    batch = _compile([Path(target)] if by_file else [configs], templates=templates)
    if isinstance(batch, Outcome):
        return batch
    units = [u for u in batch.rendered if by_file or u.dag_id == target]
    if not units:
        raise UsageError(f"no config in {configs} has dag_id {target!r}")
    (unit,) = units
    plan = plan_render([unit], out_dir)
    if plan.blocked:
        return Outcome(EXIT_PROBLEMS, plan.blocked, notes=["nothing written"])
    # Only this config's files: stale files are `render`'s business.
    outcome = _write(Plan(plan.total, plan.changes, ignore_file=plan.ignore_file))
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


def check(folder: Path) -> Outcome:
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
    result = check_folder(folder, references)
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


def graph(config: Path, picture: Path | None = None) -> Outcome:
    """Draw the DAG a config describes: Mermaid text, or a picture file."""
    from dagfactory.tools.graph import draw, to_mermaid

    if config.is_dir():
        raise UsageError(f"{config}: a folder; graph draws one config file")
    batch = _compile([config])
    if isinstance(batch, Outcome):
        return batch
    (pipeline,) = batch.pipelines
    outcome = Outcome()
    if picture is None:
        outcome.output.append(to_mermaid(pipeline))
        return outcome
    try:
        draw(pipeline, picture)
    except OSError as exc:
        message = f"cannot write it ({exc.strerror or exc})"
        return Outcome(EXIT_PROBLEMS, [Problem.in_file(str(picture), message)])
    outcome.say(f"wrote {picture}")
    return outcome


def init(
    name: str, config: Path | None = None, out_dir: Path = Path("generated_dags")
) -> Outcome:
    """Write a starter project: a commented config (default ``configs/NAME.yaml``) and
    the package of stub trainers it calls, in ``out_dir``."""
    from dagfactory.tools.init import write_starter

    config = config or Path("configs") / f"{name}.yaml"
    outcome = Outcome()
    for path in write_starter(name, config, out_dir):
        outcome.say(f"wrote {path}")
    run = (
        f"dagfactory run {config}"
        if config.parent != Path("configs")
        else f"dagfactory run {name}"
    )
    outcome.say(f"next: dagfactory validate {config}, dagfactory render, {run}")
    return outcome


def schema() -> Outcome:
    """The JSON Schema configs are validated against."""
    from dagfactory.compile.schema import SCHEMA_FILE

    return Outcome(output=[SCHEMA_FILE.read_text("utf-8")])
