"""After the choice: a person's approval before publish, and the Asset event that carries
the winner to the DAGs scheduled on it. Validation, rendering and ``dagfactory run``'s
answer, the last on a real embedded Airflow; the deployment proof (a REST answer, a
timeout, the triggered DAG) is in test_deployment.py."""

from __future__ import annotations

import ast
import json
import sqlite3
import sys
import textwrap
from types import ModuleType

import pytest
from test_render import assert_ruff_clean

from conftest import VALID, airflow_dagbag, compiled, dagfactory
from dagfactory.compile import compile_text
from dagfactory.tools.check_child import _probe
from dagfactory.tools.graph import layout

PUBLISH = "publish:\n  task_id: release\n  python_callable: pkg.ops:publish\n"
APPROVAL = "approval:\n  response_timeout: 1h\n  on_timeout: Reject\n"
CONSUMER = VALID.replace(
    "  start_date: 2024-01-01\n",
    "  start_date: 2024-01-01\n  schedule: ['model://demo/champion']\n",
).replace(
    "  bash_command: echo hello\n",
    "  python_callable: pkg.io:fetch\n  winner_from: model://demo/champion\n",
)


def problems(text: str) -> list[str]:
    return [str(problem) for problem in compile_text(text, "c.yaml").problems]


def source(text: str) -> str:
    result = compile_text(text, "c.yaml")
    assert result.compiled is not None, result.problems
    return result.compiled.content


def gated(target: str | None = "3.1", approval: str = APPROVAL) -> str:
    head = "" if target is None else f'target_airflow: "{target}"\n'
    return head + VALID + PUBLISH + approval


def test_an_approval_needs_airflow_3_1_at_its_key():
    assert problems(gated(None)) == [
        "c.yaml:20:1: error: approval: approval waits for a person with Airflow's"
        ' ApprovalOperator, which came in Airflow 3.1, and target_airflow is "3.0"'
        " by default: an older Airflow cannot load the DAG; raise target_airflow to"
        ' "3.1" if no older Airflow runs it, or remove approval'
    ]
    assert 'target_airflow is "2.10" (line 1)' in problems(gated("2.10"))[0]
    assert problems(gated("3.1")) == problems(gated("3.4")) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            'target_airflow: "3.1"\n' + VALID + APPROVAL,
            "c.yaml:18:1: error: approval: approval gates publish, which is not set:"
            " add a publish step for the approved winner, or remove approval",
        ),
        (
            gated(approval="approval:\n  subject: 'Publish {{ winner.task_id }?'\n"),
            "c.yaml:22:12: error: approval.subject: is not a Jinja template Airflow"
            " can render (line 1 of the text: unexpected '}'); write the winner's"
            " fields as {{ winner.task_id }}, {{ winner.value }}",
        ),
        (
            gated(approval="approval:\n  on_timeout: Reject\n"),
            "c.yaml:22:3: error: approval.on_timeout: 'on_timeout' is only allowed"
            " together with 'response_timeout'",
        ),
        (
            gated(approval="approval:\n  notifiers: [alerts.chat]\n"),
            "c.yaml:22:15: error: approval.notifiers[0]: expected a"
            " 'module.path:function' reference such as my_pkg.models:train, got the"
            " text 'alerts.chat'",
        ),
        (
            gated(approval="approval:\n  task_id: release\n"),
            "c.yaml:22:12: error: approval.task_id: the id 'release' is already used"
            " by publish.task_id (line 19); ids must be unique",
        ),
        (
            VALID + "  asset: model://demo/champion\n" + PUBLISH,
            "c.yaml:17:3: error: chooser.asset: publish follows the chooser, and"
            " announces the published winner: move asset to publish.asset",
        ),
        (
            CONSUMER + "  asset: model://demo/champion\n",
            "c.yaml:19:10: error: chooser.asset: 'model://demo/champion' is also in"
            " dag.schedule: each winner would start this DAG again; announce another"
            " Asset, or schedule the DAG otherwise",
        ),
        (
            CONSUMER.replace("winner_from: model://demo/", "winner_from: model://x/"),
            "c.yaml:8:16: error: download.winner_from: 'model://x/champion' is not an"
            " Asset of dag.schedule ('model://demo/champion'): the winner comes from"
            " the event that triggered the run; add it to dag.schedule",
        ),
        (
            CONSUMER.replace(
                "  winner_from:", "  op_kwargs: {winner: 1}\n  winner_from:"
            ),
            "c.yaml:8:15: error: download.op_kwargs.winner: winner is what"
            " winner_from passes; give this keyword another name",
        ),
        (
            VALID
            + "  threshold: 0.5\n  on_pass:\n    task_id: deploy\n"
            + "    python_callable: pkg.ops:deploy\n"
            + "    winner_from: model://demo/champion\n",
            "c.yaml:21:5: error: chooser.on_pass.winner_from: on_pass gets this run's"
            " winner already; only a download step takes one from an Asset event:"
            " remove winner_from",
        ),
    ],
)
def test_release_rules_are_errors_at_their_place(config, expected):
    assert problems(config) == [expected]


