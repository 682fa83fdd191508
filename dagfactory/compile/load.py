"""Load one config safely into a :class:`~.document.Document`: YAML in, data with marks out.

The first stage of compiling (then :mod:`.validate`, :mod:`.spec`, :mod:`.render`), and
the only one that reads anything: the config, the ``defaults.yaml`` files merged under
it, the environment variables its ``!env`` values name, the ``doc_md_file`` it points
at. Each outside input is recorded on the document (:class:`~.document.Inputs`), so that
the stages after it read nothing and the render cache knows what an output depends on.

This module reads and parses (file size, UTF-8, YAML syntax, with libyaml when it is
there); :mod:`.nodes` turns the parsed nodes into data, with the rules on what a value
may be. Loading says what it found as a :class:`Loaded`: a document, or its problems.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import Node
from yaml.resolver import Resolver

from dagfactory.compile.document import Document, Inputs, merge_defaults
from dagfactory.compile.environment import withhold_refused
from dagfactory.compile.nodes import MAX_DEPTH, NodeBuilder
from dagfactory.compile.project_defaults import load_project_defaults
from dagfactory.compile.yaml_hints import syntax_hint
from dagfactory.files import TooLarge, read_bounded
from dagfactory.limits import MAX_CONFIG_BYTES as MAX_BYTES
from dagfactory.problems import Problem
from dagfactory.project import PYPROJECT

MAX_DOC_MD_BYTES = 100_000  # the schema's description of doc_md_file says so
# libyaml's composer recurses in C, about 350 bytes of stack a level (20,000 to 25,000
# levels crash a process on an 8 MB stack): 200 levels fit in 70 KB, within even musl's
# 128 KB thread stacks.
MAX_C_NESTING = 200


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
class Loaded:
    """What loading a file gave: its document, or (None) every problem that stopped it.

    Loading has no warnings: ``problems`` is empty exactly when there is a document.
    """

    document: Document | None
    problems: tuple[Problem, ...] = ()

    @classmethod
    def rejected(cls, *problems: Problem) -> Loaded:
        return cls(None, tuple(sorted(problems, key=Problem.sort_key)))


def load_config(
    path: Path,
    name: str,
    defaults: Sequence[tuple[Path, str]] = (),
    *,
    sources: Mapping[Path, bytes] | None = None,
    load_defaults: Callable[[Path, str, Callable[[Path, str], Loaded]], Loaded]
    | None = None,
) -> Loaded:
    """Load the config at ``path`` merged over its ``defaults`` files, and what it reads.

    ``defaults`` are ``(path, name)`` pairs from the outermost folder in: the nearer a
    defaults file, the more it wins; the config's own values win over all. A
    ``pyproject.toml`` among them gives its ``[tool.dagfactory]`` config settings
    (:mod:`.project_defaults`). The first
    file that cannot be loaded (the config, then its defaults from the nearest out)
    gives the problems.

    ``sources`` holds the bytes of any of these files the caller already read
    (checked as a file's are: a batch reads each file once); ``load_defaults`` loads a
    defaults file with the loader it is given (default: that loader itself), so that
    a batch can load each one once for all its configs.
    """
    sources = sources or {}

    def load(path: Path, name: str) -> Loaded:
        raw = sources.get(path)
        return load_file(path, name) if raw is None else load_bytes(raw, name)

    def load_under(path: Path, name: str) -> Loaded:
        if path.name != PYPROJECT:
            return load(path, name)
        document, problems = load_project_defaults(path, name, sources.get(path))
        return Loaded(document) if document is not None else Loaded.rejected(*problems)

    loaded = load(path, name)
    for defaults_path, defaults_name in reversed(defaults):
        if loaded.document is None:
            return loaded
        if load_defaults is None:
            under = load_under(defaults_path, defaults_name)
        else:
            under = load_defaults(defaults_path, defaults_name, load_under)
        if under.document is None:
            return under
        loaded = Loaded(merge_defaults(under.document, loaded.document))
    if loaded.document is None:
        return loaded
    withhold_refused(loaded.document)
    return _read_doc_md(loaded.document)


def _read_doc_md(doc: Document) -> Loaded:
    """The document with the text of its ``doc_md_file``, read now if it may be.

    Set on the same document (not a copy), so that its ``doc_md_location``, worked out
    here, is not worked out again when validation judges it.
    """
    location = doc.doc_md_location
    if location is None or not location[1]:
        return Loaded(doc)  # validation says what is wrong with it
    try:
        text = read_bounded(location[0], MAX_DOC_MD_BYTES, "doc_md files").decode()
    except FileNotFoundError:
        return Loaded(doc)  # validation says it is not there
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "it is not UTF-8 text"
        return Loaded.rejected(
            doc.error(
                ("dag", "doc_md_file"),
                f"cannot read {location[0].as_posix()}: {reason}",
            )
        )
    doc.inputs = replace(doc.inputs, doc_md_file=location[0], doc_md=text)
    return Loaded(doc)


def load_file(path: Path, name: str | None = None) -> Loaded:
    """Read and load ``path``."""
    name = name or str(path)
    try:
        raw = read_bounded(path, MAX_BYTES, "configs")
    except TooLarge as exc:
        return Loaded.rejected(Problem(name, 1, 1, (), exc.strerror))
    except OSError as exc:
        return Loaded.rejected(
            Problem(name, 1, 1, (), f"cannot read file: {exc.strerror}")
        )
    return load_bytes(raw, name)


def load_bytes(raw: bytes, name: str) -> Loaded:
    """Load UTF-8 YAML bytes (a byte-order mark is accepted) into a :class:`Document`."""
    if len(raw) > MAX_BYTES:
        message = (
            f"file is {len(raw):,} bytes; configs are limited to {MAX_BYTES:,} bytes"
        )
        return Loaded.rejected(Problem(name, 1, 1, (), message))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8"
        )
        return Loaded.rejected(Problem(name, line, column, (), message))
    return load_text(text, name)


def load_text(text: str, name: str) -> Loaded:
    """Load YAML text into a :class:`Document`, or say every problem that stops it.

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


def _load_text_in_python(text: str, name: str) -> Loaded:
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return Loaded.rejected(_syntax_error(exc, name, text))
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        message = f"the control character U+{exc.character:04X} is not allowed in YAML; remove it"
        return Loaded.rejected(Problem(name, line, column, (), message))
    except RecursionError:
        message = (
            f"nesting is too deep (more than {MAX_DEPTH} levels are not supported)"
        )
        return Loaded.rejected(Problem(name, 1, 1, (), message))
    finally:
        if loader is not None:
            loader.dispose()
    return _document(loader, root, name)


def _document(loader: SafeConstructor, root: Node | None, name: str) -> Loaded:
    """Build plain data with marks from the composed ``root`` node."""
    if root is None:
        expected = "a mapping with the keys dag, download, trainers and chooser"
        return Loaded.rejected(
            Problem(name, 1, 1, (), f"the file is empty; expected {expected}")
        )
    builder = NodeBuilder(loader, name)
    data = builder.build(root, (), 0)
    if not builder.problems and not isinstance(data, dict):
        builder.problems.append(
            builder.error(root, (), "the top level must be a mapping of keys to values")
        )
    if builder.problems:
        return Loaded.rejected(*builder.problems)
    return Loaded(
        Document(
            name,
            data,
            builder.marks,
            builder.key_marks,
            builder.plain_text,
            Inputs(builder.env, builder.env_uses, builder.env_values),
        )
    )


def _syntax_error(exc: yaml.MarkedYAMLError, name: str, text: str) -> Problem:
    """The likely mistake in words at its place (:mod:`.yaml_hints`), the parser's own
    words and position after it; the parser's alone when no hint explains them."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if exc.context:
        problem = f"{problem} ({exc.context})"
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if "expected a single document" in problem:
        problem = "found a second YAML document; a config holds exactly one (remove the '---' separator)"
        return Problem(name, line, column, (), f"invalid YAML: {problem}")
    hint = syntax_hint(text, exc)
    if hint is None:
        return Problem(name, line, column, (), f"invalid YAML: {problem}")
    message = f"invalid YAML: {hint.text} [parser: {problem} at {line}:{column}]"
    return Problem(name, hint.line, hint.column, (), message)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
