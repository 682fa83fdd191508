"""The registry task against a real MLflow tracking server, in real Airflow.

One module fixture starts ``mlflow server`` (SQLite backend, artifacts served by the
server itself) from a virtualenv of full ``mlflow``, seeds a champion by hand through
the REST API (version 1, score 0.5), then runs two DAGs of one config: the first's
winner (0.8) beats it and takes the alias as version 2, the second's (0.7) does not,
and with ``only_if_better`` nothing is registered. Their registry task runs in a
second virtualenv holding only ``mlflow-skinny`` (``registry.runtime.python``): the
client the ``mlflow`` extra installs is all the generated code needs. Everything is
read back over the REST API, so this process imports no MLflow.

Both virtualenvs are built with uv (its cache the user's), pinned by constraints.txt,
and kept in the user's cache folder keyed by their pin and Python: a rerun builds
nothing. Outside CI a
server that cannot be had skips the tests, naming why; under ``CI=true`` it fails them.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, USER_CACHE, compile_yaml, compiled
from dagfactory.tools.graph import layout
from dagfactory.tools.run import RunResult, run_dag

MODEL = "proof_model"
EXPERIMENT = "registry_proof"
SEEDED_SCORE = 0.5  # version 1, registered by hand before the DAGs run
# Each DAG's trainers and the score each returns: the first beats the seed, the
# second only its own loser.
DAGS = {"registry_better": {"a": 0.6, "b": 0.8}, "registry_worse": {"a": 0.3, "b": 0.7}}
SERVER_START_SECONDS = 180

TRAIN = '''\
import os
import pickle


def train(folder, label, quality):
    """A 'model' (a pickle naming its trainer) and its score."""
    path = os.path.join(folder, f"{label}.pkl")
    with open(path, "wb") as file:
        pickle.dump({"label": label, "quality": quality}, file)
    return {"score": quality, "size": len(label), "artifact": path}
'''

CONFIG = """\
dag: {{dag_id: {dag_id}, start_date: 2024-01-01}}
download: {{task_id: prepare, bash_command: echo ready}}
trainers:
  group_id: train
  python_callable: registry_code:train
  op_kwargs: {{folder: "{folder}"}}
  models:
{models}
chooser: {{task_id: choose, metric: score, mode: max, threshold: 0.5}}
registry:
  runtime: {{python: "{client_python}"}}
  mlflow:
    tracking_uri: "{uri}"
    experiment: {experiment}
    model_name: {model}
    only_if_better: true
"""


def unavailable(what: str) -> None:
    """No MLflow server here: skip, except under CI, which must run these tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}; CI must run the MLflow registry tests", pytrace=False)
    pytest.skip(what)