def test_a_bash_step_cannot_take_a_winner():
    found = problems(
        CONSUMER.replace(
            "  python_callable: pkg.io:fetch\n", "  bash_command: echo hello\n"
        )
    )
    assert found and all("python_callable" in problem for problem in found), found


def test_check_binds_winner_to_the_download_function_at_winner_from():
    (download,) = [
        reference
        for reference in compiled(CONSUMER).references
        if reference.target == "pkg.io:fetch"
    ]
    assert download.keywords == ("winner",)
    (place,) = dict(download.keyword_places)["winner"]
    assert (place.spec_path, place.line) == (("download", "winner_from"), 8)


def test_the_approval_sits_between_the_threshold_branch_and_publish():
    code = source(
        gated().replace("chooser:\n", "chooser:\n  threshold: 0.5\n")
        + "  assigned_users: [{id: alice, name: Alice}]\n"
    )
    tree = ast.parse(code)
    assert (
        "from airflow.providers.standard.operators.hitl import ApprovalOperator" in code
    )
    assert '"on_pass": [\n                "approve",\n            ],' in code
    assert code.rstrip().endswith("check_threshold >> approve >> release")
    (call,) = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", None) == "ApprovalOperator"
    ]
    arguments = {keyword.arg: keyword.value for keyword in call.keywords}
    assert list(arguments) == [
        "task_id",
        "subject",
        "body",
        "response_timeout",
        "defaults",
        "assigned_users",
    ]
    assert ast.literal_eval(arguments["subject"]) == (
        "{% set winner = ti.xcom_pull(task_ids='choose', key='best_model') %}"
        "Publish {{ winner.task_id }} ({{ winner.value }})?"
    )
    assert "Without an answer in time: Reject." in ast.literal_eval(arguments["body"])
    assert ast.literal_eval(arguments["defaults"]) == "Reject"
    assert ast.literal_eval(arguments["assigned_users"]) == [
        {"id": "alice", "name": "Alice"}
    ]
    assert ast.unparse(arguments["response_timeout"]) == "timedelta(hours=1)"


NOTIFIED = gated() + "  notifiers: [alerts.chat:notifier, alerts.mail:notifier]\n"


def test_the_notifiers_are_built_from_the_user_factories_when_the_file_is_parsed():
    """Each reference is loaded and called (no arguments) in the operator's call, in
    the config's order, and is a reference check binds at its line."""
    code = source(NOTIFIED)
    assert (
        '        defaults="Reject",\n'
        "        notifiers=[\n"
        '            _load("alerts.chat:notifier")(),\n'
        '            _load("alerts.mail:notifier")(),\n'
        "        ],\n"
        "    )\n"
    ) in code
    pipeline = compiled(NOTIFIED).pipeline
    assert "alerts" in pipeline.code_modules  # .airflowignore hides it
    chat, mail = [
        reference
        for reference in compiled(NOTIFIED).references
        if reference.target.startswith("alerts.")
    ]
    assert (chat.spec_path, chat.line, chat.column) == (
        ("approval", "notifiers", 0),
        24,
        15,
    )
    assert (mail.target, mail.spec_path) == (
        "alerts.mail:notifier",
        ("approval", "notifiers", 1),
    )
    assert (chat.keywords, chat.positional, chat.tasks) == ((), 0, ("approve",))
    assert chat.passes == (
        "task approve passes no arguments; the DAG file calls it when Airflow parses"
        " it, and gives the notifier it returns to the approval task"
    )


def test_check_says_a_notifier_factory_that_needs_arguments_cannot_be_called():
    def notifier(channel):
        """Stands for a factory that wants what the DAG file does not pass."""

    (reference,) = [
        reference
        for reference in compiled(NOTIFIED).references
        if reference.target == "alerts.chat:notifier"
    ]
    module = ModuleType("alerts.chat")
    module.notifier = notifier
    call = {
        "target": reference.target,
        "keywords": list(reference.keywords),
        "written": list(reference.written),
        "positional": reference.positional,
        "passes": reference.passes,
    }
    assert _probe(call, {"alerts.chat": module}, "dags", 30) == [
        (
            "notifier() missing a required argument: 'channel'; it accepts: channel"
            f" ({reference.passes})",
            "",
            None,
        )
    ]


