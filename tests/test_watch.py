"""``render --watch`` and ``validate --watch`` as a user runs them: a real process in
the test's project copy, configs edited on disk, its output read as it prints it, and
Ctrl-C to stop it. Every wait is bounded."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import dagfactory, interruptible

pytest.importorskip("watchfiles")

# Generous for two busy cores; a watch that works answers in about two seconds.
WAIT_SECONDS = 15
CONFIG = Path("configs/xcom_dag.yaml")
GENERATED = Path("generated_dags/xcom_dag.py")
DESCRIPTION = "Download data, train three models and keep the most accurate"


class Watching:
    """A ``dagfactory ... --watch`` process, and what it has printed (stdout and
    stderr in one stream, in order)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dagfactory", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=interruptible,  # Ctrl-C is what the tests send
        )
        self.printed: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str) -> list[str]:
        """The lines printed until one holding ``text``, that one included."""
        deadline = time.monotonic() + WAIT_SECONDS
        start = len(self.printed)
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            self.printed.append(line)
            if text in line:
                return self.printed[start:]
        pytest.fail(f"no {text!r} within {WAIT_SECONDS} s; printed:\n" + self.output)

    def interrupt(self) -> int:
        """Ctrl-C; its exit code, once every line is read."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=WAIT_SECONDS)
        while (line := self._lines.get(timeout=WAIT_SECONDS)) is not None:
            self.printed.append(line)
        return code

    @property
    def output(self) -> str:
        return "".join(self.printed)


@pytest.fixture
def watching() -> Iterator[type[Watching]]:
    """Starts watch processes, and kills any left running when the test ends."""
    started: list[Watching] = []

    def start(*args: str, **options: object) -> Watching:
        process = Watching(*args, **options)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_render_watch_rewrites_keeps_the_last_good_file_and_stops_on_ctrl_c(
    watching,
) -> None:
    process = watching("render", "--watch")
    process.wait_for("rendered 7 DAGs")
    process.wait_for("watching configs/")

    original = CONFIG.read_text()
    edit(CONFIG, DESCRIPTION, "Train three models, keep the best")
    rerun = process.wait_for(f"wrote {GENERATED}")
    assert "configs/xcom_dag.yaml changed: rendering" in "".join(rerun)
    assert "Train three models, keep the best" in GENERATED.read_text()
    process.wait_for("1 written, 6 unchanged")

    good = GENERATED.read_bytes()
    CONFIG.write_text(CONFIG.read_text() + "broken: [unclosed\n")
    broken = "".join(process.wait_for("nothing written"))
    assert "configs/xcom_dag.yaml:" in broken and "invalid YAML" in broken
    assert GENERATED.read_bytes() == good

    CONFIG.write_text(original)  # fixed, and the description as it was
    process.wait_for(f"wrote {GENERATED}")
    assert DESCRIPTION in GENERATED.read_text()

    assert process.interrupt() == 0
    assert "Traceback" not in process.output
    assert process.printed[-1] == "stopped watching\n"
    # What the watch wrote is what a render writes: the committed files again.
    assert "up to date" in dagfactory("render", "--check").stdout


def test_validate_watch_shows_the_error_then_valid_again(watching) -> None:
    process = watching("validate", "--watch")
    process.wait_for("7 configs valid")
    process.wait_for("watching configs/")

    edit(CONFIG, "dag_id: xcom_dag", "dag_id: [xcom_dag")
    assert "invalid YAML" in "".join(process.wait_for("1 error in 1 file"))
    edit(CONFIG, "dag_id: [xcom_dag", "dag_id: xcom_dag")
    assert "configs/xcom_dag.yaml changed" in "".join(
        process.wait_for("7 configs valid")
    )

    assert process.interrupt() == 0
    assert "Traceback" not in process.output


def test_sigterm_stops_the_watch_as_ctrl_c_does(watching) -> None:
    process = watching("validate", "--watch")
    process.wait_for("watching configs/")
    process.process.terminate()
    assert process.process.wait(timeout=WAIT_SECONDS) == 0


def test_without_watchfiles_watch_says_how_to_install_it(
    watching, tmp_path: Path
) -> None:
    # A watchfiles that cannot be imported, first on the path: as if not installed.
    (tmp_path / "watchfiles.py").write_text("raise ImportError('not installed')\n")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    result = dagfactory("render", "--watch", env={**os.environ, "PYTHONPATH": path})
    assert result.returncode == 2
    assert "pip install 'dagfactory[watch]'" in result.stderr
    assert not Path(".dagfactory").exists()  # nothing rendered
