"""Which files a batch compiles: the configs named on the command line and their defaults files.

Folders are searched recursively for ``*.yaml`` and ``*.yml``; a ``defaults.yaml`` is
not a config but is merged under every config below it, in its folder and deeper,
within the config's project (:mod:`dagfactory.project`): which defaults files apply
to a config depends on where the config is, never on the path that named it or on
the working directory. Nothing here reads a config: that is
:mod:`dagfactory.compile.load`'s job.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from dagfactory.problems import UsageError
from dagfactory.project import find_project, forget_projects

CONFIG_SUFFIXES = (".yaml", ".yml")
DEFAULTS_STEM = "defaults"


def display_name(path: Path) -> str:
    """``path`` relative to the working directory when inside it, with forward slashes."""
    if not path.name:  # the root, or "."
        return _shown(path, os.getcwd())
    return _shown_folder(os.path.dirname(path), os.getcwd()) + path.name


def _shown(path: Path, cwd: str) -> str:
    absolute = Path(cwd, path)
    try:
        return absolute.relative_to(cwd).as_posix()
    except ValueError:
        return absolute.as_posix()


@functools.lru_cache(maxsize=256)
def _shown_folder(folder: str, cwd: str) -> str:
    """How :func:`display_name` shows a file's folder, with a final slash: worked out
    once per folder, as a batch has far fewer folders than configs (by strings: a
    Path made and hashed per config costs more than the rest)."""
    shown = _shown(Path(folder), cwd)
    return "" if shown == "." else f"{shown.rstrip('/')}/"


@dataclass(frozen=True)
class ConfigSource:
    """A config to compile: its file, and the name errors and headers give it."""

    path: Path
    name: str

    @property
    def defaults(self) -> tuple[tuple[Path, str], ...]:
        """Its defaults files as ``(path, name)`` pairs, from the outermost folder in:
        those of its project's folders from the configs folder (or the root) down to
        its own (:meth:`~dagfactory.project.Project.defaults_folders`)."""
        files = _defaults_files(os.path.abspath(os.path.dirname(self.path)))
        return tuple((path, display_name(path)) for path in files)


def discover(paths: list[Path]) -> list[ConfigSource]:
    """The configs named by ``paths``: files as given, folders searched recursively."""
    found: dict[Path, ConfigSource] = {}
    for path in paths:
        try:
            is_dir, exists = path.is_dir(), path.exists()
        except OSError as exc:  # a name too long, say: is_dir tells only some errors
            raise UsageError(f"{path}: cannot read it ({exc.strerror})") from exc
        if is_dir:
            for candidate in _configs_in(path):
                if candidate not in found:
                    found[candidate] = ConfigSource(candidate, display_name(candidate))
        elif exists:
            found.setdefault(path, ConfigSource(path, display_name(path)))
        else:
            raise UsageError(f"{path}: no such file or folder")
    return list(found.values())


def _configs_in(folder: Path) -> list[Path]:
    """The config files in ``folder`` and below, sorted as paths compare.

    A walk with :func:`os.scandir`, whose entries know their type, rather than
    ``Path.rglob`` and a ``stat`` per file: on a no-op render of 1,000 configs that is
    a sixth of the work. Like ``rglob``, it follows symlinks to files but not to
    folders. A folder it cannot read is an error (a config skipped in silence would
    leave its DAG file stale).
    """
    found = []
    folders = [os.fspath(folder)]
    while folders:
        name = folders.pop()
        try:
            entries = os.scandir(name)
        except OSError as exc:
            raise UsageError(
                f"{name}: cannot read this folder ({exc.strerror})"
            ) from exc
        with entries:
            for entry in entries:
                if entry.is_dir():
                    if not entry.is_symlink():
                        folders.append(entry.path)
                elif _is_config_name(entry.name) and entry.is_file():
                    found.append(Path(entry.path))
    # Sorted by parts, as Paths compare, without 10,000 Path comparisons.
    return sorted(found, key=lambda path: path.parts)


def _is_config_name(name: str) -> bool:
    """By ``Path(name).suffix`` and ``.stem``'s rule, without a Path for every file."""
    stem, _, extension = name.rpartition(".")
    return bool(stem) and f".{extension}" in CONFIG_SUFFIXES and stem != DEFAULTS_STEM


@functools.lru_cache(maxsize=1024)
def _defaults_files(folder: str) -> tuple[Path, ...]:
    """Existing defaults files for a config in ``folder`` (absolute), looked up once
    per folder, outermost first: the project's pyproject.toml when its table sets a
    default of every config, then its folders'; a config in no project has only its
    own folder's."""
    project = find_project(folder)
    outermost = (
        ()
        if project is None or project.defaults_file is None
        else (project.defaults_file,)
    )
    existing = [path for path in defaults_candidates(Path(folder)) if path.is_file()]
    return outermost + tuple(existing)


def defaults_candidates(folder: Path) -> list[Path]:
    """The defaults files, existing or not, that would apply to a config in
    ``folder`` (absolute), from the outermost folder in; a config in no project has
    only its own folder's (``--watch`` watches for them to appear)."""
    project = find_project(os.fspath(folder))
    folders = [folder] if project is None else project.defaults_folders(folder)
    return [
        folder / f"{DEFAULTS_STEM}{suffix}"
        for folder in folders
        for suffix in CONFIG_SUFFIXES
    ]


def forget_lookups() -> None:
    """Forget which defaults files and projects exist: a long-lived process
    (``--watch``) sees them come and go, where a command run once looks each up once."""
    _defaults_files.cache_clear()
    forget_projects()
