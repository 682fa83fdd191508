"""Where each supported Airflow (2.10 to 3.4) keeps what the child processes use.

Only the child processes import this module, after Airflow: :mod:`.check_child`,
:mod:`.run_child` and the compatibility probe (``compat/probe.py``);
each function imports the newest location first and falls back to the older one, so
that no deprecation warning is raised where the new one exists.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def dagbag_class() -> type:
    """``BundleDagBag`` (``airflow.dag_processing.dagbag``) from 3.2, before that
    ``airflow.models.dagbag.DagBag``: importing it imports most of Airflow, which a
    caller recording the warnings of filling a bag does first (see ``compat/probe.py``)."""
    try:
        from airflow.dag_processing.dagbag import BundleDagBag
    except ImportError:  # Airflow 2 to 3.1
        from airflow.models.dagbag import DagBag

        return DagBag
    return BundleDagBag


def fill_dagbag(folder: str, importing: Callable[[str], None] | None = None) -> Any:
    """A DagBag of ``folder`` with the folder on ``sys.path``, as the DAG processor has it.

    ``importing(path)`` is called as each file's import starts, so that a process that
    dies or hangs in one is known to have died in that one (``check`` writes it down).

    From 3.2 a ``BundleDagBag`` does both; before, the DagBag loads the files and the
    folder is put on the path here (Airflow 3.0 and 3.1 no longer do it themselves, and
    ``dag.test()`` runs the tasks in this process). The one way every child (``check``'s,
    ``run``'s and the compatibility probe) fills a bag.
    """
    bag_class = dagbag_class()
    bundle = bag_class.__name__ == "BundleDagBag"
    if importing is not None:

        class AnnouncingBag(bag_class):  # type: ignore[misc, valid-type]
            def process_file(self, filepath: str, *args: Any, **kwargs: Any) -> Any:
                importing(filepath)
                return super().process_file(filepath, *args, **kwargs)

        bag_class = AnnouncingBag
    if bundle:
        return bag_class(dag_folder=folder, bundle_path=Path(folder))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return bag_class(dag_folder=folder, include_examples=False)


def add_listener(listener: object) -> None:
    """Register an Airflow listener (``airflow.sdk.listener`` from 3.2)."""
    try:
        from airflow.sdk.listener import get_listener_manager
    except ImportError:  # Airflow 2 to 3.1
        from airflow.listeners.listener import get_listener_manager
    get_listener_manager().add_listener(listener)


def activate_assets(dag: Any) -> None:
    """Make the Assets ``dag`` names known and active, as its processor would.

    ``dag.test()`` on Airflow 3.0 runs a DAG that no processor stored: the Asset a task
    announces is unknown there, and the task fails with "inactive assets in its inlets
    or outlets". From 3.1 ``dag.test()`` stores the DAG itself, and Airflow 2 has no
    such check, so this does something on 3.0 only.
    """
    from airflow import __version__

    if not __version__.startswith("3.0."):
        return
    from airflow.dag_processing.collection import AssetModelOperation
    from airflow.serialization.serialized_objects import (
        LazyDeserializedDAG,
        SerializedDAG,
    )
    from airflow.utils.session import create_session

    stored_form = LazyDeserializedDAG(data=SerializedDAG.to_dict(dag))  # as processed
    with create_session() as session:
        assets = AssetModelOperation.collect({dag.dag_id: stored_form})
        stored = assets.sync_assets(session=session)
        session.flush()
        assets.activate_assets_if_possible(stored.values(), session=session)


def keep_one_execution_api() -> None:
    """Run every task of ``dag.test()`` against one in-process execution API, as
    Airflow 3.3 does (its ``in_process_api_server`` is an ``lru_cache`` of one).

    Airflow 3.0 to 3.2 build that FastAPI app anew for each task, about 2 s a task on a
    2-CPU machine, for nothing a local run needs. Airflow 2 runs tasks without it.
    """
    try:
        from airflow.sdk.execution_time import supervisor
    except ImportError:
        return
    build = supervisor.in_process_api_server
    if not hasattr(build, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(build)


def stored_xcoms(session: Any, run_id: str, dag_id: str) -> list[Any]:
    """Every XCom row of a run; each row's ``value`` is the Python data it holds.

    ``XComModel`` from Airflow 3 (whose table 3.4 changed); Airflow 2's ``XCom`` model
    decodes its stored bytes as it loads a row.
    """
    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2
        from airflow.models.xcom import XCom

        return XCom.get_many(run_id=run_id, dag_ids=dag_id, session=session).all()
    return session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id)).all()
