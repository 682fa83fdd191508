"""What several commands share: compiling the configs they are given, and writing a plan.

``render`` and ``run`` write DAG files; ``validate``, ``render``, ``run`` and ``graph``
compile configs. Each does it through these two functions, so that a batch's problems
and a write's report read the same whichever command met them.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.build import Batch, Rendered, compile_batch
from dagfactory.configs import discover
from dagfactory.output.cache import RenderCache
from dagfactory.output.guard import OutputGuard
from dagfactory.output.plan import Plan, PlannedFile
from dagfactory.output.writer import Staging, apply
from dagfactory.problems import EXIT_PROBLEMS, Problem, TemplateError, UsageError
from dagfactory.report import Outcome, Progress, error_summary

if TYPE_CHECKING:
    from dagfactory.compile.render import TemplateCache


def compile_configs(
    paths: list[Path],
    *,
    jobs: int | None = None,
    cache: RenderCache | None = None,
    out_dir: Path | None = None,
    shard_size: int | None = None,
    templates: Path | None = None,
    template_cache: TemplateCache | None = None,
    render: bool = True,
    on_rendered: Callable[[Rendered], Rendered] | None = None,
) -> Batch:
    """Every config compiled; the batch carries every problem met, a template's that
    stopped the batch too (test ``batch.errors``, and report them with :func:`failed`)."""
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
            shard_size=shard_size,
            templates=templates,
            template_cache=template_cache,
            on_progress=progress.update,
            on_rendered=on_rendered,
            render=render,
        )
    except TemplateError as exc:
        return Batch(problems=[Problem.general(f"{exc}; nothing written")])
    finally:
        progress.close()
    return batch


def failed(batch: Batch) -> Outcome:
    """The outcome of a batch with errors: every problem, and how many errors in how
    many config files (a template's problem, in none, says itself that nothing was
    written)."""
    in_files = [problem for problem in batch.errors if problem.file is not None]
    notes = [error_summary(in_files)] if in_files else []
    return Outcome(EXIT_PROBLEMS, batch.problems, notes=notes)


def stale_reason(stale: PlannedFile) -> str:
    return f"stale: generated from {stale.source}, which no longer produces it"


def write(
    plan: Plan,
    *,
    prune: bool = False,
    staging: Staging | None = None,
    journal: Path | None = None,
) -> Outcome:
    """Carry the plan out: its changes, and with ``prune`` its stale files."""
    applied = apply(plan, prune=prune, staging=staging, journal=journal)
    if applied.failure is not None:
        return Outcome(EXIT_PROBLEMS, [applied.failure])
    outcome = Outcome()
    for planned in applied.written:
        outcome.say(f"wrote {planned.path}")
    for stale in applied.removed:
        outcome.say(f"removed {stale.path} ({stale_reason(stale)})")
    if not prune:
        outcome.problems += [
            Problem.in_file(
                str(stale.path),
                f"{stale_reason(stale)}; `dagfactory render --prune` removes it",
                severity="warning",
            )
            for stale in plan.stale
        ]
    return outcome


@contextlib.contextmanager
def writing_to(
    out_dir: Path, project_root: Path, *, create: bool = True
) -> Iterator[OutputGuard]:
    """The block of a command that writes (with ``create``: or previews) ``out_dir``.

    SIGTERM (``docker stop``, Kubernetes) interrupts it as Ctrl-C does, so that every
    temporary file is removed on the way out (the exit status is 130 for both), and
    the folder's lock is held (:mod:`dagfactory.output.guard`), told on stderr when
    another render holds it. An ``out_dir`` that is a file is a usage error, said so
    before anything is compiled (not as each write's "File exists").
    """
    if out_dir.is_file():
        raise UsageError(f"--out: {out_dir} is a file, not a folder")
    guard = OutputGuard(project_root, out_dir)
    with sigterm_interrupts(), guard.hold(_tell_waiting, create=create):
        yield guard


def _tell_waiting(message: str) -> None:
    print(f"dagfactory: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt for the block, as Ctrl-C does (in the main
    thread only: the only one that may set a handler); a render, a run and a watch
    end the same way whichever of the two stops them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
