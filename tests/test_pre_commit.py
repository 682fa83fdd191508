"""The pre-commit hooks of .pre-commit-hooks.yaml, installed and run by pre-commit itself.

pre-commit builds the hooks' environment from this repository (its working tree, as
``pre-commit try-repo`` does) with packages from PyPI, in a temporary PRE_COMMIT_HOME.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import dagfactory

from conftest import ROOT

PRE_COMMIT = Path(sys.executable).with_name("pre-commit")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git repository that uses dagfactory: configs/ and their committed generated_dags/."""
    repo = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "configs", repo / "configs")
    (repo / "generated_dags").mkdir()
    for dag in (ROOT / "generated_dags").glob("*.py"):
        shutil.copy(dag, repo / "generated_dags")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, capture_output=True)
    git_add_all(repo)
    return repo


def git_add_all(repo: Path) -> None:
    """Stage the project's files as they are now: pre-commit --all-files sees those."""
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True)


@pytest.fixture(scope="module")
def hook_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def run_hooks(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Every hook of the manifest on every file (one environment install per call)."""
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), NO_COLOR="1")
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(ROOT), "--all-files", "--color", "never"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_hooks_pass_on_a_clean_project(project, hook_home):
    result = run_hooks(project, hook_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^dagfactory validate\.+Passed$", result.stdout, re.M)
    assert re.search(r"^dagfactory render --check\.+Passed$", result.stdout, re.M)


def test_render_check_hook_fails_on_a_stale_dag(project, hook_home):
    config = project / "configs" / "xcom_dag.yaml"
    original = config.read_text()
    try:
        config.write_text(original.replace("sleep 3", "sleep 4"))
        result = run_hooks(project, hook_home)
        assert result.returncode == 1
        assert re.search(r"^dagfactory validate\.+Passed$", result.stdout, re.M)
        assert re.search(r"^dagfactory render --check\.+Failed$", result.stdout, re.M)
        assert (
            "would update generated_dags/xcom_dag.py (from configs/xcom_dag.yaml)"
            in result.stdout
        )
        total = len(list((ROOT / "generated_dags").glob("*.py")))
        assert (
            f"1 of {total} DAG files would change; run `dagfactory render`"
            in result.stdout
        )
    finally:
        config.write_text(original)


def test_an_invalid_config_fails_both_hooks_and_its_errors_are_printed_once(
    project, hook_home
):
    bad = project / "configs" / "bad.yaml"
    bad.write_text("dag:\n  dag_id: bad\n  start_date: nope\n")
    try:
        git_add_all(project)
        result = run_hooks(project, hook_home)
    finally:
        bad.unlink()
        git_add_all(project)
    assert result.returncode == 1
    assert re.search(r"^dagfactory validate\.+Failed$", result.stdout, re.M)
    assert re.search(r"^dagfactory render --check\.+Failed$", result.stdout, re.M)
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert errors and all(line.startswith("configs/bad.yaml:") for line in errors)
    assert len(set(errors)) == len(errors)  # each error once, by validate
    assert f"{len(errors)} errors in 1 file; nothing written" in result.stdout
    assert (
        f"1 invalid config (configs/bad.yaml): {len(errors)} errors, shown by "
        "`dagfactory validate`; nothing written" in result.stdout
    )


def test_render_check_alone_still_fails_on_an_invalid_config(project):
    bad = project / "configs" / "bad.yaml"
    bad.write_text("dag:\n  dag_id: bad\n  start_date: nope\n")
    try:
        result = dagfactory(
            "render", "--check", "--config-errors", "summary", cwd=project
        )
    finally:
        bad.unlink()
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "1 invalid config (configs/bad.yaml): 3 errors, shown by "
        "`dagfactory validate`; nothing written"
    ]
