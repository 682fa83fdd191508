"""Load one config safely into a :class:`Document`: plain data that remembers where every value came from.

The first stage of compiling (then :mod:`.validate`, :mod:`.spec`, :mod:`.render`), and
the only one that reads anything: the config, the ``defaults.yaml`` files merged under
it, the environment variables its ``!env`` values name, the ``doc_md_file`` it points
at. Each outside input is recorded on the document (:class:`Inputs`), so that the
stages after it read nothing and the render cache knows what an output depends on.

Only YAML's standard types are accepted (no Python tags), timestamps stay the text
the user wrote, duplicate keys and non-string keys are errors, and alias expansion,
nesting depth and file size are bounded so that no input can exhaust the machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from dagfactory.compile.text import UserText
from dagfactory.problems import ConfigError, Problem, SpecPath

MAX_BYTES = 1_000_000
MAX_NODES = 200_000
MAX_DEPTH = 50
# libyaml's composer recurses in C, about 350 bytes of stack a level (20,000 to 25,000
# levels crash a process on an 8 MB stack): 200 levels fit in 70 KB, within even musl's
# 128 KB thread stacks.
MAX_C_NESTING = 200

_TAG = "tag:yaml.org,2002:"
_TEXT_TAGS = {_TAG + "str", _TAG + "timestamp"}
_TYPED_TAGS = {_TAG + "null", _TAG + "bool", _TAG + "int", _TAG + "float"}
_MERGE_TAG = _TAG + "merge"
ENV_TAG = "!env"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None


if CParser is not None:

    class _FastLoader(CParser, Composer, SafeConstructor, Resolver):
        """libyaml's parser, about seven times faster than PyYAML's, with both composers.

        libyaml's composer (building nodes from events) recurses in C and crashes the
        process on very deep nesting, so it composes only texts that cannot nest deep
        (:func:`_shallow`); PyYAML's Python one, which raises RecursionError (reported
        like any other problem), composes the others.
        """

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)

        # what PyYAML's composer calls on itself, which libyaml's parser also defines
        check_node = Composer.check_node
        get_node = Composer.get_node
        compose_document = Composer.compose_document


def _shallow(text: str) -> bool:
    """Whether ``text`` is too small to nest deep enough to crash libyaml's composer.

    Each level of nesting needs an indicator of its own (``[``, ``{``, ``-``, ``?`` or
    the ``:`` of a key), so a text with at most MAX_C_NESTING of them nests no deeper.
    Such texts, nearly every config, are composed by libyaml, twice as fast.
    """
    return sum(map(text.count, "[{-?:")) <= MAX_C_NESTING


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
    ``env_uses`` each of them to the first value that named it; ``doc_md`` is the text
    of the file ``doc_md_file`` when the config names one it may read.
    """

    env: dict[str, str | None] = field(default_factory=dict)
    env_uses: dict[str, SpecPath] = field(default_factory=dict)
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
        mark = self.locate(path, key=key)
        return Problem(mark.file or self.name, mark.line, mark.column, path, message)

    def warning(self, path: SpecPath, message: str) -> Problem:
        """A problem that does not stop the config from rendering."""
        return replace(self.error(path, message), severity="warning")

    def where(self, path: SpecPath) -> str:
        """``line N``, or ``FILE line N`` when ``path`` was set in another file."""
        mark = self.locate(path)
        return f"{mark.file} line {mark.line}" if mark.file else f"line {mark.line}"


def load_config(
    path: Path,
    name: str,
    defaults: Sequence[tuple[Path, str]] = (),
    sources: Mapping[Path, bytes] | None = None,
) -> Document:
    """Load the config at ``path`` merged over its ``defaults`` files, and what it reads.

    ``defaults`` are ``(path, name)`` pairs from the outermost folder in: the nearer a
    defaults file, the more it wins; the config's own values win over all. ``sources``
    holds the bytes of any of these files the caller already read (a batch reads each
    file once). Raises :class:`ConfigError` with every problem found.
    """
    sources = sources or {}

    def load(path: Path, name: str) -> Document:
        raw = sources.get(path)
        return load_file(path, name) if raw is None else load_bytes(raw, name)

    doc = load(path, name)
    for defaults_path, defaults_name in reversed(defaults):
        doc = merge_defaults(load(defaults_path, defaults_name), doc)
    return _read_doc_md(doc)


def doc_md_location(doc: Document) -> tuple[Path, bool] | None:
    """Where ``dag.doc_md_file`` points (relative to the config's folder), and whether it may be read.

    Its text is copied into the DAG, so only a file in the config's folder or below it
    may be: never any other file the renderer can read.
    """
    dag = doc.data.get("dag")
    name = dag.get("doc_md_file") if isinstance(dag, dict) else None
    if not isinstance(name, str) or "\x00" in name:
        return None  # no file has that name; the schema says what is wrong with it
    folder = Path(doc.name).parent
    path = folder / name
    return path, path.resolve().is_relative_to(folder.resolve())


def _read_doc_md(doc: Document) -> Document:
    location = doc_md_location(doc)
    if location is None or not location[1] or not location[0].is_file():
        return doc  # validation says what is wrong with it
    try:
        text = location[0].read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "it is not UTF-8 text"
        raise ConfigError(
            [
                doc.error(
                    ("dag", "doc_md_file"),
                    f"cannot read {location[0].as_posix()}: {reason}",
                )
            ]
        ) from None
    return replace(
        doc, inputs=replace(doc.inputs, doc_md_file=location[0], doc_md=text)
    )


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
        ),
    )


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _deep_merge(base[key], value) if key in base else value
        return merged
    return override


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


