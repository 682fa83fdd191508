"""The rules of a trainer's ``runtime: {docker: ...}``: a container that runs the trainer.

A trainer in Docker runs its image's command, not a ``python_callable`` or a
``bash_command``, and prints its metric as JSON on its last line of output (the
generated ``_DockerTrainer`` parses and pushes it). These checks refuse what that
cannot honour (a command of its own, mapped trainers) and an image reference Docker
would refuse only when the task runs. Same form as :mod:`.checks_runtime`, run through
:data:`.checks.CHECKS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dagfactory.compile.document import Document, as_mapping
from dagfactory.compile.vocabulary import docker_of
from dagfactory.problems import Problem, SpecPath

# An image reference as Docker parses it (its distribution/reference grammar):
# [domain[:port]/]path[:tag][@digest], the path of lowercase components.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?"
)
# Docker's limit on the repository name (the reference without tag and digest).
MAX_NAME_LENGTH = 255


def image_problem(image: str) -> str | None:
    """What is wrong with ``image`` as an image reference, or None (a Jinja
    template is Airflow's to render first: not judged)."""
    if "{{" in image or "{%" in image:
        return None
    if IMAGE_REFERENCE.fullmatch(image) is None:
        lowered = image.lower()
        hint = (
            f"; repository names are lowercase: {lowered!r}?"
            if lowered != image and IMAGE_REFERENCE.fullmatch(lowered)
            else ""
        )
        return (
            f"{image!r} is not an image reference Docker accepts{hint}; write"
            " [registry[:port]/]name[:tag][@digest], the name in lowercase letters,"
            " digits and . _ - separators, such as registry.example.com/team/trainer:1.4"
        )
    name = image.partition("@")[0]
    if ":" in name.rpartition("/")[2]:
        name = name.rpartition(":")[0]
    if len(name) > MAX_NAME_LENGTH:
        return f"the image name is {len(name)} characters; Docker takes at most {MAX_NAME_LENGTH}"
    return None


def _docker_runtimes(trainers: dict) -> Iterator[tuple[SpecPath, dict]]:
    """Each docker runtime written in the trainers section, with its path."""
    if isinstance(as_mapping(trainers.get("runtime")).get("docker"), dict):
        yield ("trainers", "runtime", "docker"), trainers["runtime"]["docker"]
    listed = trainers.get("models")
    for index, model in enumerate(listed if isinstance(listed, list) else []):
        docker = as_mapping(as_mapping(model).get("runtime")).get("docker")
        if isinstance(docker, dict):
            yield ("trainers", "models", index, "runtime", "docker"), docker


def docker_runtime(doc: Document) -> Iterator[Problem]:
    """A docker runtime's image is a reference Docker accepts; a trainer in Docker
    names no command of its own and is not mapped (see the module's docstring)."""
    trainers = as_mapping(doc.data.get("trainers"))
    runtimes = list(_docker_runtimes(trainers))
    for path, docker in runtimes:
        image = docker.get("image")
        problem = image_problem(image) if isinstance(image, str) else None
        if problem:
            yield doc.error((*path, "image"), problem)
    if runtimes and trainers.get("mapped"):
        yield doc.error(
            ("trainers", "mapped"),
            "mapped trainers all run in the worker's interpreter, not in Docker;"
            " remove mapped, or the docker runtime",
            key=True,
        )
    listed = trainers.get("models")
    for index, model in enumerate(listed if isinstance(listed, list) else []):
        model = as_mapping(model)
        if docker_of(model, trainers) is None:
            continue
        for key in ("python_callable", "bash_command"):
            if key in model:
                fix = (
                    "the docker runtime"
                    if "runtime" in model
                    else "give it a runtime of its own (the group's is docker)"
                )
                yield doc.error(
                    ("trainers", "models", index, key),
                    "this trainer runs in Docker, where its image's command prints"
                    f" the metric: remove {key}, or {fix}",
                    key=True,
                )


DOCKER_CHECKS = (docker_runtime,)
