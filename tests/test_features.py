"""Spec breadth: defaults, environment values, generated trainers, settings, DAG options."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import ROOT, VALID, compile_yaml, compiled, cut_to, dagfactory
from dagfactory.build import compile_batch
from dagfactory.compile import compile_config, compile_text
from dagfactory.compile.load import MAX_BYTES, load_config, load_text
from dagfactory.compile.render import render_pipeline
from dagfactory.compile.vocabulary import matrix_task_ids
from dagfactory.configs import discover
from dagfactory.problems import TemplateError


def pipeline_of(text: str):
    return compiled(textwrap.dedent(text)).pipeline


def problems(text: str) -> list[str]:
    result = compile_yaml(textwrap.dedent(text))
    return result if isinstance(result, list) else []


def with_trainers(trainers: str, chooser: str = "chooser:\n  task_id: choose\n") -> str:
    head = VALID.split("trainers:")[0]
    return head + textwrap.dedent(trainers) + chooser


# -- shared defaults -----------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_merge_from_the_root_down(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.dagfactory]\n")  # the project's root
    write(
        tmp_path / "defaults.yaml",
        """\
        dag:
          start_date: 2024-01-01
          tags: [team]
          default_args: {owner: platform, retries: 2}
        """,
    )
    write(tmp_path / "team" / "defaults.yaml", "dag:\n  default_args: {owner: ml}\n")
    config = write(
        tmp_path / "team" / "demo.yaml",
        VALID.replace("  start_date: 2024-01-01\n", "  tags: [mine]\n"),
    )
    configs = discover([tmp_path])
    assert [c.path for c in configs] == [config]  # defaults files are not configs
    batch = compile_batch(configs)
    assert batch.problems == []
    dag = batch.pipelines[0].dag
    assert dag.tags == ("mine",)  # the config wins, lists are replaced
    assert dag.default_args == {
        "owner": "ml",
        "retries": 2,
    }  # nearer defaults win, mappings merge
    assert dag.start_date.year == 2024


def test_errors_point_into_the_defaults_file(tmp_path):
    defaults = write(
        tmp_path / "defaults.yaml", "dag:\n  default_args:\n    retries: many\n"
    )
    write(tmp_path / "demo.yaml", VALID)
    batch = compile_batch(discover([tmp_path]))
    assert [str(e) for e in batch.problems] == [
        f"{defaults.as_posix()}:3:14: error: dag.default_args.retries: expected a whole number, got the text 'many'"
    ]


def test_a_config_given_as_bytes_is_checked_as_a_file_is(tmp_path):
    """Bytes a caller has read already are compiled as the file would be, never read again."""
    unread = tmp_path / "not-there.yaml"
    result = compile_config(unread, "c.yaml", sources={unread: VALID.encode()})
    assert result.compiled is not None and result.compiled.dag_id == "demo"
    too_big = compile_config(unread, "c.yaml", sources={unread: b"#" * (MAX_BYTES + 1)})
    assert [str(problem) for problem in too_big.problems] == [
        f"c.yaml:1:1: error: (top level): file is {MAX_BYTES + 1:,} bytes;"
        f" configs are limited to {MAX_BYTES:,} bytes"
    ]
    not_utf8 = compile_config(unread, "c.yaml", sources={unread: b"a: \xff\n"})
    assert [problem.line for problem in not_utf8.errors] == [1]


def test_a_batch_parses_each_defaults_file_once(tmp_path):
    """Six configs under one defaults.yaml: the batch opens it once, and every config
    still has its values. Counted by the ``open`` audit events of a child process (an
    audit hook cannot be removed from the process that adds it)."""
    write(tmp_path / "defaults.yaml", "dag:\n  tags: [team]\n")
    for index in range(6):
        write(tmp_path / f"demo{index}.yaml", VALID.replace("demo", f"demo{index}"))
    code = textwrap.dedent(
        f"""
        import os
        import sys
        from pathlib import Path
        from dagfactory.build import compile_batch
        from dagfactory.configs import discover

        opened = []

        def count(event, args):
            if event == "open" and isinstance(args[0], (str, os.PathLike)):
                if os.path.basename(os.fspath(args[0])) == "defaults.yaml":
                    opened.append(args[0])

        configs = discover([Path({str(tmp_path)!r})])
        sys.addaudithook(count)
        batch = compile_batch(configs, jobs=1)
        assert batch.problems == [], batch.problems
        print(len(batch.pipelines), {{p.dag.tags for p in batch.pipelines}}, len(opened))
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["6", "{('team',)}", "1"]


