"""Carry out a :class:`~.plan.Plan`: write what changed, remove what is stale, or nothing.

A file is written atomically (a temporary file in the same folder, then a rename), and
only when the plan says its bytes change (so mtimes stay and the scheduler does not
re-parse). The plan never holds a file that dagfactory did not generate; no other file
is ever written over or removed. Every file is on disk under its temporary name before
the first is renamed into place, so if any write fails (a full disk), the files are as
they were.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.files import write_temporary
from dagfactory.output.guard import write_journal
from dagfactory.output.plan import Plan, PlannedFile
from dagfactory.problems import Problem

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# tempfile and concurrent.futures are imported where files are written: a render that
# writes nothing (and validate, which saves no cache) does not pay 10 ms for them.

# fsync waits on the disk, not the CPU: overlapping many of them is what makes a large
# batch of writes fast.
_WRITE_THREADS = 16


class WriteError(Exception):
    """A file could not be written; the file on disk is as it was."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"{path}: {error}")
        self.path = path
        self.reason = error.strerror or str(error)


class Staging:
    """Files written beside their targets under temporary names, renamed into place
    together by :meth:`commit`; :meth:`discard` removes whatever was not.

    ``render`` stages each DAG file as soon as its config compiles, so the disk works
    while the CPU compiles the rest and no file's text waits in memory for the batch.
    Nothing is visible until the commit, which comes only for a batch without problems:
    temporary names are dot-files that Airflow ignores, and a folder created for them is
    removed again if nothing is committed.
    """

    # Texts handed over but not yet on disk: memory stays bounded when the disk is slow.
    IN_FLIGHT = 64

    def __init__(self, journal: Path | None = None) -> None:
        # Where the renames are listed while they are made (see :mod:`.guard`).
        self._journal = journal
        self._executor: ThreadPoolExecutor | None = None  # started by the first file
        self._slots = threading.BoundedSemaphore(self.IN_FLIGHT)
        self._lock = threading.Lock()
        self._tickets = itertools.count()
        self._latest: dict[Path, int] = {}  # each path's last staging (its ticket)
        # What each staging made, in the order they finished: its temporary file, or
        # why there is none. Kept instead of futures, which weigh a kilobyte each.
        self._written: list[tuple[Path, int, Path | Exception]] = []
        self._renamed: set[Path] = set()  # temporaries whose names are free again
        self._created: set[Path] = set()  # folders that did not exist before staging
        self._committed = False

    def __contains__(self, path: object) -> bool:
        return path in self._latest

    def stage(self, path: Path, content: str) -> None:
        """Start writing ``content`` for ``path``; a later :meth:`commit` puts it there."""
        folder = path.parent
        while folder not in self._created and not folder.exists():
            self._created.add(folder)
            folder = folder.parent
        # An interrupt inside submit could start a thread that shutdown does not
        # wait for, writing a file after discard: it waits until the file is handed over.
        with _interrupts_deferred():
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(max_workers=_WRITE_THREADS)
            self._slots.acquire()
            ticket = self._latest[path] = next(self._tickets)
            self._executor.submit(self._write, path, content, ticket)

    def _write(self, path: Path, content: str, ticket: int) -> None:
        try:
            made: Path | Exception = write_temporary(path, content)
        except Exception as exc:  # reported by commit
            made = exc
        finally:
            self._slots.release()
        with self._lock:
            self._written.append((path, ticket, made))

    def _finish(self) -> None:
        """Wait for every staged file to be written (or to fail)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def commit(self, paths: list[Path]) -> None:
        """Rename the staged files of ``paths`` into place, once all of them are on disk.

        Raises :class:`WriteError` for the first (in the order given) that could not be
        written; then none is renamed.
        """
        self._finish()
        made = {
            path: result
            for path, ticket, result in self._written
            if self._latest[path] == ticket
        }
        for path in paths:
            try:
                if path.is_dir():  # the one thing a rename in the same folder fails on
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
                if isinstance(made[path], OSError):
                    raise made[path]
            except OSError as exc:
                raise WriteError(path, exc) from exc
            if isinstance(made[path], Exception):
                raise made[path]
        if self._journal is not None and paths:
            try:
                write_journal(self._journal, [(made[path], path) for path in paths])
            except OSError as exc:
                raise WriteError(self._journal, exc) from exc
        self._committed = True
        with _interrupts_deferred():
            for path in paths:
                try:
                    os.replace(made[path], path)
                except OSError as exc:
                    raise WriteError(path, exc) from exc
                self._renamed.add(made[path])  # its name is free: never removed later
            if self._journal is not None:
                self._journal.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove every staged file not committed, and the folders made for them."""
        self._finish()
        for _, _, made in self._written:
            if isinstance(made, Path) and made not in self._renamed:
                made.unlink(missing_ok=True)
        if not self._committed:
            for folder in sorted(
                self._created, key=lambda f: len(f.parts), reverse=True
            ):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty: never what someone else put there


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then act as they would have:
    an interrupted render leaves every file old or every file new (SIGKILL cannot
    wait: the journal is for it).

    By handlers, not a signal mask: a signal the main thread blocks goes to another
    thread, and Python runs its handler in the main thread all the same.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {
        number: signal.signal(number, lambda signum, frame: received.append(signum))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            signal.raise_signal(received[0])


@dataclass
class Applied:
    """What carrying out a plan did: the files written and removed, or the failure."""

    written: list[PlannedFile] = field(default_factory=list)
    removed: list[PlannedFile] = field(default_factory=list)
    failure: Problem | None = None


def apply(
    plan: Plan,
    *,
    prune: bool = False,
    staging: Staging | None = None,
    journal: Path | None = None,
) -> Applied:
    """Write every change of ``plan`` (all or, on a failure, none); with ``prune``, remove its stale files.

    Files already in ``staging`` are renamed into place; the others are staged first
    (in a staging of its own, whose renames are listed in ``journal``). Every file is
    on disk under its temporary name before the first is renamed. A stale file that
    cannot be removed is the failure, after the changes are written.
    """
    changes = plan.writes
    own = staging is None
    staging = Staging(journal) if staging is None else staging
    try:
        for planned in changes:
            if planned.path not in staging:
                staging.stage(planned.path, planned.content)
        staging.commit([planned.path for planned in changes])
    except WriteError as exc:
        message = f"cannot write it ({exc.reason}); it is unchanged."
        return Applied(failure=Problem.in_file(str(exc.path), message))
    finally:
        if own:
            staging.discard()
    applied = Applied(written=changes)
    if prune:
        for planned in plan.stale:
            try:
                planned.path.unlink(missing_ok=True)  # or another render removed it
            except OSError as exc:
                written = (
                    f"{len(changes)} changed files were written"
                    if changes
                    else "nothing was written"
                )
                message = f"cannot remove it ({exc.strerror or exc}); {written}."
                applied.failure = Problem.in_file(str(planned.path), message)
                return applied
            applied.removed.append(planned)
    return applied
