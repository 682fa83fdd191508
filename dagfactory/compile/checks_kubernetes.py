"""The rules of a ``kubernetes`` runtime: a trainer run as a container in a pod.

Its container is its command (the image's entrypoint, or ``cmds``), so it takes no
python_callable or bash_command beside it; its metric is what the container writes to
``/airflow/xcom/return.json``, which KubernetesPodOperator's sidecar reads. These
checks refuse what a pod cannot honour (a malformed image reference, a GPU count
Kubernetes cannot schedule, GPUs asked of a runtime that is no pod, mapped trainers)
at the value to fix. Same form as :mod:`.checks_runtime`, run through
:data:`.checks.CHECKS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dagfactory.compile.document import Document, as_mapping
from dagfactory.compile.vocabulary import GPU_RESOURCE
from dagfactory.problems import Problem, SpecPath

# An image reference as the container runtimes read it: [host[:port]/]path[:tag][@digest]
# (the distribution project's grammar; path components are lower case).
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"{_HOST}?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
EXAMPLE_IMAGE = "registry.example.com/team/train:1.4"


def _kubernetes_runtimes(
    trainers: dict[str, Any],
) -> Iterator[tuple[SpecPath, dict[str, Any], dict[str, Any]]]:
    """Each runtime written in the trainers section, with its path and the mapping that
    holds it (the group, or a listed model)."""
    listed = trainers.get("models")
    holders = [(("trainers",), trainers)] + [
        (("trainers", "models", index), as_mapping(model))
        for index, model in enumerate(listed if isinstance(listed, list) else [])
    ]
    for path, holder in holders:
        if isinstance(holder.get("runtime"), dict):
            yield (*path, "runtime"), holder["runtime"], holder


def kubernetes_runtime(doc: Document) -> Iterator[Problem]:
    """A pod holds its own command, a well-formed image and whole GPUs; GPUs only in a
    pod (see the module's docstring)."""
    trainers = as_mapping(doc.data.get("trainers"))
    for path, runtime, holder in _kubernetes_runtimes(trainers):
        pod = runtime.get("kubernetes")
        if not isinstance(pod, dict):
            if "gpus" in runtime:
                yield doc.error(
                    (*path, "gpus"),
                    "a python runtime runs on the Airflow worker's own machine and"
                    " cannot ask for GPUs: run the trainer in a pod"
                    " (runtime: {kubernetes: {image: ..., gpus: 1}}), or send it to a"
                    " worker with GPUs through queue",
                    key=True,
                )
            continue
        for command in ("python_callable", "bash_command"):
            if command in holder:
                yield doc.error(
                    (*path[:-1], command),
                    f"a kubernetes runtime runs its image's command, not {command}:"
                    " remove one of them (give the image's command in"
                    " runtime.kubernetes.cmds)",
                    key=True,
                )
        yield from _image_problems(doc, (*path, "kubernetes", "image"), pod)
        yield from _gpu_problems(doc, (*path, "kubernetes"), pod)
    if trainers.get("mapped") and any(
        isinstance(runtime.get("kubernetes"), dict)
        for _, runtime, _ in _kubernetes_runtimes(trainers)
    ):
        yield doc.error(
            ("trainers", "mapped"),
            "mapped trainers are one python task; trainers in Kubernetes pods are a"
            " task each: remove mapped, or the kubernetes runtime",
        )


def _image_problems(
    doc: Document, path: SpecPath, pod: dict[str, Any]
) -> Iterator[Problem]:
    """An image reference no container runtime can pull (templates are Airflow's)."""
    image = pod.get("image")
    if not isinstance(image, str) or "{{" in image or _IMAGE.fullmatch(image):
        return
    hint = (
        " (repository names are lower case)"
        if image.lower() != image and _IMAGE.fullmatch(image.lower())
        else ""
    )
    yield doc.error(
        path,
        f"{image!r} is not an image reference{hint}: write"
        " [registry/]repository[:tag][@sha256:digest], such as"
        f" {EXAMPLE_IMAGE}",
    )


def _gpu_problems(
    doc: Document, path: SpecPath, pod: dict[str, Any]
) -> Iterator[Problem]:
    """GPUs are whole (an extended resource is never split), and asked for once."""
    limits = as_mapping(as_mapping(pod.get("resources")).get("limits"))
    requests = as_mapping(as_mapping(pod.get("resources")).get("requests"))
    for kind, values in (("limits", limits), ("requests", requests)):
        count = values.get(GPU_RESOURCE)
        if count is None:
            continue
        if "gpus" in pod:
            yield doc.error(
                (*path, "resources", kind, GPU_RESOURCE),
                f"GPUs are asked for twice, here and in gpus: keep gpus (it sets the"
                f" limit {GPU_RESOURCE}) and remove this",
                key=True,
            )
        elif not _whole(count):
            yield doc.error(
                (*path, "resources", kind, GPU_RESOURCE),
                f"{count!r} GPUs: Kubernetes schedules whole GPUs only; write a whole"
                " number such as 1 (or gpus: 1)",
            )
    gpus = pod.get("gpus")  # the schema holds it to a number of at least 1
    if isinstance(gpus, float) and gpus >= 1 and not gpus.is_integer():
        yield doc.error(
            (*path, "gpus"),
            f"{gpus!r} GPUs: Kubernetes schedules whole GPUs only (a GPU is never"
            " split between containers); write a whole number such as 1",
        )


def _whole(count: Any) -> bool:
    """Whether a resource quantity is a whole number of at least one (``2``, ``"2"``)."""
    text = str(count)
    return not isinstance(count, bool) and text.isdigit() and int(text) >= 1


KUBERNETES_CHECKS = (kubernetes_runtime,)
