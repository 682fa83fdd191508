"""The compatibility run's inputs agree: each supported version has its frozen pins.

``./dev compat`` (compat/run.py) is the test that runs the DAGs on each version; this
only keeps compat/versions.txt and compat/constraints-X.Y.txt in step, so that a
version added to the list without ``./dev lock`` fails here, fast.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

COMPAT = Path(__file__).resolve().parent.parent / "compat"
sys.path.insert(0, str(COMPAT))

from versions import select, supported  # noqa: E402


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a constraints file, by lower-case name."""
    found = {}
    for line in path.read_text("utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            found[match[1].lower()] = match[2]
    return found


def test_the_issue_s_versions_are_all_supported():
    assert [v.series for v in supported()] == [
        "2.10",
        "2.11",
        "3.0",
        "3.1",
        "3.2",
        "3.3",
        "3.4",
    ]


@pytest.mark.parametrize("version", supported(), ids=lambda v: v.series)
def test_each_version_is_frozen_at_the_release_it_names(version):
    frozen = pins(version.constraints)
    airflow = next(r for r in version.requirements if r.startswith("apache-airflow=="))
    assert frozen["apache-airflow"] == airflow.split("==")[1]
    assert frozen["apache-airflow"].startswith(version.series + ".")
    for dependency in ("pyyaml", "jinja2", "jsonschema"):  # dagfactory's own
        assert dependency in frozen
    header = version.constraints.read_text("utf-8").splitlines()[:2]
    assert " ".join(version.requirements) in header[0]
    assert "./dev lock" in header[1]


def test_airflow_2_gets_the_standard_provider():
    for version in select(["2.10", "2.11"]):
        assert "apache-airflow-providers-standard" in pins(version.constraints)


def test_an_unknown_version_is_a_usage_error_naming_the_supported_ones():
    with pytest.raises(
        SystemExit, match=r"unknown Airflow version 2\.9; supported: 2\.10"
    ):
        select(["3.3", "2.9"])


@pytest.mark.parametrize("version", supported(), ids=lambda v: v.series)
def test_each_version_pins_the_scikit_learn_example(version):
    """compat/run.py installs the sklearn extra: its pins must be frozen with the rest."""
    frozen = pins(version.constraints)
    for dependency in ("scikit-learn", "numpy", "scipy"):
        assert dependency in frozen
