"""One writer at a time per output folder, and what an interrupted writer left behind.

Two renders of one folder at once planned against each other's half-done work (one
removed a stale file the other had just removed: a FileNotFoundError traceback), so a
command that writes DAG files takes an exclusive lock (``flock``) on the folder before
it plans. The lock file is the project's (``.dagfactory/outputs/``, named by the
folder's resolved path), never in the output folder, which holds DAG files alone.

Holding the lock, a writer knows that nothing else writes the folder, so what it finds
there is a dead writer's:

- a rename journal (:class:`~.writer.Staging` writes it before the first rename into
  place and removes it after the last): a writer killed while renaming left some files
  new and some old; the renames still to do are listed there, their temporary files
  complete, so they are finished now;
- temporary files (``.dagfactory-*.tmp``) of a writer killed before its renames: they
  are removed.

``render --check`` reports both instead (it writes nothing).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dagfactory.files import write_atomic

STATE_FOLDER = Path(".dagfactory") / "outputs"
TEMPORARY_PATTERN = (
    ".dagfactory-*.tmp"  # as dagfactory.files.write_temporary names them
)


@dataclass(frozen=True)
class Leftovers:
    """What dead writers left in an output folder, found while holding its lock."""

    unfinished: list[tuple[Path, Path]]  # (temporary, final) renames a writer left
    temporary: list[Path]  # temporary files no rename will use

    def __bool__(self) -> bool:
        return bool(self.unfinished or self.temporary)


class OutputGuard:
    """The lock of one output folder, its rename journal, and its leftovers.

    ``locked`` is False when the project's state folder cannot be written (a read-only
    checkout): then there is no lock and no journal, and leftovers are left alone,
    as they may be a live writer's.
    """

    def __init__(self, project_root: Path, out_dir: Path) -> None:
        self.out_dir = out_dir
        key = hashlib.sha256(os.fsencode(out_dir.resolve())).hexdigest()[:32]
        state = project_root / STATE_FOLDER
        self.lock_path = state / f"{key}.lock"
        self.journal = state / f"{key}.renames.json"
        self.locked = False

    @contextlib.contextmanager
    def hold(
        self, on_wait: Callable[[str], None], *, create: bool = True
    ) -> Iterator[OutputGuard]:
        """Hold the folder's lock for the block; ``on_wait`` is told once if another
        process holds it (then this one waits for it). Without ``create``, a lock file
        that is not there yet is not made (``--check`` writes nothing): no lock then."""
        try:
            import fcntl  # here: Windows has none, and no lock
        except ImportError:
            yield self
            return
        try:
            if create:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | (os.O_CREAT if create else 0)
            handle = os.open(self.lock_path, flags, 0o644)
        except OSError:
            yield self
            return
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(handle, 32, 0).decode(errors="replace").strip()
                on_wait(
                    f"waiting for another dagfactory render of {self.out_dir}/"
                    f" (pid {holder or '?'}) ..."
                )
                fcntl.flock(handle, fcntl.LOCK_EX)
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
            self.locked = True
            yield self
        finally:
            self.locked = False
            os.close(handle)  # releases the lock

    @property
    def journal_path(self) -> Path | None:
        """Where the writer records its renames: only under the lock."""
        return self.journal if self.locked else None

    def leftovers(self) -> Leftovers:
        """What dead writers left; without the lock, what a live one is doing may be
        among it (fine to report, never to :meth:`recover`)."""
        unfinished = [
            (temporary, final)
            for temporary, final in read_journal(self.journal)
            if temporary.exists()
        ]
        pending = {temporary for temporary, _ in unfinished}
        try:
            found = sorted(self.out_dir.glob(TEMPORARY_PATTERN))
        except OSError:
            found = []
        return Leftovers(unfinished, [path for path in found if path not in pending])

    def recover(self, leftovers: Leftovers) -> None:
        """Finish a dead writer's renames and remove its other temporary files; only
        under the lock."""
        if not self.locked:
            return
        for temporary, final in leftovers.unfinished:
            os.replace(temporary, final)
        self.journal.unlink(missing_ok=True)
        for temporary in leftovers.temporary:
            temporary.unlink(missing_ok=True)


def write_journal(journal: Path, renames: list[tuple[Path, Path]]) -> None:
    """Record ``renames`` (temporary, final) before the first is made."""
    listed = [[os.path.abspath(t), os.path.abspath(f)] for t, f in renames]
    write_atomic(journal, json.dumps({"renames": listed}))


def read_journal(journal: Path) -> list[tuple[Path, Path]]:
    """The renames a journal lists; none when there is none (or it is unreadable)."""
    try:
        listed = json.loads(journal.read_bytes())["renames"]
        return [(Path(temporary), Path(final)) for temporary, final in listed]
    except (OSError, ValueError, TypeError, KeyError):
        return []
