"""Validation: each schema and semantic rule, reported at the right line and column."""

from __future__ import annotations

import json

import jsonschema
import pytest

from conftest import ROOT, VALID, cut_to
from dagfactory.compile.load import load_text
from dagfactory.compile.schema import spec_schema
from dagfactory.compile.validate import validate


def problems(text: str) -> list[str]:
    return [str(error) for error in validate(load_text(text, "c.yaml").document)]


def edit(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


def test_valid_config_has_no_problems():
    assert problems(VALID) == []


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(spec_schema())
    assert spec_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # required keys, reported at the mapping that lacks them
        (
            "  dag_id: demo\n",
            "",
            "c.yaml:2:3: error: dag: missing required key 'dag_id'",
        ),
        (
            "chooser:\n  task_id: choose\n",
            "",
            "c.yaml:1:1: error: (top level): missing required key 'chooser'",
        ),
        # unknown keys, at the key, with a suggestion
        (
            "  start_date:",
            "  start_dte: 2024-01-01\n  start_date:",
            "c.yaml:3:3: error: dag.start_dte: unknown key 'start_dte'; did you mean 'start_date'?",
        ),
        # a section of the wrong shape (no crash on its oneOf rule)
        (
            "download:\n  task_id: fetch\n  bash_command: echo hello\n",
            "download:\n",
            "c.yaml:4:10: error: download: expected a step (a mapping with task_id and a bash_command or python_callable) or a list of steps, all run before the trainers, got null",
        ),
        (
            "download:\n  task_id: fetch\n  bash_command: echo hello\n",
            "download: [a]\n",
            "c.yaml:4:12: error: download[0]: expected a mapping, got the text 'a'",
        ),
        # types and patterns, at the value
        (
            "dag_id: demo",
            "dag_id: my dag",
            "c.yaml:2:11: error: dag.dag_id: expected a DAG id of letters",
        ),
        (
            "task_id: fetch",
            "task_id: 'fe tch'",
            "c.yaml:5:12: error: download.task_id: expected a task id",
        ),
        (
            "group_id: train",
            "group_id: tr.ain",
            "c.yaml:8:13: error: trainers.group_id: expected a group id of letters, digits, '_' and '-' (no dots",
        ),
        (
            "xcom_key: score",
            "xcom_key: 'bad key'",
            "c.yaml:9:13: error: trainers.xcom_key: expected an XCom key",
        ),
        (
            "pkg.models:train",
            "pkg.models.train",
            "c.yaml:10:20: error: trainers.python_callable: expected a 'module.path:function' reference",
        ),
        (
            "pkg.models:train",
            "pkg.class:train",
            "c.yaml:10:20: error: trainers.python_callable: 'class' is a Python keyword",
        ),
        (
            "start_date: 2024-01-01",
            "start_date: 2024-02-30",
            "c.yaml:3:15: error: dag.start_date: '2024-02-30' is not a real date",
        ),
        (
            "start_date: 2024-01-01",
            "start_date: yesterday",
            [
                "c.yaml:3:15: error: dag.start_date: 'yesterday' is not a real date",
                "c.yaml:3:15: error: dag.start_date: expected an ISO date",
            ],
        ),
        (
            "  start_date: 2024-01-01\n",
            "  start_date: 2024-01-01\n  schedule: every day\n",
            "c.yaml:4:13: error: dag.schedule: expected a cron expression, a preset such as @daily, a duration such as 1h, a list of Asset URIs (data-aware scheduling), or null for manual runs only, got the text 'every day'",
        ),
        (
            "  start_date: 2024-01-01\n",
            "  start_date: 2024-01-01\n  catchup: 'no'\n",
            "c.yaml:4:12: error: dag.catchup: expected true or false, got the text 'no'",
        ),
        (
            "  start_date: 2024-01-01\n",
            "  start_date: 2024-01-01\n  default_args: {retries: -1}\n",
            "c.yaml:4:27: error: dag.default_args.retries: expected a number of at least 0, got the number -1",
        ),
        (
            "  start_date: 2024-01-01\n",
            "  start_date: 2024-01-01\n  default_args: {retry_delay: 5 minutes}\n",
            "c.yaml:4:31: error: dag.default_args.retry_delay: expected a duration",
        ),
        (
            "  start_date: 2024-01-01\n",
            "  start_date: 2024-01-01\n  tags: [a, a]\n",
            "c.yaml:4:9: error: dag.tags: items must be unique",
        ),
        (
            "    - task_id: a\n    - task_id: b\n      op_kwargs: {depth: 3}\n",
            "    []\n",
            "c.yaml:12:5: error: trainers.models: needs at least 1 item",
        ),
        (
            "op_kwargs: {depth: 3}",
            "op_kwargs: {max-depth: 3}",
            "c.yaml:14:19: error: trainers.models[1].op_kwargs.max-depth: the key 'max-depth' is not a Python identifier",
        ),
        (
            "chooser:\n  task_id: choose\n",
            "chooser:\n  task_id: choose\n  mode: best\n",
            "c.yaml:17:9: error: chooser.mode: expected one of 'max', 'min', got the text 'best'",
        ),
        # download takes exactly one command
        (
            "  bash_command: echo hello\n",
            "",
            "c.yaml:5:3: error: download: needs one of 'bash_command' or 'python_callable'",
        ),
        (
            "  bash_command: echo hello\n",
            "  bash_command: echo hello\n  python_callable: a:b\n",
            "c.yaml:7:3: error: download.python_callable: give only one of 'bash_command' or 'python_callable', not both",
        ),
        (
            "  bash_command: echo hello\n",
            "  bash_command: echo hello\n  op_kwargs: {a: 1}\n",
            "c.yaml:7:3: error: download.op_kwargs: 'op_kwargs' is only allowed together with 'python_callable'",
        ),
        # semantic rules
        (
            "task_id: choose",
            "task_id: fetch",
            "c.yaml:16:12: error: chooser.task_id: the id 'fetch' is already used by download.task_id (line 5)",
        ),
        (
            "- task_id: b",
            "- task_id: a",
            "c.yaml:13:16: error: trainers.models[1].task_id: the id 'train.a' is already used by trainers.models[0].task_id (line 12)",
        ),
        (
            "task_id: fetch",
            "task_id: train",
            "c.yaml:8:13: error: trainers.group_id: the id 'train' is already used by download.task_id (line 5)",
        ),
        (
            "chooser:\n  task_id: choose\n",
            "chooser:\n  task_id: choose\n  xcom_key: accuracy\n",
            "c.yaml:17:13: error: chooser.xcom_key: must equal trainers.xcom_key ('score')",
        ),
        (
            "  python_callable: pkg.models:train\n",
            "",
            [
                "c.yaml:11:7: error: trainers.models[0]: no command: set python_callable (or bash_command) here, or on trainers for every model",
                "c.yaml:12:7: error: trainers.models[1]: no command: set python_callable (or bash_command) here, or on trainers for every model",
            ],
        ),
        (
            "op_kwargs: {depth: 3}",
            "op_kwargs: {depth: .nan}",
            "c.yaml:14:26: error: trainers.models[1].op_kwargs.depth: nan cannot be passed to a task",
        ),
    ],
)
def test_rule_is_reported_at_line_and_column(old, new, expected):
    found = problems(edit(old, new))
    prefixes = expected if isinstance(expected, list) else [expected]
    assert cut_to(found, prefixes) == prefixes, found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a string was expected and YAML 1.1 read a boolean or number
        (
            "task_id: fetch",
            "task_id: no",
            "c.yaml:5:12: error: download.task_id: expected a task id of letters, digits, '_', '.' and '-' (not starting with '.' or '-', at most 200 characters), got the boolean false (YAML readers disagree on the unquoted value no",
        ),
        (
            "  start_date: 2024-01-01\n",
            "  start_date: 2024-01-01\n  tags: [on]\n",
            "c.yaml:4:10: error: dag.tags[0]: expected a tag of 1 to 100 characters, got the boolean true (YAML readers disagree on the unquoted value on",
        ),
        (
            "  start_date: 2024-01-01\n",
            "  start_date: 2024-01-01\n  description: 1e3\n",
            "c.yaml:4:16: error: dag.description: YAML readers disagree on the unquoted value 1e3: the text '1e3' here (YAML 1.1), the number 1000.0 in YAML 1.2; quote it ('1e3')",
        ),
        # free-form values too: 1e-3 is text for PyYAML, a number elsewhere
        (
            "op_kwargs: {depth: 3}",
            "op_kwargs: {lr: 1e-3}",
            "c.yaml:14:23: error: trainers.models[1].op_kwargs.lr: YAML readers disagree on the unquoted value 1e-3",
        ),
        (
            "op_kwargs: {depth: 3}",
            "op_kwargs: {depth: 010}",
            "c.yaml:14:26: error: trainers.models[1].op_kwargs.depth: YAML readers disagree on the unquoted value 010: the number 8 here",
        ),
    ],
)
def test_yaml_11_surprises_say_to_quote(old, new, expected):
    found = problems(edit(old, new))
    assert cut_to(found, [expected]) == [expected], found


