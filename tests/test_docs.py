"""The documentation cannot go stale: it builds, its YAML is valid, its transcripts run.

- the MkDocs site builds with ``--strict`` (broken links, anchors and snippet includes,
  and a schema property without a description, fail it), into a temporary folder;
- every ```yaml fence of README.md and docs/ goes through dagfactory itself: a whole
  config is validated and rendered, a ``title="fragment"`` is a part of a config,
  merged over a minimal valid one as a ``defaults.yaml`` would be, and a
  ``title="not a config: ..."`` fence only has to be YAML;
- every ```console transcript (``$ `` lines and their output) of the quick start and
  the tutorial is run against the built wheel outside the repository (the quick
  start's in an empty folder, the tutorial's in a copy of the example project, as a
  clone has it), and its output compared with times, run ids and measured numbers masked
  (line by line, in any order: parallel trainers finish in any order).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, VALID, run_outside
from dagfactory.cli import main

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TRANSCRIPT_FILES = [ROOT / "README.md", ROOT / "docs" / "tutorial.md"]
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.M | re.S)
SNIPPET = re.compile(r'^--8<-- "([^":]+)"$', re.M)


def _fences(language: str, files: list[Path]) -> list[tuple[str, str, str]]:
    """(where, fence attributes, body) of every fence of ``language``, includes expanded."""
    found = []
    for path in files:
        text = path.read_text("utf-8")
        for match in FENCE.finditer(text):
            if match[1] != language:
                continue
            body = SNIPPET.sub(
                lambda include: (ROOT / include[1]).read_text("utf-8").rstrip("\n"),
                match[3],
            )
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match[2].strip(), body))
    return found


YAML_FENCES = _fences("yaml", DOC_FILES)


def test_the_site_builds_strictly(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q"]
        + ["--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=os.environ
        | {
            "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "NO_MKDOCS_2_WARNING": "1",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    spec = (tmp_path / "site" / "reference" / "spec" / "index.html").read_text()
    assert "<code>target_airflow</code>" in spec


def test_the_readme_links_only_to_files_that_exist():
    text = (ROOT / "README.md").read_text("utf-8")
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [target for target in targets if "://" not in target]
    assert local
    assert [target for target in local if not (ROOT / target).exists()] == []


@pytest.mark.parametrize(
    ("where", "attributes", "body"), YAML_FENCES, ids=[f[0] for f in YAML_FENCES]
)
def test_every_yaml_snippet_is_what_dagfactory_accepts(
    where, attributes, body, tmp_path, monkeypatch
):
    if attributes.startswith('title="not a config'):
        yaml.safe_load(body)
        return
    configs = tmp_path / "configs"
    configs.mkdir()
    if attributes == 'title="fragment"':
        (configs / "defaults.yaml").write_text(VALID)
    else:
        assert attributes == "", f"{where}: unknown fence attributes {attributes}"
    (configs / "snippet.yaml").write_text(body)
    monkeypatch.chdir(tmp_path)
    assert main(["render", "configs", "--out", "out", "--format", "json"]) == 0, where
    assert len(list((tmp_path / "out").glob("*.py"))) == 1, where


# -- transcripts ------------------------------------------------------------------------

MASKS = [
    (re.compile(r"manual__[\dT:._+-]+"), "<RUN_ID>"),  # also as a folder's name
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)?"), "<TIME>"),
    (re.compile(r"\d{4}-\d\d-\d\d"), "<DATE>"),
    (re.compile(r"\b\d+\.\d+ s\b"), "<SECONDS> s"),
    (re.compile(r" {2,}"), "  "),  # table columns are as wide as their values
]


def _masked(text: str) -> list[str]:
    """The output's lines, masked, in sorted order: trainers run in parallel, so the
    XCom list's rows of one run come in the order they finished."""
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return sorted(text.rstrip("\n").split("\n"))


def _steps(body: str) -> list[tuple[str, str]]:
    """(command, expected output) of each ``$ `` line of a console fence."""
    steps: list[tuple[str, list[str]]] = []
    for line in body.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before the first command: {line!r}"
            steps[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in steps]


TRANSCRIPTS = _fences("console", TRANSCRIPT_FILES)


def test_the_quick_start_has_a_transcript():
    commands = [c for _, _, body in TRANSCRIPTS for c, _ in _steps(body)]
    assert commands[:3] == [
        "dagfactory init",
        "dagfactory validate",
        "dagfactory render",
    ]


def _reader_folder(page: str, tmp_path: Path) -> Path:
    """Where a reader of ``page`` types its commands: the quick start's in an empty
    folder (shared by README.md's), the tutorial's in a clone of this repository
    (its example project: configs/ and generated_dags/)."""
    folder = tmp_path / ("clone" if page.startswith("docs/tutorial.md") else "empty")
    if not folder.exists():
        folder.mkdir()
        if folder.name == "clone":
            for name in ("configs", "generated_dags"):
                shutil.copytree(ROOT / name, folder / name)
    return folder


@pytest.mark.airflow
def test_every_transcript_prints_what_the_docs_say(wheel_venv, tmp_path):
    """Every transcript, in page order, as a reader types them."""
    path = f"{wheel_venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
    for where, _, body in TRANSCRIPTS:
        folder = _reader_folder(where, tmp_path)
        for command, expected in _steps(body):
            ran = run_outside(
                ["bash", "-c", command + " 2>&1"],
                folder,
                PATH=path,
                PYTHONUNBUFFERED="1",
                NO_COLOR="1",
            )
            assert ran.returncode == 0, (where, command, ran.stdout[-3000:])
            assert _masked(ran.stdout) == _masked(expected), (where, command)
