"""Loading YAML: plain data, marks, and every way a file can be broken or hostile."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import VALID, cut_to
from dagfactory.compile import load as loader
from dagfactory.compile.document import Mark, walk
from dagfactory.compile.load import MAX_BYTES, load_bytes, load_text


def errors_of(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        loaded = load_bytes(text, "f.yaml")
    else:
        loaded = load_text(text, "f.yaml")
    assert loaded.document is None
    return [str(error) for error in loaded.problems]


def test_values_and_marks():
    doc = load_text(
        "dag:\n  dag_id: x\n  tags: [a, 'b']\n  start_date: 2020-01-01\n", "f.yaml"
    ).document
    assert doc.data == {
        "dag": {"dag_id": "x", "tags": ["a", "b"], "start_date": "2020-01-01"}
    }
    assert doc.locate(("dag", "dag_id")) == Mark(2, 11)
    assert doc.locate(("dag", "dag_id"), key=True) == Mark(2, 3)
    assert doc.locate(("dag", "tags", 1)) == Mark(3, 13)
    assert doc.locate(("dag", "missing", 3)) == Mark(2, 3)  # nearest written parent
    assert doc.plain_text[("dag", "tags", 0)] == "a"
    assert ("dag", "tags", 1) not in doc.plain_text  # quoted


def walk_recursively(value, path=()):
    """walk's definition: each value, then (recursively) its items in order."""
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from walk_recursively(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from walk_recursively(child, (*path, index))


LOADED_DATA = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
)


@given(LOADED_DATA)
def test_walk_visits_each_container_before_its_items_in_order(data):
    assert list(walk(data)) == list(walk_recursively(data))
    assert list(walk(data, ("dag",))) == list(walk_recursively(data, ("dag",)))


def test_timestamps_stay_as_written():
    assert load_text("d: 2020-1-1\n", "f.yaml").document.data == {"d": "2020-1-1"}


def test_merge_keys_are_supported():
    doc = load_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", "f.yaml").document
    assert doc.data["d"] == {"x": 1, "y": 3}


def test_byte_order_mark_is_accepted():
    assert load_bytes(b"\xef\xbb\xbfa: 1\n", "f.yaml").document.data == {"a": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: 1\nb: 2\na: 3\n",
            "f.yaml:3:1: error: a: duplicate key 'a' (first defined on line 1)",
        ),
        (
            "on: 1\n",
            "f.yaml:1:1: error: (top level): the key 'on' is read by YAML as bool True",
        ),
        ("a:\n  1: x\n", "f.yaml:2:3: error: a: the key '1' is read by YAML as int 1"),
        (
            "x: !!python/object/apply:os.system [echo hi]\n",
            "f.yaml:1:4: error: x: the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
        ),
        ("x: !custom 1\n", "f.yaml:1:4: error: x: the tag '!custom' is not allowed"),
        ("", "f.yaml:1:1: error: (top level): the file is empty"),
        ("# only a comment\n", "f.yaml:1:1: error: (top level): the file is empty"),
        (
            "- a\n- b\n",
            "f.yaml:1:1: error: (top level): the top level must be a mapping",
        ),
        (
            "just text\n",
            "f.yaml:1:1: error: (top level): the top level must be a mapping",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "f.yaml:2:1: error: (top level): invalid YAML: found a second YAML document",
        ),
        (
            "a:\n\tb: 1\n",
            "f.yaml:2:1: error: (top level): invalid YAML: line 2 is indented with a tab; "
            "indent with spaces (YAML does not allow tabs there) [parser: found character "
            "'\\t' that cannot start any token",
        ),
        (
            "a: [1, 2\n",
            "f.yaml:1:4: error: (top level): invalid YAML: the '[' on line 1 is never "
            "closed; end the list with ']' [parser: expected ',' or ']', but got "
            "'<stream end>' (while parsing a flow sequence) at 2:1]",
        ),
        (
            "a: b\nc: \x00\n",
            "f.yaml:2:4: error: (top level): the control character U+0000 is not allowed",
        ),
        (
            "? [a, b]\n: 1\n",
            "f.yaml:1:3: error: (top level): a key must be a plain name",
        ),
        ("a: !!int abc\n", "f.yaml:1:4: error: a: 'abc' is not a valid int"),
        ("a: !!float x\n", "f.yaml:1:4: error: a: 'x' is not a valid float"),
        ("a: !!bool maybe\n", "f.yaml:1:4: error: a: 'maybe' is not a valid bool"),
        (
            "a:\n  - " + "7" * 5000 + "\n",
            "f.yaml:2:5: error: a[0]: '7777777777777777777777777777777777777777...' (5,000 characters) is not a valid int",
        ),
        (
            "a: &a {<<: *a}\n",
            "f.yaml:1:4: error: a: nesting is too deep (more than 50 levels",
        ),
        (
            "x: !!python/object:os.system {a: 1}\n",
            "f.yaml:1:4: error: x: the tag 'tag:yaml.org,2002:python/object:os.system' is not allowed",
        ),
        (
            "x: !!python/name:os.system\n",
            "f.yaml:1:4: error: x: the tag 'tag:yaml.org,2002:python/name:os.system' is not allowed",
        ),
        (
            "x:\n  - !!python/module:os\n",
            "f.yaml:2:5: error: x[0]: the tag 'tag:yaml.org,2002:python/module:os' is not allowed",
        ),
        (
            "!!python/object/apply:os.system [echo hi]: 1\n",
            "f.yaml:1:1: error: (top level): a key must be a plain name",
        ),
        (
            "x: !!binary aGk=\n",
            "f.yaml:1:4: error: x: the tag 'tag:yaml.org,2002:binary'",
        ),
        ("x: !!set {a}\n", "f.yaml:1:4: error: x: the tag 'tag:yaml.org,2002:set'"),
    ],
)
def test_broken_yaml_is_reported_at_its_position(text, expected):
    found = errors_of(text)
    assert cut_to(found, [expected]) == [expected], found


