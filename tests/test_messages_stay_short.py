"""A problem is one readable line: control characters escaped, long values cut short."""

from __future__ import annotations

import json

from conftest import VALID, compile_yaml, dagfactory


def test_a_file_name_with_a_line_break_stays_on_its_line(tmp_path):
    name = "bad\nname\x1b[31m.yaml"
    (tmp_path / name).write_text("dag: [")
    for output_format in ("text", "github"):
        result = dagfactory("validate", "--format", output_format, name, cwd=tmp_path)
        output = result.stdout + result.stderr
        assert "bad\\nname\\x1b[31m.yaml" in output
        assert "\x1b" not in output
        first = output.splitlines()[0]
        assert first.startswith(
            "bad\\nname\\x1b[31m.yaml:1:6: error:" if output_format == "text" else "::"
        ), first
    result = dagfactory("validate", "--format", "json", name, cwd=tmp_path)
    assert json.loads(result.stdout)[0]["file"] == name  # JSON escapes on its own


def test_a_long_value_is_quoted_by_its_start_and_its_length():
    long = "x" * 100_000
    problems = compile_yaml(
        VALID.replace("  bash_command:", f"  ? x{long}\n  : 1\n  bash_command:")
    )
    problems += compile_yaml(
        VALID.replace("task_id: choose", f"task_id: choose\n  mode: {long}")
    )
    problems += compile_yaml(
        VALID.replace(
            "start_date: 2024-01-01", f"timezone: {long}\n  start_date: 2024-01-01"
        )
    )
    assert len(problems) == 3 and all(len(p) < 1000 for p in problems), problems[0][:9]
    assert any(f"'{'x' * 80}'… (100,001 characters)" in p for p in problems)
    assert any(f"'{'x' * 80}'… (100,000 characters)" in p for p in problems)