def test_quoted_values_and_unambiguous_scalars_pass():
    text = edit(
        "op_kwargs: {depth: 3}",
        "op_kwargs: {lr: 0.001, name: '1e3', flag: true, none: null, n: -4}",
    )
    assert problems(text) == []


def test_every_problem_of_a_file_at_once_in_file_order():
    text = edit("dag_id: demo", "dag_id: 'no good'")
    text = text.replace("task_id: choose", "task_id: fetch").replace("mode", "mode")
    text += "extra: 1\n"
    found = problems(text)
    assert [message.split(": error")[0] for message in found] == [
        "c.yaml:2:11",
        "c.yaml:16:12",
        "c.yaml:17:1",
    ]


def test_schema_file_is_json():
    """Strict JSON, as any other tool reads it: no NaN or Infinity, no key given twice."""

    def no_constant(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        assert len(set(keys)) == len(keys), keys
        return dict(pairs)

    text = (ROOT / "dagfactory" / "schema" / "spec.schema.json").read_text("utf-8")
    strict = json.loads(text, parse_constant=no_constant, object_pairs_hook=unique_keys)
    assert strict == spec_schema()
    assert json.loads(json.dumps(strict)) == strict


DAG_ID = "c.yaml:2:11: error: dag.dag_id: expected a DAG id of letters"
TASK_ID = "c.yaml:5:12: error: download.task_id: expected a task id of letters"
GROUP_ID = "c.yaml:8:13: error: trainers.group_id: expected a group id of letters"
XCOM_KEY = "c.yaml:9:13: error: trainers.xcom_key: expected an XCom key"
CALLABLE = "c.yaml:10:20: error: trainers.python_callable: expected a 'module.path:function' reference"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("dag_id: demo", "dag_id: démo", DAG_ID),
        ("dag_id: demo", "dag_id: Ωmega", DAG_ID),
        ("dag_id: demo", 'dag_id: "demo\\n"', DAG_ID),  # `$` must not match before \n
        ("dag_id: demo", "dag_id: |\n    demo\n", DAG_ID),  # block scalar, trailing \n
        ("dag_id: demo", 'dag_id: "\\ndemo"', DAG_ID),
        ("dag_id: demo", 'dag_id: "demo\\u2028"', DAG_ID),
        ("dag_id: demo", 'dag_id: "demo\\0"', DAG_ID),
        ("dag_id: demo", "dag_id: ..", DAG_ID),
        ("dag_id: demo", "dag_id: ../etc/cron.d/x", DAG_ID),
        ("dag_id: demo", "dag_id: a/b", DAG_ID),
        ("dag_id: demo", "dag_id: 'a\\b'", DAG_ID),
        ("dag_id: demo", "dag_id: /abs", DAG_ID),
        ("dag_id: demo", "dag_id: .hidden", DAG_ID),
        ("dag_id: demo", "dag_id: -flag", DAG_ID),
        ("dag_id: demo", "dag_id: x" + "y" * 250, DAG_ID),
        ("dag_id: demo", "dag_id: ''", DAG_ID),
        ("dag_id: demo", "dag_id: 'a b'", DAG_ID),
        ("dag_id: demo", 'dag_id: "a\'b"', DAG_ID),
        ("task_id: fetch", "task_id: fétch", TASK_ID),
        ("task_id: fetch", 'task_id: "fetch\\n"', TASK_ID),
        ("task_id: fetch", "task_id: a/b", TASK_ID),
        ("task_id: fetch", "task_id: x" + "y" * 200, TASK_ID),
        ("group_id: train", "group_id: trāin", GROUP_ID),
        ("group_id: train", 'group_id: "train\\n"', GROUP_ID),
        ("group_id: train", "group_id: x" + "y" * 50, GROUP_ID),
        ("xcom_key: score", "xcom_key: scöre", XCOM_KEY),
        ("xcom_key: score", 'xcom_key: "score\\n"', XCOM_KEY),
        ("xcom_key: score", "xcom_key: '1score'", XCOM_KEY),
        ("xcom_key: score", "xcom_key: x" + "y" * 100, XCOM_KEY),
        ("pkg.models:train", '"pkg.models:train\\n"', CALLABLE),
        ("pkg.models:train", "pkg.módels:train", CALLABLE),
        ("pkg.models:train", "pkg/models:train", CALLABLE),
        ("pkg.models:train", "pkg..models:train", CALLABLE),
        ("pkg.models:train", "'pkg.models:train()'", CALLABLE),
        ("pkg.models:train", "'pkg.models:train;import os'", CALLABLE),
        (
            "chooser:\n  task_id: choose\n",
            'chooser:\n  task_id: choose\n  push_key: "best\\n"\n',
            "c.yaml:17:13: error: chooser.push_key: expected an XCom key",
        ),
        (
            "op_kwargs: {depth: 3}",
            'op_kwargs: {"depth\\n": 3}',
            "c.yaml:14:19: error: trainers.models[1].op_kwargs['depth\\n']: the key 'depth\\n' is not a Python identifier",
        ),
        (
            "op_kwargs: {depth: 3}",
            "op_kwargs: {dépth: 3}",
            "c.yaml:14:19: error: trainers.models[1].op_kwargs.dépth: the key 'dépth' is not a Python identifier",
        ),
    ],
)
def test_identifiers_are_strict(old, new, expected):
    """Every id and reference is checked in full before it can reach a template or a file name."""
    found = problems(edit(old, new))
    assert cut_to(found, [expected]) == [expected], found
    assert all("\n" not in message for message in found)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("dag_id: demo", "dag_id: x" + "y" * 249),  # 250 characters, Airflow's limit
        ("dag_id: demo", "dag_id: a..b"),  # dots are fine inside an id
        ("task_id: fetch", "task_id: x" + "y" * 199),
        ("op_kwargs: {depth: 3}", "op_kwargs: {class: 1, def: 2, lambda: 3}"),
    ],
)
def test_identifiers_at_their_limits_pass(old, new):
    assert problems(edit(old, new)) == []


