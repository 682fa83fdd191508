"""``dagfactory graph``: draw the DAG a config describes, no Airflow needed."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagfactory.commands.arguments import Command, add_output
from dagfactory.commands.batch import compile_configs, failed
from dagfactory.problems import EXIT_PROBLEMS, Problem, UsageError
from dagfactory.report import Outcome, Reporter


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, metavar="CONFIG", help="a config file")
    add_output(parser, "write a picture instead: FILE.svg or FILE.png")


def main(args: argparse.Namespace, reporter: Reporter) -> Outcome:
    return graph(args.config, args.output)


def graph(config: Path, picture: Path | None = None) -> Outcome:
    """Draw the DAG a config describes: Mermaid text, or a picture file."""
    from dagfactory.tools.graph import draw, to_mermaid

    if config.is_dir():
        raise UsageError(f"{config}: a folder; graph draws one config file")
    batch = compile_configs([config])
    if batch.errors:
        return failed(batch)
    (pipeline,) = batch.pipelines
    outcome = Outcome()
    if picture is None:
        outcome.output.append(to_mermaid(pipeline))
        return outcome
    try:
        draw(pipeline, picture)
    except OSError as exc:
        message = f"cannot write it ({exc.strerror or exc})"
        return Outcome(EXIT_PROBLEMS, [Problem.in_file(str(picture), message)])
    outcome.say(f"wrote {picture}")
    return outcome


COMMAND = Command(
    "graph",
    "draw a config's DAG (Mermaid, SVG or PNG)",
    "Draw the DAG a config describes, from the validated spec (no Airflow needed): "
    "Mermaid text on stdout (paste it into Markdown; GitHub draws it), or a picture "
    "with --output FILE.svg (no extra dependency) or FILE.png "
    "(pip install 'dagfactory[png]', which needs the Cairo library).",
    arguments,
    main,
)
