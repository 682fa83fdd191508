"""Atomic writes: a failure at any point leaves the old file whole and no debris."""

from __future__ import annotations

import errno
import os

import pytest

from dagfactory.output import writer
from dagfactory.output.writer import write_atomic


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    "step", ["fdopen", "fsync", "chmod", "replace"], ids=lambda step: f"fails at {step}"
)
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path, monkeypatch, step
):
    target = tmp_path / "demo.py"
    target.write_text("old content\n")
    monkeypatch.setattr(writer.os, step, disk_full)
    with pytest.raises(OSError) as caught:
        write_atomic(target, "new content\n" * 1000)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_text() == "old content\n"
    assert [path.name for path in tmp_path.iterdir()] == ["demo.py"]


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(writer.os, "replace", disk_full)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "demo.py", "new\n")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "demo.py"
    target.write_text("old\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["demo.py"]


def test_a_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "demo.py"
    write_atomic(target, "first\n")
    write_atomic(target, "second\n")
    assert target.read_text() == "second\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [path.name for path in target.parent.iterdir()] == ["demo.py"]


def test_a_failed_fdopen_closes_the_temporary_descriptor(tmp_path, monkeypatch):
    open_before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(writer.os, "fdopen", disk_full)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "demo.py", "new\n")
    monkeypatch.undo()
    assert set(os.listdir("/proc/self/fd")) <= open_before
