"""`dagfactory check` and `dagfactory run` through the CLI, on a real Airflow."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from test_cli import dagfactory

from conftest import IMPORT_DAG, ROOT, VALID

pytestmark = pytest.mark.airflow

CYCLE = (
    "from datetime import datetime\n\n"
    "from airflow.providers.standard.operators.empty import EmptyOperator\n"
    + IMPORT_DAG
    + """

with DAG("looping", schedule=None, start_date=datetime(2024, 1, 1)):
    first = EmptyOperator(task_id="first")
    second = EmptyOperator(task_id="second")
    first >> second >> first
"""
)

BROKEN = (
    IMPORT_DAG
    + """


def load_settings():
    return {}["missing"]


load_settings()
"""
)


def test_check_passes_on_the_committed_dags():
    result = dagfactory("check")
    assert result.returncode == 0, result.stdout + result.stderr
    *lines, summary = result.stdout.splitlines()
    assert all(line.startswith("ok     generated_dags/") for line in lines), lines
    dags = sorted((ROOT / "generated_dags").glob("*.py"))
    listed = {line.split()[1]: line.split()[2] for line in lines}
    for path in dags:  # every generated file, with the DAG id it is named after
        assert listed[f"generated_dags/{path.name}"] == path.stem
    assert summary == (
        f"checked {len(lines)} files: {len(dags)} DAGs loaded, "
        "0 import errors, 0 cycles, 0 duplicate dag ids"
    )


def test_check_reports_import_errors_cycles_and_duplicate_dag_ids(tmp_path):
    dags = tmp_path / "dags"
    shutil.copytree(ROOT / "generated_dags", dags)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")  # what the headers name
    (dags / "broken.py").write_text(BROKEN)
    (dags / "looping.py").write_text(CYCLE)
    copy = (dags / "xcom_dag.py").read_text()
    (dags / "xcom_dag_copy.py").write_text(copy)
    result = dagfactory("check", str(dags))
    assert result.returncode == 1
    out = result.stdout
    assert f"error  {dags / 'broken.py'}: import error" in out
    # the traceback lines that matter: where in the file, and what went wrong
    line = BROKEN.splitlines().index('    return {}["missing"]') + 1
    assert f'File "{dags / "broken.py"}", line {line}, in load_settings' in out
    assert "KeyError: 'missing'" in out
    assert f"error  {dags / 'looping.py'}: cycle" in out
    assert "Cycle detected in Dag: looping" in out
    duplicate = re.search(r"error  (\S+): duplicate dag id\n +(.*)", out)
    assert duplicate, out
    assert {duplicate.group(1)} < {
        str(dags / "xcom_dag.py"),
        str(dags / "xcom_dag_copy.py"),
    }
    assert "Ignoring DAG xcom_dag" in duplicate.group(2)
    assert f"ok     {dags / 'min_loss_dag.py'}" in out
    dags = len(list((ROOT / "generated_dags").glob("*.py")))  # the copy adds none
    assert re.fullmatch(
        rf"checked \d+ files: {dags} DAGs loaded, 1 import error, 1 cycle, 1 duplicate dag id\n",
        result.stderr,
    )


def test_check_needs_a_folder(tmp_path):
    result = dagfactory("check", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "no such folder" in result.stderr


def test_run_prints_the_xcom_list_and_the_winner():
    result = dagfactory("run", "xcom_dag")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    table = lines[lines.index("") + 1 :]
    header = table[0].split()
    assert header == [
        "Key",
        "Value",
        "Task",
        "ID",
        "Dag",
        "ID",
        "Logical",
        "Date",
        "Timestamp",
    ]
    rows = {}
    for line in table[1:]:
        if not line:
            break
        key, rest = line.split(None, 1)
        value, task_id, dag_id, logical_date, stored = rest.rsplit(None, 4)
        assert dag_id == "xcom_dag"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", logical_date)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stored)
        rows[(key, task_id)] = json.loads(value)
    accuracies = {
        task: value for (key, task), value in rows.items() if key == "model_accuracy"
    }
    assert set(accuracies) == {f"processing_tasks.training_model_{n}" for n in "abc"}
    best = max(accuracies, key=accuracies.__getitem__)
    winner = {
        "task_id": best,
        "value": accuracies[best],
        "metrics": {"model_accuracy": accuracies[best]},
        "params": {},
    }
    assert rows[("best_model", "task_4")] == winner
    assert lines[-2] == f"winner (max model_accuracy): {json.dumps(winner)}"
    assert lines[-1].startswith("task logs: .dagfactory/runs/dag_id=xcom_dag/run_id=")


def test_run_shows_the_map_index_of_a_mapped_trainer():
    result = dagfactory("run", "mapped_seeds", "--configs", "configs/sweeps")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    table = lines[lines.index("") + 1 : lines.index("", lines.index("") + 1)]
    assert table[0].split() == [
        "Key",
        "Value",
        "Task",
        "ID",
        "Map",
        "Index",
        "Dag",
        "ID",
        "Logical",
        "Date",
        "Timestamp",
    ]
    mapped = sorted(
        int(line.split()[3])
        for line in table[1:]
        if line.split()[2] == "seeds.train_seed"
    )
    assert mapped == list(range(8))  # one value per seed, each with its map index
    chooser_rows = [line.split() for line in table[1:] if " pick_seed " in line]
    assert chooser_rows and all(row[-3] == "mapped_seeds" for row in chooser_rows)


def test_check_findings_are_problems_in_every_format(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "broken.py").write_text(BROKEN)
    shutil.copy(ROOT / "generated_dags" / "bash_trainers.py", dags)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")  # what its header names
    as_json = dagfactory("check", str(dags), "--format", "json")
    assert as_json.returncode == 1
    (problem,) = json.loads(as_json.stdout)
    assert (problem["file"], problem["message"]) == (
        str(dags / "broken.py"),
        "import error",
    )
    assert "KeyError: 'missing'" in problem["detail"]
    assert f"ok     {dags / 'bash_trainers.py'}" in as_json.stderr
    assert "checked 2 files: 1 DAG loaded, 1 import error" in as_json.stderr
    as_github = dagfactory("check", str(dags), "--format", "github")
    annotations = [
        line for line in as_github.stdout.splitlines() if line.startswith("::")
    ]
    assert annotations and annotations[0].startswith(
        f"::error file={dags / 'broken.py'},title=dagfactory::import error%0A"
    )


def test_a_failed_run_is_a_problem_with_the_failing_task_then_the_log_as_its_detail(
    tmp_path,
):
    config = tmp_path / "failing.yaml"
    config.write_text(VALID.replace("echo hello", "echo no data; exit 3"))
    result = dagfactory(
        "run", str(config), "--out", str(tmp_path / "out"), "--format", "json"
    )
    assert result.returncode == 1
    (problem,) = json.loads(result.stdout)  # stdout holds the JSON document alone
    assert problem["message"] == "DAG run of demo ended in state failed"
    failed, blank, heading, *log = problem["detail"].splitlines()
    assert failed == (
        "fetch failed on try 1: AirflowException: Bash command failed."
        " The command returned a non-zero exit code 3."
    )
    assert blank == ""
    assert heading.startswith("end of the log of fetch (")
    assert heading.endswith("/task_id=fetch/attempt=1.log):")
    assert "no data" in "\n".join(log)  # the task's own output, after the summary
    assert "running demo on an embedded Airflow" in result.stderr
    assert "retries off for a local run" in result.stderr
    assert result.stderr.splitlines()[-1] == failed  # the cause is also the last line


def log_sections(lines: list[str]) -> dict[str, list[str]]:
    """``run --logs``' task logs: each ``==> task <==`` heading's lines, in order."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if line.startswith("DAG run "):
            break
        if line.startswith("==> ") and line.endswith(" <=="):
            current = sections.setdefault(line[4:-4], [])
        elif current is not None:
            current.append(line)
    return sections


