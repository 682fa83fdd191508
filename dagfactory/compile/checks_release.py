"""The rules of what follows the choice: a person's approval, and the Asset event that
carries the winner to the DAGs scheduled on it.

``approval`` gates ``publish`` (it needs one); its subject and body are Jinja that
Airflow renders when the task runs, so a syntax error is caught here instead. One task
announces the winner as an Asset event's extra: publish when there is one (the winner
is then published), else the chooser. A download step takes that winner back
(``winner_from``) only from an Asset its own DAG is scheduled on. Same form as
:mod:`.checks_ml`, run through :data:`.checks.CHECKS`; the Airflow version the approval
needs is :mod:`.target`'s.
"""

from __future__ import annotations

from collections.abc import Iterator

from dagfactory.compile.document import Document, as_mapping
from dagfactory.problems import Problem, SpecPath


def approval_gates_publish(doc: Document) -> Iterator[Problem]:
    """An approval needs a publish step to gate, and subject and body Jinja can parse."""
    import jinja2

    if "approval" not in doc.data:
        return
    if "publish" not in doc.data:
        yield doc.error(
            ("approval",),
            "approval gates publish, which is not set: add a publish step for the"
            " approved winner, or remove approval",
            key=True,
        )
    approval = as_mapping(doc.data["approval"])
    for key in ("subject", "body"):
        text = approval.get(key)
        if not isinstance(text, str):
            continue
        try:
            jinja2.Environment().parse(text)
        except jinja2.TemplateSyntaxError as error:
            yield doc.error(
                ("approval", key),
                f"is not a Jinja template Airflow can render (line {error.lineno} of"
                f" the text: {error.message}); write the winner's fields as"
                " {{ winner.task_id }}, {{ winner.value }}",
            )


def one_announcer(doc: Document) -> Iterator[Problem]:
    """The winner's Asset is announced by publish when there is one, and never
    triggers the DAG that announces it."""
    chooser = as_mapping(doc.data.get("chooser"))
    publish = as_mapping(doc.data.get("publish"))
    if "asset" in chooser and "publish" in doc.data:
        yield doc.error(
            ("chooser", "asset"),
            "publish follows the chooser, and announces the published winner: move"
            " asset to publish.asset",
            key=True,
        )
    schedule = as_mapping(doc.data.get("dag")).get("schedule")
    for path in (("chooser", "asset"), ("publish", "asset")):
        uri = (chooser if path[0] == "chooser" else publish).get("asset")
        if isinstance(schedule, list) and uri in schedule:
            yield doc.error(
                path,
                f"{uri!r} is also in dag.schedule: each winner would start this DAG"
                " again; announce another Asset, or schedule the DAG otherwise",
            )


def winner_from_schedule(doc: Document) -> Iterator[Problem]:
    """``winner_from`` on a download step only, naming an Asset of ``dag.schedule``,
    and not also passed as an op_kwargs key ``winner``."""
    schedule = as_mapping(doc.data.get("dag")).get("schedule")
    assets = schedule if isinstance(schedule, list) else []
    download = doc.data.get("download")
    steps: list[tuple[SpecPath, object]] = (
        [(("download", index), step) for index, step in enumerate(download)]
        if isinstance(download, list)
        else [(("download",), download)]
    )
    chooser = as_mapping(doc.data.get("chooser"))
    for branch in ("on_pass", "on_fail"):
        if "winner_from" in as_mapping(chooser.get(branch)):
            yield doc.error(
                ("chooser", branch, "winner_from"),
                f"{branch} gets this run's winner already; only a download step takes"
                " one from an Asset event: remove winner_from",
                key=True,
            )
    for path, step in steps:
        uri = as_mapping(step).get("winner_from")
        if not isinstance(uri, str):
            continue
        if uri not in assets:
            listed = ", ".join(map(repr, assets)) or "none is listed"
            yield doc.error(
                (*path, "winner_from"),
                f"{uri!r} is not an Asset of dag.schedule ({listed}): the winner comes"
                " from the event that triggered the run; add it to dag.schedule",
            )
        if "winner" in as_mapping(as_mapping(step).get("op_kwargs")):
            yield doc.error(
                (*path, "op_kwargs", "winner"),
                "winner is what winner_from passes; give this keyword another name",
                key=True,
            )


RELEASE_CHECKS = (approval_gates_publish, one_announcer, winner_from_schedule)
