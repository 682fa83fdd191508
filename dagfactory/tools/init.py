"""``dagfactory init``: a commented starter config that validates and renders as it is."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from dagfactory.compile import compile_text
from dagfactory.problems import UsageError

SCHEMA = resources.files("dagfactory").joinpath("schema/spec.schema.json")


def schema_reference(config: Path) -> str:
    """How the config's ``yaml-language-server`` comment names the schema shipped with dagfactory.

    A relative path when the schema lives under the working directory (a clone of this
    repository), else the schema file's ``file://`` URI.
    """
    schema = Path(str(SCHEMA)).resolve()
    if schema.is_relative_to(Path.cwd().resolve()):
        return Path(os.path.relpath(schema, config.parent.resolve())).as_posix()
    return schema.as_uri()


def starter_config(dag_id: str, config: Path) -> str:
    """The starter text for ``config`` with ``dag_id``; a UsageError if it cannot be a DAG id."""
    template = resources.files("dagfactory").joinpath("templates/starter.yaml")
    text = template.read_text("utf-8").format(
        dag_id=dag_id, schema=schema_reference(config)
    )
    compiled = compile_text(text, str(config))  # it must render, not only validate
    if isinstance(compiled, list):
        problems = "; ".join(problem.message for problem in compiled)
        raise UsageError(f"{dag_id!r} cannot be a DAG id: {problems}")
    return text


def write_starter(dag_id: str, config: Path) -> None:
    """Write the starter config to ``config``, which must not exist yet."""
    if config.exists():
        raise UsageError(f"{config} already exists; not overwriting it")
    text = starter_config(dag_id, config)
    config.parent.mkdir(parents=True, exist_ok=True)
    try:
        with config.open("x", encoding="utf-8") as stream:
            stream.write(text)
    except FileExistsError:  # made since we looked
        raise UsageError(f"{config} already exists; not overwriting it") from None
