"""graph, init, schema, stale outputs, error formats and terminal niceties, through the real CLI."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_cli import dagfactory

from conftest import ROOT, VALID

XCOM_PICTURE = ROOT / "docs" / "xcom_dag.svg"
BAD = VALID.replace("task_id: fetch", "task_id: 'fetch it'")  # line 5, column 12


def on_terminal(
    *args: str, cwd: Path | None = None, **env: str
) -> tuple[int, str, str]:
    """Run dagfactory with stderr on a pseudo-terminal; return exit code, stdout and what the terminal showed."""
    leader, follower = pty.openpty()
    shown = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    environment = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    environment.update(env)
    process = subprocess.run(
        [sys.executable, "-m", "dagfactory", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=environment,
        check=False,
    )
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    return process.returncode, process.stdout.decode(), shown.decode()


# -- graph ---------------------------------------------------------------------------------


def test_graph_prints_mermaid_with_every_task_and_edge():
    result = dagfactory("graph", "configs/xcom_dag.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "flowchart LR\n"
        '    download_0["downloading_data<br/>bash: sleep 3"]\n'
        '    subgraph trainers["processing_tasks (push model_accuracy)"]\n'
        '        trainer_0["training_model_a<br/>ml_demo.models:train_model()"]\n'
        '        trainer_1["training_model_b<br/>ml_demo.models:train_model()"]\n'
        '        trainer_2["training_model_c<br/>ml_demo.models:train_model()"]\n'
        "    end\n"
        '    chooser["task_4<br/>max model_accuracy → best_model"]\n'
        "    download_0 --> trainer_0\n"
        "    download_0 --> trainer_1\n"
        "    download_0 --> trainer_2\n"
        "    trainer_0 --> chooser\n"
        "    trainer_1 --> chooser\n"
        "    trainer_2 --> chooser\n"
    )


def test_graph_draws_every_stage_several_downloads_branch_and_publish():
    result = dagfactory("graph", "configs/sweeps/hyperparameter_sweep.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    edges = {line.strip() for line in lines if "-->" in line}
    downloads, trainers = (
        ["download_0", "download_1"],
        [f"trainer_{i}" for i in range(4)],
    )
    assert edges == {
        *(f"{d} --> {t}" for d in downloads for t in trainers),
        *(f"{t} --> chooser" for t in trainers),
        "chooser --> branch",
        "branch --> on_pass",
        "branch --> on_fail",
        "branch --> publish",  # publish.when defaults to passed with a threshold
    }
    assert (
        "    chooser[\"pick_best<br/>max metrics['accuracy'] → best_model\"]" in lines
    )
    assert '    branch["accurate_enough<br/>branch: best #gt;= 0.6"]' in lines


def test_graph_draws_a_mapped_trainer_as_one_box():
    result = dagfactory("graph", "configs/sweeps/mapped_seeds.yaml")
    assert result.returncode == 0, result.stderr
    assert (
        '        trainer_0["train_seed<br/>mapped ×8: ml_demo.models:seeded_score()"]'
        in result.stdout.splitlines()
    )
    assert "trainer_1" not in result.stdout


def test_graph_labels_cannot_break_out_of_mermaid(write_config):
    config = write_config(VALID.replace("echo hello", """'echo "a<b>" # done'"""))
    result = dagfactory("graph", str(config))
    assert result.returncode == 0, result.stderr
    assert (
        'download_0["fetch<br/>bash: echo #quot;a#lt;b#gt;#quot; #35; done"]'
        in result.stdout
    )


def test_the_readme_picture_is_the_svg_graph_draws(tmp_path):
    """docs/xcom_dag.svg is a snapshot: regenerate it with the command in the assertion."""
    fresh = tmp_path / "xcom_dag.svg"
    result = dagfactory("graph", "configs/xcom_dag.yaml", "--output", str(fresh))
    assert result.returncode == 0, result.stderr
    assert fresh.read_text() == XCOM_PICTURE.read_text(), (
        "docs/xcom_dag.svg is stale: run `dagfactory graph configs/xcom_dag.yaml -o docs/xcom_dag.svg`"
    )


def test_svg_is_well_formed_and_names_every_task(write_config, tmp_path):
    import xml.etree.ElementTree as ElementTree

    config = write_config(VALID.replace("echo hello", "echo '<&>'"))
    picture = tmp_path / "pictures" / "demo.svg"
    assert dagfactory("graph", str(config), "-o", str(picture)).returncode == 0
    root = ElementTree.parse(picture).getroot()
    texts = [element.text for element in root.iter("{http://www.w3.org/2000/svg}text")]
    assert {"demo", "fetch", "a", "b", "choose"} <= set(texts)
    assert "bash: echo '<&>'" in texts
    arrows = [
        path
        for path in root.iter("{http://www.w3.org/2000/svg}path")
        if path.get("marker-end")
    ]
    assert len(arrows) == 4  # fetch -> a, fetch -> b, a -> choose, b -> choose


def test_graph_png(tmp_path):
    picture = tmp_path / "xcom_dag.png"
    result = dagfactory("graph", "configs/xcom_dag.yaml", "-o", str(picture))
    assert result.returncode == 0, result.stderr
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_graph_refuses_other_picture_formats_and_invalid_configs(
    write_config, tmp_path
):
    wrong = dagfactory("graph", "configs/xcom_dag.yaml", "-o", str(tmp_path / "x.gif"))
    assert wrong.returncode == 2
    assert "must end in .svg or .png" in wrong.stderr
    invalid = dagfactory("graph", str(write_config(BAD)))
    assert invalid.returncode == 1
    assert ":5:12: error: download.task_id:" in invalid.stderr
    assert invalid.stdout == ""


# -- init and schema -----------------------------------------------------------------------


def test_init_writes_a_starter_project_that_validates_and_renders(tmp_path):
    result = dagfactory("init", "fresh_pipeline", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    package = Path("generated_dags", "fresh_pipeline_tasks")
    assert result.stdout.splitlines() == [
        "wrote configs/fresh_pipeline.yaml",
        f"wrote {package / '__init__.py'}",
        f"wrote {package / 'models.py'}",
        "wrote configs/dagfactory.schema.json",
        "wrote pyproject.toml",
        "next: dagfactory validate configs/fresh_pipeline.yaml, dagfactory render,"
        " dagfactory run fresh_pipeline",
    ]
    config = tmp_path / "configs" / "fresh_pipeline.yaml"
    text = config.read_text()
    # The schema copy beside the config: the same on every teammate's machine.
    assert text.startswith("# yaml-language-server: $schema=dagfactory.schema.json\n")
    schema = ROOT / "dagfactory" / "schema" / "spec.schema.json"
    assert (config.parent / "dagfactory.schema.json").read_text() == schema.read_text()
    assert "dag_id: fresh_pipeline" in text
    assert "python_callable: fresh_pipeline_tasks.models:train" in text
    models = (tmp_path / package / "models.py").read_text()
    assert "def train(size: str) -> float:" in models
    assert dagfactory("validate", cwd=tmp_path).stdout == "1 config valid\n"
    rendered = dagfactory("render", cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "generated_dags" / "fresh_pipeline.py").exists()
    ignore = (tmp_path / "generated_dags" / ".airflowignore").read_text()
    assert ignore.splitlines()[-1] == "fresh_pipeline_tasks/"
    again = dagfactory("init", "fresh_pipeline", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists; not overwriting it" in again.stderr
    assert config.read_text() == text
    other = dagfactory("init", "other_pipeline", cwd=tmp_path)  # keeps the schema copy
    assert other.returncode == 0, other.stderr
    assert "dagfactory.schema.json" not in other.stdout


def test_init_in_this_repository_points_at_the_schema_by_relative_path(tmp_path):
    config = tmp_path / "pipelines" / "probe.yaml"
    dags = tmp_path / "dags"
    init = ["init", "probe", "-o", str(config), "--out", str(dags)]
    assert dagfactory(*init, cwd=ROOT).returncode == 0
    assert (dags / "probe_tasks" / "models.py").exists()
    first = config.read_text().splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix + "../")
    reference = first.removeprefix(prefix)
    schema = ROOT / "dagfactory" / "schema" / "spec.schema.json"
    assert (config.parent / reference).resolve() == schema


def test_init_refuses_a_name_that_is_not_a_dag_id(tmp_path):
    result = dagfactory("init", "two words", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "'two words' cannot be a DAG id: expected a DAG id of letters" in result.stderr
    )
    assert not (tmp_path / "configs").exists()


def test_schema_prints_the_shipped_json_schema():
    result = dagfactory("schema")
    assert result.returncode == 0
    shipped = (ROOT / "dagfactory" / "schema" / "spec.schema.json").read_text()
    assert result.stdout == shipped
    assert json.loads(result.stdout)["$schema"].endswith("2020-12/schema")


def test_every_example_config_names_the_schema():
    for config in (ROOT / "configs").glob("*.yaml"):
        first = config.read_text().splitlines()[0]
        assert (
            first
            == "# yaml-language-server: $schema=../dagfactory/schema/spec.schema.json"
        ), config


# -- stale outputs -------------------------------------------------------------------------


def test_stale_outputs_are_reported_diffed_and_pruned_but_foreign_files_never(
    write_config, tmp_path
):
    keep = write_config(VALID, "keep.yaml")
    gone = write_config(VALID.replace("dag_id: demo", "dag_id: old_demo"), "gone.yaml")
    out = tmp_path / "out"
    assert dagfactory("render", str(keep.parent), "--out", str(out)).returncode == 0
    gone.unlink()
    handmade = out / "handmade.py"
    handmade.write_text("# my own DAG\n")
    old = out / "old_demo.py"

    check = dagfactory("render", "--check", str(keep.parent), "--out", str(out))
    assert check.returncode == 1
    assert check.stdout.startswith(
        f"would remove {old} (stale: generated from {gone}, which no longer produces it)\n"
    )
    assert '-    dag_id="old_demo",' in check.stdout
    assert (
        "1 stale generated file would be removed; run `dagfactory render --prune`"
        in check.stderr
    )

    diff = dagfactory("render", "--diff", str(keep.parent), "--out", str(out))
    assert diff.returncode == 1
    assert f"+++ {old} (stale: its config is gone)" in diff.stdout
    assert '-    dag_id="old_demo",' in diff.stdout

    plain = dagfactory("render", str(keep.parent), "--out", str(out))
    assert plain.returncode == 0
    assert f"{old}: warning: stale: generated from {gone}" in plain.stderr
    assert old.exists()

    pruned = dagfactory("render", "--prune", str(keep.parent), "--out", str(out))
    assert pruned.returncode == 0, pruned.stderr
    assert "1 unchanged, 0 errors, 1 stale removed in" in pruned.stdout
    assert (
        f"removed {old} (stale: generated from {gone}, which no longer produces it)"
        in pruned.stdout
    )
    assert not old.exists()
    assert handmade.read_text() == "# my own DAG\n"
    assert (out / "demo.py").exists()
    assert (
        dagfactory("render", "--check", str(keep.parent), "--out", str(out)).returncode
        == 0
    )


def test_a_renamed_dag_id_leaves_a_stale_file_even_though_its_config_exists(
    write_config, tmp_path
):
    config = write_config(VALID)
    out = tmp_path / "out"
    dagfactory("render", str(config), "--out", str(out))
    config.write_text(VALID.replace("dag_id: demo", "dag_id: renamed"))
    check = dagfactory("render", "--check", str(config), "--out", str(out))
    assert [
        line for line in check.stdout.splitlines() if line.startswith("would ")
    ] == [
        f"would create {out / 'renamed.py'} (from {config})",
        f"would remove {out / 'demo.py'} (stale: generated from {config}, which no longer produces it)",
    ]


def test_outputs_of_configs_outside_the_batch_are_not_stale(write_config, tmp_path):
    first = write_config(VALID, "first.yaml")
    second = write_config(VALID.replace("dag_id: demo", "dag_id: other"), "second.yaml")
    out = tmp_path / "out"
    dagfactory("render", str(first.parent), "--out", str(out))
    only_first = dagfactory("render", "--prune", str(first), "--out", str(out))
    assert only_first.returncode == 0
    assert "0 stale removed" in only_first.stdout
    assert (out / "other.py").exists()
    assert second.exists()


def test_a_header_names_its_config_the_same_from_any_working_directory(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "configs", project / "configs")
    out = project / "generated_dags"
    assert dagfactory("render", cwd=project).returncode == 0
    header = (out / "xcom_dag.py").read_text().splitlines()[0]
    assert (
        header == '# Generated by dagfactory from "configs/xcom_dag.yaml". Do not edit:'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = dagfactory(
        "render", str(project / "configs"), "--out", str(out), cwd=elsewhere
    )
    assert "0 written" in again.stdout, again.stdout + again.stderr
    (project / "configs" / "min_loss_dag.yaml").unlink()
    stale = dagfactory(
        "render", "--check", str(project / "configs"), "--out", str(out), cwd=elsewhere
    )
    assert (
        f"would remove {out / 'min_loss_dag.py'} (stale: generated from "
        in stale.stdout
    )
    assert dagfactory("render", "--check", cwd=project).stdout.startswith(
        "would remove generated_dags/min_loss_dag.py (stale: generated from"
        " configs/min_loss_dag.yaml"
    )


# -- the dags folder's .airflowignore ------------------------------------------------------

CALLS_TEAM_CODE = VALID.replace("pkg.models:train", "team_code.models:train")


def test_the_code_the_configs_call_is_listed_in_an_airflowignore(
    write_config, tmp_path
):
    first = write_config(CALLS_TEAM_CODE, "first.yaml")
    second = write_config(
        VALID.replace("dag_id: demo", "dag_id: other").replace(
            "pkg.models:train", "helpers:train"
        ),
        "second.yaml",
    )
    out = tmp_path / "out"
    (out / "team_code").mkdir(parents=True)
    (out / "team_code" / "__init__.py").write_text("")
    (out / "helpers.py").write_text("def train(): return 1\n")
    ignore = out / ".airflowignore"

    assert dagfactory("render", str(first.parent), "--out", str(out)).returncode == 0
    assert ignore.read_text().splitlines()[2:] == ["helpers.py", "team_code/"]
    assert "pkg" not in ignore.read_text()  # not in the folder: nothing to ignore
    # Rendering one config keeps what the other calls; --check is clean.
    one = dagfactory("render", str(first), "--out", str(out))
    assert one.returncode == 0, one.stderr
    assert ignore.read_text().splitlines()[2:] == ["helpers.py", "team_code/"]
    check = dagfactory("render", "--check", str(first.parent), "--out", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    # Code that is gone is no longer listed; --check says the file would change.
    (out / "helpers.py").unlink()
    stale = dagfactory("render", "--check", str(first.parent), "--out", str(out))
    assert stale.returncode == 1
    assert f"would update {ignore}" in stale.stdout
    assert "-helpers.py" in stale.stdout
    assert dagfactory("render", str(second), "--out", str(out)).returncode == 0
    assert ignore.read_text().splitlines()[2:] == ["team_code/"]


def test_an_airflowignore_dagfactory_did_not_write_is_left_alone(
    write_config, tmp_path
):
    config = write_config(CALLS_TEAM_CODE)
    out = tmp_path / "out"
    (out / "team_code").mkdir(parents=True)
    mine = "# my own rules\nscratch/\n"
    (out / ".airflowignore").write_text(mine)
    result = dagfactory("render", str(config), "--out", str(out))
    assert result.returncode == 0
    assert (out / ".airflowignore").read_text() == mine
    assert (
        f"{out / '.airflowignore'}: warning: not written by dagfactory, so left as it is;"
        " add team_code/ to it" in result.stderr
    )
    (out / ".airflowignore").write_text(mine + "team_code/\n")
    quiet = dagfactory("render", str(config), "--out", str(out))
    assert "airflowignore" not in quiet.stderr


# -- error formats -------------------------------------------------------------------------


def test_text_format_is_the_default_and_unchanged(write_config):
    config = write_config(BAD)
    default = dagfactory("validate", str(config))
    explicit = dagfactory("validate", "--format", "text", str(config))
    assert default.stderr == explicit.stderr
    assert default.stderr.splitlines()[0] == (
        f"{config}:5:12: error: download.task_id: expected a task id of letters, digits, '_', '.' and '-'"
        " (not starting with '.' or '-', at most 200 characters), got the text 'fetch it'"
    )
    assert default.stdout == ""


def test_json_format(write_config):
    config = write_config(BAD)
    result = dagfactory("validate", "--format", "json", str(config))
    assert result.returncode == 1
    (error,) = json.loads(result.stdout)
    assert error["file"] == str(config)
    assert (error["line"], error["column"], error["spec_path"]) == (
        5,
        12,
        "download.task_id",
    )
    assert error["message"].startswith("expected a task id of letters")
    assert result.stderr == "1 error in 1 file; nothing written\n"


def test_github_format_annotates_the_line(write_config):
    config = write_config(
        BAD.replace("bash_command: echo hello", "bash_command: [1, 2]")
    )
    result = dagfactory("render", "--format", "github", str(config))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"::error file={config},line=5,col=12,title=dagfactory download.task_id::download.task_id: expected a task id"
    )
    assert lines[1].startswith(
        f"::error file={config},line=6,col=17,title=dagfactory download.bash_command::download.bash_command:"
    )
    assert result.stderr == "2 errors in 1 file; nothing written\n"


def test_github_format_escapes_what_would_end_a_property(tmp_path):
    folder = tmp_path / "a,b:c"
    folder.mkdir()
    config = folder / "x.yaml"
    config.write_text(BAD)
    result = dagfactory("validate", "--format", "github", str(config))
    escaped = str(config).replace(",", "%2C").replace(":", "%3A")
    assert result.stdout.startswith(f"::error file={escaped},line=5,col=12,")


# -- terminal: colour and progress -----------------------------------------------------------


def test_errors_are_coloured_on_a_terminal_unless_no_color(write_config):
    config = write_config(BAD)
    code, _, shown = on_terminal("validate", str(config))
    assert code == 1
    assert (
        f"\033[1m{config}:5:12:\033[0m \033[31merror:\033[0m download.task_id:" in shown
    )
    code, _, plain = on_terminal("validate", str(config), NO_COLOR="1")
    assert code == 1
    assert "\033[" not in plain
    assert f"{config}:5:12: error: download.task_id:" in plain


def test_piped_errors_have_no_colour(write_config):
    result = dagfactory("validate", str(write_config(BAD)))
    assert "\033[" not in result.stderr


def test_long_batches_show_progress_on_a_terminal_only(write_config, tmp_path):
    for index in range(25):
        write_config(
            VALID.replace("dag_id: demo", f"dag_id: demo_{index}"), f"c{index:02}.yaml"
        )
    configs = tmp_path / "configs"
    out = tmp_path / "out"
    code, stdout, shown = on_terminal("render", str(configs), "--out", str(out))
    assert code == 0
    assert "\rvalidating [" in shown and "] 25/25" in shown
    assert shown.endswith("\r\033[K")  # the bar is erased before the summary
    assert "rendered 25 DAGs: 25 written, 0 unchanged, 0 errors in" in stdout
    piped = dagfactory("render", str(configs), "--out", str(out))
    assert piped.stderr == ""
    assert "rendered 25 DAGs: 0 written, 25 unchanged, 0 errors in" in piped.stdout


# -- entry points --------------------------------------------------------------------------


def test_python_dash_m_and_version_agree():
    from dagfactory import __version__

    module = dagfactory("--version")
    assert module.stdout == f"dagfactory {__version__}\n"
    script = Path(sys.executable).with_name("dagfactory")
    installed = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False
    )
    assert installed.stdout == module.stdout


@pytest.mark.parametrize("command", [["check"], ["run", "xcom_dag"]])
def test_commands_that_need_airflow_say_how_to_install_it(command):
    hide_airflow = (
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *rest: None if name == 'airflow' else real(name, *rest)\n"
        "from dagfactory.cli import main\n"
        f"sys.exit(main({command!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_airflow],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "pip install 'dagfactory[airflow]'" in result.stderr


@pytest.mark.parametrize(
    "source",
    [
        "configs/x.yaml",
        'odd "name".yaml',
        "it's.yaml",
        "tab\there.yaml",
        "ü€😀.yaml",
        "back\\slash.yaml",
    ],
)
def test_the_config_named_in_a_header_reads_back_exactly(tmp_path, source):
    """Stale detection reads the header's config path back without evaluating anything."""
    from dagfactory.compile.header import GENERATED_MARKER, header, recorded_source
    from dagfactory.compile.literals import python_literal

    written = header(source)
    assert written.startswith(
        f"{GENERATED_MARKER} from {python_literal(source)}. Do not edit:\n"
    )
    generated = tmp_path / "dag.py"
    generated.write_text(written + "\n")
    assert recorded_source(generated) == source
