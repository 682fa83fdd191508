"""Small file helpers that several layers share: a file's digest, writing it whole, and
a folder of this user's cache that no one else can write.

They live here, below every layer, because ``build``, ``output``, ``compile`` and
``tools`` all need them: borrowing them sideways from :mod:`dagfactory.output` made
those layers depend on the output folder's planning and writing for a hash and a rename.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO


def digest(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex: how outputs (and a config's inputs) are recognised."""
    return hashlib.sha256(data).hexdigest()


class TooLarge(OSError):
    """A file over its limit (``strerror`` says so); not read."""


_KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


def read_bounded(path: Path | str, limit: int | None, what: str = "files") -> bytes:
    """The bytes of the regular file at ``path``, which holds at most ``limit`` of them.

    Its type and size are checked on the opened file before anything is read, and no
    more than ``limit + 1`` bytes are ever read: a 2 GB file costs no memory, and
    ``/dev/zero``, a FIFO (opened without waiting for a writer) or a terminal is
    refused at once. Raises :class:`OSError` (:class:`TooLarge` over the limit) whose
    ``strerror`` says why, in words for a problem about ``what`` the file is.
    """
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC)
    with _stream(handle, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            kind = next(
                (name for is_kind, name in _KINDS.items() if is_kind(info.st_mode)),
                "a special file",
            )
            raise OSError(errno.EINVAL, f"it is not a regular file ({kind})")
        if limit is None:
            return file.read()
        raw = file.read(limit + 1) if info.st_size <= limit else b""
    size = max(info.st_size, len(raw))  # it may have grown since
    if size > limit:
        message = f"file is {size:,} bytes; {what} are limited to {limit:,} bytes"
        raise TooLarge(errno.EFBIG, message)
    return raw


def _stream(handle: int, mode: str) -> BinaryIO:
    """A stream over the open descriptor ``handle``; closed if the stream cannot
    take it over."""
    try:
        return os.fdopen(handle, mode)
    except BaseException:
        os.close(handle)
        raise


def write_atomic(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` so that readers see the old file or the new, never half."""
    temporary = write_temporary(path, content)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_temporary(path: Path, content: str) -> Path:
    """``content`` on disk beside ``path``, under a temporary name, ready to be renamed
    over it; nothing is left behind if that fails."""
    # Here, not at the top: a render that writes nothing does not pay for tempfile.
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    # A short fixed prefix: `.<name>.` would push a 250-character DAG id's temporary
    # name past the 255 bytes a file name may have. Airflow ignores dot-files and `.tmp`.
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=".dagfactory-", suffix=".tmp"
    )
    try:
        with _stream(handle, "wb") as stream:
            stream.write(content.encode())
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def user_cache_folder(*parts: str) -> Path | None:
    """dagfactory's folder ``parts`` in this user's cache, made if missing; None when it
    cannot be trusted with what is executed from it.

    It is ``$XDG_CACHE_HOME/dagfactory`` (``~/.cache/dagfactory`` without it), each
    level made 0o700, and refused when any level is a link, is not this user's, or is
    writable by the group or others (another user could plant what is loaded from it),
    or when it lies inside the working folder: nothing read from a project (which a
    pull request can fill) is ever executed. None also where there are no user ids.
    """
    if not hasattr(os, "getuid"):
        return None
    try:
        base = os.environ.get("XDG_CACHE_HOME", "")
        base_folder = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
        folder = base_folder / "dagfactory"
        base_folder.mkdir(parents=True, exist_ok=True)
        if folder.resolve().is_relative_to(Path.cwd().resolve()):
            return None
        for level in (
            folder,
            *(folder.joinpath(*parts[: n + 1]) for n in range(len(parts))),
        ):
            level.mkdir(mode=0o700, exist_ok=True)
            if not owned_privately(os.lstat(level), directory=True):
                return None
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return None
    return folder.joinpath(*parts)


def owned_privately(status: os.stat_result, *, directory: bool) -> bool:
    """Whether ``status`` is of a folder (or a regular file) that this user owns and
    that no one else may write."""
    kind = stat.S_ISDIR if directory else stat.S_ISREG
    return (
        kind(status.st_mode)
        and status.st_uid == os.getuid()
        and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )
