"""Issue 22's runtime contract in real Airflow, and the validation of its keys.

Four DAG runs share one Airflow home and one dags folder: each combines several cases
(see the config texts), since a run costs 10 to 20 seconds. The user code they call is
tests/ml_contract_code.py.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest

from conftest import compile_yaml, compiled
from dagfactory.tools.graph import layout
from dagfactory.tools.run import run_dag
from ml_contract_code import NUMPY_SCALARS

HERE = Path(__file__).resolve().parent
CODE = "ml_contract_code"
HEAD = """\
dag: {dag_id: DAG_ID, start_date: 2024-01-01}
"""

# Listed python and bash trainers taking download results; one raises; min_success: 3;
# the winner (0.5) reaches the threshold, so publish runs and records what it got.
LISTED = (
    HEAD
    + f"""\
download:
  - task_id: prepare
    python_callable: {CODE}:prepare
  - task_id: shell
    bash_command: echo 4
trainers:
  group_id: train
  python_callable: {CODE}:train_listed
  inputs: {{data: prepare}}
  models:
    - task_id: a
      op_kwargs: {{factor: 2}}
    - task_id: b
      op_kwargs: {{factor: 5}}
    - task_id: boom
      python_callable: {CODE}:explode
    - task_id: sh
      bash_command: echo "0.$N"
      inputs: {{N: shell}}
chooser:
  task_id: choose
  min_success: 3
  threshold: 0.3
  on_fail: {{task_id: too_weak, bash_command: echo weak}}
publish:
  task_id: save
  python_callable: {CODE}:publish
  op_kwargs: {{record: "{{record}}"}}
"""
)
# Matrix trainers returning every kind of real number (numpy's scalars among them); the
# best (3) misses the threshold: on_fail runs, publish (when: passed by default) is
# skipped.
MATRIX = (
    HEAD
    + f"""\
download: {{task_id: prepare, python_callable: {CODE}:prepare}}
trainers:
  group_id: typed
  python_callable: {CODE}:train_typed
  inputs: {{data: prepare}}
  matrix: {{kind: [decimal, fraction, integer_scalar, float_scalar, int, {", ".join(NUMPY_SCALARS)}]}}
chooser:
  task_id: choose
  threshold: 100
  on_fail: {{task_id: too_weak, bash_command: echo weak}}
publish:
  task_id: save
  python_callable: {CODE}:publish
  op_kwargs: {{record: "{{record}}"}}
"""
)
# Mapped trainers taking a download result; seed 3 raises and no min_success is set.
MAPPED = (
    HEAD
    + f"""\
download: {{task_id: prepare, python_callable: {CODE}:prepare}}
trainers:
  group_id: seeds
  mapped: true
  python_callable: {CODE}:train_seeded
  inputs: {{data: prepare}}
  models:
    - {{task_id: s1, op_kwargs: {{seed: 1}}}}
    - {{task_id: s2, op_kwargs: {{seed: 2}}}}
    - {{task_id: s3, op_kwargs: {{seed: 3}}}}
chooser: {{task_id: choose}}
"""
)
# Count trainers taking a download result; publish when: always runs though the
# threshold is missed.
COUNT = (
    HEAD
    + f"""\
download: {{task_id: prepare, python_callable: {CODE}:prepare}}
trainers:
  group_id: copies
  count: 2
  python_callable: {CODE}:train_count
  inputs: {{data: prepare}}
chooser:
  task_id: choose
  threshold: 0.9
  on_fail: {{task_id: too_weak, bash_command: echo weak}}
publish:
  task_id: save
  python_callable: {CODE}:publish
  op_kwargs: {{record: "{{record}}"}}
  when: always
