"""What ``!env`` brings into a config, kept out of sight: no variable's value is printed.

A value written ``!env "${NAME}"`` is read from the environment of the machine that
renders, which holds secrets. Two rules keep them there:

- a variable ``allow_env`` does not list is refused, and its value never enters the
  document: :func:`withhold_refused` puts the text as written (``${NAME}``) in its
  place, and validation reports only that it is refused;
- the value of an allowed one may go into the DAG file, but never into a message:
  :func:`redact` names it ``the value of $NAME`` instead. :meth:`.Document.error`,
  which makes every problem of a config, calls it, so no rule can forget to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagfactory.compile.text import QUOTED_CHARACTERS, UserText, quoted
from dagfactory.problems import SpecPath

if TYPE_CHECKING:
    from dagfactory.compile.document import Document

# A shorter value is too likely to be a word of the message itself (``1``, ``max``) to
# be replaced wherever it appears: it is replaced where a message quotes it.
_BARE_CHARACTERS = 4


@dataclass(frozen=True)
class EnvValue:
    """A value written with ``!env``: its text before substitution, the variables it reads."""

    written: str
    names: tuple[str, ...]


def redact(message: str, env: dict[str, str | None]) -> str:
    """``message`` with every value of ``env`` (quoted or not) named ``the value of $NAME``."""
    forms: list[tuple[str, str]] = []
    for name, value in env.items():
        if not value:
            continue
        shown = f"the value of ${name}"
        quotes = [quoted(value), repr(value)]
        quotes += [f"the text {form}" for form in quotes]  # as describe() names text
        bare = [repr(value)[1:-1], value, value[:QUOTED_CHARACTERS]]
        forms += [(form, shown) for form in quotes]
        if len(value) >= _BARE_CHARACTERS:
            forms += [(form, shown) for form in bare]
    for form, shown in sorted(forms, key=lambda pair: -len(pair[0])):
        message = message.replace(form, shown)
    return message


def refused_paths(doc: Document) -> dict[SpecPath, tuple[str, ...]]:
    """Each value that reads a variable ``allow_env`` does not list, and those variables."""
    allowed = doc.data.get("allow_env")
    allowed = set(allowed) if isinstance(allowed, list) else set()
    refused = {}
    for path, value in doc.inputs.env_values.items():
        names = tuple(name for name in value.names if name not in allowed)
        if names:
            refused[path] = names
    return refused


def withhold_refused(doc: Document) -> None:
    """Replace each value that reads a refused variable by its text as written.

    Called once the defaults files are merged under the config (``allow_env`` may be
    in either), before anything reads the values.
    """
    for path in refused_paths(doc):
        _set(doc.data, path, UserText(doc.inputs.env_values[path].written))


def _set(data: dict[str, Any], path: SpecPath, value: str) -> None:
    """Set the value at ``path``, copying the containers above it: a merged document
    shares them with its defaults files, which other configs are merged over."""
    parent: Any = data
    for part in path[:-1]:
        child = parent[part]
        parent[part] = child = dict(child) if isinstance(child, dict) else list(child)
        parent = child
    parent[path[-1]] = value
