"""Remember what each config compiled to, so that an unchanged batch is not compiled again.

An entry is keyed by the SHA-256 of everything that decides a config's outcome:
dagfactory's own code, templates and schema, the versions of Python and of the libraries
it runs on, the config's name (it is written into the file's header) and its bytes (and
those of its defaults and template files). What the config read from outside (the
environment variables its ``!env`` values named, its ``doc_md_file``), as the loader
recorded it, is stored in the entry as digests and compared again on every lookup.
Entries are made only for configs that compiled without error, so a hit means the config
is valid; it gives the DAG id (and where it is written, for the check that DAG ids are
unique across configs) and the SHA-256 of the file it renders to. The cache is a plain
JSON file whose records are kept by field name; one that is missing, unreadable or of
any other shape (corrupt, or written by a version that kept its records otherwise) is
simply empty.

Beside the entries, the cache remembers the SHA-256 of each file it read (configs,
defaults, DAG files) with the file's size, times and inode, as git's index and ruff's
cache do: while those are unchanged the file is not read again, which is most of what a
render of an unchanged project costs. A file changed less than two seconds before it was
read could change again within the same tick of the file system's clock without its
times showing it, so it is read again until it has settled; and its change time, which
no tool can set back, is among what is compared.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field, fields
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from dagfactory.compile.header import is_generated
from dagfactory.files import digest, read_bounded, write_atomic
from dagfactory.problems import Problem

if TYPE_CHECKING:
    from dagfactory.compile.document import Inputs

CACHE_FILE = Path(".dagfactory") / "render-cache.json"
MAX_ENTRIES = 100_000
SETTLED_NS = 2_000_000_000  # see the module's docstring
_PACKAGE = Path(__file__).resolve().parent.parent
_LIBRARIES = ("yaml", "jinja2", "jsonschema")


@dataclass(frozen=True)
class CacheEntry:
    """What a valid config compiled to: all a hit needs, without compiling it.

    The cache file keeps it by field name (:meth:`to_json`), so that a file written by
    another version of this record reads as no entry rather than as shifted fields.
    """

    dag_id: str
    dag_id_line: int
    dag_id_column: int
    digest: str
    inputs: dict[str, dict[str, str | None]] = field(default_factory=dict)
    code_modules: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()  # replayed on every hit

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "dag_id_line": self.dag_id_line,
            "dag_id_column": self.dag_id_column,
            "digest": self.digest,
            "inputs": self.inputs,
            "code_modules": list(self.code_modules),
            "warnings": [warning.to_json() for warning in self.warnings],
        }

    @classmethod
    def from_json(cls, data: Any) -> CacheEntry:
        """The entry :meth:`to_json` made; raises :class:`ValueError` for any other shape."""
        if not isinstance(data, dict) or data.keys() != _ENTRY_FIELDS:
            raise ValueError("an entry of another shape")
        inputs, modules = data["inputs"], data["code_modules"]
        if not (
            _all_of(data["dag_id"], data["digest"], kind=str)
            and _all_of(data["dag_id_line"], data["dag_id_column"], kind=int)
            and isinstance(inputs, dict)
            and all(
                isinstance(held, dict)
                and all(
                    value is None or isinstance(value, str) for value in held.values()
                )
                for held in inputs.values()
            )
            and isinstance(modules, list)
            and _all_of(*modules, kind=str)
            and isinstance(data["warnings"], list)
        ):
            raise ValueError("an entry of another shape")
        warnings = tuple(map(Problem.from_json, data["warnings"]))
        return cls(**{**data, "code_modules": tuple(modules), "warnings": warnings})

    def inputs_unchanged(self) -> bool:
        """Whether every outside input the config read still holds what it held then."""
        env = self.inputs.get("env", {})
        files = self.inputs.get("files", {})
        return all(_env_digest(name) == held for name, held in env.items()) and all(
            _file_digest(Path(path)) == held for path, held in files.items()
        )


_ENTRY_FIELDS = {entry_field.name for entry_field in fields(CacheEntry)}
_STAT_FIELDS = {"size", "mtime_ns", "ctime_ns", "inode"}


def _all_of(*values: object, kind: type) -> bool:
    """Whether every one of ``values`` is of ``kind``; a bool is not taken for an int."""
    return all(isinstance(v, kind) and not isinstance(v, bool) for v in values)


def _is_file_record(known: Any) -> bool:
    """Whether ``known`` is a file's record as :meth:`RenderCache.digest_of` keeps it."""
    return (
        isinstance(known, dict)
        and known.keys() == {"stat", "digest"}
        and isinstance(known["digest"], str)
        and isinstance(known["stat"], dict)
        and known["stat"].keys() == _STAT_FIELDS
        and _all_of(*known["stat"].values(), kind=int)
    )


