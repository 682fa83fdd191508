"""The callables a config names: where each is written and what the DAG file passes it (no Airflow)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import compiled
from dagfactory.compile import compile_config
from dagfactory.compile.references import Reference
from dagfactory.compile.vocabulary import WINNER_FIELDS
from dagfactory.configs import discover
from dagfactory.problems import format_spec_path

HEAD = """\
dag:
  dag_id: demo
  start_date: 2024-01-01
download:
  task_id: fetch
  bash_command: echo hello
"""
CHOOSER = "chooser:\n  task_id: choose\n"


def references(text: str) -> list[Reference]:
    return list(compiled(textwrap.dedent(text)).references)


def summary(reference: Reference) -> str:
    """What a test reads of a reference: where, what, how it is called and by which tasks."""
    return (
        f"{reference.line}:{reference.column} {format_spec_path(reference.spec_path)} "
        f"{reference.target} positional={reference.positional} "
        f"keywords={','.join(reference.keywords)} tasks={','.join(reference.tasks)}"
    )


def test_a_group_callable_is_one_reference_at_the_group_with_each_trainers_keywords():
    found = references(
        HEAD
        + """\
trainers:
  group_id: train
  python_callable: pkg.models:train
  op_kwargs: {seed: 1}
  models:
    - task_id: a
    - task_id: b
      op_kwargs: {depth: 3}
    - task_id: c
      python_callable: pkg.other:fit
      op_kwargs: {depth: 5, seed: 2}
    - task_id: d
      bash_command: echo 0.5
"""
        + CHOOSER
    )
    assert [summary(reference) for reference in found] == [
        "9:20 trainers.python_callable pkg.models:train positional=0 keywords=seed tasks=train.a",
        # group keywords first, then the model's own: what the generated task passes
        "9:20 trainers.python_callable pkg.models:train positional=0 keywords=seed,depth tasks=train.b",
        # a model's own callable is reported where the model writes it; bash has none
        "16:24 trainers.models[2].python_callable pkg.other:fit positional=0 keywords=seed,depth tasks=train.c",
    ]


def test_count_and_matrix_trainers_are_one_reference_naming_every_task():
    (counted,) = references(
        HEAD
        + """\
trainers:
  group_id: restarts
  python_callable: pkg.models:train
  count: 4
  task_id_pattern: run_{index}
"""
        + CHOOSER
    )
    assert counted.spec_path == ("trainers", "python_callable")
    assert counted.keywords == ()
    assert counted.tasks == tuple(f"restarts.run_{n}" for n in range(1, 5))
    assert (
        counted.passes
        == "tasks restarts.run_1, restarts.run_2, restarts.run_3 and 1 more pass no arguments"
    )
    (grid,) = references(
        HEAD
        + """\
trainers:
  group_id: grid
  python_callable: pkg.models:evaluate
  op_kwargs: {dataset: churn}
  matrix:
    learning_rate: [0.01, 0.1]
    depth: [4, 8, 16]
"""
        + CHOOSER
    )
    assert (grid.line, grid.column) == (9, 20)
    assert grid.keywords == ("dataset", "learning_rate", "depth")
    assert len(grid.tasks) == 6 and grid.tasks[0] == "grid.learning_rate_0.01_depth_4"


def test_mapped_trainers_are_named_by_their_map_index():
    (mapped,) = references(
        HEAD
        + """\
trainers:
  group_id: seeds
  mapped: true
  mapped_task_id: train_seed
  python_callable: pkg.models:score
  matrix:
    seed: [1, 2]
"""
        + CHOOSER
    )
    assert mapped.keywords == ("seed",)
    assert mapped.tasks == ("seeds.train_seed[0]", "seeds.train_seed[1]")


def test_steps_publish_and_callbacks():
    found = references(
        """\
dag:
  dag_id: demo
  start_date: 2024-01-01
  on_failure_callback: pkg.alerts:page
download:
  - task_id: fetch
    python_callable: pkg.data:fetch
    op_kwargs: {rows: 10}
  - task_id: shell
    bash_command: echo hi
trainers:
  group_id: train
  bash_command: echo 0.5
  models:
    - task_id: a
chooser:
  task_id: choose
  threshold: 0.5
  on_pass:
    task_id: deploy
    python_callable: pkg.deploy:ship
  on_fail:
    task_id: alert
    bash_command: echo no
publish:
  task_id: announce
  python_callable: pkg.reports:publish
  op_kwargs: {channel: ml, value: ignored}
"""
    )
    assert [summary(reference) for reference in found] == [
        # a callback gets one positional argument, the context
        "4:24 dag.on_failure_callback pkg.alerts:page positional=1 keywords= tasks=",
        "7:22 download[0].python_callable pkg.data:fetch positional=0 keywords=rows tasks=fetch",
        "21:22 chooser.on_pass.python_callable pkg.deploy:ship positional=0 keywords= tasks=deploy",
        # _call_with_winner adds the winner's fields the function accepts (optional)
        "27:20 publish.python_callable pkg.reports:publish positional=0 keywords=channel,value tasks=announce",
    ]
    assert found[2].optional == found[3].optional == WINNER_FIELDS
    callback, *_, publish = found
    assert (
        callback.passes == "Airflow calls a DAG callback with one argument, the context"
    )
    assert publish.passes == (
        "task announce passes channel, value; it also gets those of the winner's "
        "task_id, value, metrics, artifact, params that it accepts"
    )


def test_a_bash_only_config_names_no_callable():
    trainers = "trainers:\n  group_id: t\n  bash_command: echo 1\n  models:\n    - task_id: a\n"
    assert references(HEAD + trainers + CHOOSER) == []


def test_a_callable_from_a_defaults_file_is_located_in_that_file(tmp_path: Path):
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("trainers:\n  python_callable: pkg.shared:train\n")
    (tmp_path / "demo.yaml").write_text(
        HEAD + "trainers:\n  group_id: t\n  models:\n    - task_id: a\n" + CHOOSER
    )
    (source,) = discover([tmp_path])
    compilation = compile_config(source.path, source.name, source.defaults)
    result = compilation.compiled
    assert result is not None, compilation
    (reference,) = result.references
    assert (reference.file, reference.line, reference.column) == (
        defaults.as_posix(),
        2,
        20,
    )
    assert str(reference.problem("no such function")) == (
        f"{defaults.as_posix()}:2:20: error: trainers.python_callable: no such function"
    )
