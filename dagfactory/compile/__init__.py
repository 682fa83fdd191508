"""Compile one config, one way: :mod:`.load` → :mod:`.validate` → :mod:`.spec` → :mod:`.render`.

Each stage takes what the one before it made and nothing else; only the loader reads
(the config, its defaults files, what the config brings in from outside, all recorded
on the document). A config that fails a stage stops there with every problem that
stage found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.problems import ConfigError, Problem

if TYPE_CHECKING:
    from dagfactory.compile.load import Document, Inputs
    from dagfactory.compile.references import Reference
    from dagfactory.compile.render import TemplateCache
    from dagfactory.compile.spec import Pipeline


@dataclass(frozen=True)
class Compiled:
    """A valid config: its spec, the DAG file it renders to, and where its DAG id is written.

    ``references`` are the ``module:function`` names it makes its DAG call, for ``check``.
    ``content`` is None when it was compiled without rendering (nothing needed the file).
    """

    name: str
    pipeline: Pipeline
    content: str | None
    inputs: Inputs
    dag_id_line: int
    dag_id_column: int
    references: tuple[Reference, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def dag_id(self) -> str:
        return self.pipeline.dag.dag_id


def compile_config(
    path: Path,
    name: str,
    defaults: Sequence[tuple[Path, str]] = (),
    templates: Path | None = None,
    recorded_as: str | None = None,
    *,
    render: bool = True,
    template_cache: TemplateCache | None = None,
    sources: Mapping[Path, bytes] | None = None,
) -> Compiled | list[Problem]:
    """Compile the config at ``path`` (called ``name``) over its ``defaults`` files.

    ``recorded_as`` is how the generated file's header names the config (default:
    ``name``). Without ``render`` the DAG file is not rendered: a valid config always
    renders, so validating needs no template (nor Jinja).

    Returns every problem of the first stage that found an error (a warning alone
    does not stop a config; it comes with the result). ``templates`` is a folder
    whose ``dag.py.j2`` replaces the built-in template; a template that breaks raises
    :class:`~dagfactory.problems.TemplateError` (no config could be rendered with it).
    ``template_cache`` keeps the compiled template for later processes; ``sources``
    holds the bytes of the config or its defaults files that the caller already read.
    """
    # Imported here so that a batch the render cache answers whole never pays for
    # YAML, JSON Schema and Jinja.
    from dagfactory.compile.load import load_config

    try:
        doc = load_config(path, name, defaults, sources)
    except ConfigError as exc:
        return exc.problems
    return compile_document(
        doc, templates, recorded_as, render=render, template_cache=template_cache
    )


def compile_text(
    text: str, name: str, templates: Path | None = None
) -> Compiled | list[Problem]:
    """Compile a config given as text (no defaults files, nothing read from disk)."""
    from dagfactory.compile.load import load_text

    try:
        doc = load_text(text, name)
    except ConfigError as exc:
        return exc.problems
    return compile_document(doc, templates)


def compile_document(
    doc: Document,
    templates: Path | None = None,
    recorded_as: str | None = None,
    *,
    render: bool = True,
    template_cache: TemplateCache | None = None,
) -> Compiled | list[Problem]:
    """The stages after loading: validate, build the spec, render (and list its callables)."""
    from dagfactory.compile.references import callable_references
    from dagfactory.compile.spec import build_spec
    from dagfactory.compile.validate import validate

    problems = validate(doc)
    if any(problem.severity == "error" for problem in problems):
        return problems
    pipeline = build_spec(doc, recorded_as or doc.name)
    here = doc.locate(("dag", "dag_id"))
    content = None
    if render:
        from dagfactory.compile.render import render_pipeline

        content = render_pipeline(pipeline, templates, template_cache)
    return Compiled(
        name=doc.name,
        pipeline=pipeline,
        content=content,
        inputs=doc.inputs,
        dag_id_line=here.line,
        dag_id_column=here.column,
        references=callable_references(doc, pipeline),
        warnings=tuple(problems),
    )
