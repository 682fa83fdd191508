"""``dagfactory validate``: every config checked, nothing written."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from dagfactory.commands.arguments import Command, add_paths
from dagfactory.commands.batch import compile_configs, failed
from dagfactory.commands.watch import Watched, add_watch, watch
from dagfactory.output.cache import RenderCache
from dagfactory.project import working_project
from dagfactory.report import Outcome, Reporter, plural


def arguments(parser: argparse.ArgumentParser) -> None:
    add_paths(parser)
    add_watch(parser, "validate")


def main(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    once = functools.partial(validate, args.paths, jobs=args.jobs)
    if not args.watch:
        return once()
    return watch(once, reporter, Watched.of(args.paths), doing="validating")


def validate(paths: list[Path], *, jobs: int | None = None) -> Outcome:
    """Compile every config; write nothing (and render nothing: no file is needed)."""
    batch = compile_configs(
        paths,
        jobs=jobs,
        cache=RenderCache.of_project(working_project().root),
        render=False,
    )
    if batch.errors:
        return failed(batch)
    outcome = Outcome(problems=list(batch.problems))  # its warnings
    outcome.say(f"{plural(len(batch.rendered), 'config')} valid")
    return outcome


COMMAND = Command(
    "validate",
    "validate configs only",
    "Check every config against the schema and the semantic rules; write nothing.",
    arguments,
    main,
)