"""
)
CONFIGS = {"listed": LISTED, "matrix": MATRIX, "mapped": MAPPED, "count": COUNT}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every DAG above, run once in one Airflow home: dag_id -> (result, task states, record)."""
    root = tmp_path_factory.mktemp("ml-contract")
    dags, home = root / "dags", root / "home"
    dags.mkdir()
    shutil.copy(HERE / f"{CODE}.py", dags)
    done = {}
    for name, text in CONFIGS.items():
        record = root / f"{name}.json"
        config = text.replace("DAG_ID", f"contract_{name}")
        config = config.replace("{record}", str(record))
        (dags / f"contract_{name}.py").write_text(compiled(config).content)
    for name in CONFIGS:
        result = run_dag(f"contract_{name}", dags, home)
        with sqlite3.connect(home / "airflow.db") as db:
            rows = db.execute(
                "select task_id, map_index, state from task_instance where dag_id = ?",
                (f"contract_{name}",),
            ).fetchall()
        states = {
            (task if index < 0 else f"{task}[{index}]"): state
            for task, index, state in rows
        }
        record = root / f"{name}.json"
        done[name] = (
            result,
            states,
            json.loads(record.read_text()) if record.exists() else None,
        )
    return done


def candidate_row(task_id, value, log):
    """Whether the chooser's table of candidates has the row ``task_id  value``."""
    row = rf"\b{re.escape(task_id)} +{re.escape(repr(value))}$"
    return re.search(row, log, re.MULTILINE) is not None


def returned(result, key="return_value"):
    return {(x.task_id, x.map_index): x.value for x in result.xcoms if x.key == key}


@pytest.mark.airflow
def test_listed_trainers_take_inputs_and_min_success_leaves_out_the_failed_one(runs):
    result, states, record = runs["listed"]
    assert result.state == "success", result.log[-3000:]
    assert states["train.boom"] == "failed"
    metrics = returned(result)
    assert metrics[("train.a", -1)] == {"score": 0.2, "artifact": "/models/2-10.pkl"}
    assert metrics[("train.b", -1)] == {"score": 0.5, "artifact": "/models/5-10.pkl"}
    assert metrics[("train.sh", -1)] == "0.4"  # bash: N from the bash download's "4"
    assert returned(result, "dagfactory_error") == {
        ("train.boom", -1): "ValueError: out of memory at 10 rows"
    }
    winner = {
        "task_id": "train.b",
        "value": 0.5,
        "metrics": {"score": 0.5},
        "artifact": "/models/5-10.pkl",
        "params": {"factor": 5},
        "excluded": {"train.boom": "failed: ValueError: out of memory at 10 rows"},
    }
    assert returned(result, "best_model") == {("choose", -1): winner}
    # gate reached: publish ran after the branch and got the winner's fields
    assert (states["save"], states["too_weak"]) == ("success", "skipped")
    assert record == {
        "task_id": "train.b",
        "artifact": "/models/5-10.pkl",
        "metrics": {"score": 0.5},
        "params": {"factor": 5},
    }
    assert candidate_row("train.sh", "0.4", result.log)


@pytest.mark.airflow
def test_every_real_number_type_is_pushed_plain_and_ranked_and_the_gate_holds(runs):
    result, states, record = runs["matrix"]
    assert result.state == "success", result.log[-3000:]
    pushed = {task: value for (task, _), value in returned(result).items()}
    assert pushed["typed.kind_decimal"] == 0.25
    assert pushed["typed.kind_fraction"] == 0.4
    assert pushed["typed.kind_integer_scalar"] == 3
    assert type(pushed["typed.kind_integer_scalar"]) is int
    assert pushed["typed.kind_float_scalar"] == 1.25
    assert pushed["typed.kind_int"] == 2
    # numpy's scalars: plain JSON numbers, int for its integer types, float for the
    # others, exact; the chooser pulled them as such and ranked them with the rest
    for kind, scalar in NUMPY_SCALARS.items():
        value = scalar.item()  # numpy's own Python number of it
        number = pushed[f"typed.kind_{kind}"]
        assert (number, type(number)) == (value, type(value)), kind
        assert candidate_row(f"typed.kind_{kind}", value, result.log), kind
    winner = returned(result, "best_model")[("choose", -1)]
    scores = [value for task, value in pushed.items() if task.startswith("typed.")]
    assert winner["value"] == max(scores) and len(scores) == 5 + len(NUMPY_SCALARS)
    assert (winner["task_id"], winner["value"]) == ("typed.kind_integer_scalar", 3)
    assert winner["params"] == {"kind": "integer_scalar"}
    # gate not reached: on_fail ran, publish was skipped and never called
    assert (states["too_weak"], states["save"]) == ("success", "skipped")
    assert record is None


