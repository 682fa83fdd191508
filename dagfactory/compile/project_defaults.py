"""The project's ``[tool.dagfactory]`` table as the outermost defaults file of its configs.

``target_airflow`` set there is the project-wide default: every ``defaults.yaml`` and
every config may set their own, which wins. So that it is judged and reported as any
defaults file's value is (at ``pyproject.toml:LINE:COL``), and so that the render cache
counts pyproject.toml among each config's inputs, the file is in every config's
defaults chain (:mod:`dagfactory.configs`), and loaded here into a
:class:`~.document.Document` that holds that one value. tomllib gives no positions:
the value's line and column are found by scanning the text.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from dagfactory.compile.document import Document, Mark
from dagfactory.files import read_bounded
from dagfactory.limits import MAX_CONFIG_BYTES
from dagfactory.problems import Problem
from dagfactory.project import CONFIG_DEFAULTS

_TABLE_HEADER = re.compile(r"\s*\[\s*tool\s*\.\s*dagfactory\s*\]")
_OTHER_HEADER = re.compile(r"\s*\[")


def load_project_defaults(
    path: Path, name: str, raw: bytes | None = None
) -> tuple[Document | None, tuple[Problem, ...]]:
    """The config settings of ``path``'s ``[tool.dagfactory]`` table (``raw``: its
    bytes, when already read), each marked where it is written; or why not."""
    try:
        if raw is None:
            raw = read_bounded(path, MAX_CONFIG_BYTES, "configs")
        text = raw.decode("utf-8")
        table = tomllib.loads(text).get("tool", {}).get("dagfactory", {})
    except OSError as exc:
        return None, (Problem(name, 1, 1, (), f"cannot read file: {exc.strerror}"),)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return None, (Problem(name, 1, 1, (), f"not valid TOML ({exc})"),)
    data, marks, key_marks, plain_text = {}, {}, {}, {}
    for key in CONFIG_DEFAULTS:
        if isinstance(table, dict) and key in table:
            data[key] = table[key]
            line, key_column, value_column, written = _position(text, key)
            marks[(key,)] = Mark(line, value_column)
            key_marks[(key,)] = Mark(line, key_column)
            if not isinstance(table[key], str):  # unquoted: validation says to quote it
                plain_text[(key,)] = written
    return Document(name, data, marks, key_marks, plain_text), ()


def _position(text: str, key: str) -> tuple[int, int, int, str]:
    """Where ``key = value`` is written in the ``[tool.dagfactory]`` table: its line,
    the key's and the value's columns, and the value's text (line 1 if not found)."""
    assignment = re.compile(rf"(\s*){re.escape(key)}\s*=\s*")
    in_table = False
    for number, line in enumerate(text.splitlines(), 1):
        if _OTHER_HEADER.match(line):
            in_table = bool(_TABLE_HEADER.match(line))
            continue
        found = assignment.match(line) if in_table else None
        if found:
            written = line[found.end() :].split("#", 1)[0].strip()
            return number, len(found.group(1)) + 1, found.end() + 1, written
    return 1, 1, 1, ""