def test_defaults_above_the_root_are_ignored(tmp_path):
    write(tmp_path / "defaults.yaml", "dag:\n  default_args: {owner: outside}\n")
    config = write(tmp_path / "inner" / "demo.yaml", VALID)
    (source,) = discover([config])
    doc = load_config(source.path, source.name, source.defaults).document
    assert "default_args" not in doc.data["dag"]


# -- environment values ----------------------------------------------------------------


def test_env_values_are_expanded_only_when_tagged(monkeypatch):
    monkeypatch.setenv("DF_TEST_BUCKET", "prod-bucket")
    monkeypatch.delenv("DF_TEST_MISSING", raising=False)
    text = VALID.replace(
        "bash_command: echo hello", "bash_command: echo ${HOME} {{ ds }}"
    ).replace(
        "op_kwargs: {depth: 3}",
        'op_kwargs: {bucket: !env "s3://${DF_TEST_BUCKET}/{{ ds }}", region: !env "${DF_TEST_MISSING:-eu-west-1}"}',
    )
    pipeline = pipeline_of("allow_env: [DF_TEST_BUCKET, DF_TEST_MISSING]\n" + text)
    assert pipeline.downloads[0].bash_command == "echo ${HOME} {{ ds }}"
    assert pipeline.trainers.models[1].op_kwargs == {
        "bucket": "s3://prod-bucket/{{ ds }}",
        "region": "eu-west-1",
    }


def test_env_values_may_read_only_the_variables_allow_env_lists(monkeypatch, tmp_path):
    """What !env reads is copied into the DAG file: no variable is read unless listed."""
    monkeypatch.setenv("DF_TEST_TOKEN", "s3cr3t")
    reads = VALID.replace("echo hello", '!env "echo ${DF_TEST_TOKEN}"')
    assert compile_yaml(reads) == [
        "c.yaml:6:17: error: download.bash_command: !env reads DF_TEST_TOKEN, which"
        " allow_env does not list; its value would be copied into the DAG file: add"
        " allow_env: [DF_TEST_TOKEN] to this config or a defaults.yaml above it if that"
        " is safe, or read secrets when the task runs (an Airflow connection or variable)"
    ]
    other = compile_yaml("allow_env: [DF_TEST_OTHER]\n" + reads)
    assert len(other) == 1 and "DF_TEST_TOKEN, which allow_env" in other[0]
    write(tmp_path / "defaults.yaml", "allow_env: [DF_TEST_TOKEN]\n")
    write(tmp_path / "demo.yaml", reads)
    batch = compile_batch(discover([tmp_path]))
    assert batch.problems == []
    assert "echo s3cr3t" in batch.rendered[0].content


