"""The command line, run as a user runs it: a subprocess, real files, exit codes."""

from __future__ import annotations

import os

import pytest

from conftest import ROOT, VALID, dagfactory


def test_committed_generated_dags_are_up_to_date():
    """The snapshot: generated_dags/ is exactly what configs/ renders to."""
    result = dagfactory("render", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    configs = [p for p in (ROOT / "configs").rglob("*.yaml") if p.stem != "defaults"]
    assert f"{len(configs)} DAG files up to date" in result.stdout


@pytest.mark.parametrize(
    "command",
    [[], ["render"], ["validate"], ["run"], ["check"], ["graph"], ["init"], ["schema"]],
)
def test_help_everywhere(command):
    result = dagfactory(*command, "--help")
    assert result.returncode == 0
    assert "usage: dagfactory" in result.stdout
    assert "Exit codes" in result.stdout


def test_version():
    assert dagfactory("--version").stdout.startswith("dagfactory ")


def test_render_writes_then_leaves_unchanged_files_alone(write_config, tmp_path):
    config = write_config(VALID)
    out = tmp_path / "out"
    first = dagfactory("render", str(config), "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "rendered 1 DAG: 1 written, 0 unchanged" in first.stdout
    target = out / "demo.py"
    os.utime(target, (1_000_000, 1_000_000))
    second = dagfactory("render", str(config), "--out", str(out))
    assert "rendered 1 DAG: 0 written, 1 unchanged" in second.stdout
    assert (
        target.stat().st_mtime == 1_000_000
    )  # not rewritten, so Airflow does not re-parse it
    assert (
        dagfactory("render", "--check", str(config), "--out", str(out)).returncode == 0
    )


def test_check_lists_and_diff_shows_changes_and_neither_writes(write_config, tmp_path):
    """--check names what would change and shows its diff, --diff only the diff (a patch); both exit 1."""
    config = write_config(VALID)
    out = tmp_path / "out"
    missing = dagfactory("render", "--check", str(config), "--out", str(out))
    assert missing.returncode == 1
    assert missing.stdout.startswith(
        f"would create {out / 'demo.py'} (from {config})\n"
    )
    assert '+    dag_id="demo",' in missing.stdout
    missing_diff = dagfactory("render", "--diff", str(config), "--out", str(out))
    assert missing_diff.returncode == 1
    assert '+    dag_id="demo",' in missing_diff.stdout
    assert not out.exists()
    dagfactory("render", str(config), "--out", str(out))
    config.write_text(VALID.replace("echo hello", "echo bye"))
    stale = dagfactory("render", "--check", str(config), "--out", str(out))
    assert stale.returncode == 1
    assert stale.stdout.startswith(f"would update {out / 'demo.py'} (from {config})\n")
    assert (
        '-        bash_command="echo hello",\n+        bash_command="echo bye",'
        in stale.stdout
    )
    assert "1 of 1 DAG file would change" in stale.stderr
    stale_diff = dagfactory("render", "--diff", str(config), "--out", str(out))
    assert stale_diff.returncode == 1
    assert (
        '-        bash_command="echo hello",\n+        bash_command="echo bye",'
        in stale_diff.stdout
    )
    assert "1 of 1 DAG file would change" in stale_diff.stderr
    assert 'bash_command="echo hello"' in (out / "demo.py").read_text()
    dagfactory("render", str(config), "--out", str(out))
    clean = dagfactory("render", "--diff", str(config), "--out", str(out))
    assert (clean.returncode, clean.stdout) == (0, "1 DAG file up to date\n")


def test_one_bad_config_means_nothing_is_written(write_config, tmp_path):
    write_config(VALID, "good.yaml")
    bad = write_config(
        VALID.replace("dag_id: demo", "dag_id: other").replace("mode", "mode")
        + "extra: 1\n",
        "bad.yaml",
    )
    out = tmp_path / "out"
    result = dagfactory("render", str(bad.parent), "--out", str(out))
    assert result.returncode == 1
    assert f"{bad}:17:1: error: extra: unknown key 'extra'" in result.stderr
    assert "1 error in 1 file; nothing written" in result.stderr
    assert not out.exists()


def test_errors_of_several_files_are_all_reported(write_config):
    write_config("dag: [\n", "a.yaml")
    second = write_config(VALID.replace("task_id: choose", "task_id: fetch"), "b.yaml")
    result = dagfactory("validate", str(second.parent))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{second.parent / 'a.yaml'}:1:6: error: (top level): invalid YAML: the '[' on line 1 is never closed; end the list with ']' [parser: expected the node content, but found '<stream end>' (while parsing a flow node) at 2:1]",
        f"{second}:16:12: error: chooser.task_id: the id 'fetch' is already used by download.task_id (line 5); ids must be unique",
        "2 errors in 2 files; nothing written",
    ]


def test_duplicate_dag_ids_across_configs(write_config):
    write_config(VALID, "a.yaml")
    second = write_config(VALID.replace("dag_id: demo", "dag_id: Demo"), "b.yaml")
    result = dagfactory("validate", str(second.parent))
    assert result.returncode == 1
    assert (
        f"{second}:2:11: error: dag.dag_id: the DAG id 'Demo' is already used by"
        in result.stderr
    )


def test_a_file_dagfactory_did_not_write_is_never_overwritten(write_config, tmp_path):
    config = write_config(VALID)
    out = tmp_path / "out"
    out.mkdir()
    handmade = out / "demo.py"
    handmade.write_text("# my own DAG\n")
    result = dagfactory("render", str(config), "--out", str(out))
    assert result.returncode == 1
    assert "was not generated by dagfactory; refusing to overwrite it" in result.stderr
    assert handmade.read_text() == "# my own DAG\n"


def test_validate_success_and_usage_errors(write_config, tmp_path):
    config = write_config(VALID)
    assert dagfactory("validate", str(config)).stdout == "1 config valid\n"
    missing = dagfactory("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert dagfactory("validate", str(empty)).returncode == 2
    assert dagfactory("render", "--no-such-flag").returncode == 2
