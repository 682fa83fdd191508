"""A batch of configs in, a list of outputs (or every error) out.

Every config is loaded and validated before anything is rendered, so a batch with one
bad config produces no output at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from dagfactory.errors import ConfigError, SpecError
from dagfactory.loader import Document, load_file, merge_defaults
from dagfactory.model import Pipeline, build_pipeline
from dagfactory.render import render_pipeline
from dagfactory.validate import validate
from dagfactory.writer import Output

CONFIG_SUFFIXES = (".yaml", ".yml")
DEFAULTS_STEM = "defaults"


def display_name(path: Path) -> str:
    """``path`` relative to the working directory when inside it, with forward slashes."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


class ConfigFile(NamedTuple):
    """A config and the folder it was found under (where defaults files start)."""

    path: Path
    root: Path


def discover(paths: list[Path]) -> list[ConfigFile]:
    """The configs named by ``paths``: files as given, folders searched recursively.

    ``defaults.yaml`` files are not configs: they are merged under the configs below them.
    """
    found: dict[Path, ConfigFile] = {}
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if _is_config(candidate):
                    found.setdefault(candidate, ConfigFile(candidate, path))
        elif path.exists():
            found.setdefault(path, ConfigFile(path, path.parent))
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return list(found.values())


def _is_config(path: Path) -> bool:
    return (
        path.suffix in CONFIG_SUFFIXES and path.stem != DEFAULTS_STEM and path.is_file()
    )


def load_config(
    config: ConfigFile, cache: dict[Path, Document] | None = None
) -> Document:
    """Load a config merged over every ``defaults.yaml`` from its root down to its folder.

    The nearer a defaults file, the more it wins; the config's own values win over all.
    """
    cache = {} if cache is None else cache
    doc = load_file(config.path, display_name(config.path))
    for defaults_path in reversed(_defaults_files(config)):
        if defaults_path not in cache:
            cache[defaults_path] = load_file(defaults_path, display_name(defaults_path))
        doc = merge_defaults(cache[defaults_path], doc)
    return doc


def _defaults_files(config: ConfigFile) -> list[Path]:
    """Existing defaults files from the root down to the config's folder."""
    folder, root = config.path.parent.absolute(), config.root.absolute()
    folders = [folder, *folder.parents]
    chain = folders[: folders.index(root) + 1] if root in folders else [folder]
    return [
        folder / f"{DEFAULTS_STEM}{suffix}"
        for folder in reversed(chain)
        for suffix in CONFIG_SUFFIXES
        if (folder / f"{DEFAULTS_STEM}{suffix}").is_file()
    ]


@dataclass
class Batch:
    """The result of compiling configs: outputs when there is no error at all."""

    pipelines: list[Pipeline] = field(default_factory=list)
    errors: list[SpecError] = field(default_factory=list)


def render_outputs(
    pipelines: list[Pipeline], out_dir: Path, templates: Path | None = None
) -> list[Output]:
    """One output per pipeline, named after its DAG id (``templates`` overrides)."""
    return [
        Output(out_dir / f"{p.dag.dag_id}.py", render_pipeline(p, templates), p.source)
        for p in pipelines
    ]


def compile_configs(
    configs: list[ConfigFile],
    on_progress: Callable[[int, int], None] | None = None,
) -> Batch:
    """Load, validate and normalise every config; any error empties the batch's pipelines.

    ``on_progress(n, total)`` is called as the n-th config is taken up, for a progress bar.
    """
    batch = Batch()
    owners: dict[str, tuple[str, int]] = {}
    defaults_cache: dict[Path, Document] = {}
    for done, config in enumerate(configs, start=1):
        if on_progress:
            on_progress(done, len(configs))
        try:
            doc = load_config(config, defaults_cache)
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
        # A bad defaults file is reported once, not once per config below it.
        batch.errors = list(dict.fromkeys(batch.errors))
    return batch