def constraint(name: str) -> str:
    """The pin constraints.txt gives ``name``, such as ``mlflow==3.17.2``."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.strip()
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def cached_venv(requirement: str) -> Path:
    """The python of a virtualenv holding ``requirement``, built once per pin (and
    Python version) in the user's cache folder; a lock keeps two sessions from
    building it at once, a stamp marks it complete."""
    from uv import find_uv_bin

    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    venv = USER_CACHE / "dagfactory-tests" / f"{requirement}-{version}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            uv = find_uv_bin()
            for args in (
                [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                [uv, "pip", "install", "--quiet", "--python", str(venv), requirement],
            ):
                done = subprocess.run(
                    args,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "UV_CACHE_DIR": str(USER_CACHE / "uv")},
                )
                if done.returncode != 0:
                    unavailable(f"cannot install {requirement}: {done.stderr[-2000:]}")
            (venv / ".complete").touch()
    return venv / "bin" / "python"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Rest:
    """MLflow's REST API, as any client sees it."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def get(self, path: str, **query: str) -> Any:
        url = f"{self.uri}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)

    def post(self, path: str, **body: Any) -> Any:
        request = urllib.request.Request(
            f"{self.uri}/api/2.0/mlflow/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def artifact(self, run_id: str, path: str) -> bytes:
        query = urllib.parse.urlencode({"run_id": run_id, "path": path})
        with urllib.request.urlopen(f"{self.uri}/get-artifact?{query}") as response:
            return response.read()

    def champion(self) -> dict[str, Any]:
        found = self.get("registered-models/alias", name=MODEL, alias="champion")
        return found["model_version"]

    def versions(self) -> list[str]:
        found = self.get("model-versions/search", filter=f"name='{MODEL}'")
        return sorted(v["version"] for v in found.get("model_versions", []))

    def children(self, parent_id: str) -> dict[str, dict[str, float]]:
        """The metrics of each run nested under ``parent_id``, by run name."""
        experiment = self.get("experiments/get-by-name", experiment_name=EXPERIMENT)
        found = self.post(
            "runs/search",
            experiment_ids=[experiment["experiment"]["experiment_id"]],
            filter=f"tags.mlflow.parentRunId = '{parent_id}'",
        )
        return {
            run["info"]["run_name"]: {
                m["key"]: m["value"] for m in run["data"].get("metrics", [])
            }
            for run in found.get("runs", [])
        }

    def run(self, run_id: str) -> dict[str, Any]:
        """A run's name, tags, params and metrics as plain mappings."""
        run = self.get("runs/get", run_id=run_id)["run"]
        data = run["data"]
        return {
            "name": run["info"]["run_name"],
            "tags": {t["key"]: t["value"] for t in data.get("tags", [])},
            "params": {p["key"]: p["value"] for p in data.get("params", [])},
            "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])},
        }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rest]:
    """A fresh ``mlflow server`` on a free port, its store in a temporary folder."""
    python = cached_venv(constraint("mlflow"))
    store = tmp_path_factory.mktemp("mlflow-store")
    port = free_port()
    log = (store / "server.log").open("w")
    process = subprocess.Popen(
        [str(python), "-m", "mlflow", "server"]
        + ["--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}"]
        + ["--artifacts-destination", str(store / "artifacts"), "--serve-artifacts"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        # No background job runner: this proof needs none, and it starts eight
        # processes on a two-core machine.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,  # its uvicorn child is stopped with it
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                text = (store / "server.log").read_text(errors="replace")[-2000:]
                if process.poll() is not None:
                    unavailable(f"mlflow server exited ({process.returncode}): {text}")
                if time.monotonic() > deadline:
                    unavailable(f"mlflow server not healthy in time: {text}")
                time.sleep(0.5)
        yield Rest(uri)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def seed_champion(rest: Rest) -> str:
    """Version 1 with score SEEDED_SCORE, alias champion, registered by hand: its run id."""
    experiment = rest.post("experiments/create", name=EXPERIMENT)["experiment_id"]
    run = rest.post("runs/create", experiment_id=experiment, run_name="by hand")
    info = run["run"]["info"]
    now = int(time.time() * 1000)
    rest.post(
        "runs/log-metric",
        run_id=info["run_id"],
        key="score",
        value=SEEDED_SCORE,
        timestamp=now,
        step=0,
    )
    rest.post("registered-models/create", name=MODEL)
    version = rest.post(
        "model-versions/create",
        name=MODEL,
        source=f"{info['artifact_uri']}/model",
        run_id=info["run_id"],
    )["model_version"]["version"]
    rest.post("registered-models/alias", name=MODEL, alias="champion", version=version)
    return info["run_id"]


@pytest.fixture(scope="module")
def runs(server: Rest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Seed the champion, run both DAGs in turn; what each run did and left behind."""
    client_python = cached_venv(constraint("mlflow-skinny"))
    root = tmp_path_factory.mktemp("mlflow-registry")
    dags, home = root / "dags", root / "home"
    dags.mkdir()
    (dags / "registry_code.py").write_text(TRAIN)
    done_folders: dict[str, Path] = {}
    for dag_id, scores in DAGS.items():
        folder = done_folders[dag_id] = root / dag_id
        folder.mkdir()
        models = "\n".join(
            f"    - {{task_id: {label}, op_kwargs: {{label: {label}, quality: {score}}}}}"
            for label, score in scores.items()
        )
        config = CONFIG.format(
            dag_id=dag_id,
            folder=folder,
            models=models,
            client_python=client_python,
            uri=server.uri,
            experiment=EXPERIMENT,
            model=MODEL,
        )
        (dags / f"{dag_id}.py").write_text(compiled(config).content)
    done: dict[str, Any] = {"seed": seed_champion(server), "folders": done_folders}
    done["before"] = server.champion()
    for dag_id in DAGS:
        result = run_dag(dag_id, dags, home)
        done[dag_id] = {
            "result": result,
            "champion": server.champion(),
            "versions": server.versions(),
        }
    return done


def registered(result: RunResult) -> dict[str, Any]:
    """What the registry task returned."""
    assert result.succeeded, result.log_tail()
    return result.pushed("register_model", "return_value")


@pytest.mark.airflow
def test_a_winner_that_beats_the_champion_is_registered_and_takes_the_alias(
    server, runs
):
    assert runs["before"]["version"] == "1"
    better = runs["registry_better"]
    returned = registered(better["result"])
    assert (returned["version"], returned["aliases"]) == ("2", {"champion": "2"})
    assert better["versions"] == ["1", "2"]
    champion = better["champion"]
    assert champion["version"] == "2"
    # the version is the winner's run: its metrics and the parameters it was called with
    run = server.run(champion["run_id"])
    assert run["name"] == "train.b"
    assert run["metrics"] == {"score": 0.8, "size": 1.0}
    folder = str(runs["folders"]["registry_better"])
    assert run["params"] == {"folder": folder, "label": "b", "quality": "0.8"}
    tags = {t["key"]: t["value"] for t in champion.get("tags", [])}
    assert tags["score"] == "0.8" and tags["airflow.task_id"] == "train.b"
    # its source holds the winner's own file, served by the tracking server
    assert champion["source"].endswith(f"/{champion['run_id']}/artifacts/model")
    model = pickle.loads(server.artifact(champion["run_id"], "model/b.pkl"))
    assert model == {"label": "b", "quality": 0.8}
    # every trainer is a run nested under one named after the Airflow run
    assert run["tags"]["mlflow.parentRunId"] == returned["run_id"]
    parent = server.run(returned["run_id"])
    assert parent["name"] == better["result"].run_id  # manual__2024-...
    assert parent["tags"]["dagfactory.winner"] == "train.b"
    assert server.children(returned["run_id"]) == {
        "train.a": {"score": 0.6, "size": 1.0},
        "train.b": {"score": 0.8, "size": 1.0},
    }


@pytest.mark.airflow
def test_a_worse_winner_leaves_the_alias_and_registers_nothing(server, runs):
    worse = runs["registry_worse"]
    returned = registered(worse["result"])
    assert (returned["version"], returned["aliases"]) == (None, {"champion": "2"})
    assert worse["versions"] == ["1", "2"]
    assert worse["champion"]["version"] == "2"
    log = "\n".join(
        entry.read()
        for entry in worse["result"].task_logs
        if "register" in entry.task_id
    )
    assert "train.b (score 0.7) does not beat proof_model version 2" in log
    # its trainers are logged all the same, under a run of its own
    assert server.run(returned["run_id"])["name"] == worse["result"].run_id
    assert server.children(returned["run_id"]) == {
        "train.a": {"score": 0.3, "size": 1.0},
        "train.b": {"score": 0.7, "size": 1.0},
    }


# -- validation and rendering, without Airflow or MLflow -------------------------------

BASE = """\
dag: {dag_id: demo, start_date: 2024-01-01}
download: {task_id: fetch, bash_command: echo hi}
trainers:
  group_id: train
  python_callable: pkg.m:train
  models: [{task_id: a}, {task_id: b, bash_command: echo 0.5}]
"""


def test_registry_problems_are_reported_at_their_line():
    text = BASE + textwrap.dedent("""\
        chooser: {task_id: choose}
        registry:
          task_id: choose
          runtime: {python: venv/bin/python}
          mlflow:
            tracking_uri: "https://ci:s3cret@mlflow.example.com"
            model_name: digits
            alias: Latest
            only_if_better: true
        """)
    assert compile_yaml(text) == [
        "c.yaml:8:1: error: registry: registers the file the winner returns under"
        " 'artifact', but bash trainers push text ('b'); give every trainer a"
        " python_callable that returns {'<metric>': ..., 'artifact': <path>}",
        "c.yaml:9:12: error: registry.task_id: the id 'choose' is already used by"
        " chooser.task_id (line 7); ids must be unique",
        "c.yaml:10:21: error: registry.runtime.python: 'venv/bin/python' is not an"
        " absolute path; the worker runs it from any folder: write the"
        " interpreter's full path, such as /opt/envs/train/bin/python",
        "c.yaml:12:19: error: registry.mlflow.tracking_uri: holds a password, which"
        " would be copied into the DAG file; remove it and set"
        " MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or"
        " MLFLOW_TRACKING_TOKEN) on the workers",
        "c.yaml:14:12: error: registry.mlflow.alias: MLflow reserves the alias"
        " 'Latest' ('latest' and version names such as v1); choose another, such"
        " as champion",
        "c.yaml:15:21: error: registry.mlflow.only_if_better: compares the winner"
        " with the registered champion in chooser.mode's direction, which is not"
        " written; set chooser.mode: max (higher is better, such as accuracy) or"
        " min (such as a loss)",
    ]


def test_the_schema_wants_a_model_name_and_an_alias_mlflow_accepts():
    text = BASE.replace(", bash_command: echo 0.5", "") + textwrap.dedent("""\
        chooser: {task_id: choose}
        registry:
          mlflow: {alias: "two words"}
        """)
    found = "\n".join(compile_yaml(text))
    assert "registry.mlflow: " in found and "model_name" in found
    assert "registry.mlflow.alias: " in found


@pytest.mark.parametrize("gated", [True, False])
def test_the_registry_task_follows_the_gate_or_the_chooser(gated):
    chooser = (
        "{task_id: choose, metric: score, threshold: 0.5}"
        if gated
        else ("{task_id: choose, metric: score}")
    )
    text = BASE.replace(", bash_command: echo 0.5", "") + textwrap.dedent(f"""\
        chooser: {chooser}
        registry:
          mlflow: {{model_name: digits}}
        """)
    result = compiled(text)
    registry = result.pipeline.registry
    assert (registry.task_id, registry.operator) == ("register_model", "PythonOperator")
    assert registry.op_kwargs["alias"] == "champion"
    assert registry.op_kwargs["experiment"] == "demo"
    assert registry.op_kwargs["tracking_uri"] is None  # MLFLOW_TRACKING_URI, when run
    before = "check_threshold" if gated else "choose"
    assert f"    {before} >> register_model\n" in result.content
    assert "import mlflow" not in result.content.split("def _register")[0]
    edges = {(a.key, b.key) for a, b in layout(result.pipeline).edges}
    assert ("branch" if gated else "chooser", "registry") in edges
