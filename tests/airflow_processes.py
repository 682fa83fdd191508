"""Real Airflow components as child processes, and a tiny REST client for their /api/v2.

Every component runs in its own process group, logs to a file in the Airflow home and is
killed with its group, pass or fail; :func:`running` then checks that no process of that
Airflow home is left.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dagfactory.tools.airflow import airflow_env
from dagfactory.tools.run import SIMPLE_AUTH_MANAGER


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(home: Path, dags_folder: Path, port: int) -> dict[str, str]:
    """The settings every component of one Airflow on loopback shares.

    A SQLite database in ``home`` (override it for another), everyone an admin of the
    simple auth manager, the API server on ``port``, one JWT secret so that the tasks'
    tokens are accepted, quick DAG refresh, and only the runs a test triggers.
    """
    env = airflow_env(home, dags_folder)
    env.update(
        AIRFLOW__CORE__AUTH_MANAGER=SIMPLE_AUTH_MANAGER,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        # No scheduled runs of the example DAGs alongside the ones a test triggers.
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
    )
    return env


def migrate(env: dict[str, str], timeout: float = 300) -> None:
    """Create or upgrade the metadata database the environment points at."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


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


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def stop_groups(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every process's group at once, then SIGKILL whatever is still there after
    a grace period (all of them shutting down together, not one after another)."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        alive = [process for process in processes if group_alive(process.pid)]
        for process in alive:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + grace
        for process in alive:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                continue


def descendants(pid: int) -> list[int]:
    """Every live process started by ``pid``, directly or not."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


class Components:
    """The named processes of one Airflow home, started, killed and restarted by name.

    Each is ``(argv, env)`` (its env sets AIRFLOW_HOME=home); its output goes to
    ``home/<name>.log``, a restart appending to it.
    """

    def __init__(
        self, home: Path, commands: dict[str, tuple[list[str], dict[str, str]]]
    ) -> None:
        self.home = home
        self.commands = commands
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        argv, env = self.commands[name]
        with (self.home / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed as one
            )

    def kill(self, name: str) -> None:
        """SIGKILL the component as a power cut would: its group and the group of every
        process it started (Airflow runs each task in a process group of its own)."""
        process = self.processes[name]
        groups = set()
        for pid in [process.pid, *descendants(process.pid)]:
            try:
                groups.add(os.getpgid(pid))
            except ProcessLookupError:
                continue
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                continue
        process.wait(timeout=30)

    def exited(self) -> list[str]:
        """The components whose main process has ended."""
        return [
            name
            for name, process in self.processes.items()
            if process.poll() is not None
        ]

    def stop(self) -> None:
        """Stop every component and anything of this home that left its group."""
        stop_groups(list(self.processes.values()))
        for pid in processes_of(self.home):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 10
        while processes_of(self.home) and time.monotonic() < deadline:
            time.sleep(0.2)


@contextmanager
def running(
    home: Path, commands: dict[str, tuple[list[str], dict[str, str]]]
) -> Iterator[Components]:
    """Run each named ``(argv, env)`` until the block ends, then check none is left."""
    components = Components(home, commands)
    try:
        for name in commands:
            components.start(name)
        yield components
    finally:
        components.stop()
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


def wait_for(what: str, check, limit: float, airflow: Airflow):
    """``check()``'s first true result, polled each second; after ``limit`` seconds the
    test fails with what it waited for and the components' logs."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"timed out after {limit:.0f} s waiting for {what}\n{airflow.logs()}")
