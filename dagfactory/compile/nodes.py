"""Composed YAML nodes to plain data with marks: the second half of loading.

:mod:`.load` parses the text into a node graph (PyYAML or libyaml); :class:`NodeBuilder`
turns it into the data of a :class:`~.document.Document`, recording the position of
every value and key and the text of every unquoted scalar (for the YAML 1.1 vs 1.2
check). Only YAML's standard types are accepted (no Python tags), timestamps stay the
text the user wrote, duplicate keys and non-string keys are errors, ``!env`` values are
substituted now (recording which variables were read), and alias expansion and nesting
depth are bounded so that no input can exhaust the machine.
"""

from __future__ import annotations

import os
import re
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dagfactory.compile.document import Mark
from dagfactory.compile.environment import EnvValue
from dagfactory.compile.text import UserText
from dagfactory.problems import Problem, SpecPath

MAX_NODES = 200_000
MAX_DEPTH = 50

_TAG = "tag:yaml.org,2002:"
_TEXT_TAGS = {_TAG + "str", _TAG + "timestamp"}
_TYPED_TAGS = {_TAG + "null", _TAG + "bool", _TAG + "int", _TAG + "float"}
_MERGE_TAG = _TAG + "merge"
ENV_TAG = "!env"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Abort(Exception):
    """Stops building when going on would cost unbounded time or memory."""


