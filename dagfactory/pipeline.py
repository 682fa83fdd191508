"""A batch of configs in, a list of outputs (or every error) out.

Every config is loaded and validated before anything is rendered, so a batch with one
bad config produces no output at all. Large batches are compiled by worker processes;
results are gathered in config order, so outputs and errors come out in the same order
whatever the number of workers. A config whose inputs the render cache has already
compiled is not compiled again (see :mod:`dagfactory.cache`).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from dagfactory.cache import CacheEntry, RenderCache
from dagfactory.errors import ConfigError, SpecError
from dagfactory.writer import Output

if TYPE_CHECKING:
    from dagfactory.loader import Document
    from dagfactory.model import Pipeline

CONFIG_SUFFIXES = (".yaml", ".yml")
DEFAULTS_STEM = "defaults"
# Below this many configs to compile, starting worker processes costs more than it saves.
PARALLEL_MIN_CONFIGS = 200
# Configs whose output depends on more than their files' bytes (the environment, a
# Markdown file) are always compiled: the render cache could not tell they changed.
_UNCACHEABLE = (b"!env", b"doc_md_file")


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


def load_config(config: ConfigFile) -> Document:
    """Load a config merged over every ``defaults.yaml`` from its root down to its folder.

    The nearer a defaults file, the more it wins; the config's own values win over all.
    """
    from dagfactory.loader import load_file, merge_defaults

    doc = load_file(config.path, display_name(config.path))
    for defaults_path in reversed(defaults_files(config)):
        doc = merge_defaults(load_file(defaults_path, display_name(defaults_path)), doc)
    return doc


def defaults_files(config: ConfigFile) -> list[Path]:
    """Existing defaults files from the root down to the config's folder."""
    return list(_defaults_files(config.path.parent, config.root))


@functools.lru_cache(maxsize=1024)
def _defaults_files(folder: Path, root: Path) -> tuple[Path, ...]:
    """Looked up once per folder of a batch (configs mostly share a few folders)."""
    folder, root = folder.absolute(), root.absolute()
    folders = [folder, *folder.parents]
    chain = folders[: folders.index(root) + 1] if root in folders else [folder]
    return tuple(
        folder / f"{DEFAULTS_STEM}{suffix}"
        for folder in reversed(chain)
        for suffix in CONFIG_SUFFIXES
        if (folder / f"{DEFAULTS_STEM}{suffix}").is_file()
    )


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

    config: ConfigFile
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
    templates: Path | None = None

    @property
    def pipelines(self) -> list[Pipeline]:
        return [unit.pipeline for unit in self.compiled if unit.pipeline is not None]


def compile_config(
    config: ConfigFile, templates: Path | None = None
) -> Compiled | list[SpecError]:
    """Load, validate, normalise and render one config; its errors if it has any."""
    # Imported here so that a batch the cache answers whole never pays for YAML,
    # JSON Schema and Jinja.
    from dagfactory.model import build_pipeline
    from dagfactory.render import render_pipeline
    from dagfactory.validate import validate

    try:
        doc = load_config(config)
    except ConfigError as exc:
        return exc.errors
    problems = validate(doc)
    if problems:
        return problems
    pipeline = build_pipeline(doc)
    content = render_pipeline(pipeline, templates)
    here = doc.locate(("dag", "dag_id"))
    return Compiled(
        config=config,
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
    configs: list[ConfigFile],
    jobs: int | None = None,
    cache: RenderCache | None = None,
    templates: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Batch:
    """Compile every config (on ``jobs`` processes); any error empties the batch.

    ``jobs`` None picks :func:`default_jobs`. With a ``cache``, configs it knows are
    taken from it, and the others are recorded in it. ``on_progress(done, total)`` is
    called as each config to compile is done, for a progress bar.
    """
    results: dict[ConfigFile, Compiled | list[SpecError]] = {}
    keys: dict[ConfigFile, str] = {}
    if cache is not None:
        # Defaults and template files are shared by many configs: list and read them once.
        shared = functools.cache(_named_bytes)
        template_files = (
            sorted(path for path in templates.rglob("*") if path.is_file())
            if templates is not None
            else []
        )
        for config in configs:
            key = _cache_key(cache, config, template_files, shared)
            if key is None:
                continue  # compiling it reports why it cannot be read
            keys[config] = key
            entry = cache.get(key)
            if entry is not None:
                source = display_name(config.path)
                results[config] = Compiled(config, source, *entry)
    pending = [config for config in configs if config not in results]
    jobs = default_jobs(len(pending)) if jobs is None else jobs
    compiled = _compile_all(pending, jobs, templates)
    for done, (config, result) in enumerate(zip(pending, compiled, strict=True), 1):
        results[config] = result
        if on_progress is not None:
            on_progress(done, len(pending))
    batch = Batch(templates=templates)
    owners: dict[str, Compiled] = {}
    for config in configs:
        result = results[config]
        if isinstance(result, list):
            batch.errors += result
            continue
        if cache is not None and config in keys and result.pipeline is not None:
            cache.put(keys[config], _entry(result))
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
        # A bad defaults file is reported once, not once per config below it.
        batch.errors = list(dict.fromkeys(batch.errors))
    return batch


def _cache_key(
    cache: RenderCache,
    config: ConfigFile,
    template_files: list[Path],
    shared: Callable[[Path], bytes],
) -> str | None:
    """The key of everything the config's output depends on, or None if uncacheable.

    ``shared`` reads the files other configs depend on too (as :func:`_named_bytes`).
    """
    try:
        inputs = [*defaults_files(config), *template_files]
        data = b"\0".join([_named_bytes(config.path), *map(shared, inputs)])
    except OSError:
        return None
    if any(marker in data for marker in _UNCACHEABLE):
        return None
    return cache.key(display_name(config.path), data)


def _named_bytes(path: Path) -> bytes:
    """A file's name and bytes, as they enter a render-cache key."""
    return (
        display_name(path).encode("utf-8", "surrogateescape")
        + b"\0"
        + path.read_bytes()
    )


def _entry(compiled: Compiled) -> CacheEntry:
    return CacheEntry(
        compiled.dag_id,
        compiled.dag_id_line,
        compiled.dag_id_column,
        compiled.digest,
    )


def _compile_all(
    configs: list[ConfigFile], jobs: int, templates: Path | None
) -> Iterator[Compiled | list[SpecError]]:
    """:func:`compile_config` of each config, in order, on ``jobs`` worker processes."""
    compile_one = functools.partial(compile_config, templates=templates)
    if jobs <= 1 or len(configs) <= 1:
        yield from map(compile_one, configs)
        return
    # Here, not at the top: multiprocessing costs a small render 20 ms to import.
    from concurrent.futures import ProcessPoolExecutor

    jobs = min(jobs, len(configs))
    with ProcessPoolExecutor(max_workers=jobs) as executor:
        chunk = max(1, len(configs) // (jobs * 8))
        yield from executor.map(compile_one, configs, chunksize=chunk)


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
            unit = _recompile(unit, batch.templates)
        outputs.append(Output(path, unit.content, unit.source))
    return outputs


def _matches(path: Path, expected: str) -> bool:
    try:
        return digest(path.read_bytes()) == expected
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def _recompile(unit: Compiled, templates: Path | None) -> Compiled:
    result = compile_config(unit.config, templates)
    if isinstance(result, list):  # the cache said valid: only a changed file gets here
        raise ConfigError(result)
    return result
