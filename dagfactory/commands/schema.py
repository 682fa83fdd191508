"""``dagfactory schema``: the JSON Schema configs are validated against, for editors."""

from __future__ import annotations

import argparse

from dagfactory.commands.arguments import Command, no_arguments
from dagfactory.report import Outcome, Reporter


def main(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return schema()


def schema() -> Outcome:
    """The JSON Schema configs are validated against."""
    from dagfactory.compile.schema import SCHEMA_FILE

    return Outcome(output=[SCHEMA_FILE.read_text("utf-8")])


COMMAND = Command(
    "schema",
    "print the JSON Schema of a config",
    "Print the JSON Schema (Draft 2020-12) that configs are validated against, for "
    "editors and other tools.",
    no_arguments,
    main,
)
