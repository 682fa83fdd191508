"""The worker processes of a render, observed as the system sees them (Linux: /proc).

Slower than the rest (hundreds of configs, real processes): kept apart and short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import VALID

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads processes from /proc"
)


def write_configs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        text = VALID.replace("dag_id: demo", f"dag_id: demo_{index:04d}")
        (folder / f"c{index:04d}.yaml").write_text(text, "utf-8")


def children(parent: int) -> set[int]:
    """The live processes whose parent is ``parent`` (zombies are dead)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == parent and state != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def start_render(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dagfactory", "render", "configs", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_workers_die_with_a_render_killed_by_sigkill(tmp_path):
    write_configs(Path("configs/many"), 600)
    render = start_render("--jobs", "2")
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while not workers and render.poll() is None and time.monotonic() < deadline:
        workers = children(render.pid)
        time.sleep(0.01)
    assert workers, "the render finished before it started workers"
    render.send_signal(signal.SIGKILL)
    render.wait()
    deadline = time.monotonic() + 5
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = [pid for pid in workers if alive(pid)]
    for pid in orphans:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not orphans


def test_jobs_beyond_the_cpus_start_no_more_workers_than_cpus(tmp_path):
    write_configs(Path("configs/many"), 300)
    render = start_render("--jobs", "1000")
    most = 0
    while render.poll() is None:
        most = max(most, len(children(render.pid)))
        time.sleep(0.01)
    assert render.returncode == 0
    assert 1 <= most <= (os.cpu_count() or 1)


def test_concurrent_prune_renders_after_a_dag_id_change_all_succeed(tmp_path):
    folder = Path("configs/many")
    for round_number in range(4):
        for index in range(20):
            text = VALID.replace("dag_id: demo", f"dag_id: d{index}_r{round_number}")
            (folder / f"c{index:02d}.yaml").parent.mkdir(parents=True, exist_ok=True)
            (folder / f"c{index:02d}.yaml").write_text(text, "utf-8")
        renders = [
            subprocess.Popen(
                [sys.executable, "-m", "dagfactory", "render", "--prune", "configs"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        for render in renders:
            _, stderr = render.communicate(timeout=120)
            assert render.returncode == 0, stderr
            assert "Traceback" not in stderr
        names = {path.name for path in Path("generated_dags").glob("d*_r*.py")}
        assert names == {f"d{index}_r{round_number}.py" for index in range(20)}
        assert not list(Path("generated_dags").glob(".dagfactory-*.tmp"))


def test_sigterm_stops_a_render_as_ctrl_c_does_and_leaves_no_temporary(tmp_path):
    write_configs(Path("configs/many"), 600)
    out = Path("generated_dags")
    before = {path.name for path in out.iterdir()}
    render = start_render("--jobs", "2")
    deadline = time.monotonic() + 60
    while render.poll() is None and time.monotonic() < deadline:
        if any(out.glob(".dagfactory-*.tmp")):
            break
        time.sleep(0.005)
    assert render.poll() is None, "the render finished before it staged a file"
    render.send_signal(signal.SIGTERM)
    assert render.wait(timeout=30) == 130
    assert {path.name for path in out.iterdir()} == before
