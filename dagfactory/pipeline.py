"""A batch of configs in, a list of outputs (or every error) out.

Every config is loaded and validated before anything is rendered, so a batch with one
bad config produces no output at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dagfactory.errors import ConfigError, SpecError
from dagfactory.loader import load_file
from dagfactory.model import Pipeline, build_pipeline
from dagfactory.render import render_pipeline
from dagfactory.validate import validate
from dagfactory.writer import Output

CONFIG_SUFFIXES = (".yaml", ".yml")


def display_name(path: Path) -> str:
    """``path`` relative to the working directory when inside it, with forward slashes."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def discover(paths: list[Path]) -> list[Path]:
    """The config files named by ``paths``: files as given, folders searched recursively."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                candidate
                for candidate in path.rglob("*")
                if candidate.suffix in CONFIG_SUFFIXES and candidate.is_file()
            )
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return list(dict.fromkeys(found))


@dataclass
class Batch:
    """The result of compiling configs: outputs when there is no error at all."""

    pipelines: list[Pipeline] = field(default_factory=list)
    errors: list[SpecError] = field(default_factory=list)


def render_outputs(pipelines: list[Pipeline], out_dir: Path) -> list[Output]:
    """One output per pipeline, named after its DAG id."""
    return [
        Output(out_dir / f"{p.dag.dag_id}.py", render_pipeline(p), p.source)
        for p in pipelines
    ]


def compile_configs(
    config_paths: list[Path],
    on_progress: Callable[[int, int], None] | None = None,
) -> Batch:
    """Load, validate and normalise every config; any error empties the batch's pipelines.

    ``on_progress(n, total)`` is called as the n-th config is taken up, for a progress bar.
    """
    batch = Batch()
    owners: dict[str, tuple[str, int]] = {}
    for done, path in enumerate(config_paths, start=1):
        if on_progress:
            on_progress(done, len(config_paths))
        try:
            doc = load_file(path, display_name(path))
        except ConfigError as exc:
            batch.errors += exc.errors
            continue
        problems = validate(doc)
        if problems:
            batch.errors += problems
            continue
        pipeline = build_pipeline(doc)
        # Output files are named after the DAG id: two configs may not share one,
        # not even in a different case (the files would clash on macOS and Windows).
        claim = pipeline.dag.dag_id.casefold()
        here = doc.locate(("dag", "dag_id"))
        if claim in owners:
            other, line = owners[claim]
            message = f"the DAG id {pipeline.dag.dag_id!r} is already used by {other} (line {line}); DAG ids must be unique"
            batch.errors.append(
                SpecError(doc.name, here.line, here.column, ("dag", "dag_id"), message)
            )
            continue
        owners[claim] = (doc.name, here.line)
        batch.pipelines.append(pipeline)
    if batch.errors:
        batch.pipelines.clear()
    return batch
