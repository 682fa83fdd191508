"""Fuzzing: random and mutated bytes through load, validate, model and render.

No exception gets out of the loader or the validator: each says its problems in its
result; a config the validator accepts renders to code that compiles. The inputs are
drawn from a fixed seed, so a failure names an input that can be replayed.
"""

from __future__ import annotations

import random
from collections import Counter

import yaml

from conftest import ROOT, VALID
from dagfactory.compile import compile_document
from dagfactory.compile import load as loader
from dagfactory.compile.load import load_bytes

SEED = 20240101
MUTANTS_PER_SEED = 800
RANDOM_INPUTS = 1000

SEEDS = [path.read_bytes() for path in sorted((ROOT / "configs").rglob("*.yaml"))]
SEEDS.append(VALID.encode())

# Fragments that reach the corners of YAML and of the schema.
TOKENS = [
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"<<: [*a, *a]\n",
    b"&a {<<: *a}",
    b"!!int ",
    b"!!float ",
    b"!!bool ",
    b"!!str ",
    b"!!null ",
    b"!!binary ",
    b"!!python/object/apply:os.system ",
    b"!!python/name:os.system",
    b"!custom ",
    b"[",
    b"]",
    b"{",
    b"}",
    b"- ",
    b": ",
    b"? ",
    b",",
    b"\t",
    b"  ",
    b"\n",
    b"\r\n",
    b'"',
    b"'",
    b"|\n",
    b">-\n",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n",
    b"%TAG ! tag:x:\n",
    b"#",
    b"\x00",
    b"\x07",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\xc3",
    b"\xe2\x80\xa8",
    b"\\u0000",
    b'"\\x85"',
    b"~",
    b"null",
    b"yes",
    b"no",
    b"on",
    b"1e3",
    b"010",
    b"0x1F",
    b".nan",
    b"-.inf",
    b"9" * 5000,
    b"1:20:30",
    b"2024-02-30",
    b"{{ ds }}",
    b"{% raw %}",
    b'""")\nimport os\n#',
    b"dag_id",
    b"task_id",
    b"op_kwargs",
    b"python_callable: a:b",
    b"bash_command: x",
    b"models: []",
    b"mode: min",
    b"class: 1",
    b"!env ",
    b'!env "${HOME}"',
    b"${NO_SUCH_VARIABLE:-x}",
    b"count: 99999999999",
    b"matrix: {a: [1, 2], b: [x]}",
    b"doc_md_file: ../../etc/passwd",
    b"params: {p: {default: 1, minimum: {}}}",
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Apply one to four byte-level edits: flips, inserted tokens, cuts, copies, swaps."""
    for _ in range(rng.randint(1, 4)):
        position = rng.randint(0, len(data))
        kind = rng.randrange(6)
        if kind == 0 and data:
            index = min(position, len(data) - 1)
            data = data[:index] + bytes([rng.randrange(256)]) + data[index + 1 :]
        elif kind == 1:
            data = data[:position] + rng.choice(TOKENS) + data[position:]
        elif kind == 2:
            data = data[:position] + data[position + rng.randint(1, 40) :]
        elif kind == 3:
            start = rng.randint(0, len(data))
            chunk = data[start : start + rng.randint(1, 80)]
            data = data[:position] + chunk + data[position:]
        elif kind == 4:
            lines = data.split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        else:
            lines = data.split(b"\n")
            i = rng.randrange(len(lines))
            lines[i] = b" " * rng.randint(0, 6) + lines[i].lstrip()
            data = b"\n".join(lines)
    return data


VALUES = [
    None,
    True,
    False,
    0,
    -1,
    10**30,
    1.5,
    float("nan"),
    float("inf"),
    "",
    "x",
    "a\nb",
    "demo\n",
    "class",
    "os:system",
    "a:b",
    "{{ ds }}",
    '"""',
    "\x00",
    "\u2028",
    "@daily",
    "2024-02-30",
    "0 6 * * *",
    "5m",
    [],
    {},
    [1, "a"],
    ["a", "a"],
    {"k": 1},
    {"class": [None]},
]


def replace_value(data: bytes, rng: random.Random) -> bytes:
    """Swap one value of a (valid) config for an odd one, so the validator gets busy."""
    config = yaml.safe_load(data)
    node = config
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = rng.choice(keys)
        if (
            rng.random() < 0.3
            or not node[key]
            or not isinstance(node[key], dict | list)
        ):
            node[key] = rng.choice(VALUES)
            return yaml.safe_dump(config, allow_unicode=rng.random() < 0.5).encode()
        node = node[key]


def random_bytes(rng: random.Random) -> bytes:
    alphabet = rng.choice(
        [bytes(range(256)), b"ab:- \n[]{}&*!|>'\"#,?%@`\t0123456789."]
    )
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))


def inputs() -> list[bytes]:
    rng = random.Random(SEED)
    found = [
        replace_value(seed, rng) if index % 3 == 0 else mutate(seed, rng)
        for seed in SEEDS
        for index in range(MUTANTS_PER_SEED)
    ]
    return found + [random_bytes(rng) for _ in range(RANDOM_INPUTS)]


def outcome(raw: bytes) -> str:
    """How far ``raw`` got; any exception propagates."""
    loaded = load_bytes(raw, "fuzz.yaml")
    if loaded.document is None:
        assert loaded.problems and all(
            str(error).startswith("fuzz.yaml:") for error in loaded.problems
        )
        assert all("\n" not in str(error) for error in loaded.problems)
        return "rejected by the loader"
    result = compile_document(loaded.document)
    if result.compiled is None:
        assert all("\n" not in str(error) for error in result.problems)
        return "rejected by the validator"
    compile(result.compiled.content, "fuzz.py", "exec")
    return "rendered"


def test_no_input_escapes_as_an_unhandled_exception():
    outcomes: Counter[str] = Counter()
    escaped = []
    for raw in inputs():
        try:
            outcomes[outcome(raw)] += 1
        except Exception as exc:  # the property under test: nothing else gets out
            escaped.append((raw, repr(exc)))
    total = sum(outcomes.values()) + len(escaped)
    print(f"\nfuzz: {total} inputs, {dict(outcomes)}, {len(escaped)} escaped")
    assert escaped == [], escaped[:3]
    assert total == len(SEEDS) * MUTANTS_PER_SEED + RANDOM_INPUTS
    # the mutations reach every stage, not only the YAML parser
    assert min(outcomes.values()) >= 50, outcomes
    assert len(outcomes) == 3, outcomes


def _loaded(load, text: str) -> object:
    loaded = load(text, "fuzz.yaml")
    if loaded.document is None:
        return [str(error) for error in loaded.problems]
    return loaded.document.data


def test_libyaml_and_pure_python_parsers_agree():
    """The libyaml fast path gives the data, or the errors, that PyYAML's own parser gives.

    Tabs are left out: inside plain scalars libyaml accepts some that PyYAML's scanner
    refuses (and words the errors differently), a known difference of the two parsers.
    """
    assert loader.CParser is not None  # the fast path is what is under test
    compared = 0
    for raw in inputs()[::4]:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            continue
        if "\t" in text:
            continue
        fast = _loaded(loader.load_text, text)
        assert fast == _loaded(loader._load_text_in_python, text), raw
        compared += 1
    assert compared > 1000
