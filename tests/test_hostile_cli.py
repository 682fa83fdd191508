"""Hostile and broken files through the real command, and the promise that nothing is lost.

Each hostile file sits next to a good config: the batch must stop with a located error,
within bounded time and memory, and leave the output folder untouched.
"""

from __future__ import annotations

import ast
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import VALID, dagfactory
from dagfactory.build import compile_batch
from dagfactory.compile.header import GENERATED_MARKER
from dagfactory.compile.load import MAX_BYTES, MAX_DEPTH
from dagfactory.configs import discover
from dagfactory.output.plan import plan_render

MEMORY_LIMIT = 1024**3  # bytes of address space a run may use
TIME_LIMIT = 60  # seconds; a bound on the attack, not a benchmark


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def bounded(*args: str) -> subprocess.CompletedProcess[str]:
    return dagfactory(*args, timeout=TIME_LIMIT, preexec_fn=_limit_memory)


def alias_bomb() -> bytes:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join([f'*{previous}'] * 10)}]")
    return ("\n".join(lines) + "\n").encode()


MODELS = "  models:\n    - task_id: a\n    - task_id: b\n      op_kwargs: {depth: 3}\n"
AXIS = list(range(200))
HOSTILE = {
    "alias bomb": (alias_bomb(), "1:", "aliases expanding without bound"),
    "over the size limit": (
        VALID.encode() + b"#" * MAX_BYTES,
        "1:1",
        "configs are limited to 1,000,000 bytes",
    ),
    "deep nesting": (
        b"dag: " + b"[" * (MAX_DEPTH + 10) + b"]" * (MAX_DEPTH + 10) + b"\n",
        "1:",
        "nesting is too deep",
    ),
    "nesting deeper than the parser's stack": (
        b"dag: " + b"[" * 100_000 + b"\n",
        "1:1",
        "nesting is too deep",
    ),
    "a mapping merging itself": (b"dag: &a {<<: *a}\n", "1:6", "nesting is too deep"),
    "non-UTF-8 bytes": (b"dag:\n  dag_id: caf\xe9\n", "2:14", "is not valid UTF-8"),
    "a raw control character": (b"dag:\n  dag_id: a\x07b\n", "2:12", "U+0007"),
    "tabs in indentation": (b"dag:\n\tdag_id: x\n", "2:1", "indent with spaces"),
    "several documents": (
        VALID.encode() + b"---\n" + VALID.encode(),
        "17:1",
        "found a second YAML document",
    ),
    "a list at the top level": (b"- dag\n- download\n", "1:1", "must be a mapping"),
    "text at the top level": (b"just some text\n", "1:1", "must be a mapping"),
    "a key that is not text": (b"dag:\n  1: x\n", "2:3", "is read by YAML as int 1"),
    "a key that is a list": (b"? [a, b]\n: 1\n", "1:3", "a key must be a plain name"),
    "duplicate keys": (
        VALID.encode() + b"dag: {}\n",
        "17:1",
        "duplicate key 'dag' (first defined on line 1)",
    ),
    "an empty file": (b"", "1:1", "the file is empty"),
    "only a byte-order mark": (b"\xef\xbb\xbf", "1:1", "the file is empty"),
    "a Python tag": (
        b"dag: !!python/object/apply:os.system [touch /tmp/dagfactory-pwned]\n",
        "1:6",
        "is not allowed; only plain YAML values are",
    ),
    "a tag that does not fit": (b"dag: !!int twelve\n", "1:6", "is not a valid int"),
    "a hundred billion generated trainers": (
        VALID.replace(MODELS, "  count: 100000000000\n").encode(),
        "11:10",
        "100000000000 is greater than the maximum of 10000",
    ),
    "a matrix of eight million trainers": (
        VALID.replace(
            MODELS, f"  matrix: {{a: {AXIS}, b: {AXIS}, c: {AXIS}}}\n"
        ).encode(),
        "11:11",
        "makes 8,000,000 trainers; at most 10,000 are supported",
    ),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_file_stops_the_batch_with_a_located_error(case, tmp_path):
    content, position, expected = HOSTILE[case]
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "good.yaml").write_text(VALID.replace("dag_id: demo", "dag_id: good"))
    hostile = configs / "hostile.yaml"
    hostile.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    result = bounded("render", str(configs), "--out", str(out))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"{hostile}:{position}") and expected in line for line in lines
    ), lines
    assert lines[-1].endswith("nothing written")
    assert list(out.iterdir()) == []
    assert not Path("/tmp/dagfactory-pwned").exists()


