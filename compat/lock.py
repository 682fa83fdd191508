"""Regenerate compat/constraints-X.Y.txt: resolve each supported version on PyPI and freeze it.

``python compat/lock.py`` (``./dev lock`` runs it) resolves, for each line of
versions.txt, dagfactory's own dependencies with its ``airflow`` and ``sklearn`` extras
(pyproject.toml: the scikit-learn example runs on every version too) together with that
line's requirements, with ``uv pip compile`` for the Python running it, and writes the exact
versions, so that ``./dev compat`` installs the same set on every machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from uv import find_uv_bin
from versions import COMPAT, Version, supported

HEADER = """\
# Airflow {series} for `./dev compat`: {requirements} with dagfactory's dependencies,
# resolved on PyPI for Python {python} and frozen. Regenerate: ./dev lock
"""


def lock(version: Version) -> None:
    """Resolve ``version`` and write its constraints file."""
    python = ".".join(map(str, sys.version_info[:2]))
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch, "requirements.txt")
        requirements.write_text("\n".join(version.requirements) + "\n", "utf-8")
        pins = subprocess.run(
            [
                find_uv_bin(),
                *("pip", "compile", "--quiet", "--no-header", "--no-annotate"),
                *("--python", sys.executable),
                *("--extra", "airflow", "--extra", "sklearn"),
                str(COMPAT.parent / "pyproject.toml"),
                str(requirements),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    header = HEADER.format(
        series=version.series,
        requirements=" ".join(version.requirements),
        python=python,
    )
    version.constraints.write_text(header + pins, "utf-8")
    print(f"lock: {version.constraints.relative_to(COMPAT.parent)}", file=sys.stderr)


if __name__ == "__main__":
    for each in supported():
        lock(each)
