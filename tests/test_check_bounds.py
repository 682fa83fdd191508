"""``check`` is bounded and leaves nothing behind, whatever the user code does at import.

User code runs when ``check``'s child imports a DAG file or a callable's module: it may
block forever, end the process, or outlive a killed ``check``. These tests run the real
parent and child against a stub ``airflow`` (first on ``PYTHONPATH``) whose DagBag
imports each file as Airflow's does, one ``process_file`` at a time, but with no alarm
of its own: what bounds a hang here is the child's and the parent's own doing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_processes import descendants, group_alive
from conftest import ROOT, interruptible, stub_airflow
from dagfactory.tools.check import check_folder

GOOD = "# an airflow dag\nVALUE = 1\n"
HANGS = "# an airflow dag\nimport threading\n\nthreading.Event().wait()\n"
EXITS = "# an airflow dag\nimport os\n\nos._exit(0)\n"


@pytest.fixture
def stub_children(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stub ``airflow`` package first on the children's ``PYTHONPATH``."""
    stub = stub_airflow(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(stub), str(ROOT)]))
    return stub


def dags(folder: Path, **files: str) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    return folder


def test_a_file_that_ends_the_process_is_named_not_an_empty_folder(
    tmp_path, stub_children
):
    folder = dags(tmp_path / "dags", a_good=GOOD, b_exits=EXITS, c_good=GOOD)
    result = check_folder(folder)
    assert [(report.path, report.kind) for report in result.files] == [
        (str(folder / "b_exits.py"), "import error")
    ]
    assert result.files[0].detail == (
        "the check's Airflow process exited with code 0 while importing this file, "
        "before it wrote what the DagBag held; not reported: 1 file imported before "
        "it, the files after it (not imported) and the callables (not checked)"
    )


def test_a_file_that_blocks_past_every_alarm_is_killed_and_named(
    tmp_path, stub_children
):
    folder = dags(tmp_path / "dags", a_good=GOOD, b_hangs=HANGS)
    started = time.monotonic()
    result = check_folder(folder, timeout=1, stall_grace=2)
    assert time.monotonic() - started < 30
    assert [(report.path, report.kind) for report in result.files] == [
        (str(folder / "b_hangs.py"), "import error")
    ]
    assert result.files[0].detail.startswith(
        "the check's Airflow process made no progress for 3 s and was killed while "
        "importing this file"
    )


def test_a_callable_module_that_blocks_at_import_is_a_finding_after_the_timeout(
    tmp_path, stub_children
):
    folder = dags(tmp_path / "dags")
    (folder / "blocks").mkdir()  # a package: the DagBag does not import it itself
    (folder / "blocks" / "__init__.py").write_text(
        "import time\n\n\ndef train():\n    pass\n\n\ntime.sleep(10**6)\n"
    )
    files = {n: tmp_path / n for n in ("result", "calls", "findings", "progress")}
    call = {"target": "blocks:train", "keywords": [], "positional": 0, "passes": ""}
    files["calls"].write_text(json.dumps([call]))
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-m", "dagfactory.tools.check_child", str(folder)]
        + [str(files[n]) for n in ("result", "calls", "findings", "progress")]
        + ["1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert time.monotonic() - started < 30
    ((message, detail, keyword),) = json.loads(files["findings"].read_text())
    assert keyword is None  # about the call, not one of its op_kwargs keys
    assert message == (
        "importing blocks did not finish within 1 s: its code blocks at import "
        "(check's --timeout sets the limit)"
    )
    assert "time.sleep(10**6)" in detail  # where it was blocked


def started_check(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``dagfactory check FOLDER`` in its own group, once its child is importing."""
    check = subprocess.Popen(
        [sys.executable, "-m", "dagfactory", "check", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=interruptible,  # one of the signals the test sends is Ctrl-C
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = descendants(check.pid)
        if children:
            time.sleep(1)  # into the hanging import
            return check, children[0]
        time.sleep(0.1)
    check.kill()
    pytest.fail("check started no child")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(seconds: float, child: int) -> bool:
    """Neither the child nor a process of its group (it leads one) is left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(child) and not group_alive(child):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_killed_check_leaves_no_child(tmp_path, stub_children, sig):
    folder = dags(tmp_path / "dags", hangs=HANGS)
    check, child = started_check(folder)
    try:
        check.send_signal(sig)
        check.wait(timeout=10)
        # The child leads its own group: neither it nor anything it started is left.
        assert gone_within(5, child), f"the child {child} outlived check"
    finally:
        for group in (check.pid, child):
            if group_alive(group):
                os.killpg(group, signal.SIGKILL)
        if alive(child):
            os.kill(child, signal.SIGKILL)
    if sig != signal.SIGKILL:
        assert check.returncode in (128 + sig, -sig)
