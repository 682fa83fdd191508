"""A batch of configs in, every valid config's DAG file (or every problem) out.

Every config is compiled (:func:`dagfactory.compile.compile_config`) before anything
is written, so a batch with one bad config produces no output at all, and each config
is compiled at most once. Large batches are compiled by worker processes; results are
gathered in config order, so outputs and problems come out in the same order whatever
the number of workers. A config the render cache knows is not compiled at all when
nothing needs its content: for ``validate``, or when its DAG file is already current;
and ``validate`` compiles the others without rendering their files.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.compile import Compilation, DefaultsDocuments, compile_config
from dagfactory.compile.environment import redact
from dagfactory.configs import ConfigSource, display_name
from dagfactory.files import digest, read_bounded
from dagfactory.limits import MAX_CONFIG_BYTES
from dagfactory.output.cache import CacheEntry, RenderCache, recorded_inputs
from dagfactory.output.plan import output_path, recorded_name
from dagfactory.problems import Problem
from dagfactory.workers import compile_all, default_jobs

if TYPE_CHECKING:
    from dagfactory.compile.pipeline import Pipeline
    from dagfactory.compile.render import TemplateCache


@dataclass(frozen=True)
class Rendered:
    """One valid config of a batch: its DAG id (and where that is written) and its file.

    ``content`` and ``pipeline`` are None when the render cache vouched for the config
    and nothing needs them; then ``digest`` (the SHA-256 of its file) is all that is known.
    A config compiled without rendering has no ``content`` and no ``digest``.
    ``env`` is what the ``!env`` variables it read hold, for :func:`redact`: a message
    about the config (its DAG id may be read from one) names them, never shows them.
    """

    config: ConfigSource
    recorded_as: str  # how the file's header names the config
    dag_id: str
    dag_id_line: int
    dag_id_column: int
    digest: str | None
    code_modules: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()
    content: str | None = None
    pipeline: Pipeline | None = None
    env: Mapping[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def source(self) -> str:
        """The config's name, as errors give it."""
        return self.config.name

    @classmethod
    def of(cls, config: ConfigSource, compilation: Compilation) -> Rendered:
        """A config that compiled: its warnings are the compilation's problems."""
        compiled = compilation.compiled
        content = compiled.content
        return cls(
            config=config,
            recorded_as=compiled.pipeline.source,
            dag_id=compiled.dag_id,
            dag_id_line=compiled.dag_id_line,
            dag_id_column=compiled.dag_id_column,
            digest=None if content is None else digest(content.encode()),
            code_modules=compiled.pipeline.code_modules,
            warnings=compilation.problems,
            content=content,
            pipeline=compiled.pipeline,
            env=compiled.inputs.env,
        )

    @classmethod
    def cached(
        cls, config: ConfigSource, recorded_as: str, entry: CacheEntry
    ) -> Rendered:
        """The config the render cache vouched for: what its entry holds, and no file."""
        return cls(
            config=config,
            recorded_as=recorded_as,
            dag_id=entry.dag_id,
            dag_id_line=entry.dag_id_line,
            dag_id_column=entry.dag_id_column,
            digest=entry.digest,
            code_modules=entry.code_modules,
            warnings=entry.warnings,
            # unchanged since the entry was recorded (the cache checks), so read now
            env={name: os.environ.get(name) for name in entry.inputs.get("env", {})},
        )


@dataclass
class Batch:
    """The result of compiling configs: every one of them when there is no error at all.

    ``problems`` are the errors and warnings of every config, in config order.
    """

    rendered: list[Rendered] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def pipelines(self) -> list[Pipeline]:
        return [unit.pipeline for unit in self.rendered if unit.pipeline is not None]


def compile_batch(
    configs: list[ConfigSource],
    *,
    jobs: int | None = None,
    cache: RenderCache | None = None,
    out_dir: Path | None = None,
    shard_size: int | None = None,
    templates: Path | None = None,
    template_cache: TemplateCache | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_rendered: Callable[[Rendered], Rendered] | None = None,
    render: bool = True,
) -> Batch:
    """Compile every config (on ``jobs`` processes); any problem empties the batch.

    ``jobs`` None picks :func:`default_jobs`. With a ``cache``, a config it knows is
    taken from it (with ``out_dir``: only if its DAG file there is current, else it is
    compiled for its content; ``shard_size``: bundled there), and every config compiled is recorded in it. Without
    ``render``, no DAG file is rendered, so none is recorded: an entry vouches for
    the digest of its file. ``template_cache`` (handed to every worker) keeps the
    compiled template for later processes.
    ``on_progress(done, total)`` is called as each config to compile is done, and
    ``on_rendered`` with each config rendered, in config order, as it comes: what it
    returns is kept in the batch instead (so a large batch need not hold every file).
    """
    # Lists by config index, not dicts by config: hashing 1,000 ConfigSources
    # several times each is a tenth of a no-op render.
    results: list[Rendered | list[Problem] | None] = [None] * len(configs)
    keys: dict[int, str] = {}
    names = [
        config.name if out_dir is None else recorded_name(config.path, out_dir)
        for config in configs
    ]
    if cache is not None:
        keys = _cache_keys(cache, configs, names, templates)
        for index, key in keys.items():
            entry = cache.get(key)
            if entry is not None and (
                out_dir is None
                or cache.holds(
                    output_path(out_dir, entry.dag_id, shard_size), entry.digest
                )
            ):
                results[index] = Rendered.cached(configs[index], names[index], entry)
                cache.contents.pop(os.fspath(configs[index].path), None)  # not needed
    pending = [index for index, result in enumerate(results) if result is None]
    jobs = default_jobs(len(pending)) if jobs is None else jobs
    outcomes = compile_all(
        [configs[i] for i in pending],
        [names[i] for i in pending],
        _source_reader(cache),
        jobs,
        functools.partial(
            _compile_one,
            templates=templates,
            template_cache=template_cache,
            render=render,
        ),
    )
    for done, (index, outcome) in enumerate(zip(pending, outcomes, strict=True), 1):
        if outcome.compiled is not None:
            results[index] = Rendered.of(configs[index], outcome)
            if outcome.compiled.content is not None:
                if index in keys:
                    cache.put(keys[index], _entry(outcome))
                if on_rendered is not None:
                    results[index] = on_rendered(results[index])
        else:
            results[index] = list(outcome.problems)
        if on_progress is not None:
            on_progress(done, len(pending))
    return _gather(results)