def test_without_a_threshold_the_approval_follows_the_chooser():
    assert source(gated()).rstrip().endswith("choose >> approve >> release")


REGISTRY = "registry:\n  mlflow: {model_name: digits}\n"
THRESHOLD = ("chooser:\n", "chooser:\n  threshold: 0.5\n")
ALWAYS = (
    "  python_callable: pkg.ops:publish\n",
    "  python_callable: pkg.ops:publish\n  when: always\n",
)


@pytest.mark.parametrize(
    ("config", "wiring", "on_pass", "before"),
    [
        (
            gated() + REGISTRY,
            "choose >> approve >> release\n    approve >> register_model",
            None,
            {"approval"},
        ),
        (  # the approval follows the branch: the registry task follows it alone
            gated().replace(*THRESHOLD) + REGISTRY,
            "check_threshold >> approve >> release\n    approve >> register_model",
            ["approve"],
            {"approval"},
        ),
        (  # publish does not wait for the threshold: the registry task waits for both
            gated().replace(*THRESHOLD).replace(*ALWAYS) + REGISTRY,
            "choose >> approve >> release\n"
            "    check_threshold >> register_model\n"
            "    approve >> register_model",
            ["register_model"],
            {"branch", "approval"},
        ),
    ],
)
def test_the_registry_task_waits_for_the_approval(config, wiring, on_pass, before):
    """A rejected (or timed-out-to-Reject) winner is not registered: the approval
    skips its direct downstream tasks, the registry task among them."""
    result = compiled(config)
    assert result.content.rstrip().endswith(wiring)
    assert result.content.count(">> register_model") == wiring.count(
        ">> register_model"
    )
    if on_pass is not None:
        assert result.pipeline.chooser.branch_kwargs["on_pass"] == on_pass
    drawn = {a.key for a, b in layout(result.pipeline).edges if b.key == "registry"}
    assert drawn == before


def test_the_announcing_task_declares_the_asset_as_its_outlet(tmp_path):
    published = source(VALID + PUBLISH + "  asset: model://demo/champion\n")
    assert 'outlets=[Asset("model://demo/champion")],' in published
    assert '"asset": "model://demo/champion",' in published
    chosen = source(VALID + "  asset: model://demo/champion\n")
    assert "_announce(asset, winner, ti, outlet_events)" in chosen
    consumer = source(CONSUMER)
    assert "python_callable=_call_with_asset_winner," in consumer
    (tmp_path / "published.py").write_text(published)
    (tmp_path / "chosen.py").write_text(chosen)
    (tmp_path / "consumer.py").write_text(consumer)


def test_every_release_combination_is_ruff_clean(tmp_path):
    """Approval with and without a threshold, an Asset announced by publish or by a
    chooser with every optional argument (its signature then breaks over lines), and a
    download step that takes the winner."""
    full_chooser = VALID.replace(
        "  python_callable: pkg.models:train\n",
        "  python_callable: pkg.models:train\n  mapped: true\n",
    ) + ("  metric: accuracy\n  min_success: 1\n  asset: model://demo/champion\n")
    configs = {
        "gated": gated(),
        "gated_threshold": gated().replace(
            "chooser:\n", "chooser:\n  threshold: 0.5\n"
        ),
        "gated_always": gated()
        .replace("chooser:\n", "chooser:\n  threshold: 0.5\n")
        .replace(
            "  python_callable: pkg.ops:publish\n",
            "  python_callable: pkg.ops:publish\n  when: always\n  asset: model://demo/champion\n",
        ),
        "full_chooser": full_chooser,
        "consumer": CONSUMER,
        "notified": NOTIFIED,
        "gated_registry": gated().replace(*THRESHOLD).replace(*ALWAYS) + REGISTRY,
        "consumer_on_airflow_2": 'target_airflow: "2.10"\n' + CONSUMER,
    }
    for name, config in configs.items():
        (tmp_path / f"{name}.py").write_text(source(config))
    assert "def _choose(\n    task_ids,\n" in (tmp_path / "full_chooser.py").read_text()
    assert (
        (tmp_path / "gated_always.py")
        .read_text()
        .rstrip()
        .endswith("choose >> approve >> release")
    )
    assert_ruff_clean(tmp_path)


