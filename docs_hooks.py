"""MkDocs hook: the reference pages, generated from the code they describe.

A hand-written reference drifts from the schema and the parser the day either changes;
these pages are made at every build from the JSON Schema's own ``description``s
(``dagfactory/schema/spec.schema.json``) and from ``dagfactory.cli``'s argparse parser,
so they cannot. A schema property without a description (or title) stops the build: the schema
is the only place the spec's words live.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from dagfactory.cli import parser
from dagfactory.compile.schema import SCHEMA_FILE

SPEC_PAGE = "reference/spec.md"
CLI_PAGE = "reference/cli.md"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the two generated reference pages to the site."""
    files.append(File.generated(config, SPEC_PAGE, content=spec_markdown()))
    files.append(File.generated(config, CLI_PAGE, content=cli_markdown()))
    return files


# -- the spec ---------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = schema
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _description(schema: dict[str, Any], node: dict[str, Any]) -> str | None:
    """A property's own description (or title), else that of the definition it names.

    A value's ``description`` is also what a validation error says was expected
    (``compile/validate.py``), so a value whose message reads best as its type alone
    carries its meaning in ``title``, which no message uses.
    """
    while not ({"description", "title"} & node.keys()) and "$ref" in node:
        node = _resolve(schema, node["$ref"])
    return node.get("description") or node.get("title")


def _type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        return node["$ref"].rsplit("/", 1)[-1]
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in node["enum"])
    kinds = node.get("type")
    if kinds:
        return " \\| ".join([kinds] if isinstance(kinds, str) else kinds)
    alternatives = node.get("anyOf") or node.get("oneOf") or []
    return " \\| ".join(_type(option) for option in alternatives) or "any"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _sections(node: Any, pointer: str) -> list[tuple[str, dict[str, Any]]]:
    """Every object with properties under ``node``, with its JSON pointer, in order."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((pointer, node))
        for key, value in node.items():
            found += _sections(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _sections(value, f"{pointer}/{index}")
    return found


def _title(pointer: str) -> str:
    """``#/properties/dag/properties/params`` -> ``dag.params``."""
    parts = pointer.removeprefix("#").split("/")[1:]
    names = [
        "[]" if part == "items" else part
        for index, part in enumerate(parts)
        if parts[index - 1 : index] in (["properties"], ["$defs"]) or part == "items"
    ]
    title = ".".join(names).replace(".[]", "[]")
    return title or "top level"


def spec_markdown() -> str:
    """The spec reference: one table per mapping of the schema; fails on a silent key."""
    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    lines = [
        "# The spec (reference)",
        "",
        "Generated from the JSON Schema configs are validated against, "
        "`dagfactory/schema/spec.schema.json` (`dagfactory schema` prints it), "
        "at every build of this site. The rules across keys that a schema cannot "
        "express are checked too; see the how-to guides.",
        "",
        schema["description"],
        "",
    ]
    missing = []
    for pointer, node in _sections(schema, "#"):
        required = set(node.get("required", []))
        lines += [f"## `{_title(pointer)}`", ""]
        if node.get("description"):
            lines += [node["description"], ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key, prop in node["properties"].items():
            description = _description(schema, prop)
            if not description:
                missing.append(f"{pointer}/properties/{key}")
                continue
            default = (
                "required"
                if key in required
                else (f"`{json.dumps(prop['default'])}`" if "default" in prop else "")
            )
            lines.append(
                f"| `{key}` | {_cell(_type(prop))} | {default} | {_cell(description)} |"
            )
        lines.append("")
    if missing:
        raise PluginError(
            "schema properties without a description: " + ", ".join(missing)
        )
    lines += ["## Definitions", ""]
    for name, definition in schema["$defs"].items():
        if "properties" not in definition and definition.get("description"):
            lines.append(f"- `{name}`: {definition['description']}")
    return "\n".join(lines) + "\n"


# -- the command line -------------------------------------------------------------------


def cli_markdown() -> str:
    """The CLI reference: each command's ``--help``, as the installed parser prints it."""
    os.environ["COLUMNS"] = (
        "88"  # argparse wraps to the terminal; pages do not have one
    )
    top = parser()
    lines = [
        "# The command line (reference)",
        "",
        "Generated from `dagfactory.cli`'s parser at every build: what `--help` prints.",
        "",
        "```text",
        top.format_help().rstrip(),
        "```",
        "",
    ]
    (commands,) = (
        action
        for action in top._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    for name, command in commands.choices.items():
        lines += [f"## `dagfactory {name}`", "", "```text"]
        lines += [command.format_help().rstrip(), "```", ""]
    return "\n".join(lines)
