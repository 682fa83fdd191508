"""Write generated files safely.

A file is written atomically (a temporary file in the same folder, then a rename),
only when its bytes change (so mtimes stay and the scheduler does not re-parse), and
never over a file that dagfactory did not generate.
"""

from __future__ import annotations

import difflib
import enum
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dagfactory.render import GENERATED_MARKER

_MARKER = GENERATED_MARKER.encode()
# fsync waits on the disk, not the CPU: overlapping many of them is what makes a large
# batch of writes fast.
_WRITE_THREADS = 16


class Status(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    FOREIGN = "foreign"  # the path holds a file dagfactory did not generate


@dataclass(frozen=True)
class Output:
    """A file to generate: where, what, and from which config."""

    path: Path
    content: str
    source: str

    def status(self) -> Status:
        try:
            current = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return Status.CREATE  # writing will say why the folder cannot hold it
        except OSError:
            # A folder or an unreadable file: in the way, so never replaced.
            return Status.FOREIGN
        if current == self.content.encode():
            return Status.UNCHANGED
        if not current.startswith(_MARKER):
            return Status.FOREIGN
        return Status.UPDATE

    def diff(self) -> str:
        """A unified diff from what is on disk to what would be written."""
        try:
            current = self.path.read_text("utf-8")
        except FileNotFoundError:
            current = ""
        lines = difflib.unified_diff(
            current.splitlines(keepends=True),
            self.content.splitlines(keepends=True),
            fromfile=f"{self.path} (on disk)",
            tofile=f"{self.path} (from {self.source})",
        )
        return "".join(lines)


def write_atomic(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` so that readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short fixed prefix: `.<name>.` would push a 250-character DAG id's temporary
    # name past the 255 bytes a file name may have. Airflow ignores dot-files and `.tmp`.
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=".dagfactory-", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as stream:
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
