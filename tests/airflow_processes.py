"""Real Airflow components as child processes, and a tiny REST client for their /api/v2.

Every component runs in its own process group, logs to a file in the Airflow home and is
killed with its group, pass or fail; :func:`running` then checks that no process of that
Airflow home is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_of(home: Path) -> list[int]:
    """Every live process whose environment points at this Airflow home (as ps would list them)."""
    marker = f"AIRFLOW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environment:
            found.append(int(entry.name))
    return found


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is still there after a grace period."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return


@contextmanager
def running(
    home: Path, commands: dict[str, tuple[list[str], dict[str, str]]]
) -> Iterator[None]:
    """Run each named ``(argv, env)`` (its env must set AIRFLOW_HOME=home) until the block ends.

    Its output goes to ``home/<name>.log``.
    """
    processes: list[subprocess.Popen] = []
    with ExitStack() as cleanup:
        try:
            for name, (argv, env) in commands.items():
                log = cleanup.enter_context((home / f"{name}.log").open("wb"))
                processes.append(
                    subprocess.Popen(
                        argv,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,  # its own process group, killed as one
                    )
                )
            yield
        finally:
            for process in processes:
                stop_group(process)
            for pid in processes_of(home):  # anything that left its group
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while processes_of(home) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert processes_of(home) == [], "Airflow processes were left behind"


class Airflow:
    """A running Airflow and a tiny REST client for its /api/v2 (all-admins simple auth)."""

    def __init__(self, home: Path, port: int, components: list[str]) -> None:
        self.home = home
        self.base = f"http://127.0.0.1:{port}"
        self.components = components

    def request(
        self, method: str, path: str, body: dict | None = None
    ) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {"detail": error.read().decode(errors="replace")}
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            return 0, {"detail": str(error)}

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.home / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name in self.components
        )
