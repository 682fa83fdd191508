"""Files that are not what a config is: judged by type and size before a byte is read.

A huge file costs no memory, ``/dev/zero`` and a FIFO are refused at once (neither
is read, neither blocks), and ``doc_md_file`` has a limit too, reported at its line.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from conftest import VALID, dagfactory

SMALL_MEMORY = 400 * 1024**2  # bytes of address space: far less than the file below
TIME_LIMIT = 30  # seconds; a bound on a hang, not a benchmark


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SMALL_MEMORY, SMALL_MEMORY))


def validate(path: Path | str, cwd: Path) -> str:
    result = dagfactory(
        "validate", str(path), cwd=cwd, timeout=TIME_LIMIT, preexec_fn=_limit_memory
    )
    assert result.returncode == 1, result.stderr
    return result.stderr


def test_a_huge_file_is_refused_without_reading_it(tmp_path):
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as file:
        file.truncate(1536 * 1024**2)  # sparse: 1.5 GB that take no disk
    assert validate("huge.yaml", tmp_path).startswith(
        "huge.yaml:1:1: error: (top level): file is 1,610,612,736 bytes;"
        " configs are limited to 1,000,000 bytes\n"
    )


def test_a_device_is_refused_without_reading_it(tmp_path):
    assert validate("/dev/zero", tmp_path).startswith(
        "/dev/zero:1:1: error: (top level): cannot read file:"
        " it is not a regular file (a character device)\n"
    )


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    assert validate("pipe.yaml", tmp_path).startswith(
        "pipe.yaml:1:1: error: (top level): cannot read file:"
        " it is not a regular file (a FIFO)\n"
    )


def test_a_doc_md_file_over_its_limit_is_refused_at_its_line(tmp_path):
    (tmp_path / "notes.md").write_text("x" * 100_001)
    config = VALID.replace("dag:\n", "dag:\n  doc_md_file: notes.md\n")
    (tmp_path / "c.yaml").write_text(config)
    assert validate("c.yaml", tmp_path).startswith(
        "c.yaml:2:16: error: dag.doc_md_file: cannot read notes.md: file is 100,001"
        " bytes; doc_md files are limited to 100,000 bytes\n"
    )


def test_a_doc_md_file_that_is_a_fifo_is_refused_at_its_line(tmp_path):
    os.mkfifo(tmp_path / "notes.md")
    config = VALID.replace("dag:\n", "dag:\n  doc_md_file: notes.md\n")
    (tmp_path / "c.yaml").write_text(config)
    assert validate("c.yaml", tmp_path).startswith(
        "c.yaml:2:16: error: dag.doc_md_file: cannot read notes.md:"
        " it is not a regular file (a FIFO)\n"
    )