def recorded_inputs(inputs: Inputs) -> dict[str, dict[str, str | None]]:
    """The digests of what a config read from outside, as an entry stores them."""
    recorded: dict[str, dict[str, str | None]] = {}
    if inputs.env:
        recorded["env"] = {name: _env_digest(name) for name in sorted(inputs.env)}
    if inputs.doc_md_file is not None:
        path = inputs.doc_md_file.as_posix()
        recorded["files"] = {path: _file_digest(inputs.doc_md_file)}
    return recorded


def _env_digest(name: str) -> str | None:
    """An environment variable as a digest: the cache file never holds a secret's value."""
    value = os.environ.get(name)
    return None if value is None else digest(value.encode("utf-8", "surrogateescape"))


def _file_digest(path: Path) -> str | None:
    try:
        return digest(path.read_bytes())
    except OSError:
        return None


@cache
def code_fingerprint() -> bytes:
    """The SHA-256 of dagfactory's files, Python's version and the libraries' installs.

    A library is known by where its package is and when that was written, which any
    install, upgrade or downgrade changes (reading versions costs more than all of this).
    """
    fingerprint = hashlib.sha256(sys.version.encode())
    for library in _LIBRARIES:
        spec = find_spec(library)
        origin = spec.origin if spec and spec.origin else ""
        written = os.stat(origin).st_mtime_ns if origin else 0
        fingerprint.update(f"\0{library}={origin}@{written}".encode())
    for path in sorted(_PACKAGE.rglob("*")):
        if path.suffix in {".py", ".j2", ".json"}:
            fingerprint.update(f"\0{path.relative_to(_PACKAGE).as_posix()}\0".encode())
            fingerprint.update(path.read_bytes())
    return fingerprint.digest()