def load_file(path: Path, name: str | None = None) -> Document:
    """Read and load ``path``; raise :class:`ConfigError` with every problem found."""
    name = name or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [Problem(name, 1, 1, (), f"cannot read file: {exc.strerror}")]
        ) from None
    return load_bytes(raw, name)


def load_bytes(raw: bytes, name: str) -> Document:
    """Load UTF-8 YAML bytes (a byte-order mark is accepted) into a :class:`Document`."""
    if len(raw) > MAX_BYTES:
        message = (
            f"file is {len(raw):,} bytes; configs are limited to {MAX_BYTES:,} bytes"
        )
        raise ConfigError([Problem(name, 1, 1, (), message)])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8"
        )
        raise ConfigError([Problem(name, line, column, (), message)]) from None
    return load_text(text, name)


def load_text(text: str, name: str) -> Document:
    """Load YAML text into a :class:`Document`; raise :class:`ConfigError` on any problem.

    libyaml parses when it is there; any text it rejects is parsed again by PyYAML's
    pure-Python parser, so that problems are reported with the same words and positions
    whichever parser is installed.
    """
    if CParser is not None:
        loader = _FastLoader(text)
        compose = CParser if _shallow(text) else Composer
        try:
            root = compose.get_single_node(loader)
        except (yaml.YAMLError, RecursionError):
            pass
        else:
            return _document(loader, root, name)
        finally:
            loader.dispose()
    return _load_text_in_python(text, name)


def _load_text_in_python(text: str, name: str) -> Document:
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_error(exc, name)]) from None
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        message = f"the control character U+{exc.character:04X} is not allowed in YAML; remove it"
        raise ConfigError([Problem(name, line, column, (), message)]) from None
    except RecursionError:
        message = (
            f"nesting is too deep (more than {MAX_DEPTH} levels are not supported)"
        )
        raise ConfigError([Problem(name, 1, 1, (), message)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return _document(loader, root, name)


def _document(loader: SafeConstructor, root: Node | None, name: str) -> Document:
    """Build plain data with marks from the composed ``root`` node."""
    if root is None:
        expected = "a mapping with the keys dag, download, trainers and chooser"
        raise ConfigError(
            [Problem(name, 1, 1, (), f"the file is empty; expected {expected}")]
        )
    builder = _Builder(loader, name)
    data = builder.build(root, (), 0)
    if not builder.problems and not isinstance(data, dict):
        builder.problems.append(
            builder.error(root, (), "the top level must be a mapping of keys to values")
        )
    if builder.problems:
        raise ConfigError(builder.problems)
    return Document(
        name,
        data,
        builder.marks,
        builder.key_marks,
        builder.plain_text,
        Inputs(env=builder.env, env_uses=builder.env_uses),
    )


def _syntax_error(exc: yaml.MarkedYAMLError, name: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if exc.context:
        problem = f"{problem} ({exc.context})"
    if "'\\t'" in problem:
        problem += "; indent with spaces, YAML does not allow tabs there"
    if "expected a single document" in problem:
        problem = "found a second YAML document; a config holds exactly one (remove the '---' separator)"
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Problem(name, line, column, (), f"invalid YAML: {problem}")


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Abort(Exception):
    """Stops building when going on would cost unbounded time or memory."""


class _Builder:
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