def test_all_errors_of_a_file_at_once():
    messages = errors_of("a: 1\na: 2\nb: 1\nb: 2\n")
    assert [m.split(": error")[0] for m in messages] == ["f.yaml:2:1", "f.yaml:4:1"]


def test_non_utf8_bytes_are_located():
    (message,) = errors_of(b"a: 1\nb: caf\xe9\n")
    assert message.startswith(
        "f.yaml:2:7: error: (top level): byte 0xe9 is not valid UTF-8"
    )


def test_size_limit():
    (message,) = errors_of(b"a: 1\n" + b"#" * MAX_BYTES)
    assert "configs are limited to 1,000,000 bytes" in message


def test_alias_bomb_is_stopped_quickly():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join([f'*{previous}'] * 10)}]")
    started = time.perf_counter()
    (message,) = errors_of("\n".join(lines) + "\n")
    assert "aliases expanding without bound" in message
    assert time.perf_counter() - started < 10  # a bound on the attack, not a benchmark


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # closed: reported at the 51st level, by its path
        (
            "a: " + "[" * 100 + "]" * 100,
            "f.yaml:1:54: error: a"
            + "[0]" * 50
            + ": nesting is too deep (more than 50 levels are not supported)",
        ),
        # never closed: reported for the file as a whole
        (
            "a: " + "[" * 100_000,
            "f.yaml:1:1: error: (top level): nesting is too deep (more than 50 levels are not supported)",
        ),
    ],
)
def test_deep_nesting(text, expected):
    assert errors_of(text + "\n") == [expected]


def test_a_merged_value_that_a_key_overrides_leaves_no_trace():
    """Only values that end up in the data have marks and plain text to check."""
    doc = load_text(
        "base: &b {k: {z: on}, l: [yes], m: 1}\nd:\n  k: {w: 1}\n  <<: *b\n  l: 2\n",
        "f.yaml",
    ).document
    assert doc.data["d"] == {"m": 1, "k": {"w": 1}, "l": 2}
    for path in doc.plain_text:
        value = doc.data
        for part in path:
            value = value[part]  # every recorded path exists in the data
    assert ("d", "k", "z") not in doc.plain_text
    assert ("d", "l", 0) not in doc.plain_text


def test_earlier_merge_sources_win():
    doc = load_text(
        "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n", "f.yaml"
    ).document
    assert doc.data["c"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    "text",
    [
        VALID,
        "dé: 😀é\nb: [é, 😀, x]\nc: {é: 1, z: 'q'}\nd: |\n  block\ne: &x {k: no}\nf: *x\n",
    ],
)
def test_libyaml_and_pure_python_parsers_load_the_same(text):
    """Whichever parser PyYAML has, the data, marks and plain-text record are the same."""
    fast = loader.load_text(text, "f.yaml").document
    pure = loader._load_text_in_python(text, "f.yaml").document
    assert loader.CParser is not None  # the fast path is what this compares
    assert (fast.data, fast.marks, fast.key_marks, fast.plain_text) == (
        pure.data,
        pure.marks,
        pure.key_marks,
        pure.plain_text,
    )


def test_libyaml_composes_only_texts_too_shallow_to_crash_it():
    """libyaml's composer recurses in C; the deepest text it is given fits in a small stack.

    Run in a child process on a 128 KB thread stack (musl's default): a crash would end
    the child, not the test run. Every shape of nesting reaches MAX_C_NESTING levels and
    is reported.
    """
    code = textwrap.dedent(
        """
        import threading
        from dagfactory.compile import load as loader

        n = loader.MAX_C_NESTING
        texts = [
            "a: " + "[" * (n - 1) + "]" * (n - 1),
            "- " * n + "x",
            "{a: " * (n // 2) + "b" + "}" * (n // 2),
        ]
        messages = []

        def load_all():
            for text in texts:
                assert loader._shallow(text)
                assert not loader._shallow("[" + text)
                loaded = loader.load_text(text, "f.yaml")
                if loaded.document is None:
                    messages.append(loaded.problems[0].message)

        threading.stack_size(128 * 1024)
        thread = threading.Thread(target=load_all)
        thread.start()
        thread.join()
        print(len([m for m in messages if m.startswith("nesting is too deep")]))
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "3"
