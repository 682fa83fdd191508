"""The project a command works in: its root folder, and the settings of its
``[tool.dagfactory]`` table.

Every command sees one project whatever path was typed and wherever it was run from,
so that a config renders and validates the same given by its folder, by its own path,
or from any folder of the project. The root is found as ruff and pytest find theirs,
upward: the nearest folder holding a ``pyproject.toml`` with a ``[tool.dagfactory]``
table, or else the nearest holding a ``configs/`` folder.

- A config's project is found from the config's own folder (as ruff finds a file's
  settings), and it bounds the config's defaults chain: every ``defaults.yaml`` from
  the project's configs folder (its root, for a config outside that folder) down to
  the config's folder applies. A config in no project has only its own folder's.
- The settings a command starts from (which configs, which dags folder) are the
  project's found from the working directory: its folders are relative to its root,
  and the command line's flags still win.
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dagfactory.problems import UsageError

PYPROJECT = "pyproject.toml"
CONFIGS = "configs"
OUT = "generated_dags"
# The settings [tool.dagfactory] may hold: folders (relative to the root) and jobs;
# target_airflow is a default of every config, judged as a config's value is
# (dagfactory.compile.project_defaults).
FOLDER_SETTINGS = ("configs", "out", "templates")
CONFIG_DEFAULTS = ("target_airflow",)
# How DAGs are laid out in the output folder (dagfactory.output.bundle): one file per
# DAG, or bundled into shards of at most shard_size DAGs.
OUTPUTS = ("files", "bundled")
SHARD_SIZE = 200
SETTINGS = (*FOLDER_SETTINGS, "jobs", "output", "shard_size", *CONFIG_DEFAULTS)


@dataclass(frozen=True)
class Project:
    """A project's root (absolute) and its settings, folders as absolute paths.

    ``defaults_file`` is its pyproject.toml when the table sets a default of every
    config: the outermost file of each config's defaults chain.
    """

    root: Path
    configs: Path
    out: Path
    templates: Path | None = None
    jobs: int | None = None
    defaults_file: Path | None = None
    shard_size: int | None = None  # bundled output: at most this many DAGs a shard

    @classmethod
    def at(cls, root: Path, table: dict | None = None) -> Project:
        """The project rooted at ``root`` with the settings of its ``table``."""
        table = table or {}
        unknown = sorted(set(table) - set(SETTINGS))
        if unknown:
            raise UsageError(
                f"{root / PYPROJECT}: [tool.dagfactory] has no setting {unknown[0]!r} "
                f"(it knows {', '.join(SETTINGS)})"
            )
        for name in FOLDER_SETTINGS:
            if name in table and not isinstance(table[name], str):
                raise UsageError(
                    f"{root / PYPROJECT}: [tool.dagfactory] {name} must be a folder name, "
                    f"got {table[name]!r}"
                )
        jobs = _whole_number(root, table, "jobs")
        output = table.get("output", OUTPUTS[0])
        if output not in OUTPUTS:
            raise UsageError(
                f"{root / PYPROJECT}: [tool.dagfactory] output must be "
                f"{' or '.join(map(repr, OUTPUTS))}, got {output!r}"
            )
        shard_size = _whole_number(root, table, "shard_size")
        if shard_size is not None and output != "bundled":
            raise UsageError(
                f"{root / PYPROJECT}: [tool.dagfactory] shard_size is for bundled "
                'output: add output = "bundled", or remove shard_size'
            )
        templates = table.get("templates")
        return cls(
            root,
            root / table.get("configs", CONFIGS),
            root / table.get("out", OUT),
            None if templates is None else root / templates,
            jobs,
            root / PYPROJECT if set(CONFIG_DEFAULTS) & set(table) else None,
            (shard_size or SHARD_SIZE) if output == "bundled" else None,
        )

    def defaults_folders(self, folder: Path) -> list[Path]:
        """The folders whose defaults files apply to a config in ``folder`` (absolute,
        in this project), from the outermost in: from the configs folder when the
        config is in it, else from the root."""
        top = self.configs if folder.is_relative_to(self.configs) else self.root
        parts = folder.relative_to(top).parts
        return [top.joinpath(*parts[:count]) for count in range(len(parts) + 1)]


def _whole_number(root: Path, table: dict, name: str) -> int | None:
    """The setting ``name`` of ``table``, a whole number of at least 1 (or None)."""
    value = table.get(name)
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or value < 1
    ):
        raise UsageError(
            f"{root / PYPROJECT}: [tool.dagfactory] {name} must be a whole number "
            f"of at least 1, got {value!r}"
        )
    return value


@functools.lru_cache(maxsize=256)
def find_project(folder: str) -> Project | None:
    """The project ``folder`` (absolute) is in, or None: the nearest folder upward with
    a ``[tool.dagfactory]`` table in its pyproject.toml, else the nearest holding
    ``configs/``."""
    folders = [Path(folder), *Path(folder).parents]
    for candidate in folders:
        table = _table(candidate / PYPROJECT)
        if table is not None:
            return Project.at(candidate, table)
    for candidate in folders:
        if (candidate / CONFIGS).is_dir():
            return Project.at(candidate)
    return None


def working_project() -> Project:
    """The project of the working directory; outside one, the working directory with
    the default settings (configs/, generated_dags/)."""
    cwd = os.getcwd()
    return find_project(cwd) or Project.at(Path(cwd))


@functools.lru_cache(maxsize=256)
def _table(pyproject: Path) -> dict | None:
    """The ``[tool.dagfactory]`` table of a pyproject.toml; None without one."""
    try:
        text = pyproject.read_text("utf-8")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        raise UsageError(f"{pyproject}: cannot read it ({exc.strerror})") from None
    if "dagfactory" not in text:  # most pyproject.toml files: not parsed at all
        return None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{pyproject}: not valid TOML ({exc})") from None
    table = document.get("tool", {}).get("dagfactory")
    if table is not None and not isinstance(table, dict):
        raise UsageError(f"{pyproject}: tool.dagfactory must be a table")
    return table


def add_table(folder: Path, settings: dict[str, str]) -> Path | None:
    """Give ``folder``'s pyproject.toml a ``[tool.dagfactory]`` table with ``settings``:
    the file is created if absent, the table added at its end if it has none; one that
    has a table is left alone (None), and nothing else in it is ever changed."""
    pyproject = folder / PYPROJECT
    try:
        text = pyproject.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    if text:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{pyproject}: not valid TOML ({exc})") from None
        if "dagfactory" in document.get("tool", {}):
            return None
    # A TOML basic string is written as a JSON string is, for the text it holds here.
    lines = [f"{name} = {json.dumps(value)}" for name, value in settings.items()]
    table = "\n".join(["[tool.dagfactory]", *lines]) + "\n"
    separator = "" if not text else "\n" if text.endswith("\n") else "\n\n"
    with pyproject.open("a", encoding="utf-8") as stream:
        stream.write(separator + table)
    forget_projects()
    return pyproject


def forget_projects() -> None:
    """Forget the projects and tables looked up so far (a table was just written, or
    a long-lived process must see files come and go)."""
    _table.cache_clear()
    find_project.cache_clear()
