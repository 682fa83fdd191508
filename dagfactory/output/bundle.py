"""Bundled output: many DAGs a file, for projects of thousands of configs.

Airflow's DAG processor parses each file of the dags folder in a process of its own,
and stores each DAG's file as that DAG's code. One file per DAG costs a process per
DAG; one file for every DAG is stored once per DAG, and a DAG that fails takes every
other out. Bundled output sits between:

- each DAG's file is rendered as in the default layout, but into ``_dagfactory_bundle/``,
  a folder the ``.airflowignore`` hides from the processor (:mod:`.plan` writes it);
- a few shard files beside it (``dagfactory_shard_NNN.py``) are what Airflow parses: each
  lists its DAGs and the configs they come from (what Airflow shows as their code) and
  runs each DAG's file on its own, as though it were the shard file (so that the user's
  code beside it is found), and only the one DAG a task needs when a task starts
  (Airflow's parsing context). A DAG that fails to build is the shard's import error;
  the others load.

A DAG's shard is a hash of its DAG id over a power-of-two number of shards, chosen so
that shards are filled to 80 % of ``shard_size`` at most on average: editing a config
rewrites its DAG's file alone, adding or removing one rewrites one shard, and the number
of shards only grows (doubling it moves half of each shard's DAGs, their files unchanged).
A shard that is full passes its overflow to the next, so none holds more than
``shard_size``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container, Iterable, Mapping
from pathlib import Path

from dagfactory.compile.header import recorded_source, shard_header
from dagfactory.compile.literals import python_literal

FOLDER = "_dagfactory_bundle"
SHARD_PREFIX = "dagfactory_shard_"
_SHARD_NAME = re.compile(re.escape(SHARD_PREFIX) + r"(\d{3,})\.py")


def module_path(out_dir: Path, dag_id: str) -> Path:
    """Where the file of ``dag_id`` goes in a bundled output folder."""
    return out_dir / FOLDER / f"{dag_id}.py"


def shard_path(out_dir: Path, index: int) -> Path:
    return out_dir / f"{SHARD_PREFIX}{index:03d}.py"


def shard_index(path: Path) -> int | None:
    """The index of a shard file by its name; None for any other file."""
    match = _SHARD_NAME.fullmatch(path.name)
    return int(match.group(1)) if match else None


def shard_count(total: int, shard_size: int, at_least: int = 1) -> int:
    """The power of two of shards for ``total`` DAGs: filled to 80 % at most on average
    (so that a full one, which passes DAGs on, is rare), and never fewer than
    ``at_least`` (the shards there already are: the count only grows)."""
    count = 1
    while count * shard_size * 4 < total * 5 or count < at_least:
        count *= 2
    return count


def _home(dag_id: str, count: int) -> int:
    hashed = hashlib.sha256(dag_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(hashed[:8], "big") % count


def assign(dag_ids: Iterable[str], shard_size: int, count: int) -> list[list[str]]:
    """The DAG ids of each of ``count`` shards, sorted; each DAG goes to its hash's shard,
    or when that is full to the next one with room."""
    shards: list[list[str]] = [[] for _ in range(count)]
    for dag_id in sorted(dag_ids, key=lambda dag_id: (_home(dag_id, count), dag_id)):
        index = _home(dag_id, count)
        while len(shards[index]) >= shard_size:
            index = (index + 1) % count
        shards[index].append(dag_id)
    return [sorted(shard) for shard in shards]


def earlier_files(out_dir: Path, skipped: Container[Path]) -> dict[str, str]:
    """The DAGs whose files earlier renders left in the bundle's folder (those of
    ``skipped`` left out), each with the config its header names."""
    listed = {}
    try:
        found = sorted((out_dir / FOLDER).glob("*.py"))
    except OSError:
        found = []
    for path in found:
        if path in skipped:
            continue
        try:
            source = recorded_source(path)
        except OSError:
            continue  # unreadable: listed again once it can be read
        if source is not None:
            listed[path.stem] = source
    return listed


def shard_files(
    out_dir: Path, listed: Mapping[str, str], shard_size: int
) -> list[tuple[Path, str]]:
    """Every shard file of a bundle of the ``listed`` DAGs (DAG id: config), and what
    it holds; as many shards as there are already at least."""
    there = (shard_index(path) for path in out_dir.glob(f"{SHARD_PREFIX}*.py"))
    known = max((index + 1 for index in there if index is not None), default=1)
    count = shard_count(len(listed), shard_size, known)
    return [
        (
            shard_path(out_dir, index),
            shard_source(index, count, {dag_id: listed[dag_id] for dag_id in dag_ids}),
        )
        for index, dag_ids in enumerate(assign(listed, shard_size, count))
    ]


def shard_source(index: int, count: int, configs: Mapping[str, str]) -> str:
    """The shard file listing ``configs`` (DAG id: the config it is generated from)."""
    listed = "".join(
        f"    {python_literal(dag_id)}: {python_literal(config)},\n"
        for dag_id, config in sorted(configs.items())
    )
    table = f"{{\n{listed}}}" if listed else "{}"
    return _SHARD.format(header=shard_header(index, count), configs=table)


# The shard file: ruff-formatted as it stands, for Airflow 2.10 to 3.4.
_SHARD = '''\
{header}
#
# Airflow shows this file as the code of each DAG that CONFIGS lists. A DAG's own code
# is _dagfactory_bundle/<dag_id>.py beside this file, generated from its config, which
# .airflowignore hides from Airflow's parser. Each DAG is built on its own: when a task
# starts, only its DAG; and one that fails to build is this file's import error, while
# the others load.
import importlib.util
import os
import traceback

try:
    from airflow.sdk import DAG, get_parsing_context
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.utils.dag_parsing_context import get_parsing_context
try:
    from airflow.sdk.definitions._internal.contextmanager import DagContext
except ImportError:  # Airflow 2
    from airflow.models.dag import DagContext

# Each DAG of this file: its dag_id and the config it is generated from.
CONFIGS = {configs}


def _build(dag_id):
    """Run the DAG's file as though it were this one, whose folder holds the user's
    code; a DAG it left half built when it failed is not registered."""
    folder = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(folder, "{folder}", f"{{dag_id}}.py")
    spec = importlib.util.spec_from_file_location(f"{{__name__}}.{{dag_id}}", path)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = __file__
    registered = set(DagContext.autoregistered_dags)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        DagContext.autoregistered_dags.intersection_update(registered)
        raise


class _Unbuilt(DAG):
    """Stands for the DAGs that failed to build: Airflow validates it, records the
    error as this file's import error, and loads the other DAGs all the same."""

    def validate(self):
        raise RuntimeError(self.description)


_wanted = get_parsing_context().dag_id
_failed = []
for _dag_id in CONFIGS if _wanted is None else [_wanted] if _wanted in CONFIGS else []:
    try:
        _build(_dag_id)
    except Exception:
        _failed.append(f"{{_dag_id}} ({{CONFIGS[_dag_id]}}): {{traceback.format_exc()}}")
if _failed:
    _unbuilt = _Unbuilt(
        dag_id=f"{{os.path.basename(__file__)[:-3]}}_unbuilt",
        schedule=None,
        description=f"{{len(_failed)}} of the DAGs of this file failed to build "
        "(the others are loaded):\\n\\n" + "\\n".join(_failed),
    )
'''.replace("{folder}", FOLDER)
