"""Carry out a :class:`~.plan.Plan`: write what changed, remove what is stale, or nothing.

A file is written atomically (a temporary file in the same folder, then a rename), and
only when the plan says its bytes change (so mtimes stay and the scheduler does not
re-parse). The plan never holds a file that dagfactory did not generate; no other file
is ever written over or removed. If any write fails, the files are as they were.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dagfactory.output.plan import Plan, PlannedFile
from dagfactory.problems import Problem

# fsync waits on the disk, not the CPU: overlapping many of them is what makes a large
# batch of writes fast.
_WRITE_THREADS = 16


def write_atomic(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` so that readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short fixed prefix: `.<name>.` would push a 250-character DAG id's temporary
    # name past the 255 bytes a file name may have. Airflow ignores dot-files and `.tmp`.
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=".dagfactory-", suffix=".tmp"
    )
    try:
        try:
            stream = os.fdopen(handle, "wb")
        except BaseException:
            os.close(handle)  # the stream never took the descriptor over
            raise
        with stream:
            stream.write(content.encode())
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class WriteError(Exception):
    """A file could not be written; the file on disk is as it was."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"{path}: {error}")
        self.path = path
        self.reason = error.strerror or str(error)


def write_all(files: list[tuple[Path, str]]) -> None:
    """:func:`write_atomic` every ``(path, content)``, several at a time.

    Raises :class:`WriteError` for the first file (in the order given) that failed.
    """

    def write(file: tuple[Path, str]) -> None:
        try:
            write_atomic(*file)
        except OSError as exc:
            raise WriteError(file[0], exc) from exc

    with ThreadPoolExecutor(max_workers=_WRITE_THREADS) as executor:
        for _ in executor.map(write, files):
            pass  # raises the first error, in the order of ``files``


@dataclass
class Applied:
    """What carrying out a plan did: the files written and removed, or the failure."""

    written: list[PlannedFile] = field(default_factory=list)
    removed: list[PlannedFile] = field(default_factory=list)
    failure: Problem | None = None


def apply(plan: Plan, *, prune: bool = False) -> Applied:
    """Write every change of ``plan`` (all or, on a failure, none); with ``prune``, remove its stale files."""
    changes = plan.writes
    try:
        write_all([(planned.path, planned.content) for planned in changes])
    except WriteError as exc:
        message = f"cannot write it ({exc.reason}); it is unchanged."
        return Applied(failure=Problem.in_file(str(exc.path), message))
    applied = Applied(written=changes)
    if prune:
        for planned in plan.stale:
            planned.path.unlink()
            applied.removed.append(planned)
    return applied
