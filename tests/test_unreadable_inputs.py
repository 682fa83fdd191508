"""Inputs that cannot be read as they are: errors that name the file, never a traceback,
and never a read of something that is not a config-sized regular file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import VALID, dagfactory

OUT = Path("generated_dags")


def snapshot() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in OUT.iterdir() if path.is_file()}


def test_a_stale_file_that_cannot_be_removed_is_an_error_not_a_traceback():
    """Root may remove any file, but not an immutable one (``chattr +i``): a real
    failure of the unlink that pruning does."""
    Path("configs/extra.yaml").write_text(VALID, "utf-8")
    assert dagfactory("render", "configs").returncode == 0
    Path("configs/extra.yaml").write_text(VALID.replace("demo", "demo_two"), "utf-8")
    stale = OUT / "demo.py"
    if subprocess.run(["chattr", "+i", str(stale)], check=False).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        result = dagfactory("render", "--prune", "configs")
    finally:
        subprocess.run(["chattr", "-i", str(stale)], check=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{stale}: error: cannot remove it (Operation not permitted)" in (
        result.stderr
    )
    assert stale.exists()


def deep_folder(base: Path, length: int) -> None:
    """Folders nested below ``base`` until the path is ``length`` long, with a config
    at the bottom: made relative to each folder, as no path that long can be used."""
    handle = os.open(base, os.O_RDONLY)
    depth = len(os.fspath(base.absolute()))
    try:
        while depth < length:
            os.mkdir("d" * 200, dir_fd=handle)
            inner = os.open("d" * 200, os.O_RDONLY, dir_fd=handle)
            os.close(handle)
            handle, depth = inner, depth + 201
        config = os.open("deep.yaml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=handle)
        os.write(config, VALID.replace("demo", "deep").encode())
        os.close(config)
    finally:
        os.close(handle)


def test_a_config_folder_too_deep_to_read_is_an_error_not_a_silent_skip():
    """Root can read every folder, but not one whose path is longer than PATH_MAX."""
    deep_folder(Path("configs"), 4200)
    before = snapshot()
    result = dagfactory("render", "configs")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot read this folder (File name too long)" in result.stderr
    assert snapshot() == before


def test_a_path_longer_than_path_max_is_an_error_not_a_traceback():
    path = "/".join(["d" * 200] * 25) + "/x.yaml"
    result = dagfactory("render", path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot read it (File name too long)" in result.stderr


READS = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, (400 * 1024**2, 400 * 1024**2))
    from dagfactory.build import _source_reader
    from dagfactory.configs import ConfigSource
    from dagfactory.limits import MAX_CONFIG_BYTES
    from dagfactory.output.cache import RenderCache
    path = Path(sys.argv[1])
    cache = RenderCache(Path("cache.json"), {})
    try:
        cache.digest_of(path, keep=True, limit=MAX_CONFIG_BYTES)
    except OSError:
        pass
    else:
        raise SystemExit("the cache read it")
    assert _source_reader(cache)(ConfigSource(path, path.name)) == {}
    assert _source_reader(None)(ConfigSource(path, path.name)) == {}
    print("not read")
    """
)


@pytest.mark.parametrize("kind", ["sparse 1.5 GB", "FIFO", "/dev/zero"])
def test_the_cache_and_the_batch_never_read_what_is_no_config(tmp_path, kind):
    path = tmp_path / "x.yaml"
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "/dev/zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as file:
            os.truncate(file.fileno(), 1_500_000_000)
    result = subprocess.run(
        [sys.executable, "-c", READS, str(path)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "not read\n"), result.stderr
    shutil.rmtree(tmp_path, ignore_errors=True)