def test_a_byte_order_mark_is_accepted(tmp_path):
    config = tmp_path / "bom.yaml"
    config.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    out = tmp_path / "out"
    result = bounded("render", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "demo.py").read_text().startswith(GENERATED_MARKER)


def test_the_longest_dag_id_is_written(tmp_path):
    """A 250-character DAG id makes a 253-byte file name; its temporary file must fit too."""
    dag_id = "d" * 250
    config = tmp_path / "long.yaml"
    config.write_text(VALID.replace("dag_id: demo", f"dag_id: {dag_id}"))
    out = tmp_path / "out"
    result = bounded("render", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert [path.name for path in out.iterdir()] == [f"{dag_id}.py"]


# -- foreign files and --force ---------------------------------------------------------


def two_configs(tmp_path: Path) -> tuple[Path, Path]:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "a.yaml").write_text(VALID.replace("dag_id: demo", "dag_id: a"))
    (configs / "b.yaml").write_text(VALID.replace("dag_id: demo", "dag_id: b"))
    out = tmp_path / "out"
    out.mkdir()
    return configs, out


def test_an_unnamed_foreign_file_blocks_the_whole_batch(tmp_path):
    configs, out = two_configs(tmp_path)
    (out / "a.py").write_text("# my own DAG a\n")
    (out / "b.py").write_text("# my own DAG b\n")
    (out / "mine.py").write_text("# not an output at all\n")
    result = bounded(
        "render", str(configs), "--out", str(out), "--force", str(out / "a.py")
    )
    assert result.returncode == 1
    assert f"{out / 'b.py'}: error: this file was not generated by dagfactory" in (
        result.stderr
    )
    assert f"pass --force {out / 'b.py'}" in result.stderr
    assert "a.py: error" not in result.stderr
    assert (out / "a.py").read_text() == "# my own DAG a\n"
    assert (out / "b.py").read_text() == "# my own DAG b\n"
    assert (out / "mine.py").read_text() == "# not an output at all\n"


def test_force_overwrites_exactly_the_files_it_names(tmp_path):
    configs, out = two_configs(tmp_path)
    (out / "a.py").write_text("# my own DAG a\n")
    (out / "b.py").write_text("# my own DAG b\n")
    (out / "mine.py").write_text("# not an output at all\n")
    result = bounded(
        "render",
        str(configs),
        "--out",
        str(out),
        "--force",
        str(out / "a.py"),
        "--force",
        str(out / "b.py"),
    )
    assert result.returncode == 0, result.stderr
    for name in ("a.py", "b.py"):
        assert (out / name).read_text().startswith(GENERATED_MARKER)
    assert (out / "mine.py").read_text() == "# not an output at all\n"


def test_force_must_name_an_output(tmp_path):
    configs, out = two_configs(tmp_path)
    (out / "mine.py").write_text("# not an output at all\n")
    result = bounded(
        "render", str(configs), "--out", str(out), "--force", str(out / "mine.py")
    )
    assert result.returncode == 2
    assert "not a file this render writes" in result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["mine.py"]


def test_files_beside_the_outputs_are_never_touched(tmp_path):
    """Rendering, re-rendering and checking leave every other file of the folder as it was."""
    configs, out = two_configs(tmp_path)
    bystanders = {
        "mine.py": "# a hand-written DAG\n",
        "notes.txt": "keep me\n",
        "c.py": f"{GENERATED_MARKER} from elsewhere\n",  # looks generated, no config
    }
    for name, text in bystanders.items():
        (out / name).write_text(text)
    for args in ([], [], ["--check"]):
        result = bounded("render", str(configs), "--out", str(out), *args)
        assert result.returncode == 0, result.stderr
    for name, text in bystanders.items():
        assert (out / name).read_text() == text
    assert sorted(path.name for path in out.iterdir()) == [
        "a.py",
        "b.py",
        "c.py",
        "mine.py",
        "notes.txt",
    ]


