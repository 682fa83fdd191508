"""Cron schedules: refused at validate time as Airflow refuses them, field by field.

Airflow's own verdict on random schedules is in ``test_cron_airflow.py``; these are the
messages a user reads, at the schedule's line and column, and the forms that pass.
"""

from __future__ import annotations

import pytest

from conftest import VALID
from dagfactory.compile.cron import cron_problem
from dagfactory.compile.load import load_text
from dagfactory.compile.validate import validate

WHERE = "c.yaml:4:13: error: dag.schedule: "


def problems(schedule: str) -> list[str]:
    """Every problem of the valid config with ``schedule`` (YAML text) as its schedule.

    With ``max_active_runs: 1``, which '@continuous' needs (test_validate covers that rule).
    """
    text = VALID.replace(
        "  start_date: 2024-01-01\n",
        f"  start_date: 2024-01-01\n  schedule: {schedule}\n  max_active_runs: 1\n",
    )
    return [str(problem) for problem in validate(load_text(text, "c.yaml").document)]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 24 * * *", "hour 24 is out of range 0-23 (field 2 of '0 24 * * *')"),
        ("61 * * * *", "minute 61 is out of range 0-59 (field 1 of '61 * * * *')"),
        ("0 0 32 * *", "day 32 is out of range 1-31 (field 3 of '0 0 32 * *')"),
        ("0 0 * 13 *", "month 13 is out of range 1-12 (field 4 of '0 0 * 13 *')"),
        (
            "0 0 * * mon-fry",
            "'fry' is not a day name (sun, mon, tue, wed, thu, fri, sat);"
            " did you mean 'fri'? (field 5 of '0 0 * * mon-fry')",
        ),
        ("0 0 0 * *", "day 0 is out of range 1-31 (field 3 of '0 0 0 * *')"),
        (
            "*/0 * * * *",
            "a step of 0 never advances; use */1 or * (field 1 of '*/0 * * * *')",
        ),
        ("0 0 * * 8", "weekday 8 is out of range 0-7 (field 5 of '0 0 * * 8')"),
        ("0 0 0-5 * *", "day 0 is out of range 1-31 (field 3 of '0 0 0-5 * *')"),
        (
            "0 0 * JEN *",
            "'jen' is not a month name (jan, feb, mar, apr, may, jun, jul, aug, sep,"
            " oct, nov, dec); did you mean 'jun'? (field 4 of '0 0 * JEN *')",
        ),
        ("mon * * * *", "'mon' is not a minute (0-59) (field 1 of 'mon * * * *')"),
        (
            "0 0 * * * 60",
            "second 60 is out of range 0-59 (field 6 of '0 0 * * * 60')",
        ),
        (
            "0 0 1 1 * 0 1969",
            "year 1969 is out of range 1970-2099 (field 7 of '0 0 1 1 * 0 1969')",
        ),
        (
            "0 0 * * 1#6",
            "in '1#6' the week after '#' must be 1-5 (field 5 of '0 0 * * 1#6')",
        ),
        (
            "0 0 * * tue,1#2",
            "plain weekdays cannot be listed beside N#k or LN weekdays; use one form"
            " (field 5 of '0 0 * * tue,1#2')",
        ),
        (
            "0 0 * * 5L",
            "'5l': the last N-day of a month is LN, as L5 (Friday)"
            " (field 5 of '0 0 * * 5L')",
        ),
        (
            "0 0 L-3 * *",
            "in 'l-3', L (the last day) cannot start a range or a step"
            " (field 3 of '0 0 L-3 * *')",
        ),
        (
            "0 0 15W,1 * *",
            "'15w' (nearest weekday) must be the only day (field 3 of '0 0 15W,1 * *')",
        ),
        (
            "0 0 1? * *",
            "'?' stands alone, and only for the day or the weekday"
            " (field 3 of '0 0 1? * *')",
        ),
        (
            "H * * * *",
            "H (a hashed value) needs a hash id, which Airflow does not pass"
            " (field 1 of 'H * * * *')",
        ),
        (
            "-1 * * * *",
            "'-1' is not a value: cron has no negative numbers (field 1 of '-1 * * * *')",
        ),
        (
            "1,,2 * * * *",
            "'1,,2' has an empty list item (field 1 of '1,,2 * * * *')",
        ),
        (
            "*/x * * * *",
            "'x' is not a step; write a whole number, as in */5 (field 1 of '*/x * * * *')",
        ),
        ("@ONCE", "write '@once' in lower case: Airflow knows this preset only so"),
        ("@dayly", "'@dayly' is not a preset Airflow knows; did you mean '@daily'?"),
        ("'@daily '", "write the preset '@daily' without spaces around it"),
    ],
)
def test_a_schedule_airflow_refuses_is_one_error_at_the_schedule(schedule, message):
    quoted = schedule if schedule.startswith("'") else f"'{schedule}'"
    assert problems(quoted) == [WHERE + message]


def test_the_error_is_where_the_schedule_is_written():
    text = VALID.replace(
        "  start_date: 2024-01-01\n",
        '  start_date: 2024-01-01\n  schedule:\n      "0 0 * 13 *"\n',
    )
    found = [str(problem) for problem in validate(load_text(text, "c.yaml").document)]
    assert found == [
        "c.yaml:5:7: error: dag.schedule: month 13 is out of range 1-12"
        " (field 4 of '0 0 * 13 *')"
    ]


@pytest.mark.parametrize("schedule", ["0 0 * *", "every day", "0 0 * * * * * *"])
def test_a_schedule_of_the_wrong_shape_gets_only_the_schema_error(schedule):
    assert problems(f"'{schedule}'") == [
        f"{WHERE}expected a cron expression, a preset such as @daily, a duration such"
        " as 1h, a list of Asset URIs (data-aware scheduling), or null for manual"
        f" runs only, got the text '{schedule}'"
    ]


ACCEPTED = [
    "0 6 * * *",
    "*/15 * * * *",
    "0 6 * * 1-5",
    "0 6 * * MON-FRI",
    "0 0 1 jan-mar *",
    "5-50/5 * * * *",
    "10/5 * * * *",
    "0 22-2 * * *",  # a reversed range wraps around: 22, 23, 0, 1, 2
    "0 0 * * sat-sun",
    "0 0 * * 0,7",  # 0 and 7 are Sunday
    "0 0 1,15 * *",
    "0 0 L * *",  # the last day of the month
    "0 0 1-L/2 * *",
    "0 0 * * L5",  # the last Friday of the month
    "0 0 * * mon#2",  # the second Monday of the month
    "0 0 * * mon#2,mon#4",
    "0 0 15W * *",  # the weekday nearest the 15th
    "0 0 ? * 1",
    "0 0 * * * 30",  # a 6th field is seconds
    "0 0 1 1 * 0 2030",  # and a 7th the year
    "R 6 * * *",  # a random minute, drawn again each time the file is parsed
    " 0 6  *\t* * ",
    "0 0 0-0 * *",  # croniter reads an equal range as the whole field
    "@once",
    "@continuous",
    "@hourly",
    "@daily",
    "@Daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
    "@annually",
    "@midnight",
]


@pytest.mark.parametrize("schedule", ACCEPTED)
def test_a_schedule_airflow_accepts_passes(schedule):
    assert cron_problem(schedule) is None
    assert problems(f"'{schedule}'") == []


@pytest.mark.parametrize("schedule", ["5m", "1h30m", "null", "['s3://bucket/key']"])
def test_durations_assets_and_null_are_not_cron(schedule):
    assert problems(schedule) == []
