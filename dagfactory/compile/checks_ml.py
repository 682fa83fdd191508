"""The rules across keys of the train-and-choose contract, one named check each.

Separate from :mod:`.checks` to keep both small: these judge what flows between the
steps (a download's result into the trainers' ``inputs``, how many trainers must
succeed, when publish runs), the others the DAG around them. Same form: each check is
``(doc) -> Iterator[Problem]``, skips values the schema already rejected, and is run by
:mod:`.validate` through :data:`.checks.CHECKS`.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterator
from typing import Any

from dagfactory.compile.document import Document, as_mapping
from dagfactory.problems import Problem, SpecPath


def publish_when_passed(doc: Document) -> Iterator[Problem]:
    """``publish.when: passed`` waits for a threshold, so one must be set."""
    chooser = as_mapping(doc.data.get("chooser"))
    if (
        as_mapping(doc.data.get("publish")).get("when") == "passed"
        and "threshold" not in chooser
    ):
        yield doc.error(
            ("publish", "when"),
            "'passed' waits for the winner to reach chooser.threshold, which is not set;"
            " set a threshold, or remove when (publish then follows the chooser)",
        )


def min_success_within_trainers(doc: Document) -> Iterator[Problem]:
    """A ``chooser.min_success`` count no larger than the number of trainers."""
    count = as_mapping(doc.data.get("chooser")).get("min_success")
    trainers = len(doc.trainer_models)
    if isinstance(count, int) and not isinstance(count, bool) and trainers:
        if count > trainers:
            yield doc.error(
                ("chooser", "min_success"),
                f"is {count}, but there are {trainers} trainers; use at most"
                f" {trainers}, or a share such as '75%'",
            )


def _download_ids(data: dict[str, Any]) -> list[str]:
    download = data.get("download")
    steps = download if isinstance(download, list) else [download]
    return [
        step["task_id"]
        for step in steps
        if isinstance(as_mapping(step).get("task_id"), str)
    ]


def trainer_inputs(doc: Document) -> Iterator[Problem]:
    """Each input names a download step, by a name the trainer can take it as: a
    Python identifier that is not one of its op_kwargs (which would be passed twice)."""
    trainers = as_mapping(doc.data.get("trainers"))
    known = _download_ids(doc.data)
    group_kwargs = {
        **as_mapping(trainers.get("op_kwargs")),
        **as_mapping(trainers.get("matrix")),
    }
    group_path: SpecPath = ("trainers", "inputs")
    group_inputs = as_mapping(trainers.get("inputs"))
    written = [(group_path, group_inputs, group_kwargs)]
    listed = trainers.get("models")
    for index, model in enumerate(listed if isinstance(listed, list) else []):
        if isinstance(model, dict):
            kwargs = {**group_kwargs, **as_mapping(model.get("op_kwargs"))}
            own = as_mapping(model.get("inputs"))
            written.append((("trainers", "models", index, "inputs"), own, kwargs))
            # the group's inputs reach this model too, unless it names them itself
            for name in set(group_inputs) - set(own) - set(group_kwargs):
                if name in kwargs:
                    yield doc.error(
                        (*group_path, name),
                        f"{name!r} is also an op_kwargs key of trainer"
                        f" {model.get('task_id')!r}; an input needs a name of its own",
                        key=True,
                    )
    for path, inputs, kwargs in written:
        for name, task_id in inputs.items():
            if isinstance(task_id, str) and task_id not in known:
                yield doc.error(
                    (*path, name),
                    f"{task_id!r} is not a download step; an input names the task_id"
                    f" of one: {', '.join(map(repr, known)) or 'none is set'}",
                )
            if not str(name).isidentifier() or keyword.iskeyword(str(name)):
                yield doc.error(
                    (*path, name),
                    f"{name!r} is not a Python identifier: a python trainer takes an"
                    " input as a keyword argument of that name",
                    key=True,
                )
            elif name in kwargs:
                owner = "the trainers" if path == group_path else "this trainer"
                yield doc.error(
                    (*path, name),
                    f"{name!r} is also an op_kwargs key of {owner}; an input"
                    " needs a name of its own",
                    key=True,
                )


# In the order they ran before they had a module of their own.
ML_CHECKS = (publish_when_passed, min_success_within_trainers, trainer_inputs)