def test_unique_items_with_mixed_types():
    """dagfactory's own uniqueItems (linear time): JSON equality, so 1 == 1.0 but true != 1."""
    tags = ", ".join(["1", "a"] * 5000) + ", a"
    found = problems(
        edit(
            "  start_date: 2024-01-01\n",
            f"  start_date: 2024-01-01\n  tags: [{tags}]\n",
        )
    )
    assert "c.yaml:4:9: error: dag.tags: items must be unique" in found
    assert sum("expected a tag of 1 to 100 characters" in m for m in found) == 5000
    for items, unique in [
        ("[1, 1.0]", False),
        ("[true, 1]", True),
        ("[[a], [a]]", False),
    ]:
        found = problems(
            edit(
                "  start_date: 2024-01-01\n",
                f"  start_date: 2024-01-01\n  tags: {items}\n",
            )
        )
        assert (
            "c.yaml:4:9: error: dag.tags: items must be unique" not in found
        ) is unique


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../../../../etc/passwd", "docs/../../secret.md"]
)
def test_doc_md_file_stays_in_the_config_folder(path):
    """Its text is copied into the DAG, so it cannot name any file the renderer can read."""
    found = problems(
        edit(
            "  start_date: 2024-01-01\n",
            f"  start_date: 2024-01-01\n  doc_md_file: {path}\n",
        )
    )
    expected = (
        "c.yaml:4:16: error: dag.doc_md_file: must be a file in the config's folder"
    )
    assert cut_to(found, [expected]) == [expected], found


