"""The shipped JSON Schema says what the vocabulary module says: defaults, limits, key lists."""

from __future__ import annotations

from typing import Any

from dagfactory.compile import vocabulary
from dagfactory.compile.schema import spec_schema


def _section(name: str) -> dict[str, Any]:
    return spec_schema()["properties"][name]["properties"]


def _resolved(name: str) -> dict[str, Any]:
    """A top-level section, or the definition it refers to."""
    section = spec_schema()["properties"][name]
    if "$ref" in section:
        return spec_schema()["$defs"][section["$ref"].rpartition("/")[2]]
    return section


def test_every_default_in_the_schema_is_the_vocabulary_default():
    sections = (
        "dag",
        "download",
        "trainers",
        "chooser",
        "publish",
        "approval",
        "registry",
    )
    stated = {
        (section, key): spec["default"]
        for section in sections
        for key, spec in _resolved(section).get("properties", {}).items()
        if "default" in spec
    }
    assert stated == vocabulary.DEFAULTS


def test_the_trainer_limit_is_the_schema_maximum():
    assert _section("trainers")["count"]["maximum"] == vocabulary.MAX_TRAINERS


def test_operator_settings_and_param_keywords_are_the_schema_keys():
    settings = spec_schema()["$defs"]["operator_settings"]["properties"]
    assert tuple(settings) == vocabulary.OPERATOR_SETTINGS
    assert set(vocabulary.OPERATOR_SETTINGS) <= set(_section("trainers"))
    param = spec_schema()["$defs"]["param"]["properties"]
    assert tuple(param) == vocabulary.PARAM_KEYWORDS


def test_duration_keys_are_durations_in_the_schema():
    durations = {
        key
        for key, spec in {
            **spec_schema()["$defs"]["default_args"]["properties"],
            **spec_schema()["$defs"]["operator_settings"]["properties"],
            **_section("dag"),
        }.items()
        if spec.get("$ref") == "#/$defs/duration"
    }
    assert durations == set(vocabulary.DURATION_KEYS)


def test_callbacks_are_dag_keys():
    assert set(vocabulary.CALLBACK_KEYS) <= set(_section("dag"))


def test_the_docker_runtime_keys_and_default_are_the_schemas():
    docker = spec_schema()["$defs"]["docker_runtime"]["properties"]
    assert set(vocabulary.DOCKER_ARGUMENTS) <= set(docker)
    assert docker["auto_remove"]["default"] == vocabulary.DOCKER_AUTO_REMOVE
