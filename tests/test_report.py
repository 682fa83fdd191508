"""The reporters, in process: one outcome printed in text, JSON and GitHub formats."""

from __future__ import annotations

import io
import json

import pytest

from dagfactory.problems import EXIT_PROBLEMS, Problem
from dagfactory.report import Outcome, Reporter, error_summary

LOCATED = Problem("c.yaml", 5, 12, ("download", "task_id"), "expected a task id")
IN_FILE = Problem.in_file("out/old.py", "stale: its config is gone", severity="warning")
GENERAL = Problem.general(
    "DAG run of demo ended in state failed", detail="Traceback\n  boom"
)
OUTCOME = Outcome(
    EXIT_PROBLEMS,
    [LOCATED, IN_FILE, GENERAL],
    output=["wrote out/demo.py\n"],
    notes=["1 error in 1 file; nothing written"],
)


def printed(outcome: Outcome, output_format: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = Reporter(output_format, stdout, stderr).report(outcome)
    return code, stdout.getvalue(), stderr.getvalue()


def test_text_puts_results_on_stdout_and_problems_with_their_detail_on_stderr():
    code, stdout, stderr = printed(OUTCOME, "text")
    assert code == EXIT_PROBLEMS
    assert stdout == "wrote out/demo.py\n"
    assert stderr.splitlines() == [
        "c.yaml:5:12: error: download.task_id: expected a task id",
        "out/old.py: warning: stale: its config is gone",
        "Traceback",
        "  boom",
        "dagfactory: error: DAG run of demo ended in state failed",
        "1 error in 1 file; nothing written",
    ]


def test_json_is_one_array_on_stdout_and_everything_else_on_stderr():
    code, stdout, stderr = printed(OUTCOME, "json")
    assert code == EXIT_PROBLEMS
    located, in_file, general = json.loads(stdout)
    assert located == {
        "file": "c.yaml",
        "line": 5,
        "column": 12,
        "spec_path": "download.task_id",
        "message": "expected a task id",
        "severity": "error",
        "detail": "",
    }
    assert (in_file["file"], in_file["line"], in_file["severity"]) == (
        "out/old.py",
        None,
        "warning",
    )
    assert (general["file"], general["detail"]) == (None, "Traceback\n  boom")
    assert stderr == "wrote out/demo.py\n1 error in 1 file; nothing written\n"


def test_a_clean_outcome_in_json_is_an_empty_array():
    outcome = Outcome(output=["6 configs valid\n"])
    assert printed(outcome, "json") == (0, "[]\n", "6 configs valid\n")


def test_github_annotates_each_problem_as_precisely_as_it_is_located():
    _, stdout, _ = printed(OUTCOME, "github")
    assert stdout.splitlines() == [
        "wrote out/demo.py",
        "::error file=c.yaml,line=5,col=12,title=dagfactory download.task_id::"
        "download.task_id: expected a task id",
        "::warning file=out/old.py,title=dagfactory::stale: its config is gone",
        "::error title=dagfactory::DAG run of demo ended in state failed%0ATraceback%0A  boom",
    ]


def test_a_listed_outcome_shows_its_problems_once_in_text_but_always_in_json():
    outcome = Outcome(EXIT_PROBLEMS, output=["error  out/old.py\n"], listed=[IN_FILE])
    assert printed(outcome, "text")[2] == ""
    assert json.loads(printed(outcome, "json")[1])[0]["file"] == "out/old.py"


def test_problems_not_in_the_listing_are_printed_after_it_in_text():
    outcome = Outcome(
        EXIT_PROBLEMS,
        [LOCATED],
        output=["error  out/old.py\n"],
        listed=[IN_FILE],
    )
    _, stdout, stderr = printed(outcome, "text")
    assert (stdout, stderr) == (
        "error  out/old.py\n",
        "c.yaml:5:12: error: download.task_id: expected a task id\n",
    )
    files = [problem["file"] for problem in json.loads(printed(outcome, "json")[1])]
    assert files == ["out/old.py", "c.yaml"]
    annotations = printed(outcome, "github")[1].splitlines()[1:]
    assert [line.split(",")[0] for line in annotations] == [
        "::warning file=out/old.py",
        "::error file=c.yaml",
    ]


@pytest.mark.parametrize(
    ("problems", "summary"),
    [
        ([LOCATED], "1 error in 1 file; nothing written"),
        ([LOCATED, LOCATED, IN_FILE], "3 errors in 2 files; nothing written"),
    ],
)
def test_error_summary_counts_errors_and_files(problems, summary):
    assert error_summary(problems) == summary


def test_colour_marks_the_location_and_the_severity():
    from dagfactory.report import text_line

    line = text_line(IN_FILE, colour=True)
    assert (
        line
        == "\033[1mout/old.py:\033[0m \033[33mwarning:\033[0m stale: its config is gone"
    )
