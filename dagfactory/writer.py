"""Write generated files safely.

A file is written atomically (a temporary file in the same folder, then a rename),
only when its bytes change (so mtimes stay and the scheduler does not re-parse), and
never over a file that dagfactory did not generate. Generated files whose config is
gone are found by the config their header names; no other file is ever removed.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dagfactory.render import GENERATED_MARKER

_MARKER = GENERATED_MARKER.encode()
# fsync waits on the disk, not the CPU: overlapping many of them is what makes a large
# batch of writes fast.
_WRITE_THREADS = 16
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")
_SOURCE = re.compile(
    re.escape(GENERATED_MARKER)
    + r""" from ("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')\."""
)


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
        return _diff(self.path, self.content, f"from {self.source}")


def recorded_source(path: Path) -> str | None:
    """The config named in the header of a file dagfactory generated; None for any other file."""
    try:
        with path.open("rb") as stream:
            head = stream.readline(4096)
    except OSError:
        return None
    match = _SOURCE.match(head.decode("utf-8", "replace"))
    return _unquote(match.group(1)) if match else None


def _unquote(literal: str) -> str:
    """The text of a string literal as :func:`dagfactory.render.python_literal` writes it.

    Decoded by hand, escape by escape: nothing read from a file is ever evaluated.
    """
    simple = {"n": "\n", "r": "\r", "t": "\t"}

    def unescape(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] in "xuU" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        return simple.get(escape, escape)

    return _ESCAPE.sub(unescape, literal[1:-1])


def stale_files(out_dir: Path, produced: list[tuple[Path, str]]) -> list[Path]:
    """Generated files in ``out_dir`` that no config produces any more.

    ``produced`` pairs each file this batch produces with its config. A file is stale
    when it is not one of them and the config its header names is gone, or is one of
    this batch's configs (which now renders to another file). Files of configs outside
    this batch, and files dagfactory did not generate, are never stale.
    """
    current = {path.absolute() for path, _ in produced}
    sources = {source for _, source in produced}
    stale = []
    for path in sorted(out_dir.glob("*.py")):
        source = recorded_source(path)
        if source is None or path.absolute() in current:
            continue
        if source in sources or not Path(source).is_file():
            stale.append(path)
    return stale


def removal_diff(path: Path) -> str:
    """A unified diff that deletes ``path``."""
    return _diff(path, "", "stale: its config is gone")


def _diff(path: Path, new: str, new_label: str) -> str:
    """A unified diff from what is on disk at ``path`` (if anything) to ``new``."""
    try:
        current = path.read_text("utf-8")
    except FileNotFoundError:
        current = ""
    lines = difflib.unified_diff(
        current.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path} (on disk)",
        tofile=f"{path} ({new_label})",
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