class RenderCache:
    """Entries from the last renders, plus what this run adds; saved only when it grew."""

    def __init__(
        self,
        path: Path,
        entries: dict[str, CacheEntry],
        files: dict[str, dict] | None = None,
    ) -> None:
        self.path = path
        self.entries = entries
        self.added: dict[str, CacheEntry] = {}
        # path: {"stat": {size, mtime_ns, ctime_ns, inode}, "digest": its SHA-256}
        self.files = files or {}
        self.seen: dict[str, dict] = {}  # the settled files this run looked at
        # What this run learnt of each file, so that it reads none twice: its digest,
        # the bytes read for whoever needs them next, and of a DAG file that does not
        # hold what :meth:`holds` expected: whether it is generated (None: missing).
        self.digests: dict[str, dict] = {}
        self.contents: dict[str, bytes] = {}
        self.replaced: dict[str, bool | None] = {}

    @classmethod
    def of_project(cls, root: Path) -> RenderCache:
        """The cache of the project at ``root``: one per project, wherever in it a
        command runs (never a stray ``.dagfactory/`` in a subfolder)."""
        return cls.from_file(root / CACHE_FILE)

    @classmethod
    def from_file(cls, path: Path = CACHE_FILE) -> RenderCache:
        """The cache saved at ``path``; empty when it is missing or has any other shape
        (corrupt, or written by a version that kept its records otherwise)."""
        try:
            raw = json.loads(path.read_bytes())
            entries = {
                key: CacheEntry.from_json(value)
                for key, value in raw["entries"].items()
            }
            files = raw["files"]
            if not all(_is_file_record(known) for known in files.values()):
                raise ValueError("a file of another shape")
        except (
            OSError,
            ValueError,
            TypeError,
            AttributeError,
            KeyError,
            RecursionError,
        ):
            entries, files = {}, {}
        return cls(path, entries, files)

    @staticmethod
    def key(name: str, data: bytes) -> str:
        """The key of the config called ``name`` holding ``data``."""
        key = hashlib.sha256(code_fingerprint())
        key.update(name.encode("utf-8", "surrogateescape") + b"\0")
        key.update(data)
        return key.hexdigest()

    def digest_of(
        self, path: Path, *, keep: bool = False, limit: int | None = None
    ) -> str:
        """The SHA-256 of the file at ``path``; read only when it may have changed (its
        stat differs from when it was read, in an earlier run or this one). With ``keep``, bytes read now stay in :attr:`contents`, so
        that whoever needs them next does not read the file again.

        Raises :class:`OSError` when the file cannot be read, is not a regular file or
        is larger than ``limit`` bytes: then it is not read at all.
        """
        name = os.fspath(path)  # as given: the cache file is kept per working folder
        stat = os.stat(name)
        if not S_ISREG(stat.st_mode) or (limit is not None and stat.st_size > limit):
            raise OSError(errno.EINVAL, "not a regular file within the limit", name)
        signature = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "ctime_ns": stat.st_ctime_ns,
            "inode": stat.st_ino,
        }
        known = self.files.get(name)
        if known is not None and known["stat"] == signature:
            self.seen[name] = known
            return known["digest"]
        read_now = self.digests.get(name)
        if read_now is not None and read_now["stat"] == signature:
            return read_now["digest"]  # unsettled, but read this run and unchanged
        data = read_bounded(name, limit)
        value = digest(data)
        self.digests[name] = {"stat": signature, "digest": value}
        if keep:
            self.contents[name] = data
        # Stat first, read second: a change in between shows in the next stat.
        if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > SETTLED_NS:
            self.seen[name] = {"stat": signature, "digest": value}
        return value

    def holds(self, path: Path, expected: str) -> bool:
        """Whether ``path`` holds the file whose SHA-256 is ``expected``.

        A file read now that does not is remembered in :attr:`replaced` (whether it
        is missing or generated), so that planning need not read it again.
        """
        name = os.fspath(path)
        try:
            value = self.digest_of(path, keep=True)
        except (FileNotFoundError, NotADirectoryError):
            self.replaced[name] = None
            return False
        except OSError:
            return False
        data = self.contents.pop(name, None)
        if value != expected and data is not None:
            self.replaced[name] = is_generated(data)
        return value == expected

    def get(self, key: str) -> CacheEntry | None:
        """The entry of ``key``, if the outside inputs it recorded are unchanged."""
        entry = self.entries.get(key)
        return entry if entry is not None and entry.inputs_unchanged() else None

    def put(self, key: str, entry: CacheEntry) -> None:
        if self.entries.get(key) != entry:
            self.added[key] = entry

    def save(self) -> None:
        """Write the cache if it learnt anything, newest first, at most MAX_ENTRIES each."""
        learnt = any(self.files.get(name) != known for name, known in self.seen.items())
        if not self.added and not learnt:
            return
        entries = _newest_first(self.added, self.entries)
        files = _newest_first(self.seen, self.files)
        raw = {
            "entries": {key: entry.to_json() for key, entry in entries.items()},
            "files": files,
        }
        try:
            write_atomic(self.path, json.dumps(raw, separators=(",", ":")))
        except OSError:
            return  # a cache that cannot be written only costs time
        self.entries, self.added, self.files = entries, {}, files


def _newest_first(new: dict, old: dict) -> dict:
    merged = new | {key: value for key, value in old.items() if key not in new}
    return dict(list(merged.items())[:MAX_ENTRIES])
