"""How a command is declared, and the options several commands share, each declared once.

A command is a :class:`Command`: its name, its help, a function that adds its
arguments to its parser and the function that runs it, all in the command's own
module (as click and check-jsonschema declare theirs). Options that mean the same in
every command that takes them (``--format``, configs and ``--jobs``, ``--out``,
``--templates``, ``--output``) are added by the small functions here, so that their
names, defaults and help are written once.

A default the project may set (which configs, the dags folder, the templates, the
number of processes) is declared as :class:`FromProject`, and :func:`settle` takes it
from the ``[tool.dagfactory]`` table of the working directory's project
(:mod:`dagfactory.project`): a flag given still wins.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagfactory.project import working_project
from dagfactory.report import FORMATS, Outcome, Reporter

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


@dataclass(frozen=True)
class FromProject:
    """A default the project gives: its ``setting`` (``configs``, ``out``,
    ``templates`` or ``jobs``); with ``many``, as a list of one."""

    setting: str
    many: bool = False


def settle(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with each default the project gives filled in from the working
    directory's project; its folders are shown relative to the working directory."""
    wanted = {
        name: value
        for name, value in vars(args).items()
        if isinstance(value, FromProject)
    }
    if wanted:
        project = working_project()
        for name, default in wanted.items():
            value = getattr(project, default.setting)
            if isinstance(value, Path):
                value = Path(os.path.relpath(value))
            setattr(args, name, [value] if default.many else value)
    return args


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
        default=FromProject("configs", many=True),
        metavar="PATH",
        help="YAML config files or folders searched for *.yaml and *.yml (default: configs/)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        default=FromProject("jobs"),
        metavar="N",
        help="compile configs in N processes (default: one per CPU for batches of "
        "200 configs or more, else 1)",
    )


def add_out(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The dags folder; ``help_text`` says what the command does with it."""
    parser.add_argument(
        "--out", type=Path, default=FromProject("out"), metavar="DIR", help=help_text
    )


def add_templates(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--templates",
        type=Path,
        default=FromProject("templates"),
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