def test_a_defaults_env_value_the_config_overrides_is_not_read_into_the_dag(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("DF_TEST_TOKEN", "s3cr3t")
    write(
        tmp_path / "defaults.yaml",
        'dag:\n  description: !env "token ${DF_TEST_TOKEN}"\n',
    )
    write(
        tmp_path / "demo.yaml",
        VALID.replace("dag_id: demo", "dag_id: demo\n  description: mine"),
    )
    batch = compile_batch(discover([tmp_path]))
    assert batch.problems == []
    assert "s3cr3t" not in batch.rendered[0].content


def test_unset_env_value_is_an_error(monkeypatch):
    monkeypatch.delenv("DF_TEST_MISSING", raising=False)
    loaded = load_text("a:\n  b: !env ${DF_TEST_MISSING}\n", "c.yaml")
    assert loaded.document is None
    assert str(loaded.problems[0]) == (
        "c.yaml:2:6: error: a.b: the environment variable DF_TEST_MISSING is not set;"
        " set it, or give a fallback: ${DF_TEST_MISSING:-default}"
    )


# -- trainers --------------------------------------------------------------------------


def test_count_makes_trainers_from_a_pattern():
    pipeline = pipeline_of(
        with_trainers("""\
        trainers:
          group_id: g
          python_callable: pkg.m:train
          count: 3
          task_id_pattern: run_{index}
        """)
    )
    assert pipeline.trainers.task_ids == ["g.run_1", "g.run_2", "g.run_3"]


def test_matrix_makes_the_cartesian_product_with_readable_ids():
    pipeline = pipeline_of(
        with_trainers("""\
        trainers:
          group_id: g
          python_callable: pkg.m:train
          op_kwargs: {epochs: 5}
          matrix:
            lr: [0.1, 0.01]
            optimizer: [adam, sgd]
        """)
    )
    assert [m.task_id for m in pipeline.trainers.models] == [
        "lr_0.1_optimizer_adam",
        "lr_0.1_optimizer_sgd",
        "lr_0.01_optimizer_adam",
        "lr_0.01_optimizer_sgd",
    ]
    assert pipeline.trainers.models[3].op_kwargs == {
        "epochs": 5,
        "lr": 0.01,
        "optimizer": "sgd",
    }


def test_matrix_ids_stay_unique():
    assert matrix_task_ids([{"a": "x y"}, {"a": "x_y"}, {"a": "x/y"}]) == [
        "a_x_y",
        "a_x_y_2",
        "a_x_y_3",
    ]


def test_matrix_size_is_bounded():
    found = problems(
        with_trainers("""\
        trainers:
          group_id: g
          python_callable: pkg.m:train
          matrix:
            a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
            b: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
            c: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
            d: [1, 2, 3, 4, 5, 6, 7, 8]
        """)
    )
    assert found == [
        "c.yaml:11:5: error: trainers.matrix: makes 10,648 trainers; at most 10,000 are supported"
    ]


def test_exactly_one_way_to_list_trainers():
    found = problems(
        with_trainers(
            "trainers:\n  group_id: g\n  python_callable: pkg.m:t\n  count: 2\n  models: [{task_id: a}]\n"
        )
    )
    assert found == [
        "c.yaml:10:3: error: trainers.count: give only one of 'models' or 'count' or 'matrix', not both"
    ]


def test_group_settings_apply_to_every_model_and_models_override():
    pipeline = pipeline_of(
        with_trainers("""\
        trainers:
          group_id: g
          python_callable: pkg.m:train
          queue: gpu
          retries: 2
          retry_delay: 1m
          trigger_rule: all_done
          models:
            - task_id: a
            - task_id: b
              retries: 5
              pool: big
        """)
    )
    a, b = pipeline.trainers.models
    assert a.settings == {
        "queue": "gpu",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "trigger_rule": "all_done",
    }
    assert b.settings["retries"] == 5 and b.settings["pool"] == "big"


def test_bash_trainers_get_params_as_environment_and_push_return_value():
    pipeline = pipeline_of(
        with_trainers("""\
        trainers:
          group_id: g
          bash_command: ./train.sh
          models:
            - task_id: a
              op_kwargs: {depth: 3, fast: true}
        """)
    )
    source = render_pipeline(pipeline)
    assert (
        'env={\n                "depth": "3",\n                "fast": "true",\n            },\n            append_env=True,'
        in source
    )
    found = problems(
        with_trainers(
            "trainers:\n  group_id: g\n  xcom_key: acc\n  bash_command: ./t.sh\n  count: 2\n"
        )
    )
    assert (
        "c.yaml:9:13: error: trainers.xcom_key: bash trainers push their last line of output as 'return_value'; remove xcom_key or use python_callable"
        in found
    )


def test_a_metric_mapping_needs_python_trainers():
    """Bash trainers push their last line as text: a chooser metric could never be found."""
    found = problems(
        with_trainers(
            "trainers:\n  group_id: g\n  python_callable: pkg.m:t\n"
            "  models: [{task_id: a}, {task_id: b, bash_command: ./t.sh}]\n",
            "chooser:\n  task_id: choose\n  metric: accuracy\n",
        )
    )
    assert found == [
        "c.yaml:13:11: error: chooser.metric: bash trainers push their last line of output "
        "as text, which has no 'accuracy'; remove metric, or give every trainer a "
        "python_callable that returns a mapping"
    ]
    # a model's own python_callable wins over the group's bash_command
    overridden = with_trainers(
        "trainers:\n  group_id: g\n  bash_command: ./t.sh\n"
        "  models: [{task_id: a, python_callable: pkg.m:t}, {task_id: b, python_callable: pkg.m:t}]\n",
        "chooser:\n  task_id: choose\n  metric: accuracy\n",
    )
    assert problems(overridden) == []
    assert not pipeline_of(overridden).trainers.models[0].bash_command


def test_mapped_trainers_render_partial_expand_and_share_settings():
    text = with_trainers("""\
        trainers:
          group_id: g
          mapped: true
          python_callable: pkg.m:train
          retries: 1
          matrix: {seed: [1, 2, 3]}
        """)
    source = compiled(textwrap.dedent(text)).content
    calls = [
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert "partial" in calls and "expand" in calls
    assert '"task_ids": "g.train",' in source
    found = problems(
        with_trainers(
            "trainers:\n  group_id: g\n  mapped: true\n  python_callable: p.m:t\n  models:\n    - {task_id: a, retries: 3}\n"
        )
    )
    assert (
        "c.yaml:12:20: error: trainers.models[0].retries: mapped trainers share one task: set retries on trainers, not per model"
        in found
    )


# -- chooser, publish, DAG options -----------------------------------------------------


def test_branches_need_a_threshold():
    found = problems(VALID + "  on_pass: {task_id: deploy, bash_command: echo ok}\n")
    assert (
        "c.yaml:17:3: error: chooser.on_pass: 'on_pass' is only allowed together with 'threshold'"
        in found
    )


def test_step_ids_share_the_namespace():
    text = VALID.replace(
        "chooser:\n  task_id: choose\n",
        "chooser:\n  task_id: choose\n  threshold: 0.5\n  on_pass: {task_id: fetch, bash_command: echo}\n",
    )
    assert problems(text) == [
        "c.yaml:18:22: error: chooser.on_pass.task_id: the id 'fetch' is already used by download.task_id (line 5); ids must be unique"
    ]


@pytest.mark.parametrize(
    ("schedule", "rendered"),
    [
        ("'@hourly'", 'schedule="@hourly",'),
        ("'*/5 * * * *'", 'schedule="*/5 * * * *",'),
        ("null", "schedule=None,"),
        ("90m", "schedule=timedelta(minutes=90),"),
        (
            "[s3://b/k, 'file:///tmp/x']",
            'schedule=[\n        Asset("s3://b/k"),\n        Asset("file:///tmp/x"),\n    ],',
        ),
    ],
)
def test_schedules(schedule, rendered):
    text = VALID.replace(
        "  start_date: 2024-01-01\n",
        f"  start_date: 2024-01-01\n  schedule: {schedule}\n",
    )
    assert rendered in compiled(textwrap.dedent(text)).content


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "  end_date: 2023-01-01\n",
            "c.yaml:4:13: error: dag.end_date: must be after dag.start_date",
        ),
        (
            "  timezone: Mars/Olympus\n",
            "c.yaml:4:13: error: dag.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            "  params: {n: {default: many, type: integer}}\n",
            "c.yaml:4:25: error: dag.params.n.default: the default does not fit its own rules: 'many' is not of type 'integer'",
        ),
        (
            "  doc_md_file: missing.md\n",
            "c.yaml:4:16: error: dag.doc_md_file: no such file: missing.md",
        ),
        (
            "  doc_md: hi\n  doc_md_file: x.md\n",
            [
                "c.yaml:5:3: error: dag.doc_md_file: give only one of 'doc_md' or 'doc_md_file', not both",
                "c.yaml:5:16: error: dag.doc_md_file: no such file: x.md (paths are relative to the config's folder)",
            ],
        ),
        (
            "  owner_links: {me: 'javascript:alert(1)'}\n",
            "c.yaml:4:21: error: dag.owner_links.me: expected an http(s):// or mailto: link",
        ),
        (
            "  on_failure_callback: pkg.alerts.notify\n",
            "c.yaml:4:24: error: dag.on_failure_callback: expected a 'module.path:function' reference",
        ),
        (
            "  schedule: 5 minutes\n",
            "c.yaml:4:13: error: dag.schedule: expected a cron expression, a preset such as @daily, a duration",
        ),
    ],
)
def test_dag_option_errors(lines, expected):
    found = problems(
        VALID.replace(
            "  start_date: 2024-01-01\n", "  start_date: 2024-01-01\n" + lines
        )
    )
    prefixes = expected if isinstance(expected, list) else [expected]
    assert cut_to(found, prefixes) == prefixes, found


