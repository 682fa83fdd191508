"""On a real Airflow, ``check`` ends on user code that blocks at import, and names it.

Airflow bounds each DAG file's import with its own alarm (``dagbag_import_timeout``,
which ``check`` sets to its timeout); ``check``'s child bounds each callable module's.
A ``check`` killed while Airflow is importing leaves no process behind.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from test_check_bounds import HANGS, dags, gone_within, started_check

from conftest import dagfactory
from dagfactory.tools.check import check_folder

pytestmark = pytest.mark.airflow

BLOCKS = "import time\n\n\ndef train(value):\n    pass\n\n\ntime.sleep(10**6)\n"


def test_a_dag_file_that_blocks_is_its_import_error_after_the_timeout(tmp_path):
    folder = dags(tmp_path / "dags", hangs=HANGS)
    started = time.monotonic()
    result = check_folder(folder, timeout=2)
    assert time.monotonic() - started < 120
    ((report),) = result.files
    assert (report.path, report.kind) == (str(folder / "hangs.py"), "import error")
    assert (
        f"DagBag import timeout for {folder / 'hangs.py'} after 2.0s" in report.detail
    )


def test_a_callable_module_that_blocks_is_a_problem_at_its_config_line():
    Path("generated_dags/ml_demo/blocks.py").write_text(BLOCKS)
    config = Path("configs/xcom_dag.yaml")
    config.write_text(
        config.read_text().replace("ml_demo.models:train_model", "ml_demo.blocks:train")
    )
    assert dagfactory("render").returncode == 0
    started = time.monotonic()
    checked = dagfactory("check", "--timeout", "2")
    assert time.monotonic() - started < 120
    assert checked.returncode == 1
    assert (
        "configs/xcom_dag.yaml:16:20: error: trainers.python_callable: importing "
        "ml_demo.blocks did not finish within 2 s: its code blocks at import "
        "(check's --timeout sets the limit)"
    ) in checked.stderr.splitlines()


def test_a_killed_check_leaves_no_airflow_process(tmp_path):
    folder = dags(tmp_path / "dags", hangs=HANGS)
    check, child = started_check(folder)
    time.sleep(5)  # Airflow started, the DagBag importing the file
    check.send_signal(signal.SIGKILL)
    check.wait(timeout=10)
    assert gone_within(5, child), f"the Airflow child {child} outlived check"