class NodeBuilder:
    """Turns a composed YAML node graph into plain Python data with marks."""

    def __init__(self, loader: SafeConstructor, name: str) -> None:
        self.loader = loader
        self.name = name
        self.nodes = 0
        self.problems: list[Problem] = []
        self.marks: dict[SpecPath, Mark] = {}
        self.key_marks: dict[SpecPath, Mark] = {}
        self.plain_text: dict[SpecPath, str] = {}
        self.env: dict[str, str | None] = {}
        self.env_uses: dict[str, SpecPath] = {}
        self.env_values: dict[SpecPath, EnvValue] = {}

    def error(self, node: Node, path: SpecPath, message: str) -> Problem:
        return Problem(
            self.name,
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            path,
            message,
        )

    def build(self, node: Node, path: SpecPath, depth: int) -> Any:
        try:
            return self._build(node, path, depth)
        except _Abort:
            return None

    def _build(self, node: Node, path: SpecPath, depth: int) -> Any:
        self._count(node, path, depth)
        self.marks[path] = Mark(node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            self._expect_tag(node, path, _TAG + "seq")
            return [
                self._build(item, (*path, index), depth + 1)
                for index, item in enumerate(node.value)
            ]
        return self._scalar(node, path)

    def _count(self, node: Node, path: SpecPath, depth: int) -> None:
        """Bound the work: every value and every merged mapping counts, at any depth."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._abort(
                node,
                path,
                f"more than {MAX_NODES:,} values (are aliases expanding without bound?)",
            )
        if depth > MAX_DEPTH:
            self._abort(
                node,
                path,
                f"nesting is too deep (more than {MAX_DEPTH} levels are not supported)",
            )

    def _abort(self, node: Node, path: SpecPath, message: str) -> None:
        self.problems.append(self.error(node, path, message))
        raise _Abort

    def _expect_tag(self, node: Node, path: SpecPath, tag: str) -> None:
        if node.tag != tag:
            self._abort(
                node,
                path,
                f"the tag {node.tag!r} is not allowed; only plain YAML values are",
            )

    def _scalar(self, node: ScalarNode, path: SpecPath) -> Any:
        # plain style is None from PyYAML's parser, "" from libyaml's
        if not node.style and node.tag == self.loader.resolve(
            ScalarNode, node.value, (True, False)
        ):
            self.plain_text[path] = node.value
        return self._scalar_value(node, path)

    def _scalar_value(self, node: ScalarNode, path: SpecPath) -> Any:
        if node.tag in _TEXT_TAGS:
            return UserText(node.value)
        if node.tag == ENV_TAG:
            return self._substitute(node, path)
        if node.tag not in _TYPED_TAGS:
            self._abort(
                node,
                path,
                f"the tag {node.tag!r} is not allowed; only plain YAML values are",
            )
        try:
            return self.loader.construct_object(node)
        except (ValueError, KeyError, TypeError):
            # An explicit tag on a value that does not fit it (`!!int abc`, `!!bool maybe`),
            # or an integer too long for Python to read.
            kind = node.tag.removeprefix(_TAG)
            shown = repr(node.value)
            if len(node.value) > 40:
                shown = f"{node.value[:40] + '...'!r} ({len(node.value):,} characters)"
            message = f"{shown} is not a valid {kind}"
            self.problems.append(self.error(node, path, message))
            return None

    def _substitute(self, node: ScalarNode, path: SpecPath) -> str:
        """Expand ``${NAME}`` and ``${NAME:-fallback}`` in a ``!env`` value, now."""
        names = tuple(match[1] for match in _ENV_REFERENCE.finditer(node.value))
        self.env_values[path] = EnvValue(node.value, names)

        def expand(match: re.Match[str]) -> str:
            name, fallback = match.groups()
            value = self.env[name] = os.environ.get(name)
            self.env_uses.setdefault(name, path)
            if value or (value is not None and fallback is None):
                return value
            if fallback is not None:
                return fallback
            message = f"the environment variable {name} is not set; set it, or give a fallback: ${{{name}:-default}}"
            self.problems.append(self.error(node, path, message))
            return ""

        return UserText(_ENV_REFERENCE.sub(expand, node.value))

    def _mapping(
        self,
        node: MappingNode,
        path: SpecPath,
        depth: int,
        shadowed: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """Build a mapping; keys in ``shadowed`` are checked but their values not built.

        Merged (``<<``) values are built only where no key of this mapping overrides them,
        so every recorded mark and plain text belongs to a value that is in the data.
        """
        self._expect_tag(node, path, _TAG + "map")
        result: dict[str, Any] = {}
        merges: list[Node] = []
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in seen:
                first = seen[key].start_mark.line + 1
                self.problems.append(
                    self.error(
                        key_node,
                        (*path, key),
                        f"duplicate key {key!r} (first defined on line {first}); keep one",
                    )
                )
                continue
            seen[key] = key_node
            if key in shadowed:
                continue
            child = (*path, key)
            self.key_marks[child] = Mark(
                key_node.start_mark.line + 1, key_node.start_mark.column + 1
            )
            result[key] = self._build(value_node, child, depth + 1)
        merged: dict[str, Any] = {}
        for value_node in merges:
            merged |= self._merge(
                value_node, path, depth, shadowed | result.keys() | merged.keys()
            )
        return merged | result

    def _merge(
        self, node: Node, path: SpecPath, depth: int, shadowed: frozenset[str]
    ) -> dict[str, Any]:
        """Resolve a ``<<`` merge key: earlier mappings in a list win over later ones."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, MappingNode):
                self._abort(
                    source,
                    path,
                    "a '<<' merge key takes a mapping or a list of mappings",
                )
            self._count(source, path, depth + 1)
            merged |= self._mapping(source, path, depth + 1, shadowed | merged.keys())
        return merged

    def _key(self, node: Node, path: SpecPath) -> str | None:
        if node.tag == ENV_TAG:
            message = "!env gives values, not keys: write the key itself"
            self.problems.append(self.error(node, path, message))
            return None
        if not isinstance(node, ScalarNode):
            self.problems.append(
                self.error(
                    node, path, "a key must be a plain name, not a list or mapping"
                )
            )
            return None
        key = self._scalar_value(node, path)
        if isinstance(key, str):
            return key
        kind = "null" if key is None else type(key).__name__
        message = f"the key {node.value!r} is read by YAML as {kind} {key!r}, not text; quote it: '{node.value}'"
        self.problems.append(self.error(node, path, message))
        return None