def test_run_with_logs_shows_what_each_task_printed_and_keeps_the_logs(project):
    result = dagfactory("run", "xcom_dag", "--logs")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    sections = log_sections(lines)
    trainers = [f"processing_tasks.training_model_{n}" for n in "abc"]
    assert list(sections)[0] == "downloading_data"
    assert sorted(list(sections)[1:4]) == trainers
    assert list(sections)[4:] == ["task_4"]
    pushed = {
        line.split()[2]: float(line.split()[1])
        for line in lines
        if line.startswith("model_accuracy ")
    }
    for trainer in trainers:  # each printed the accuracy it pushed
        assert f"model's accuracy: {pushed[trainer]}" in sections[trainer]
    assert lines[-1].startswith("task logs: ")
    folder = project / lines[-1].removeprefix("task logs: ")
    assert folder.parent == project / ".dagfactory" / "runs" / "dag_id=xcom_dag"
    files = sorted(path.relative_to(folder) for path in folder.rglob("*.log"))
    assert [str(path) for path in files] == sorted(
        f"task_id={task}/attempt=1.log"
        for task in ["downloading_data", *trainers, "task_4"]
    )


def test_a_failed_run_prints_the_pushed_xcoms_and_the_failed_tasks_log(tmp_path):
    config = tmp_path / "raising.yaml"
    config.write_text(
        (ROOT / "compat" / "configs" / "failing_trainers.yaml")
        .read_text()
        .replace('{text: "nan"}', '{text: "0.75"}')
        .replace('{text: "inf"}', '{text: "oops"}')  # float("oops") raises
    )
    home = tmp_path / "home"
    result = dagfactory("run", str(config), "--home", str(home))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    table = lines[lines.index("") + 1 :]
    pushed = {
        (row.split()[0], row.split()[2]): row.split()[1] for row in table[1:] if row
    }
    assert pushed[("score", "trainers.finite")] == "0.5"
    assert pushed[("score", "trainers.not_a_number")] == "0.75"
    assert ("score", "trainers.infinite") not in pushed
    failed = (
        "trainers.infinite failed on try 1: ValueError: could not convert string"
        " to float: 'oops'"
    )
    errors = result.stderr.splitlines()
    heading = errors.index(failed) + 2
    assert errors[heading].startswith("end of the log of trainers.infinite (")
    tail = errors[heading + 1 :]
    assert "Traceback (most recent call last):" in tail
    assert any("in parse_metric" in line for line in tail)
    assert errors[-1] == failed  # the cause is also the last line
    assert lines[-1].startswith("task logs: ")
    folder = tmp_path / "home" / "logs" / "dag_id=failing_trainers"
    (run_folder,) = folder.iterdir()
    assert lines[-1] == f"task logs: {run_folder}"
    log = run_folder / "task_id=trainers.infinite" / "attempt=1.log"
    assert "ValueError: could not convert string to float: 'oops'" in log.read_text()
    assert len(list(run_folder.rglob("*.log"))) == 4  # prepare and the three trainers
