"""dagfactory's cron check and Airflow's own give the same verdict on every schedule.

Hypothesis writes schedules from a cron grammar that mixes numbers in and out of each
field's range, month and day names in any case and misspelled, lists, ranges (reversed
too), steps (0 too), ``L``, ``W``, ``#``, ``?``, ``R`` and ``H``, too few and too many
fields, odd whitespace, presets and junk. Airflow judges each one as a DagBag does: a
DAG with that ``schedule`` is built and validated, and anything it raises makes the file
an import error. dagfactory judges it twice: :func:`cron_problem` alone, and ``validate``
on a config with that schedule (schema and semantic checks, at most one error).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from conftest import VALID
from dagfactory.compile.cron import cron_problem
from dagfactory.compile.load import load_text
from dagfactory.compile.validate import validate

pytestmark = pytest.mark.airflow

EXAMPLES = 1500
RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7), (0, 59), (1970, 2099)]
MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
DAYS = "sun mon tue wed thu fri sat".split()
MISSPELLED = ["fry", "jen", "thur", "tues", "sept", "mom", "l", "w", "lw", "x"]
PRESETS = [
    "@once",
    "@continuous",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
    "@annually",
    "@midnight",
    "@reboot",
    "@dayly",
]


def any_case(words: list[str]) -> st.SearchStrategy[str]:
    cases = st.sampled_from([str.lower, str.lower, str.upper, str.title])
    return st.tuples(st.sampled_from(words), cases).map(lambda t: t[1](t[0]))


def number(field: int) -> st.SearchStrategy[str]:
    """Mostly in the field's range, often just outside it, sometimes anywhere."""
    low, high = RANGES[field]
    inside = st.integers(low, high).map(str)
    return st.one_of(
        inside,
        inside,
        inside.map(lambda n: n.zfill(3)),
        st.sampled_from([low - 1, high + 1, 0, 7, 60, 100, 2100]).map(str),
        st.integers(0, 2200).map(str),
    )


def word(field: int) -> st.SearchStrategy[str]:
    names = {3: MONTHS, 4: DAYS}.get(field)
    if names is None:
        return st.one_of(number(field), number(field), any_case(MISSPELLED + DAYS))
    return st.one_of(number(field), any_case(names), any_case(MISSPELLED + names))


STEPS = st.one_of(
    st.integers(1, 70).map(str), st.sampled_from(["1", "5", "0", "00", "x", ""])
)


def hostile(field: int) -> st.SearchStrategy[str]:
    """A field from the whole grammar: lists of items of every form, R and H, junk."""
    a, b = word(field), word(field)
    item = st.one_of(
        a,
        a,
        st.just("*"),
        st.tuples(a, b).map("-".join),
        st.tuples(a, b, STEPS).map(lambda t: f"{t[0]}-{t[1]}/{t[2]}"),
        st.tuples(a, STEPS).map("/".join),
        STEPS.map("*/".__add__),
        st.tuples(a, st.integers(0, 6)).map(lambda t: f"{t[0]}#{t[1]}"),
        st.tuples(any_case(DAYS), any_case(DAYS), st.integers(1, 5)).map(
            lambda t: f"{t[0]}-{t[1]}#{t[2]}"
        ),
        a.map("L".__add__),
        a.map(lambda w: f"{w}L"),
        a.map(lambda w: f"{w}W"),
        a.map("W".__add__),
        st.sampled_from(["L", "?", "W", "#", "-", "/", ""]),
    )
    random = st.tuples(
        st.sampled_from(["R", "H", "r"]),
        st.none()
        | st.tuples(number(field), number(field)).map("({0[0]}-{0[1]})".format),
        st.none() | STEPS.map("/".__add__),
    ).map(lambda t: "".join(part for part in t if part))
    listed = st.lists(item, min_size=1, max_size=4).map(",".join)
    return st.one_of(*[listed] * 5, random)


