"""Cron schedules, checked as Airflow checks them, without importing Airflow.

Airflow hands a schedule string to croniter when it loads a DAG file, and a string
croniter refuses makes the whole file an import error (``AirflowTimetableInvalid``). The
JSON Schema can only say what a cron expression roughly looks like; this module accepts
exactly what Airflow 3.3 (croniter 7) accepts, its quirks included, so that ``validate``
neither refuses a schedule that would run nor passes one that would not, and it says
which field is wrong and what that field allows. It is pure and quick: ``validate`` runs
on every keystroke in an editor.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

# Airflow's own timetables and its cron presets, matched exactly as written.
AIRFLOW_PRESETS = ("@once", "@continuous", "@quarterly")
# croniter's aliases, matched in any case (croniter lower-cases the whole expression).
CRONITER_PRESETS = (
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "@midnight",
)

# croniter splits on ASCII whitespace only and reads digits as ASCII digits only.
_FIELD_TEXT = re.compile(r"\S+", re.ASCII)
_RANDOM = re.compile(r"([hr])(?:\((\d+)-(\d+)\))?(?:/(\d+))?", re.ASCII)
_NEAREST_WEEKDAY = re.compile(r"(\d+)w|w(\d+)", re.ASCII)
_NTH_WEEKDAY = re.compile(r"(\w+|[a-z]+-[a-z]+)#(\d+)", re.ASCII)
_LAST_WEEKDAY = re.compile(r"l(\d+)", re.ASCII)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    hint: str = ""  # what else the field takes, for messages
    names: tuple[str, ...] = ()  # numbered from ``low``

    @property
    def allowed(self) -> str:
        return f"{self.low}-{7 if self is _WEEKDAY else self.high}"

    def number(self, word: str) -> int:
        """A value as croniter reads it: ASCII digits, or one of the field's names."""
        value = _digits(word)
        if value is None and word in self.names:
            value = self.names.index(word) + self.low
        if value is not None:
            return 0 if self is _WEEKDAY and value == 7 else value  # 7 is Sunday too
        kind = {"month": "month name", "weekday": "day name"}.get(self.name)
        if kind and word.isalpha():
            hint = difflib.get_close_matches(word, self.names, n=1)
            guess = f"; did you mean {hint[0]!r}?" if hint else ""
            raise _Refused(f"{word!r} is not a {kind} ({', '.join(self.names)}){guess}")
        raise _Refused(f"{word!r} is not a {self.name} ({self.allowed}{self.hint})")

    def check(self, value: int) -> None:
        if not self.low <= value <= self.high:
            raise _Refused(f"{self.name} {value} is out of range {self.allowed}")


_DAY = _Field("day", 1, 31, ", or L for the last day of the month")
_MONTH = _Field(
    "month",
    1,
    12,
    " or jan-dec",
    ("jan", "feb", "mar", "apr", "may", "jun")
    + ("jul", "aug", "sep", "oct", "nov", "dec"),
)
_WEEKDAY = _Field(
    "weekday",
    0,
    6,
    " or sun-sat; 0 and 7 are Sunday",
    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
)
# The order of the fields; a 6th is seconds and a 7th is the year.
_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _DAY,
    _MONTH,
    _WEEKDAY,
    _Field("second", 0, 59),
    _Field("year", 1970, 2099),
)


class _Refused(Exception):
    """What is wrong with one field; :func:`cron_problem` adds which field it is."""


def cron_problem(schedule: str) -> str | None:
    """None if Airflow accepts ``schedule``, else one line: what is wrong, what is allowed."""
    if schedule in AIRFLOW_PRESETS or schedule.lower() in CRONITER_PRESETS:
        return None
    fields = _FIELD_TEXT.findall(schedule.lower())
    if len(fields) == 1 and fields[0].startswith("@"):
        return _preset_problem(schedule)
    if len(fields) not in (5, 6, 7):
        return (
            "expected 5 fields (minute hour day month weekday), 6 (and second) or 7"
            f" (and second, year), got {len(fields)} in {schedule!r}"
        )
    for position, (text, field) in enumerate(
        zip(fields, _FIELDS[: len(fields)], strict=True), start=1
    ):
        try:
            _check_field(text, field)
        except _Refused as refused:
            return f"{refused} (field {position} of {schedule!r})"
    return None


def _preset_problem(schedule: str) -> str:
    word = schedule.strip()
    if word != schedule and cron_problem(word) is None:
        return f"write the preset {word!r} without spaces around it"
    if word.lower() in AIRFLOW_PRESETS:
        return (
            f"write {word.lower()!r} in lower case: Airflow knows this preset only so"
        )
    known = (*AIRFLOW_PRESETS, *CRONITER_PRESETS)
    hint = difflib.get_close_matches(word.lower(), known, n=1)
    if hint:
        return f"{word!r} is not a preset Airflow knows; did you mean {hint[0]!r}?"
    return f"{word!r} is not a preset Airflow knows; use one of {', '.join(known)}"


