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
JSON file; one that is missing or unreadable is simply empty.

Beside the entries, the cache remembers the SHA-256 of each file it read (configs,
defaults, DAG files) with the file's size, times and inode, as git's index and ruff's
cache do: while those are unchanged the file is not read again, which is most of what a
render of an unchanged project costs. A file changed less than two seconds before it was
read could change again within the same tick of the file system's clock without its
times showing it, so it is read again until it has settled; and its change time, which
no tool can set back, is among what is compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from errno import EINVAL
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, NamedTuple

from dagfactory.output.plan import digest
from dagfactory.output.writer import write_atomic

MAX_DIGESTED_BYTES = 64_000_000  # far above any config or DAG file it keys

if TYPE_CHECKING:
    from dagfactory.compile.load import Inputs

CACHE_FILE = Path(".dagfactory") / "render-cache.json"
MAX_ENTRIES = 100_000
SETTLED_NS = 2_000_000_000  # see the module's docstring
_PACKAGE = Path(__file__).resolve().parent.parent
_LIBRARIES = ("yaml", "jinja2", "jsonschema")


class CacheEntry(NamedTuple):
    dag_id: str
    dag_id_line: int
    dag_id_column: int
    digest: str
    inputs: dict[str, dict[str, str | None]] = {}
    code_modules: tuple[str, ...] = ()
    warnings: tuple[tuple, ...] = ()  # Problem fields, replayed on every hit

    def inputs_unchanged(self) -> bool:
        """Whether every outside input the config read still holds what it held then."""
        env = self.inputs.get("env", {})
        files = self.inputs.get("files", {})
        return all(_env_digest(name) == held for name, held in env.items()) and all(
            _file_digest(Path(path)) == held for path, held in files.items()
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
        files: dict[str, list] | None = None,
    ) -> None:
        self.path = path
        self.entries = entries
        self.added: dict[str, CacheEntry] = {}
        self.files = files or {}  # path: [size, mtime, ctime, inode, digest]
        self.seen: dict[str, list] = {}  # the settled files this run looked at

    @classmethod
    def from_file(cls, path: Path = CACHE_FILE) -> RenderCache:
        try:
            raw = json.loads(path.read_bytes())
            entries = {key: CacheEntry(*value) for key, value in raw["entries"].items()}
            files = raw["files"]
            if not all(isinstance(entry.inputs, dict) for entry in entries.values()):
                raise ValueError("an entry of another shape")
            if not all(isinstance(known, list) for known in files.values()):
                raise ValueError("a file of another shape")
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            entries, files = {}, {}
        return cls(path, entries, files)

    @staticmethod
    def key(name: str, data: bytes) -> str:
        """The key of the config called ``name`` holding ``data``."""
        key = hashlib.sha256(code_fingerprint())
        key.update(name.encode("utf-8", "surrogateescape") + b"\0")
        key.update(data)
        return key.hexdigest()

    def digest_of(self, path: Path) -> str:
        """The SHA-256 of the file at ``path``; read only when it may have changed.

        Raises :class:`OSError` when the file cannot be read, and for what is not a
        regular file or is larger than MAX_DIGESTED_BYTES (a FIFO would block, a 2 GB
        file fill the memory): such a file is never in the cache; its loader says why.
        """
        name = os.fspath(path)  # as given: the cache file is kept per working folder
        stat = os.stat(name)
        if not S_ISREG(stat.st_mode) or stat.st_size > MAX_DIGESTED_BYTES:
            raise OSError(EINVAL, "not a regular file the render cache may read", name)
        signature = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        known = self.files.get(name)
        if known is not None and known[:4] == signature:
            self.seen[name] = known
            return known[4]
        with open(name, "rb") as file:
            value = digest(file.read())
        # Stat first, read second: a change in between shows in the next stat.
        if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > SETTLED_NS:
            self.seen[name] = [*signature, value]
        return value

    def holds(self, path: Path, expected: str) -> bool:
        """Whether ``path`` holds the file whose SHA-256 is ``expected``."""
        try:
            return self.digest_of(path) == expected
        except OSError:
            return False

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
        raw = {"entries": entries, "files": files}
        try:
            write_atomic(self.path, json.dumps(raw, separators=(",", ":")))
        except OSError:
            return  # a cache that cannot be written only costs time
        self.entries, self.added, self.files = entries, {}, files


def _newest_first(new: dict, old: dict) -> dict:
    merged = new | {key: value for key, value in old.items() if key not in new}
    return dict(list(merged.items())[:MAX_ENTRIES])