def test_several_downloads_all_run_before_the_trainers():
    text = VALID.replace(
        "download:\n  task_id: fetch\n  bash_command: echo hello\n",
        "download:\n  - {task_id: fetch_a, bash_command: echo a}\n  - {task_id: fetch_b, python_callable: pkg.io:fetch}\n",
    )
    source = compiled(textwrap.dedent(text)).content
    assert "    download = [\n        BashOperator(" in source
    assert "\n    download >> trainers >> choose\n" in source


# -- team templates ----------------------------------------------------------------------


def render_with(tmp_path: Path, template: str) -> subprocess.CompletedProcess[str]:
    templates = tmp_path / "templates"
    write(templates / "dag.py.j2", template)
    config = write(tmp_path / "c" / "demo.yaml", VALID)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dagfactory",
            "render",
            str(config),
            "--out",
            str(tmp_path / "out"),
            "--templates",
            str(templates),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_example_team_template_renders_clean_code(tmp_path):
    pipeline = pipeline_of(VALID)
    source = render_pipeline(pipeline, ROOT / "configs" / "templates")
    assert (
        'logging.getLogger(__name__).debug("DAG %s from %s", "demo", "c.yaml")'
        in source
    )
    (tmp_path / "demo.py").write_text(source)
    for args in (["format", "--check"], ["check", "--select", "AIR,F"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--no-cache", str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout


def test_a_template_cannot_print_config_values_raw(tmp_path):
    result = render_with(
        tmp_path,
        '{% extends "builtin/dag.py.j2" %}{% block extra_code %}\nX = {{ pipeline.dag.dag_id }}\n{% endblock %}',
    )
    assert result.returncode == 1
    assert (
        "the config value 'demo' reached the output without the `py` filter"
        in result.stderr
    )
    assert not (tmp_path / "out").exists()


def test_a_template_must_keep_the_marker(tmp_path):
    result = render_with(tmp_path, "x = {{ pipeline.dag.dag_id | py }}\n")
    assert result.returncode == 1
    assert "template dag.py.j2 must start with {{ marker }}" in result.stderr


def test_template_errors_are_reported(tmp_path):
    result = render_with(tmp_path, "{{ marker }}\n{{ no_such_name }}\n")
    assert result.returncode == 1
    assert "template dag.py.j2 (line 2): 'no_such_name' is undefined" in result.stderr
    with pytest.raises(TemplateError):
        render_pipeline(pipeline_of(VALID), tmp_path / "templates")


# -- runs without a logical date -------------------------------------------------------

NEEDS_A_LOGICAL_DATE = VALID.replace(
    "bash_command: echo hello",
    'bash_command: "echo {{ ds }} {{ macros.ds_add(ds, 1) }} {{ ts_nodash }}"',
)


def test_templates_undefined_without_a_logical_date_are_warnings(tmp_path):
    result = compile_text(NEEDS_A_LOGICAL_DATE, "c.yaml")
    assert result.compiled is not None  # a warning does not stop the config
    assert [str(warning) for warning in result.problems] == [
        "c.yaml:6:17: warning: download.bash_command: {{ ds }} is undefined in a run"
        " without a logical date (a manual run from the UI or the REST API), which then"
        " fails; write {{ dag_run.run_after | ds }} instead",
        "c.yaml:6:17: warning: download.bash_command: {{ ts_nodash }} is undefined in a"
        " run without a logical date (a manual run from the UI or the REST API), which"
        " then fails; write {{ dag_run.run_after | ts_nodash }} instead",
    ]


@pytest.mark.parametrize(
    "template",
    [
        "{{ dag_run.run_after | ds }}",
        "{{ dag_run.logical_date }}",
        "{{ params.ds }}",
        "{{ run_id }}",
        "${ds}",
    ],
)
def test_templates_every_run_defines_are_not_warned_about(template):
    result = compile_text(VALID.replace("echo hello", f'"echo {template}"'), "c.yaml")
    assert result.compiled is not None
    assert result.problems == (), result.problems


def test_warnings_are_printed_in_every_command_and_also_from_the_cache(tmp_path):
    config = tmp_path / "configs" / "c.yaml"
    config.parent.mkdir()
    config.write_text(NEEDS_A_LOGICAL_DATE)
    out = ["--out", str(tmp_path / "out")]
    for command in (["validate"], ["render", *out], ["render", *out], ["validate"]):
        result = dagfactory(*command, str(config.parent), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stderr.count(": warning: download.bash_command: {{ ") == 2
    as_json = dagfactory("validate", "--format", "json", str(config), cwd=tmp_path)
    assert {p["severity"] for p in json.loads(as_json.stdout)} == {"warning"}
