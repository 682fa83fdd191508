"""Bundled output without Airflow: shard assignment, the project setting, and what
render, render --check and --prune do to a bundled output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_render import assert_ruff_clean

from conftest import dagfactory
from dagfactory.output import bundle
from dagfactory.problems import UsageError
from dagfactory.project import Project

BUNDLED = '[tool.dagfactory]\noutput = "bundled"\nshard_size = 4\n'
OUT = Path("generated_dags")
EXAMPLES = [
    "bash_trainers",
    "digits_classifiers",
    "hyperparameter_sweep",
    "mapped_seeds",
    "min_loss_dag",
    "random_restarts",
    "xcom_dag",
]


def test_shards_are_bounded_and_hold_every_dag_once():
    dag_ids = [f"dag_{index:05d}" for index in range(1000)]
    count = bundle.shard_count(len(dag_ids), 100)
    assert count == 16  # filled to 80 % at most on average: 1,000 / 1,600
    shards = bundle.assign(dag_ids, 100, count)
    assert sorted(d for shard in shards for d in shard) == dag_ids
    assert max(map(len, shards)) <= 100
    assert bundle.assign(reversed(dag_ids), 100, count) == shards  # any order


def test_a_full_shard_passes_its_overflow_on():
    shards = bundle.assign([f"d{index}" for index in range(8)], 2, 4)
    assert [len(shard) for shard in shards] == [2, 2, 2, 2]  # no room to spare


def test_adding_a_dag_changes_one_shard_and_the_count_only_grows():
    dag_ids = [f"dag_{index:05d}" for index in range(300)]
    count = bundle.shard_count(len(dag_ids), 100)
    before = bundle.assign(dag_ids, 100, count)
    after = bundle.assign([*dag_ids, "one_more"], 100, count)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
    assert bundle.shard_count(1, 100, at_least=count) == count


def test_the_project_setting(tmp_path):
    assert Project.at(tmp_path, {"output": "bundled"}).shard_size == 200
    assert Project.at(tmp_path, {"output": "bundled", "shard_size": 8}).shard_size == 8
    assert Project.at(tmp_path, {}).shard_size is None
    with pytest.raises(UsageError, match="output must be 'files' or 'bundled'"):
        Project.at(tmp_path, {"output": "bundle"})
    with pytest.raises(UsageError, match='add output = "bundled"'):
        Project.at(tmp_path, {"shard_size": 8})
    with pytest.raises(UsageError, match="shard_size must be a whole number"):
        Project.at(tmp_path, {"output": "bundled", "shard_size": 0})


def shard_listing() -> dict[str, str]:
    """Each shard file's name: its text."""
    return {path.name: path.read_text() for path in OUT.glob("dagfactory_shard_*.py")}


@pytest.fixture
def bundled(project: Path) -> Path:
    """The example project switched to bundled output and rendered."""
    (project / "pyproject.toml").write_text(BUNDLED)
    result = dagfactory("render", "--prune")
    assert result.returncode == 0, result.stderr
    return project


def test_a_bundled_render_writes_modules_shards_and_the_ignore_entry(bundled):
    assert sorted(p.stem for p in (OUT / bundle.FOLDER).glob("*.py")) == EXAMPLES
    assert not list(OUT.glob("xcom_dag.py"))  # the file per DAG: pruned
    shards = shard_listing()
    assert sorted(shards) == [f"dagfactory_shard_00{i}.py" for i in range(4)]
    listed = [d for d in EXAMPLES if any(f'    "{d}": ' in t for t in shards.values())]
    assert listed == EXAMPLES
    assert '    "xcom_dag": "configs/xcom_dag.yaml",\n' in "".join(shards.values())
    ignore = (OUT / ".airflowignore").read_text().splitlines()
    assert ignore[2:] == ["_dagfactory_bundle/", "ml_demo/"]
    assert_ruff_clean(OUT)
    check = dagfactory("render", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "7 DAG files up to date" in check.stdout


def test_editing_one_config_rewrites_its_module_alone(bundled):
    shards = shard_listing()
    config = Path("configs/xcom_dag.yaml")
    config.write_text(config.read_text().replace("keep the most", "keep the best", 1))
    result = dagfactory("render")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"wrote {OUT / bundle.FOLDER / 'xcom_dag.py'}"
    )
    assert "1 written, 6 unchanged" in result.stdout
    assert shard_listing() == shards


def test_adding_and_removing_a_config_rewrites_one_shard(bundled):
    before = shard_listing()
    shutil.copy("configs/xcom_dag.yaml", "configs/copy.yaml")
    config = Path("configs/copy.yaml")
    config.write_text(config.read_text().replace("dag_id: xcom_dag", "dag_id: copy"))
    assert dagfactory("render").returncode == 0
    added = shard_listing()
    assert sum(added[name] != before[name] for name in before) == 1
    config.unlink()
    check = dagfactory("render", "--check")
    assert check.returncode == 1
    assert f"would remove {OUT / bundle.FOLDER / 'copy.py'} (stale" in check.stdout
    result = dagfactory("render", "--prune")
    assert result.returncode == 0, result.stderr
    assert not (OUT / bundle.FOLDER / "copy.py").exists()
    assert shard_listing() == before


def test_a_users_airflowignore_must_hide_the_bundle(project):
    (project / "pyproject.toml").write_text(BUNDLED)
    ignore = OUT / ".airflowignore"
    ignore.write_text("ml_demo/\n")  # the user's own
    result = dagfactory("render", "--prune")
    assert result.returncode == 1
    assert "does not hide the bundle's folder: add the line _dagfactory_bundle/" in (
        result.stdout + result.stderr
    )
    assert ignore.read_text() == "ml_demo/\n"
    assert not (OUT / bundle.FOLDER).exists()
    ignore.write_text("ml_demo/\n_dagfactory_bundle/\n")
    assert dagfactory("render", "--prune").returncode == 0
    assert ignore.read_text() == "ml_demo/\n_dagfactory_bundle/\n"


def test_going_back_to_one_file_per_dag_prunes_the_bundle(bundled):
    Path("pyproject.toml").unlink()
    check = dagfactory("render", "--check")
    assert check.returncode == 1
    assert f"would remove {OUT / 'dagfactory_shard_000.py'}" in check.stdout
    result = dagfactory("render", "--prune")
    assert result.returncode == 0, result.stderr
    assert not shard_listing()
    assert not list((OUT / bundle.FOLDER).glob("*.py"))
    assert (OUT / "xcom_dag.py").is_file()
