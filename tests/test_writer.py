"""Atomic writes: a failure at any point leaves the old file whole and no debris."""

from __future__ import annotations

import errno
import os
import time

import pytest

from dagfactory import files
from dagfactory.files import write_atomic
from dagfactory.output import writer


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
    monkeypatch.setattr(files.os, step, disk_full)
    with pytest.raises(OSError) as caught:
        write_atomic(target, "new content\n" * 1000)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_text() == "old content\n"
    assert [path.name for path in tmp_path.iterdir()] == ["demo.py"]


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(files.os, "replace", disk_full)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "demo.py", "new\n")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "demo.py"
    target.write_text("old\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
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
    monkeypatch.setattr(files.os, "fdopen", disk_full)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "demo.py", "new\n")
    monkeypatch.undo()
    assert set(os.listdir("/proc/self/fd")) <= open_before


def test_staged_files_are_invisible_until_committed_together(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.py").write_text("old a\n")
    staging = writer.Staging()
    staging.stage(out / "a.py", "new a\n")
    staging.stage(out / "b.py", "new b\n")
    try:
        # Written in the background, under dot-file names Airflow does not parse.
        deadline = time.monotonic() + 10
        while len(list(out.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        names = sorted(path.name for path in out.iterdir())
        assert names[-1] == "a.py" and len(names) == 3
        assert all(name.startswith(".dagfactory-") for name in names[:2])
        assert (out / "a.py").read_text() == "old a\n"
        staging.commit([out / "a.py", out / "b.py"])
    finally:
        staging.discard()
    assert sorted(path.name for path in out.iterdir()) == ["a.py", "b.py"]
    assert (out / "a.py").read_text() == "new a\n"
    assert (out / "b.py").read_text() == "new b\n"


def test_discarded_staging_leaves_no_file_and_no_folder_it_made(tmp_path):
    (tmp_path / "keep.txt").write_text("keep\n")
    out = tmp_path / "made" / "out"
    staging = writer.Staging()
    staging.stage(out / "a.py", "a\n")
    staging.stage(out / "a.py", "a again\n")  # two configs with one DAG id
    staging.stage(tmp_path / "b.py", "b\n")
    staging.discard()
    assert [path.name for path in tmp_path.iterdir()] == ["keep.txt"]


def test_a_failed_staged_write_commits_nothing(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("old a\n")
    real = writer.write_temporary

    def full_on_b(path, content):
        if path.name == "b.py":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, content)

    monkeypatch.setattr(writer, "write_temporary", full_on_b)
    staging = writer.Staging()
    staging.stage(tmp_path / "a.py", "new a\n")
    staging.stage(tmp_path / "b.py", "new b\n")
    with pytest.raises(writer.WriteError) as caught:
        staging.commit([tmp_path / "a.py", tmp_path / "b.py"])
    staging.discard()
    assert caught.value.path == tmp_path / "b.py"
    assert [path.name for path in tmp_path.iterdir()] == ["a.py"]
    assert (tmp_path / "a.py").read_text() == "old a\n"
