"""A YAML syntax error says what the mistake most likely is, where it is, then the
parser's own words and position: one case per common cause."""

from __future__ import annotations

import pytest

from dagfactory.compile.load import load_text

CASES = {
    "a list item's key lined up with its dash": (
        "models:\n  - task_id: a\n  op_kwargs: {x: 1}\n",
        "3:3",
        "the key 'op_kwargs' on line 3 lines up with the '-' of the list item on "
        "line 2; indent it to column 5, under 'task_id', to put it in that item "
        "[parser: expected <block end>, but found '?' (while parsing a block "
        "collection) at 3:3]",
    ),
    "a list item's key indented past its first key": (
        "models:\n  - task_id: a\n      op_kwargs: {x: 1}\n",
        "3:7",
        "the key 'op_kwargs' on line 3 is indented more than 'task_id' above it, "
        "whose value is already given, so YAML reads it as part of that value; indent "
        "it to column 5, as 'task_id' [parser: mapping values are not allowed here "
        "at 3:16]",
    ),
    "a key that left its block": (
        "dag:\n    dag_id: x\n  schedule: null\n",
        "3:3",
        "the key 'schedule' on line 3 is at column 3, where no block above it has its "
        "keys; indent it to column 5 or column 1, as the keys of the block it belongs "
        "to [parser: expected <block end>, but found '<block mapping start>' (while "
        "parsing a block mapping) at 3:3]",
    ),
    "a tab in the indentation": (
        "dag:\n  dag_id: x\n  \tschedule: y\n",
        "3:3",
        "line 3 is indented with a tab; indent with spaces (YAML does not allow tabs "
        "there) [parser: found character '\\t' that cannot start any token (while "
        "scanning for the next token) at 3:3]",
    ),
    "no space after a colon": (
        "dag:\n  dag_id:x\n  schedule: y\n",
        "2:9",
        "put a space after the colon of 'dag_id' on line 2 ('dag_id: x'): without "
        "one, 'dag_id:x' is plain text, not a key and its value [parser: mapping "
        "values are not allowed here at 3:11]",
    ),
    "no space after a colon before a list": (
        "dag:\n  dag_id: x\n  tags:[a]\n",
        "3:7",
        "put a space after the colon of 'tags' on line 3 ('tags: [a]'): without one, "
        "'tags:[a]' is plain text, not a key and its value [parser: could not find "
        "expected ':' (while scanning a simple key) at 4:1]",
    ),
    "an unclosed quote": (
        'dag:\n  dag_id: "x\n  schedule: y\n',
        "2:11",
        'the quote (") that opens the value on line 2 is never closed; end the value '
        'with " [parser: found unexpected end of stream (while scanning a quoted '
        "scalar) at 4:1]",
    ),
    "an unclosed bracket": (
        "dag:\n  tags: [a, b\n  schedule: y\n",
        "2:9",
        "the '[' on line 2 is never closed; end the list with ']' [parser: expected "
        "',' or ']', but got ':' (while parsing a flow sequence) at 3:11]",
    ),
    "an unclosed brace": (
        "dag:\n  op_kwargs: {a: [1, 2], b: 1\n  schedule: y\n",
        "2:14",
        "the '{' on line 2 is never closed; end the mapping with '}' [parser: "
        "expected ',' or '}', but got ':' (while parsing a flow mapping) at 3:11]",
    ),
}


@pytest.mark.parametrize(("text", "place", "hint"), CASES.values(), ids=list(CASES))
def test_each_common_mistake_is_explained_at_its_place(text, place, hint):
    (problem,) = load_text(text, "c.yaml").problems
    assert f"{problem.line}:{problem.column}" == place
    assert problem.message == f"invalid YAML: {hint}"


def test_an_error_no_rule_explains_keeps_the_parsers_words_and_place():
    (problem,) = load_text("a: 1\n---\nb: 2\n", "c.yaml").problems
    assert (problem.line, problem.column) == (2, 1)
    assert problem.message.startswith("invalid YAML: found a second YAML document")
    (problem,) = load_text("a: *nowhere\n", "c.yaml").problems
    assert (problem.line, problem.column) == (1, 4)
    assert problem.message == "invalid YAML: found undefined alias 'nowhere'"
