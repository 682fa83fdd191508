"""A batch of configs in, a list of outputs (or every error) out.

Every config is loaded and validated before anything is rendered, so a batch with one
bad config produces no output at all. Large batches are compiled by worker processes;
results are gathered in config order, so outputs and errors come out in the same order
whatever the number of workers. A config whose bytes the render cache has already
compiled is not compiled again (see :mod:`dagfactory.cache`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.cache import CacheEntry, RenderCache
from dagfactory.errors import ConfigError, SpecError
from dagfactory.writer import Output

if TYPE_CHECKING:
    from dagfactory.model import Pipeline

CONFIG_SUFFIXES = (".yaml", ".yml")
# Below this many configs to compile, starting worker processes costs more than it saves.
PARALLEL_MIN_CONFIGS = 200


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


def default_jobs(configs: int) -> int:
    """Every CPU this process may use for a large batch; one process for a small one."""
    if configs < PARALLEL_MIN_CONFIGS:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Compiled:
    """One valid config: its DAG id (and where that is written) and its rendered file.

    ``pipeline`` and ``content`` are None when the render cache vouched for the config;
    then ``digest`` (the SHA-256 of the file it renders to) is all that is known.
    """

    path: Path
    source: str
    dag_id: str
    dag_id_line: int
    dag_id_column: int
    digest: str
    pipeline: Pipeline | None = None
    content: str | None = None


@dataclass
class Batch:
    """The result of compiling configs: the compiled configs when there is no error at all."""

    compiled: list[Compiled] = field(default_factory=list)
    errors: list[SpecError] = field(default_factory=list)

    @property
    def pipelines(self) -> list[Pipeline]:
        return [unit.pipeline for unit in self.compiled if unit.pipeline is not None]


def compile_config(path: Path) -> Compiled | list[SpecError]:
    """Load, validate, normalise and render one config; its errors if it has any."""
    # Imported here so that a batch the cache answers whole never pays for YAML,
    # JSON Schema and Jinja.
    from dagfactory.loader import load_file
    from dagfactory.model import build_pipeline
    from dagfactory.render import render_pipeline
    from dagfactory.validate import validate

    try:
        doc = load_file(path, display_name(path))
    except ConfigError as exc:
        return exc.errors
    problems = validate(doc)
    if problems:
        return problems
    pipeline = build_pipeline(doc)
    content = render_pipeline(pipeline)
    here = doc.locate(("dag", "dag_id"))
    return Compiled(
        path=path,
        source=doc.name,
        dag_id=pipeline.dag.dag_id,
        dag_id_line=here.line,
        dag_id_column=here.column,
        digest=digest(content.encode()),
        pipeline=pipeline,
        content=content,
    )


def digest(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex: how outputs and configs are recognised."""
    return hashlib.sha256(data).hexdigest()


def compile_configs(
    config_paths: list[Path], jobs: int | None = None, cache: RenderCache | None = None
) -> Batch:
    """Compile every config (on ``jobs`` processes); any error empties the batch.

    ``jobs`` None picks :func:`default_jobs`. With a ``cache``, configs it knows are
    taken from it, and the others are recorded in it.
    """
    results: dict[Path, Compiled | list[SpecError]] = {}
    keys: dict[Path, str] = {}
    if cache is not None:
        for path in config_paths:
            try:
                keys[path] = cache.key(display_name(path), path.read_bytes())
            except OSError:
                continue  # compiling it reports why it cannot be read
            entry = cache.get(keys[path])
            if entry is not None:
                results[path] = Compiled(path, display_name(path), *entry)
    pending = [path for path in config_paths if path not in results]
    jobs = default_jobs(len(pending)) if jobs is None else jobs
    results.update(zip(pending, _compile_all(pending, jobs), strict=True))
    batch = Batch()
    owners: dict[str, Compiled] = {}
    for path in config_paths:
        result = results[path]
        if isinstance(result, list):
            batch.errors += result
            continue
        if cache is not None and path in keys and result.pipeline is not None:
            cache.put(keys[path], _entry(result))
        # Output files are named after the DAG id: two configs may not share one,
        # not even in a different case (the files would clash on macOS and Windows).
        claim = result.dag_id.casefold()
        if claim in owners:
            other = owners[claim]
            message = f"the DAG id {result.dag_id!r} is already used by {other.source} (line {other.dag_id_line}); DAG ids must be unique"
            batch.errors.append(
                SpecError(
                    result.source,
                    result.dag_id_line,
                    result.dag_id_column,
                    ("dag", "dag_id"),
                    message,
                )
            )
            continue
        owners[claim] = result
        batch.compiled.append(result)
    if batch.errors:
        batch.compiled.clear()
    return batch


def _entry(compiled: Compiled) -> CacheEntry:
    return CacheEntry(
        compiled.dag_id,
        compiled.dag_id_line,
        compiled.dag_id_column,
        compiled.digest,
    )


def _compile_all(paths: list[Path], jobs: int) -> Iterable[Compiled | list[SpecError]]:
    """:func:`compile_config` of each path, in order, on ``jobs`` worker processes."""
    if jobs <= 1 or len(paths) <= 1:
        return map(compile_config, paths)
    jobs = min(jobs, len(paths))
    with ProcessPoolExecutor(max_workers=jobs) as executor:
        chunk = max(1, len(paths) // (jobs * 8))
        return list(executor.map(compile_config, paths, chunksize=chunk))


def render_outputs(batch: Batch, out_dir: Path) -> list[Output]:
    """One output per compiled config, named after its DAG id.

    A config the cache vouched for, whose file on disk has the expected bytes, needs
    no output at all; any other is compiled now to have its content.
    """
    outputs = []
    for unit in batch.compiled:
        path = out_dir / f"{unit.dag_id}.py"
        if unit.content is None:
            if _matches(path, unit.digest):
                continue
            unit = _recompile(unit)
        outputs.append(Output(path, unit.content, unit.source))
    return outputs


def _matches(path: Path, expected: str) -> bool:
    try:
        return digest(path.read_bytes()) == expected
    except FileNotFoundError:
        return False


def _recompile(unit: Compiled) -> Compiled:
    result = compile_config(unit.path)
    if isinstance(result, list):  # the cache said valid: only a changed file gets here
        raise ConfigError(result)
    return result