# -- concurrent renders ----------------------------------------------------------------


def test_two_concurrent_renders_leave_every_file_whole(tmp_path, monkeypatch):
    """Two renders race over 60 configs, creating then updating: every file is whole."""
    monkeypatch.chdir(tmp_path)
    configs = tmp_path / "configs"
    configs.mkdir()
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dagfactory", "render", str(configs)]
    command += ["--out", str(out)]
    for command_text in ("echo hello", "echo bye"):  # create, then update every file
        for index in range(60):
            text = VALID.replace("dag_id: demo", f"dag_id: dag_{index:02d}").replace(
                "echo hello", command_text + " " + "x" * (index * 500)
            )
            (configs / f"c{index:02d}.yaml").write_text(text)
        runs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        for run in runs:
            _, stderr = run.communicate(timeout=TIME_LIMIT)
            assert run.returncode == 0, stderr.decode()
        batch = compile_batch(discover([configs]))
        expected = {
            output.path.name: output.content
            for output in plan_render(batch.rendered, out.parent / "expected").changes
        }
        assert sorted(path.name for path in out.iterdir()) == sorted(expected)
        for name, content in expected.items():
            written = (out / name).read_text()
            assert written == content
            assert command_text in written
            ast.parse(written)


def test_a_full_disk_keeps_every_old_file_whole(tmp_path):
    """A real write failure (the file-size limit, as a full disk): old files survive whole."""
    configs, out = two_configs(tmp_path)
    assert bounded("render", str(configs), "--out", str(out)).returncode == 0
    before = {path.name: path.read_text() for path in out.iterdir()}
    big = "echo " + "x" * 20_000
    for name in ("a.yaml", "b.yaml"):
        config = configs / name
        config.write_text(config.read_text().replace("echo hello", big))

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, do not kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))

    result = dagfactory(
        "render", str(configs), "--out", str(out), preexec_fn=small_files
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"{out / 'a.py'}: error: cannot write it (File too large); it is unchanged."
        in (result.stderr)
    )
    assert {path.name: path.read_text() for path in out.iterdir()} == before


def test_one_bad_config_leaves_every_existing_output_as_it_was(tmp_path):
    configs, out = two_configs(tmp_path)
    assert bounded("render", str(configs), "--out", str(out)).returncode == 0
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    contents = {path.name: path.read_text() for path in out.iterdir()}
    (configs / "a.yaml").write_text(
        (configs / "a.yaml").read_text().replace("echo hello", "echo changed")
    )
    (configs / "b.yaml").write_text(
        (configs / "b.yaml").read_text().replace("mode", "mode") + "extra: 1\n"
    )
    result = bounded("render", str(configs), "--out", str(out))
    assert result.returncode == 1
    assert "error: extra: unknown key 'extra'" in result.stderr
    assert result.stderr.splitlines()[-1] == "1 error in 1 file; nothing written"
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before
    assert {path.name: path.read_text() for path in out.iterdir()} == contents


def test_a_folder_where_an_output_goes_is_never_replaced(tmp_path):
    configs, out = two_configs(tmp_path)
    (out / "a.py").mkdir()
    (out / "a.py" / "keep.txt").write_text("keep me\n")
    for force in ([], ["--force", str(out / "a.py")]):
        result = bounded("render", str(configs), "--out", str(out), *force)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert f"{out / 'a.py'}: error:" in result.stderr
        assert (out / "a.py" / "keep.txt").read_text() == "keep me\n"


def test_an_output_folder_that_is_a_file_is_reported(tmp_path):
    configs, _ = two_configs(tmp_path)
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("keep me\n")
    result = bounded("render", str(configs), "--out", str(not_a_folder))
    assert result.returncode == 2  # a usage error, said before anything is compiled
    assert "Traceback" not in result.stderr
    assert f"--out: {not_a_folder} is a file, not a folder" in result.stderr
    assert not_a_folder.read_text() == "keep me\n"
