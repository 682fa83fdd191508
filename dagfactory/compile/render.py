"""Render a :class:`~.spec.Pipeline` into the source of an Airflow DAG file through Jinja templates.

The last stage of compiling, after :mod:`.spec`. User values reach the generated code
only through :mod:`.literals` (the ``py`` filter), which emits a Python literal or
fails: user text is never pasted into code, and never rendered as a Jinja template, so
``{{ ds }}`` reaches Airflow verbatim. The output is laid out as ``ruff format`` leaves
it, so it is stable under that tool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagfactory.compile.header import GENERATED_MARKER, header
from dagfactory.compile.literals import continued, indent_continued, literal_filter
from dagfactory.files import owned_privately, user_cache_folder
from dagfactory.problems import TemplateError

if TYPE_CHECKING:
    import jinja2

    from dagfactory.compile.pipeline import Pipeline

TEMPLATE = "dag.py.j2"


def _only_template_text(value: Any) -> Any:
    """Jinja ``finalize``: every ``{{ }}`` must print template text or a ``py`` literal.

    Config values (text from YAML is :class:`UserText`; numbers, lists, dates...) that
    reach the output without the ``py`` filter are refused, so no template, built-in or
    a team's own, can paste config text into code.
    """
    if type(value) is str:
        return value
    import jinja2

    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined: fails naming the missing variable
    raise TemplateError(
        f"the config value {value!r} reached the output without the `py` filter;"
        " write {{ value | py }}"
    )


def _template_position(exc: jinja2.TemplateError) -> str:
    """``NAME (line N)`` of the template line that failed, from Jinja's traceback."""
    name, line = getattr(exc, "name", None) or TEMPLATE, getattr(exc, "lineno", None)
    traceback = exc.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            name, line = Path(filename).name, traceback.tb_lineno
        traceback = traceback.tb_next
    return f"{name} (line {line})" if line else name


@dataclass(frozen=True)
class TemplateCache:
    """Where templates compiled to Python bytecode are kept, for later processes.

    Compiling ``dag.py.j2`` costs a process more than rendering a config with it, so
    ``render`` keeps the result; Jinja recompiles a template whose source changed. It is
    a value handed down to every worker process, not a setting of the process: a worker
    started by spawn instead of fork inherits nothing.

    Loading a kept template executes it (marshalled code, after a pickled checksum), so
    it is kept in this user's cache (:meth:`for_user`), never in the project, which a
    pull request can fill and CI then renders; and only a file this user owns and no one
    else may write is loaded.
    """

    folder: Path

    @classmethod
    def for_user(cls) -> TemplateCache | None:
        """The one in this user's cache folder; None when that cannot be trusted."""
        folder = user_cache_folder("templates")
        return None if folder is None else cls(folder)

    def bytecode_cache(self) -> jinja2.BytecodeCache:
        import jinja2

        class PrivateBytecodeCache(jinja2.FileSystemBytecodeCache):
            def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
                name = self._get_cache_filename(bucket)
                try:
                    handle = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                except OSError:
                    return  # none kept (or unreadable): compiled anew
                with open(handle, "rb") as file:
                    if owned_privately(os.fstat(handle), directory=False):
                        bucket.load_bytecode(file)

            def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
                try:
                    Path(self.directory).mkdir(mode=0o700, parents=True, exist_ok=True)
                    super().dump_bytecode(bucket)
                except OSError:
                    pass  # a cache that cannot be written only costs time

        return PrivateBytecodeCache(str(self.folder))


@cache
def _environment(
    templates: Path | None, template_cache: TemplateCache | None
) -> jinja2.Environment:
    import jinja2  # here: commands that render nothing do not pay for it

    builtin = jinja2.PackageLoader("dagfactory", "templates")
    loaders: list[jinja2.BaseLoader] = [builtin]
    if templates is not None:
        # A team's folder wins; its templates may extend "builtin/dag.py.j2".
        loaders = [
            jinja2.FileSystemLoader(templates),
            jinja2.PrefixLoader({"builtin": builtin}),
            builtin,
        ]
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_only_template_text,
        bytecode_cache=(
            None if template_cache is None else template_cache.bytecode_cache()
        ),
    )
    environment.filters["py"] = literal_filter
    environment.filters["continued"] = continued
    return environment


def render_pipeline(
    pipeline: Pipeline,
    templates: Path | None = None,
    template_cache: TemplateCache | None = None,
) -> str:
    """The complete source of the DAG file for ``pipeline``.

    ``templates`` is a folder whose ``dag.py.j2`` replaces the built-in template;
    ``template_cache`` keeps the compiled template for later processes.
    """
    import jinja2

    try:
        template = _environment(templates, template_cache).get_template(TEMPLATE)
        source = template.render(
            pipeline=pipeline, header=header(pipeline.source), marker=GENERATED_MARKER
        )
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {_template_position(exc)}: {exc}") from None
    if not source.startswith(GENERATED_MARKER):
        raise TemplateError(f"template {TEMPLATE} must start with {{{{ marker }}}}")
    return indent_continued(source)