@pytest.mark.airflow
def test_mapped_trainers_take_inputs_and_a_failure_fails_the_run_without_min_success(
    runs,
):
    result, states, _ = runs["mapped"]
    assert result.state == "failed"
    assert returned(result) == {
        ("prepare", -1): 10,
        ("seeds.train", 0): 0.1,
        ("seeds.train", 1): 0.2,
    }
    assert states["seeds.train[2]"] == "failed"
    assert states["choose"] == "upstream_failed"
    assert "seed 3 diverged" in result.log


@pytest.mark.airflow
def test_count_trainers_take_inputs_and_publish_always_runs(runs):
    result, states, record = runs["count"]
    assert result.state == "success", result.log[-3000:]
    pushed = returned(result)
    assert pushed[("copies.model_1", -1)] == pushed[("copies.model_2", -1)] == 0.1
    assert (states["too_weak"], states["save"]) == ("success", "success")
    assert record["task_id"] == "copies.model_1" and record["params"] == {}


# -- validation and drawing, without Airflow ------------------------------------------

BASE = """\
dag: {dag_id: demo, start_date: 2024-01-01}
download: {task_id: fetch, bash_command: echo hi}
trainers:
  group_id: train
  python_callable: pkg.m:train
  op_kwargs: {depth: 3}
"""


def problems(text: str) -> list[str]:
    result = compile_yaml(text)
    assert isinstance(result, list), "compiled"
    return result


def test_an_input_must_name_a_download_step_under_a_free_identifier():
    text = BASE + textwrap.dedent("""\
          inputs: {depth: fetch}
          models:
            - task_id: a
              inputs: {"not a name": fetch, rows: nowhere}
            - task_id: b
              op_kwargs: {rows: 1}
              inputs: {rows: fetch}
        chooser: {task_id: choose}
        """)
    assert problems(text) == [
        "c.yaml:7:12: error: trainers.inputs.depth: 'depth' is also an op_kwargs key"
        " of the trainers; an input needs a name of its own",
        "c.yaml:10:16: error: trainers.models[0].inputs['not a name']: 'not a name'"
        " is not a Python identifier: a python trainer takes an input as a keyword"
        " argument of that name",
        "c.yaml:10:43: error: trainers.models[0].inputs.rows: 'nowhere' is not a"
        " download step; an input names the task_id of one: 'fetch'",
        "c.yaml:13:16: error: trainers.models[1].inputs.rows: 'rows' is also an"
        " op_kwargs key of this trainer; an input needs a name of its own",
    ]


def test_min_success_above_the_trainers_and_when_passed_without_threshold():
    text = BASE + textwrap.dedent("""\
          models: [{task_id: a}, {task_id: b}]
        chooser: {task_id: choose, min_success: 3}
        publish: {task_id: pub, python_callable: pkg.m:pub, when: passed}
        """)
    assert problems(text) == [
        "c.yaml:8:41: error: chooser.min_success: is 3, but there are 2 trainers;"
        " use at most 2, or a share such as '75%'",
        "c.yaml:9:59: error: publish.when: 'passed' waits for the winner to reach"
        " chooser.threshold, which is not set; set a threshold, or remove when"
        " (publish then follows the chooser)",
    ]


def test_a_share_of_trainers_becomes_a_count_and_the_chooser_runs_after_failures():
    text = BASE + "  count: 4\nchooser: {task_id: choose, min_success: '75%'}\n"
    result = compiled(text)
    assert result.pipeline.chooser.min_success == 3
    assert 'trigger_rule="all_done"' in result.content


@pytest.mark.parametrize(
    ("when", "source"), [("passed", "branch"), ("always", "chooser")]
)
def test_the_drawing_hangs_publish_off_the_gate_when_it_waits_for_it(when, source):
    text = BASE + textwrap.dedent(f"""\
          models: [{{task_id: a}}]
        chooser: {{task_id: choose, threshold: 0.5}}
        publish: {{task_id: pub, python_callable: pkg.m:pub, when: {when}}}
        """)
    edges = {(a.key, b.key) for a, b in layout(compiled(text).pipeline).edges}
    assert (source, "publish") in edges
