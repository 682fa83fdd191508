"""A Docker daemon and a trainer image for the tests that run trainers in Docker.

No registry is reachable from the test machines, so the image is built here, from the
interpreter running the tests: its executable, its standard library and the shared
libraries they load (as ``ldd`` lists them) go into a tar at their own paths, which
``docker import`` makes an image of, with the trainer's entrypoint at /app. The daemon
is started when none answers (``dockerd``, installed with apt-get when missing and
this is root), without iptables or a bridge: the containers have no network.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DOCKER_HOST = "unix:///var/run/docker.sock"
# What the image's interpreter never needs: the stdlib's tests, GUI and installers.
_SKIPPED = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages"}
_SKIPPED |= {"lib2to3", "__pycache__", "pydoc_data"}


def unavailable(what: str) -> None:
    """No Docker here: skip, except under CI, which must run these tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}; CI must run the Docker tests", pytrace=False)
    pytest.skip(what)


def answers() -> bool:
    """Whether a Docker daemon answers at the default socket."""
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return done.returncode == 0


@contextlib.contextmanager
def daemon(log: Path) -> Iterator[None]:
    """A Docker daemon for the tests: the one that answers, else one started here
    (and stopped after them), installing docker.io first when dockerd is missing."""
    if answers():
        yield
        return
    if shutil.which("dockerd") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            unavailable("no Docker daemon, and dockerd cannot be installed (not root)")
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "docker.io"],
        ):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                unavailable(f"installing docker.io failed: {done.stderr[-500:]}")
    if os.geteuid() != 0:
        unavailable("no Docker daemon answers, and only root can start dockerd")
    with log.open("w") as output:
        process = subprocess.Popen(
            ["dockerd", "--iptables=false", "--bridge=none"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not answers():
            if process.poll() is not None or time.monotonic() > deadline:
                unavailable(f"dockerd did not start: {log.read_text()[-1000:]}")
            time.sleep(0.5)
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


def _libraries(paths: list[str]) -> set[str]:
    """The shared libraries ``paths`` load, as ``ldd`` resolves them."""
    found: set[str] = set()
    for path in paths:
        listed = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        found.update(re.findall(r"(/\S+) \(0x", listed))
    return found


def _add(archive: tarfile.TarFile, path: str) -> None:
    """``path`` at its own place in the image, following symlinks to the real file."""
    real = os.path.realpath(path)
    archive.add(real, arcname=path, recursive=False)


def trainer_image(entrypoint: str, repository: str = "dagfactory-trainer") -> str:
    """An image with this interpreter and ``entrypoint`` at /app/train.py: its tag,
    built once per interpreter and entrypoint (a later session reuses it)."""
    python = os.path.realpath(sys.executable)
    stdlib = sysconfig.get_paths()["stdlib"]
    key = hashlib.sha256(f"{python}\n{entrypoint}".encode()).hexdigest()[:12]
    tag = f"{repository}:{key}"
    found = subprocess.run(["docker", "image", "inspect", tag], capture_output=True)
    if found.returncode == 0:
        return tag
    dynload = sorted(str(p) for p in Path(stdlib, "lib-dynload").glob("*.so"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for library in sorted(_libraries([python, *dynload])):
            _add(archive, library)
        _add(archive, python)
        for folder, names, files in os.walk(stdlib):
            names[:] = [
                name
                for name in names
                if name not in _SKIPPED and not name.startswith("config-")
            ]
            for name in files:
                if not name.endswith((".pyc", ".pyo")):
                    _add(archive, os.path.join(folder, name))
        script = entrypoint.encode()
        info = tarfile.TarInfo("app/train.py")
        info.size, info.mode = len(script), 0o644
        archive.addfile(info, io.BytesIO(script))
        # /usr/bin/python3 as the command names it; /tmp for Python's own use
        link = tarfile.TarInfo("usr/bin/python3")
        link.type, link.linkname = tarfile.SYMTYPE, python
        archive.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        archive.addfile(tmp)
    subprocess.run(
        ["docker", "import", "-", tag],
        input=buffer.getvalue(),
        capture_output=True,
        check=True,
    )
    return tag
