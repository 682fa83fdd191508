"""schema.fits says yes exactly when jsonschema does: it is the only check a valid config gets.

A document that ``fits`` is never shown to jsonschema, so a ``True`` where jsonschema
finds an error would let a bad config through. Every example config, and thousands of
mutants of them (values replaced by others of every JSON type, members dropped and
added, lists grown), are judged by both; the mutations come from a fixed seed.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from conftest import ROOT, VALID
from dagfactory.compile.load import load_config, load_text
from dagfactory.compile.schema import SchemaCompiler, fits, spec_schema
from dagfactory.compile.validate import _validator
from dagfactory.configs import discover

SEED = 20261204
MUTANTS = 6000

DOCUMENTS = [
    load_config(config.path, config.name, config.defaults).document.data
    for config in discover([ROOT / "configs"])
] + [load_text(VALID, "valid.yaml").document.data]

# Values of every JSON type, and text that some of the schema's patterns and enums take.
REPLACEMENTS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    3,
    2.5,
    1.0,
    -0.5,
    float("inf"),
    "",
    "x",
    "train",
    "not an id!",
    "demo\n",
    "1h",
    "30s",
    "@daily",
    "0 6 * * *",
    "2020-01-01",
    "2020-01-01T06:00:00Z",
    "2.10",
    "3.0",
    "all_success",
    "none_failed",
    "max",
    "min",
    "ml_demo.models:train_model",
    "echo hi",
    [],
    [1, 1],
    [1, True],
    ["a", "b"],
    [{"task_id": "t1"}, {"task_id": "t1"}],
    {},
    {"a": 1},
    {"task_id": "t"},
    {"default": 1},
    {"default": 1, "type": "integer", "minimum": 0},
    {"1bad": [1]},
]


def _containers(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a mapping or list in ``node``."""
    found = []
    if isinstance(node, dict | list):
        found.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            found += _containers(value, (*path, key))
    return found


def _at(node: Any, path: tuple) -> Any:
    for key in path:
        node = node[key]
    return node


def _mutate(document: Any, rng: random.Random) -> Any:
    mutant = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        target = _at(mutant, rng.choice(_containers(mutant)))
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        action = rng.random()
        if keys and action < 0.55:
            target[rng.choice(keys)] = copy.deepcopy(rng.choice(REPLACEMENTS))
        elif keys and action < 0.7:
            del target[rng.choice(keys)]
        elif isinstance(target, dict):
            name = rng.choice(["extra", "count", "models", "threshold", "doc_md", "1x"])
            target[name] = copy.deepcopy(rng.choice(REPLACEMENTS))
        elif keys:
            target.append(copy.deepcopy(target[rng.choice(keys)]))
    return mutant


def test_every_example_config_fits() -> None:
    for document in DOCUMENTS:
        assert fits(document)
        assert _validator().is_valid(document)


def test_fits_agrees_with_jsonschema_on_mutants() -> None:
    rng = random.Random(SEED)
    verdicts = {True: 0, False: 0}
    for _ in range(MUTANTS):
        mutant = _mutate(rng.choice(DOCUMENTS), rng)
        expected = _validator().is_valid(mutant)
        assert fits(mutant) is expected, mutant
        verdicts[expected] += 1
    # Both answers are common, so both kinds of disagreement were looked for.
    assert min(verdicts.values()) > MUTANTS // 10, verdicts


@pytest.mark.parametrize(
    "schema",
    [
        {"const": 1},
        {"if": {"type": "string"}, "then": {"minLength": 1}},
        {"patternProperties": {"^x": {}}, "additionalProperties": False},
        {"$ref": "https://example.com/other.json"},
    ],
)
def test_a_keyword_without_a_fast_check_fails_loudly(schema: dict) -> None:
    with pytest.raises(ValueError, match="fast check|local"):
        SchemaCompiler({"$defs": {}}).compile(schema)


def test_the_spec_schema_compiles_whole() -> None:
    # Every keyword it uses has a fast check; a new one would raise here first.
    assert SchemaCompiler(spec_schema()).compile(spec_schema())({}) is False
