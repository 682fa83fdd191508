"""``dagfactory init``: start a project, a commented config and the code it calls."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagfactory.commands.arguments import Command, add_out, add_output
from dagfactory.project import CONFIGS, OUT
from dagfactory.report import Outcome, Reporter


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name",
        nargs="?",
        default="my_pipeline",
        metavar="NAME",
        help="the DAG id, and the config's file name (default: my_pipeline)",
    )
    add_output(parser, "where to write the config (default: configs/NAME.yaml)")
    add_out(
        parser,
        "the dags folder, where the code package goes (default: generated_dags/)",
    )
    # init starts a project where it runs: its folders are the working directory's,
    # not those of a project above it.
    parser.set_defaults(out=Path(OUT))


def main(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return init(args.name, args.output, args.out)


def init(name: str, config: Path | None = None, out_dir: Path = Path(OUT)) -> Outcome:
    """Write a starter project: a commented config (default ``configs/NAME.yaml``), the
    package of stub trainers it calls, in ``out_dir``, and the ``[tool.dagfactory]``
    table of its pyproject.toml (see :func:`~dagfactory.tools.init.write_settings`)."""
    from dagfactory.tools.init import write_settings, write_starter

    config = config or Path(CONFIGS) / f"{name}.yaml"
    outcome = Outcome()
    for path in write_starter(name, config, out_dir):
        outcome.say(f"wrote {path}")
    settings = write_settings(config, out_dir)
    if settings is not None:
        outcome.say(settings)
    run = (
        f"dagfactory run {config}"
        if config.parent != Path("configs")
        else f"dagfactory run {name}"
    )
    outcome.say(f"next: dagfactory validate {config}, dagfactory render, {run}")
    return outcome


COMMAND = Command(
    "init",
    "start a project: a commented config and the code it calls",
    "Write a starter project that validates, renders and runs as it is: a commented "
    "config, configs/NAME.yaml (or --output FILE), and the package of stub trainers "
    "it calls, NAME_tasks/ in the dags folder (--out). An existing file is never "
    "overwritten.",
    arguments,
    main,
)