def test_a_doc_md_file_with_a_null_byte_is_one_error_not_a_crash():
    found = problems(
        edit(
            "  start_date: 2024-01-01\n",
            '  start_date: 2024-01-01\n  doc_md_file: "\\0"\n',
        )
    )
    assert found == [
        "c.yaml:4:16: error: dag.doc_md_file: expected a Markdown file of at most 100,000 bytes,"
        " relative to the config's folder, got the text '\\x00'"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    - task_id: a\n    - task_id: b\n      op_kwargs: {depth: 3}\n",
            "    .inf\n",
            [
                "c.yaml:12:5: error: trainers.models: expected a list, got the number inf",
                "c.yaml:12:5: error: trainers.models: inf cannot be passed to a task; use a finite number",
            ],
        ),
        (
            "dag:\n  dag_id: demo\n  start_date: 2024-01-01\n",
            "dag: 1000\n",
            ["c.yaml:1:6: error: dag: expected a mapping, got the number 1000"],
        ),
        (
            "dag:\n  dag_id: demo\n  start_date: 2024-01-01\n",
            "dag: [doc_md_file]\n",
            ["c.yaml:1:6: error: dag: expected a mapping, got a list"],
        ),
    ],
)
def test_sections_of_the_wrong_type_are_errors_not_crashes(old, new, expected):
    assert problems(edit(old, new)) == expected


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        (
            "",
            [
                "c.yaml:4:13: error: dag.schedule: '@continuous' needs max_active_runs: 1"
                " (Airflow loads a continuous DAG only if it runs one run at a time, and"
                " allows 16 by default); add max_active_runs: 1 under dag"
            ],
        ),
        (
            "  max_active_runs: 2\n",
            [
                "c.yaml:5:20: error: dag.max_active_runs: must be 1 with the"
                " '@continuous' schedule (line 4), got 2: Airflow loads a continuous DAG"
                " only if it runs one run at a time"
            ],
        ),
        ("  max_active_runs: 1\n", []),
    ],
)
def test_a_continuous_schedule_needs_one_active_run(runs, expected):
    """Airflow refuses to load the DAG otherwise: an error now, never a broken file."""
    found = problems(
        edit(
            "  start_date: 2024-01-01\n",
            f"  start_date: 2024-01-01\n  schedule: '@continuous'\n{runs}",
        )
    )
    assert found == expected