def _digits(text: str) -> int | None:
    """``text`` as a number if it is ASCII digits (all croniter reads as a number)."""
    return _int(text) if text.isascii() and text.isdigit() else None


def _int(digits: str) -> int:
    """Python reads no number of over 4,300 digits, and so neither does croniter."""
    try:
        return int(digits)
    except ValueError:
        raise _Refused(f"a number of {len(digits):,} digits is too long") from None


def _check_field(text: str, field: _Field) -> None:
    """Refuse what croniter refuses in one field: ``R``/``H``, ``?``, then each list item."""
    if random := _RANDOM.fullmatch(text):
        _check_random(random, field)
        return
    if "?" in text:
        if text != "?" or field not in (_DAY, _WEEKDAY):
            raise _Refused("'?' stands alone, and only for the day or the weekday")
        return
    items = text.split(",")
    if "" in items:
        raise _Refused(f"{text!r} has an empty list item")
    if field is _DAY and len(items) > 1:
        if nearest := next(filter(_NEAREST_WEEKDAY.fullmatch, items), None):
            raise _Refused(f"{nearest!r} (nearest weekday) must be the only day")
    if field is _WEEKDAY:
        _check_weekdays(items)
    else:
        for item in items:
            _values(item, field)


def _check_random(random: re.Match[str], field: _Field) -> None:
    """``R``, ``R/n``, ``R(a-b)`` and ``R(a-b)/n`` pick a random value each time the DAG
    file is parsed; ``H`` needs a hash id, which Airflow does not give croniter."""
    kind, start, end, step = random.groups()
    if kind == "h":
        raise _Refused(
            "H (a hashed value) needs a hash id, which Airflow does not pass"
        )
    if start is not None:
        if _int(start) >= _int(end):
            raise _Refused(f"R({start}-{end}) needs a range from low to high")
        for bound in start, end:
            field.check(field.number(bound))
    if step is not None and _int(step) == 0:
        raise _Refused("a step of 0 never advances; use */1 or *")


def _check_weekdays(items: list[str]) -> None:
    """Each weekday, ``N#k`` (the k-th N of the month) and ``LN`` (the last N); croniter
    refuses plain days beside those forms unless the plain ones are among them or the
    field names all seven days."""
    plain: set[int | str] = set()
    special: set[int | str] = set()
    for item in items:
        if nth := _NTH_WEEKDAY.fullmatch(item):
            if not 1 <= _int(nth[2]) <= 5:
                raise _Refused(f"in {item!r} the week after '#' must be 1-5")
            special |= _values(nth[1], _WEEKDAY)
        elif last := _LAST_WEEKDAY.fullmatch(item):
            special |= _values(last[1], _WEEKDAY)
        elif item == "l" or (item.endswith("l") and item[:-1].isdigit()):
            raise _Refused(f"{item!r}: the last N-day of a month is LN, as L5 (Friday)")
        else:
            plain |= _values(item, _WEEKDAY)
    if special and plain - special - {"*"} and len(plain | special) != 7:
        raise _Refused(
            "plain weekdays cannot be listed beside N#k or LN weekdays; use one form"
        )


def _values(item: str, field: _Field) -> set[int | str]:
    """The values one list item stands for, as croniter expands it (``'*'`` is any)."""
    if item == "*" or (field is _DAY and item == "l"):
        return {item}
    if field is _DAY and (nearest := _NEAREST_WEEKDAY.fullmatch(item)):
        day = _int(nearest[1] or nearest[2])
        _DAY.check(day)
        return {day}
    base, slash, step_text = item.partition("/")
    step = _digits(step_text) if slash else 1
    if step is None:
        raise _Refused(f"{step_text!r} is not a step; write a whole number, as in */5")
    if step == 0:
        raise _Refused("a step of 0 never advances; use */1 or *")
    if base == "*" and slash:
        return set(range(field.low, field.high + 1, step))
    start_text, dash, end_text = base.partition("-")
    if dash and not start_text:
        raise _Refused(f"{item!r} is not a value: cron has no negative numbers")
    if not start_text or (dash and not end_text):
        raise _Refused(f"{item!r} is missing a value")
    if field is _DAY and start_text == "l":
        raise _Refused(f"in {item!r}, L (the last day) cannot start a range or a step")
    start = field.number(start_text)
    if not dash:
        field.check(start)
        if not slash or start == field.high:
            return {start}
        return set(range(start, field.high + 1, step))
    end = 31 if field is _DAY and end_text == "l" else field.number(end_text)
    if max(start, end) > field.high:
        field.check(max(start, end))
    if start == end:  # croniter reads an equal range as the whole field, even 0-0
        return set(range(field.low, field.high + 1, step))
    field.check(start)
    if start < end:
        return set(range(start, end + 1, step))
    # A range that wraps (sat-mon, nov-feb). croniter resumes the step after the wrap
    # one value late; the days a weekday field holds decide whether N#k may join them.
    before = range(start, field.high + 1, step)
    overshoot = before[-1] + step - field.high
    skip = overshoot if overshoot > 1 else 0
    return {*before, *range(field.low + skip, end + 1, step)}
