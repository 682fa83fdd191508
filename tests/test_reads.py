"""A render reads each config, defaults file and DAG file at most once.

Counted by an audit hook on Python's ``open`` events in a real ``dagfactory render``
subprocess of the example project, with its DAG files current, one of them changed,
and none at all; with and without a render cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

COUNTING = textwrap.dedent(
    """
    import collections, json, os, sys

    opened = collections.Counter()

    def count(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened[os.path.realpath(os.fsdecode(args[0]))] += 1

    sys.addaudithook(count)
    from dagfactory.cli import main

    try:
        main(sys.argv[1:])
    finally:
        print(json.dumps(opened), file=sys.stderr)
    """
)


def opens(project: Path, *args: str) -> dict[str, int]:
    """How often ``dagfactory render ARGS`` opened each config, defaults and DAG file."""
    result = subprocess.run(
        [sys.executable, "-c", COUNTING, "render", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    opened = json.loads(result.stderr.splitlines()[-1])
    root = str(project.resolve()) + "/"
    return {
        path.removeprefix(root): count
        for path, count in opened.items()
        if path.startswith(root) and path.endswith((".yaml", ".yml", ".py"))
    }


@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "cache"])
def test_a_render_opens_each_config_defaults_and_dag_file_at_most_once(
    tmp_path, cached
):
    for folder in ("configs", "generated_dags"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    render = ("configs", "--out", "generated_dags")
    configs = sorted(
        path.relative_to(tmp_path).as_posix()
        for path in (tmp_path / "configs").rglob("*.yaml")
    )
    dags = sorted(
        path.relative_to(tmp_path).as_posix()
        for path in (tmp_path / "generated_dags").glob("*.py")
    )
    if cached:  # a cache that knows every config, then a changed DAG file
        opens(tmp_path, *render)
        with (tmp_path / "generated_dags" / "xcom_dag.py").open("a") as file:
            file.write("# edited\n")
    else:
        shutil.rmtree(tmp_path / ".dagfactory", ignore_errors=True)
    for _ in range(2):  # the files as they were, then as the first render left them
        opened = opens(tmp_path, *render)
        assert {name: count for name, count in opened.items() if count > 1} == {}
        if not cached:  # every file was read: the counts count something
            assert set(configs) | set(dags) <= set(opened)
    shutil.rmtree(tmp_path / "generated_dags")
    opened = opens(tmp_path, *render)
    assert {name: count for name, count in opened.items() if count > 1} == {}
