"""How a command is declared, and the options several commands share, each declared once.

A command is a :class:`Command`: its name, its help, a function that adds its
arguments to its parser and the function that runs it, all in the command's own
module (as click and check-jsonschema declare theirs). Options that mean the same in
every command that takes them (``--format``, configs and ``--jobs``, ``--out``,
``--templates``, ``--output``) are added by the small functions here, so that their
names, defaults and help are written once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagfactory.report import FORMATS, Outcome, Reporter

DEFAULT_CONFIGS = Path("configs")
DEFAULT_OUT = Path("generated_dags")

EPILOG = "Exit codes: 0 success; 1 problems found; 2 usage or setup error."


@dataclass(frozen=True)
class Command:
    """One ``dagfactory`` command: what ``--help`` says of it, its arguments, its run."""

    name: str
    help: str
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Reporter], Outcome]

    def add_to(self, subcommands: argparse._SubParsersAction) -> None:
        """Its parser among ``subcommands``, with ``--format`` and its own arguments."""
        parser = subcommands.add_parser(
            self.name, help=self.help, description=self.description, epilog=EPILOG
        )
        add_format(parser)
        self.arguments(parser)
        parser.set_defaults(command=self)


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """For a command that takes none but ``--format``."""


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="how to report problems: text (PATH:LINE:COL: error: ..., on stderr), "
        "json (one array on stdout; everything else on stderr) or github (::error "
        "workflow commands that annotate a pull request, on stdout); default: text",
    )


def add_paths(parser: argparse.ArgumentParser) -> None:
    """The configs to compile, and in how many processes."""
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[DEFAULT_CONFIGS],
        metavar="PATH",
        help="YAML config files or folders searched for *.yaml and *.yml (default: configs/)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        metavar="N",
        help="compile configs in N processes (default: one per CPU for batches of "
        "200 configs or more, else 1)",
    )


def add_out(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The dags folder; ``help_text`` says what the command does with it."""
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help=help_text
    )


def add_templates(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--templates",
        type=Path,
        metavar="DIR",
        help="a folder whose dag.py.j2 replaces the built-in template "
        "(it may extend builtin/dag.py.j2)",
    )


def add_output(parser: argparse.ArgumentParser, help_text: str) -> None:
    """One file the command writes; ``help_text`` says which."""
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help=help_text)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 1, got {text!r}"
        )
    return int(text)
