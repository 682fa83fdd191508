"""What a render does about other renders and about dead ones: the output folder's
lock, temporary files a killed render left, and renames it did not finish."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import VALID, dagfactory
from dagfactory.output.guard import OutputGuard, write_journal
from dagfactory.output.writer import Staging

OUT = Path("generated_dags")


def write_configs(count: int, suffix: str = "") -> None:
    folder = Path("configs/many")
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        text = VALID.replace("dag_id: demo", f"dag_id: demo_{index:02d}{suffix}")
        (folder / f"c{index:02d}.yaml").write_text(text, "utf-8")


def test_a_render_waits_for_another_holding_the_folder_and_says_so_once(project):
    guard = OutputGuard(project, OUT)
    with guard.hold(on_wait=lambda message: None):
        render = subprocess.Popen(
            [sys.executable, "-m", "dagfactory", "render", "configs"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = render.stderr.readline()
        time.sleep(0.5)
        assert render.poll() is None  # still waiting
    out, rest = render.communicate(timeout=60)
    assert render.returncode == 0, rest
    assert first == (
        f"dagfactory: waiting for another dagfactory render of generated_dags/"
        f" (pid {os.getpid()}) ...\n"
    )
    assert "waiting" not in rest
    assert "up to date" not in out and "rendered" in out
    # The lock is the project's, never a file in the output folder.
    assert guard.lock_path.is_relative_to(project / ".dagfactory")
    assert not list(OUT.glob(".*.lock")) and not list(OUT.glob("*.lock"))


def test_temporary_files_a_dead_render_left_are_reported_then_removed():
    assert dagfactory("render", "configs").returncode == 0
    left = OUT / ".dagfactory-abc123.tmp"
    left.write_text("half a DAG")
    check = dagfactory("render", "--check", "configs")
    assert check.returncode == 1
    assert f"would remove {left} (a temporary file an interrupted render left)" in (
        check.stdout
    )
    assert "up to date" not in check.stdout
    assert left.exists()
    render = dagfactory("render", "--prune", "configs")
    assert render.returncode == 0, render.stderr
    assert f"removed {left}" in render.stdout
    assert not left.exists()
    again = dagfactory("render", "--check", "configs")
    assert again.returncode == 0 and "up to date" in again.stdout


def test_renames_a_killed_render_left_half_done_are_finished_by_the_next(project):
    """The on-disk state of a render SIGKILLed between two of its final renames, made
    by hand as the writer leaves it: every new file complete under its temporary name,
    the journal listing every rename, the first half of them made. (Killing a real
    render at exactly that point is a race; this is the state it leaves.)"""
    write_configs(10)
    assert dagfactory("render", "configs").returncode == 0
    old = {path.name: path.read_bytes() for path in OUT.glob("demo_*.py")}
    write_configs(10, suffix="")  # same DAG ids, new content: a changed schedule
    for path in Path("configs/many").glob("*.yaml"):
        path.write_text(path.read_text().replace("2024-01-01", "2024-02-02"))
    expected_dir = project / "expected"
    assert dagfactory("render", "configs", "--out", str(expected_dir)).returncode == 0
    new = {name: (expected_dir / name).read_bytes() for name in old}
    assert all(new[name] != old[name] for name in old)

    guard = OutputGuard(project, OUT)
    staging = Staging()
    targets = [OUT / name for name in sorted(old)]
    for target in targets:
        staging.stage(target, new[target.name].decode())
    staging._finish()
    temporaries = {path: made for path, _, made in staging._written}
    renames = [(temporaries[target], target) for target in targets]
    write_journal(guard.journal, renames)
    for temporary, target in renames[:4]:
        os.replace(temporary, target)

    check = dagfactory("render", "--check", "configs")
    assert check.returncode == 1
    assert "a render was interrupted while renaming" in check.stdout
    assert json.loads(guard.journal.read_text())  # --check changes nothing
    render = dagfactory("render", "configs")
    assert render.returncode == 0, render.stderr
    assert render.stdout.count("finished renaming") == 6
    assert {name: (OUT / name).read_bytes() for name in old} == new
    assert not guard.journal.exists()
    assert not list(OUT.glob(".dagfactory-*.tmp"))
    assert "up to date" in dagfactory("render", "--check", "configs").stdout