def test_run_refuses_a_gated_dag_without_an_answer_and_says_how_people_answer(project):
    (project / "configs" / "gated.yaml").write_text(
        gated().replace("dag_id: demo", "dag_id: gated")
    )
    result = dagfactory("run", "configs/gated.yaml")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "dagfactory: error: gated waits at approve for a person to approve the winner,"
        " which a local run cannot do: pass --approve (publish runs) or --reject"
        " (publish is skipped). On a deployment a person answers in Airflow's UI (the"
        " run's Required Actions) or over its REST API: PATCH /api/v2/dags/gated/"
        "dagRuns/RUN_ID/taskInstances/approve/-1/hitlDetails with"
        ' {"chosen_options": ["Approve"], "params_input": {}} (or "Reject")'
    )
    ungated = dagfactory("run", "xcom_dag", "--reject")
    assert ungated.returncode == 2
    assert ungated.stderr.strip() == (
        "dagfactory: error: xcom_dag has no approval task: --reject answers nothing;"
        " remove it"
    )


RELEASE_CODE = """\
def train(accuracy):
    return {"accuracy": accuracy, "artifact": f"/models/{accuracy}.pkl"}


def publish(task_id, artifact):
    return artifact
"""


@pytest.mark.airflow
def test_run_approve_answers_over_rest_and_publish_announces_the_winner(
    project, tmp_path
):
    """``dagfactory run --approve``: the PATCH goes through Airflow's own route, publish
    runs, and the Asset event it records carries the winner."""
    config = textwrap.dedent(
        """\
        target_airflow: "3.1"
        dag: {dag_id: gated, start_date: 2024-01-01}
        download: {task_id: prepare, bash_command: echo ready}
        trainers:
          group_id: candidates
          python_callable: release_code:train
          models:
            - {task_id: a, op_kwargs: {accuracy: 0.7}}
            - {task_id: b, op_kwargs: {accuracy: 0.9}}
        chooser: {task_id: pick, metric: accuracy}
        approval: {}
        publish:
          task_id: publish
          python_callable: release_code:publish
          asset: model://demo/champion
        """
    )
    (project / "configs" / "gated.yaml").write_text(config)
    out = tmp_path / "dags"
    out.mkdir()
    (out / "release_code.py").write_text(RELEASE_CODE)
    home = tmp_path / "home"
    result = dagfactory(
        "run", "configs/gated.yaml", "--out", str(out), "--home", str(home), "--approve"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (patch,) = [line for line in result.stdout.splitlines() if line.startswith("PATCH")]
    request, _, reply = patch.partition(" -> ")
    assert request.startswith("PATCH /api/v2/dags/gated/dagRuns/manual__")
    assert request.endswith(
        '/taskInstances/approve/-1/hitlDetails {"chosen_options": ["Approve"],'
        ' "params_input": {}}'
    )
    status, _, body = reply.partition(" ")
    assert status == "200" and json.loads(body)["chosen_options"] == ["Approve"]
    assert "DAG run manual__" in result.stdout and ": success" in result.stdout
    with sqlite3.connect(home / "airflow.db") as db:
        ((extra, task_id, run_id),) = db.execute(
            "SELECT extra, source_task_id, source_run_id FROM asset_event"
        ).fetchall()
    assert task_id == "publish"
    assert json.loads(extra) == {
        "dag_id": "gated",
        "run_id": run_id,
        "task_id": "candidates.b",
        "value": 0.9,
        "metrics": {"accuracy": 0.9},
        "artifact": "/models/0.9.pkl",
        "params": {"accuracy": 0.9},
    }


NOTIFIER_CODE = """\
from airflow.sdk import BaseNotifier


class AskAlice(BaseNotifier):
    def notify(self, context):
        print("Alice, an answer is wanted")


ASK_ALICE = AskAlice()


def notifier():
    return ASK_ALICE
"""


@pytest.mark.airflow
def test_the_loaded_approval_task_holds_the_notifier_the_user_function_returns(
    tmp_path, monkeypatch
):
    """A real DagBag parses the file: the factory is called there, and what it returned
    is the approval task's notifier."""
    (tmp_path / "approval_alerts.py").write_text(NOTIFIER_CODE)
    config = gated() + "  notifiers: [approval_alerts:notifier]\n"
    (tmp_path / "notified.py").write_text(source(config))
    monkeypatch.syspath_prepend(str(tmp_path))  # _load then leaves sys.path as it is
    try:
        dagbag = airflow_dagbag(tmp_path)
        assert dagbag.import_errors == {}
        approve = dagbag.dags["demo"].get_task("approve")
        (notifier,) = approve.notifiers
        assert notifier is sys.modules["approval_alerts"].ASK_ALICE
    finally:
        sys.modules.pop("approval_alerts", None)
