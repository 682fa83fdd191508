"""The loaded config, the one type every stage of compiling reads: a :class:`Document`.

Plain data that remembers where every value came from (:class:`Mark`), with what it
brought in from outside (:class:`Inputs`). :mod:`.load` makes it (and merges the
defaults files under it here), :mod:`.validate` judges it, :mod:`.spec` turns it into
a pipeline; none of them needs to know how YAML is parsed. What two stages work out
from the data (where ``doc_md_file`` points, the trainers a section makes) the
document works out once, on first use, and keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from dagfactory.compile.environment import EnvValue, redact
from dagfactory.compile.vocabulary import MAX_TRAINERS, matrix_size, trainer_models
from dagfactory.problems import Problem, SpecPath


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column; ``file`` is set when it is not the config itself."""

    line: int
    column: int
    file: str | None = None


@dataclass(frozen=True)
class Inputs:
    """What a config used from outside its files: environment variables and a Markdown file.

    ``env`` maps each variable an ``!env`` value named to what it held (None: unset),
    ``env_uses`` each of them to the first value that named it, ``env_values`` each
    value written with ``!env`` to what was written; ``doc_md`` is the text of the file
    ``doc_md_file`` when the config names one it may read.
    """

    env: dict[str, str | None] = field(default_factory=dict)
    env_uses: dict[str, SpecPath] = field(default_factory=dict)
    env_values: dict[SpecPath, EnvValue] = field(default_factory=dict)
    doc_md_file: Path | None = None
    doc_md: str | None = None


@dataclass
class Document:
    """A loaded config: plain data, the source position of every value and key, its inputs."""

    name: str
    data: dict[str, Any]
    marks: dict[SpecPath, Mark] = field(default_factory=dict)
    key_marks: dict[SpecPath, Mark] = field(default_factory=dict)
    plain_text: dict[SpecPath, str] = field(default_factory=dict)
    inputs: Inputs = field(default_factory=Inputs)

    def locate(self, path: SpecPath, *, key: bool = False) -> Mark:
        """Where ``path`` is written (its key if ``key``), else its nearest written parent."""
        if key and path in self.key_marks:
            return self.key_marks[path]
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, Mark(1, 1))

    def error(self, path: SpecPath, message: str, *, key: bool = False) -> Problem:
        """A problem at ``path``; a value read from the environment is named, not shown."""
        mark = self.locate(path, key=key)
        message = redact(message, self.inputs.env)
        return Problem(mark.file or self.name, mark.line, mark.column, path, message)

    def warning(self, path: SpecPath, message: str) -> Problem:
        """A problem that does not stop the config from rendering."""
        return replace(self.error(path, message), severity="warning")

    def where(self, path: SpecPath) -> str:
        """``line N``, or ``FILE line N`` when ``path`` was set in another file."""
        mark = self.locate(path)
        return f"{mark.file} line {mark.line}" if mark.file else f"line {mark.line}"

    # Worked out once per document, on first use, by whichever stage needs it first
    # (the loader reads the doc_md file, validation judges it; validation checks the
    # trainers, the spec builds them): the data does not change after loading.

    @cached_property
    def doc_md_location(self) -> tuple[Path, bool] | None:
        """Where ``dag.doc_md_file`` points (relative to the config's folder), and whether it may be read.

        Its text is copied into the DAG, so only a file in the config's folder or below
        it may be: never any other file the renderer can read.
        """
        dag = self.data.get("dag")
        name = dag.get("doc_md_file") if isinstance(dag, dict) else None
        if not isinstance(name, str) or "\x00" in name:
            return None  # no file has that name; the schema says what is wrong with it
        folder = Path(self.name).parent
        path = folder / name
        return path, path.resolve().is_relative_to(folder.resolve())

    @cached_property
    def trainer_models(self) -> list[Any]:
        """The trainers the ``trainers`` section makes (listed, or ``count`` and ``matrix``
        expanded), as model mappings.

        Empty when the section is malformed, or would make more than MAX_TRAINERS (a count
        or matrix far too large must not exhaust the machine): validation says why. For a
        valid document, exactly the trainers its pipeline has.
        """
        trainers = self.data.get("trainers")
        if not isinstance(trainers, dict):
            return []
        count, matrix = trainers.get("count"), trainers.get("matrix")
        if isinstance(count, int) and count > MAX_TRAINERS:
            return []
        if isinstance(matrix, dict) and matrix_size(matrix) > MAX_TRAINERS:
            return []
        try:
            models = trainer_models(trainers)
        except (KeyError, TypeError, AttributeError, ValueError):
            return []
        return models if isinstance(models, list) else []


def merge_defaults(defaults: Document, doc: Document) -> Document:
    """``doc`` deep-merged over ``defaults``: mappings merge, other values from ``doc`` win.

    Values that come from ``defaults`` keep their marks, pointing into that file.
    """
    data = _deep_merge(defaults.data, doc.data)
    inherited = {path for path, _ in walk(data)} - set(doc.marks)

    def carried(marks: dict[SpecPath, Mark]) -> dict[SpecPath, Mark]:
        return {
            path: replace(mark, file=mark.file or defaults.name)
            for path, mark in marks.items()
            if path in inherited
        }

    plain_text = {p: t for p, t in defaults.plain_text.items() if p in inherited}
    return Document(
        doc.name,
        data,
        carried(defaults.marks) | doc.marks,
        carried(defaults.key_marks) | doc.key_marks,
        plain_text | doc.plain_text,
        Inputs(
            defaults.inputs.env | doc.inputs.env,
            {  # a defaults value the config overrides is not in the DAG
                name: path
                for name, path in defaults.inputs.env_uses.items()
                if path in inherited
            }
            | doc.inputs.env_uses,
            {
                path: value
                for path, value in defaults.inputs.env_values.items()
                if path in inherited
            }
            | doc.inputs.env_values,
        ),
    )


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _deep_merge(base[key], value) if key in base else value
        return merged
    return override


def as_mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping, else an empty one: the semantic checks read
    sections the schema may have found of the wrong type (it reports those)."""
    return value if isinstance(value, dict) else {}


def walk(value: Any, path: SpecPath = ()) -> Iterator[tuple[SpecPath, Any]]:
    """Every ``(spec path, value)`` in loaded data, the container before its items.

    With a stack, not recursion: nested generators pass each item up through every level.
    """
    stack = [(path, value)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        stack.extend(reversed([((*path, key), child) for key, child in items]))
