"""``dagfactory init``: a commented starter config that validates and renders as it is."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from dagfactory.errors import ConfigError, SpecError

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


def starter_config(dag_id: str, config: Path) -> tuple[str, list[SpecError]]:
    """The starter text for ``config`` with ``dag_id``, and what is wrong with it (nothing, for a valid id)."""
    # Imported here: every command imports this module, only `init` validates.
    from dagfactory.loader import load_text
    from dagfactory.validate import validate

    template = resources.files("dagfactory").joinpath("templates/starter.yaml")
    text = template.read_text("utf-8").format(
        dag_id=dag_id, schema=schema_reference(config)
    )
    try:
        return text, validate(load_text(text, str(config)))
    except ConfigError as exc:
        return text, exc.errors
