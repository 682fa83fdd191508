"""Compile one config, one way: :mod:`.load` → :mod:`.validate` → :mod:`.spec` → :mod:`.render`.

Each stage takes what the one before it made and nothing else; only the loader reads
(the config, its defaults files, what the config brings in from outside, all recorded
on the document). A config that fails a stage stops there with every problem that
stage found. Every stage says what it found as a result that carries its problems
(:class:`~.load.Loaded`, :class:`Compilation`); none raises for a config's mistakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.problems import Problem

if TYPE_CHECKING:
    from dagfactory.compile.document import Document, Inputs
    from dagfactory.compile.load import Loaded
    from dagfactory.compile.pipeline import Pipeline
    from dagfactory.compile.references import Reference
    from dagfactory.compile.render import TemplateCache


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

    @property
    def dag_id(self) -> str:
        return self.pipeline.dag.dag_id


@dataclass(frozen=True)
class Compilation:
    """What compiling one config gave: every problem found, and the result if none is an error.

    ``problems`` are sorted by place: those of the first stage that found an error
    (then ``compiled`` is None), or the warnings of a config that compiled (a warning
    alone does not stop a config).
    """

    compiled: Compiled | None
    problems: tuple[Problem, ...] = ()

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]


class DefaultsDocuments:
    """The defaults files of one batch, each loaded once however many configs it is under.

    A batch makes one (a worker process one per chunk of configs it compiles) and
    passes it to each :func:`compile_config`: six configs under one ``defaults.yaml``
    parse it once, not six times. Never process-wide: a file may change between two
    batches of one process. Here, not in :mod:`.load`: a batch the render cache
    answers whole makes one, and must not pay for importing YAML.
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[Path, str], Loaded] = {}

    def loaded(
        self, path: Path, name: str, load: Callable[[Path, str], Loaded]
    ) -> Loaded:
        """The defaults file at ``path`` (called ``name``), loaded by ``load`` on first use."""
        key = (path, name)
        if key not in self._loaded:
            self._loaded[key] = load(path, name)
        return self._loaded[key]


def compile_config(
    path: Path,
    name: str,
    defaults: Sequence[tuple[Path, str]] = (),
    templates: Path | None = None,
    recorded_as: str | None = None,
    *,
    render: bool = True,
    defaults_documents: DefaultsDocuments | None = None,
    template_cache: TemplateCache | None = None,
    sources: Mapping[Path, bytes] | None = None,
) -> Compilation:
    """Compile the config at ``path`` (called ``name``) over its ``defaults`` files.

    ``recorded_as`` is how the generated file's header names the config (default:
    ``name``). Without ``render`` the DAG file is not rendered: a valid config always
    renders, so validating needs no template (nor Jinja).

    ``templates`` is a folder whose ``dag.py.j2`` replaces the built-in template; a
    template that breaks raises :class:`~dagfactory.problems.TemplateError` (no config
    could be rendered with it).

    ``sources`` holds the bytes of the config or its defaults files that the caller
    already read (the same checks apply as to a file read here); ``defaults_documents``
    loads each defaults file once for a whole batch (without it, they are loaded for
    this config alone); ``template_cache`` keeps the compiled template for later
    processes.
    """
    # Imported here so that a batch the render cache answers whole never pays for
    # YAML, JSON Schema and Jinja.
    from dagfactory.compile.load import load_config

    loaded = load_config(
        path,
        name,
        defaults,
        sources=sources,
        load_defaults=defaults_documents.loaded if defaults_documents else None,
    )
    if loaded.document is None:
        return Compilation(None, loaded.problems)
    return compile_document(
        loaded.document,
        templates,
        recorded_as,
        render=render,
        template_cache=template_cache,
    )


def compile_text(text: str, name: str, templates: Path | None = None) -> Compilation:
    """Compile a config given as text (no defaults files, nothing read from disk)."""
    from dagfactory.compile.environment import withhold_refused
    from dagfactory.compile.load import load_text

    loaded = load_text(text, name)
    if loaded.document is None:
        return Compilation(None, loaded.problems)
    withhold_refused(loaded.document)
    return compile_document(loaded.document, templates)


def compile_document(
    doc: Document,
    templates: Path | None = None,
    recorded_as: str | None = None,
    *,
    render: bool = True,
    template_cache: TemplateCache | None = None,
) -> Compilation:
    """The stages after loading: validate, build the spec, render (and list its callables)."""
    from dagfactory.compile.references import callable_references
    from dagfactory.compile.spec import build_spec
    from dagfactory.compile.validate import validate

    problems = tuple(validate(doc))
    if any(problem.severity == "error" for problem in problems):
        return Compilation(None, problems)
    pipeline = build_spec(doc, recorded_as or doc.name)
    here = doc.locate(("dag", "dag_id"))
    content = None
    if render:
        from dagfactory.compile.render import render_pipeline

        content = render_pipeline(pipeline, templates, template_cache)
    compiled = Compiled(
        name=doc.name,
        pipeline=pipeline,
        content=content,
        inputs=doc.inputs,
        dag_id_line=here.line,
        dag_id_column=here.column,
        references=callable_references(doc, pipeline),
    )
    return Compilation(compiled, problems)
