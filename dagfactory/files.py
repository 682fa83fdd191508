"""Small file helpers that several layers share: a file's digest, and writing it whole.

They live here, below every layer, because ``build``, ``output``, ``compile`` and
``tools`` all need them: borrowing them sideways from :mod:`dagfactory.output` made
those layers depend on the output folder's planning and writing for a hash and a rename.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def digest(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex: how outputs (and a config's inputs) are recognised."""
    return hashlib.sha256(data).hexdigest()


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
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)
