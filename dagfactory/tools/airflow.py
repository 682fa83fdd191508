"""An embedded Airflow in a child process: its own home, a SQLite metadata database, no examples.

:mod:`.check` and :mod:`.run` start their child halves (:mod:`.check_child`,
:mod:`.run_child`) through it as ``python -m MODULE ARGS``, so that the command line
never imports Airflow (and works without it until a command needs it).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from dagfactory.problems import SetupError

INSTALL_HINT = "Airflow is not installed here: pip install 'dagfactory[airflow]'"


class AirflowUnavailable(SetupError):
    """Raised when a command needs Airflow and it is not installed."""


def airflow_env(home: Path, dags_folder: Path) -> dict[str, str]:
    """The environment for an embedded Airflow: own home, SQLite database, no examples."""
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home.absolute()),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder.absolute()),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{(home / 'airflow.db').absolute()}",
    )
    return env


def python_with_airflow(
    args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in a child process that may import Airflow (if it is installed)."""
    if importlib.util.find_spec("airflow") is None:
        raise AirflowUnavailable(INSTALL_HINT)
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