def _gather(results: list[Rendered | list[Problem]]) -> Batch:
    """The batch in config order, with one more rule: DAG ids are unique across configs."""
    batch = Batch()
    owners: dict[str, Rendered] = {}
    for result in results:
        if isinstance(result, list):
            batch.problems += result
            continue
        batch.problems += result.warnings
        # Output files are named after the DAG id: two configs may not share one,
        # not even in a different case (the files would clash on macOS and Windows).
        claim = result.dag_id.casefold()
        if claim in owners:
            other = owners[claim]
            message = redact(
                f"the DAG id {result.dag_id!r} is already used by {other.source}"
                f" (line {other.dag_id_line}); DAG ids must be unique",
                {**other.env, **result.env},
            )
            batch.problems.append(
                Problem(
                    result.source,
                    result.dag_id_line,
                    result.dag_id_column,
                    ("dag", "dag_id"),
                    message,
                )
            )
            continue
        owners[claim] = result
        batch.rendered.append(result)
    if batch.errors:
        batch.rendered.clear()
    # A problem in a defaults file is reported once, not once per config below it.
    batch.problems = list(dict.fromkeys(batch.problems))
    return batch


def _cache_keys(
    cache: RenderCache,
    configs: list[ConfigSource],
    names: list[str],
    templates: Path | None,
) -> dict[int, str]:
    """The key of everything each config's output depends on (by the config's index);
    none for an unreadable one.

    Defaults and template files are shared by many configs: listed and read once.
    """
    named_digest = functools.partial(_named_digest, cache)
    shared = functools.cache(named_digest)
    limit = MAX_CONFIG_BYTES
    template_files = (
        sorted(path for path in templates.rglob("*") if path.is_file())
        if templates is not None
        else []
    )
    keys = {}
    for index, config in enumerate(configs):
        try:
            own = named_digest(config.path, config.name, limit=limit)
            inputs = [shared(path, name, limit=limit) for path, name in config.defaults]
            inputs += [
                shared(path, display_name(path), keep=False) for path in template_files
            ]
        except OSError:
            continue  # compiling it reports why it cannot be read
        # How the header names the config is in the file: it is in the key too.
        name = f"{config.name}\0{names[index]}"
        keys[index] = cache.key(name, b"\0".join([own, *inputs]))
    return keys


def _named_digest(
    cache: RenderCache,
    path: Path,
    name: str,
    *,
    keep: bool = True,
    limit: int | None = None,
) -> bytes:
    """A file's name and SHA-256, as they enter a render-cache key; with ``keep``,
    bytes read now are kept for compiling (see :func:`_source_reader`)."""
    value = cache.digest_of(path, keep=keep, limit=limit)
    return f"{name}\0{value}".encode("utf-8", "surrogateescape")


def _source_reader(
    cache: RenderCache | None,
) -> Callable[[ConfigSource], dict[Path, bytes]]:
    """The bytes of a config's file and its defaults files, for compiling it: those the
    render cache read for its key, else read now; a defaults file is read once for the
    batch, whatever the number of configs below it. A file that cannot be read, is
    not a regular file or is larger than a config may be is left out, unread
    (compiling it reports why)."""
    kept = {} if cache is None else cache.contents
    defaults: dict[Path, bytes | None] = {}

    def read(path: Path) -> bytes | None:
        data = kept.pop(os.fspath(path), None)
        if data is None:
            try:
                data = read_bounded(path, MAX_CONFIG_BYTES, "configs")
            except OSError:
                return None  # not a file within the limit: its loader says why
        return data

    def sources_of(config: ConfigSource) -> dict[Path, bytes]:
        for path, _ in config.defaults:
            if path not in defaults:
                defaults[path] = read(path)
        files = [(config.path, read(config.path))]
        files += [(path, defaults[path]) for path, _ in config.defaults]
        return {path: data for path, data in files if data is not None}

    return sources_of


def _entry(compilation: Compilation) -> CacheEntry:
    compiled = compilation.compiled
    return CacheEntry(
        dag_id=compiled.dag_id,
        dag_id_line=compiled.dag_id_line,
        dag_id_column=compiled.dag_id_column,
        digest=digest(compiled.content.encode()),
        inputs=recorded_inputs(compiled.inputs),
        code_modules=compiled.pipeline.code_modules,
        warnings=compilation.problems,
    )


def _compile_one(
    config: ConfigSource,
    recorded_as: str,
    sources: Mapping[Path, bytes],
    *,
    templates: Path | None,
    template_cache: TemplateCache | None,
    render: bool,
    defaults_documents: DefaultsDocuments,
) -> Compilation:
    return compile_config(
        config.path,
        config.name,
        config.defaults,
        templates,
        recorded_as,
        render=render,
        template_cache=template_cache,
        sources=sources,
        defaults_documents=defaults_documents,
    )