def plain(field: int) -> st.SearchStrategy[str]:
    """A field as people write them: mostly one Airflow accepts."""
    low, high = RANGES[field]
    inside = st.integers(low, high).map(str)
    question = [st.just("?")] if field in (2, 4) else []
    return st.one_of(
        st.just("*"),
        *question,
        inside,
        st.integers(1, 30).map("*/{}".format),
        st.tuples(inside, inside).map("-".join),
        st.lists(inside, min_size=2, max_size=3).map(",".join),
        any_case({3: MONTHS, 4: DAYS}.get(field, ["*"])),
    )


# Per field: a plain value five times in six, one from the whole grammar otherwise.
FIELDS = [st.one_of(*[plain(field)] * 5, hostile(field)) for field in range(7)]
# Spaces mostly; a no-break space is not a separator to croniter (it splits on ASCII).
SEPARATORS = st.sampled_from([" "] * 16 + ["  ", "\t", "\n", "\u00a0"])


@st.composite
def cron_text(draw: st.DrawFn) -> str:
    count = draw(st.sampled_from([5] * 10 + [6, 7] * 2 + [0, 1, 4, 8]))
    fields = [draw(FIELDS[index % 7]) for index in range(count)]
    text = "".join(draw(SEPARATORS) + field for field in fields)
    return text.removeprefix(" ") + draw(st.sampled_from(["", "", "", " ", "\n"]))


SCHEDULES = st.one_of(
    cron_text(),
    cron_text(),
    cron_text(),
    cron_text(),
    st.tuples(any_case(PRESETS), st.sampled_from(["", "", " "])).map("".join),
    st.text(st.sampled_from(list("0123456789*/,-#?LWHR@ \tjano\u212a")), max_size=20),
)


def airflow_refusal(schedule: str) -> str | None:
    """None if Airflow loads a DAG with this schedule, else what the DagBag records."""
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2
        from airflow import DAG

    # max_active_runs=1: @continuous allows no more, and that is not the schedule's fault.
    dag = DAG(
        "cron_probe",
        schedule=schedule,
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        max_active_runs=1,
    )
    try:
        dag.validate()  # what DagBag.process_file calls; any exception is an import error
    except Exception as exc:  # the DagBag catches everything too
        return type(exc).__name__
    return None


def validate_problems(schedule: str) -> list[str]:
    # max_active_runs: 1, as the DAG Airflow judges has (test_validate covers @continuous).
    text = VALID.replace(
        "  start_date: 2024-01-01\n",
        f"  start_date: 2024-01-01\n  schedule: {json.dumps(schedule)}\n"
        "  max_active_runs: 1\n",
    )
    return [
        problem.message
        for problem in validate(load_text(text, "c.yaml").document)
        if problem.spec_path == ("dag", "schedule")
    ]


def test_dagfactory_and_airflow_agree_on_every_schedule():
    try:
        from airflow.sdk.exceptions import AirflowTimetableInvalid
    except ImportError:  # Airflow 2 to 3.1
        from airflow.exceptions import AirflowTimetableInvalid

    verdicts: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
    @example(schedule="0 24 * * *")
    @example(schedule="* * * * * 0 5-3/3000")  # croniter raises ValueError, not its own
    @given(schedule=SCHEDULES)
    def check(schedule: str) -> None:
        refused = airflow_refusal(schedule)
        problem = cron_problem(schedule)
        assert (problem is None) == (refused is None), (schedule, refused, problem)
        found = validate_problems(schedule)
        assert len(found) == (0 if refused is None else 1), (schedule, refused, found)
        outcome = "accepted" if refused is None else "refused"
        if refused not in (None, AirflowTimetableInvalid.__name__):
            outcome = f"refused with {refused}"
        event(outcome)
        verdicts[outcome] += 1

    check()
    print(
        f"\ncron against Airflow: {sum(verdicts.values())} schedules, {dict(verdicts)}"
    )
    assert verdicts["accepted"] >= EXAMPLES // 5, verdicts
    assert verdicts["refused"] >= EXAMPLES // 5, verdicts
