"""The normalised pipeline: what the templates render, every default applied, every type final.

Built only from a config that :func:`dagfactory.validate.validate` accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from dagfactory.validate import DEFAULT_XCOM_KEY

if TYPE_CHECKING:
    from dagfactory.loader import Document

DURATION_KEYS = ("retry_delay", "max_retry_delay", "execution_timeout")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


@dataclass(frozen=True)
class Step:
    """A task running a bash command or a ``module:function`` with keyword arguments."""

    task_id: str
    bash_command: str | None = None
    python_callable: str | None = None
    op_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Trainers:
    """The TaskGroup of trainers, all pushing their metric under ``xcom_key``."""

    group_id: str
    xcom_key: str
    models: tuple[Step, ...]

    @property
    def task_ids(self) -> list[str]:
        """Full task ids, as Airflow names tasks inside a group."""
        return [f"{self.group_id}.{model.task_id}" for model in self.models]


@dataclass(frozen=True)
class Chooser:
    """Pulls every trainer's metric, keeps the best by ``mode`` and pushes it under ``push_key``."""

    task_id: str
    xcom_key: str
    mode: Literal["max", "min"]
    push_key: str


@dataclass(frozen=True)
class DagSettings:
    dag_id: str
    description: str | None
    schedule: str | None
    start_date: datetime
    catchup: bool
    tags: tuple[str, ...]
    default_args: dict[str, Any]


@dataclass(frozen=True)
class Pipeline:
    """One config, normalised: the single input of the renderer."""

    source: str
    dag: DagSettings
    download: Step
    trainers: Trainers
    chooser: Chooser

    @property
    def uses_timedelta(self) -> bool:
        return any(
            isinstance(value, timedelta) for value in self.dag.default_args.values()
        )


def parse_duration(value: int | str) -> timedelta:
    """``300``, ``"30s"``, ``"5m"``, ``"1h30m"`` or ``"2d"`` as a timedelta."""
    if isinstance(value, int):
        return timedelta(seconds=value)
    days, hours, minutes, seconds = (
        int(part or 0) for part in _DURATION.fullmatch(value).groups()
    )
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_start_date(value: str) -> datetime:
    """An ISO date or date-time, as an aware UTC datetime (naive values are UTC)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def build_pipeline(doc: Document) -> Pipeline:
    """Normalise a validated config into a :class:`Pipeline`."""
    data = doc.data
    dag, download, trainers, chooser = (
        data["dag"],
        data["download"],
        data["trainers"],
        data["chooser"],
    )
    default_args = {
        key: parse_duration(value) if key in DURATION_KEYS else value
        for key, value in dag.get("default_args", {}).items()
    }
    xcom_key = trainers.get("xcom_key", DEFAULT_XCOM_KEY)
    return Pipeline(
        source=doc.name,
        dag=DagSettings(
            dag_id=dag["dag_id"],
            description=dag.get("description"),
            schedule=dag.get("schedule"),
            start_date=parse_start_date(dag["start_date"]),
            catchup=dag.get("catchup", False),
            tags=tuple(dag.get("tags", ())),
            default_args=default_args,
        ),
        download=_step(download),
        trainers=Trainers(
            group_id=trainers["group_id"],
            xcom_key=xcom_key,
            models=tuple(
                _step(model, trainers.get("python_callable"))
                for model in trainers["models"]
            ),
        ),
        chooser=Chooser(
            task_id=chooser["task_id"],
            xcom_key=chooser.get("xcom_key", xcom_key),
            mode=chooser.get("mode", "max"),
            push_key=chooser.get("push_key", "best_model"),
        ),
    )


def _step(data: dict[str, Any], default_callable: str | None = None) -> Step:
    return Step(
        task_id=data["task_id"],
        bash_command=data.get("bash_command"),
        python_callable=data.get("python_callable", default_callable),
        op_kwargs=data.get("op_kwargs", {}),
    )
