"""An embedded Airflow in a child process: its own home, a SQLite metadata database, no examples.

:mod:`.check` and :mod:`.run` start their child halves (:mod:`.check_child`,
:mod:`.run_child`) through it as ``python -m MODULE ARGS``, so that the command line
never imports Airflow (and works without it until a command needs it).

A child never outlives the command that started it: it runs in a process group of its
own, killed as one when the command is interrupted (Ctrl-C, SIGTERM) or the child
stalls, and on Linux the kernel kills it when the command itself is killed
(``PR_SET_PDEATHSIG``), which no handler in this process could do.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dagfactory.problems import SetupError

INSTALL_HINT = "Airflow is not installed here: pip install 'dagfactory[airflow]'"
# How often a waiting command looks at its child's progress files.
POLL_SECONDS = 0.5
# prctl(2): the signal the kernel sends a child when its parent thread dies.
PR_SET_PDEATHSIG = 1


class AirflowUnavailable(SetupError):
    """Raised when a command needs Airflow and it is not installed."""


class Terminated(SystemExit):
    """SIGTERM reached the command while it waited for its child: unwind, killing it,
    and exit as a process killed by it would (128 + the signal), without a traceback."""


@dataclass(frozen=True)
class ChildExit:
    """How a child ended: its exit code (negative: the signal that killed it), its
    output, and ``stalled`` when it was killed for making no progress."""

    returncode: int
    stdout: str
    stderr: str
    stalled: bool = False

    @property
    def log(self) -> str:
        return self.stdout + self.stderr


def airflow_env(home: Path, dags_folder: Path) -> dict[str, str]:
    """The environment for an embedded Airflow: own home, SQLite database, no examples."""
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home.absolute()),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder.absolute()),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{(home / 'airflow.db').absolute()}",
    )
    return env


def python_with_airflow(
    args: list[str],
    env: dict[str, str],
    progress: Sequence[Path] = (),
    stall_seconds: float | None = None,
) -> ChildExit:
    """Run ``python ARGS`` in a child process that may import Airflow (if it is installed).

    With ``stall_seconds``, the child is killed (its whole group) once none of the
    ``progress`` files it writes has changed for that long, nor has it started that
    long ago: a hang the child's own timeouts did not end.
    """
    if importlib.util.find_spec("airflow") is None:
        raise AirflowUnavailable(INSTALL_HINT)
    child = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: it and whatever it starts, killed as one
        preexec_fn=_die_with_parent(),
    )
    started = time.time()
    on_term = _raise_on_sigterm()
    try:
        while True:
            try:
                stdout, stderr = child.communicate(timeout=POLL_SECONDS)
                return ChildExit(child.returncode, stdout, stderr)
            except subprocess.TimeoutExpired:
                last = max([started, *(_changed(path) for path in progress)])
                if stall_seconds is not None and time.time() - last > stall_seconds:
                    _kill_group(child)
                    stdout, stderr = child.communicate()
                    return ChildExit(child.returncode, stdout, stderr, stalled=True)
    except BaseException:  # Ctrl-C, SIGTERM: the child goes with the command
        _kill_group(child)
        child.wait()
        raise
    finally:
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)


def _changed(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _kill_group(child: subprocess.Popen[str]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _raise_on_sigterm() -> Callable[..., object] | int | None:
    """Turn SIGTERM into :class:`Terminated` while waiting (the main thread only can)."""

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(128 + signum)

    try:
        return signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: no handler, PDEATHSIG still holds
        return None


def _die_with_parent() -> Callable[[], None] | None:
    """What the child runs before Python starts, on Linux: SIGKILL when the command's
    thread dies; and exit at once if it already died between the fork and this."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return in_child
