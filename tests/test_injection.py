"""No config can inject code: hostile text in every free-text field stays data.

Hypothesis drives arbitrary text (quotes, triple quotes, backslashes, line breaks, NUL
and other control characters, unicode line separators, lone surrogates, Jinja and
Python syntax) into every field that takes free text, through the real path:
a dict, ``yaml.safe_dump``, then dagfactory's one compile path (load, validate,
spec, render). A config is either refused with located errors, or renders to a
module with exactly the template's statements whose literals equal the input; in
Airflow, the DAG and its tasks carry the input exactly.
"""

from __future__ import annotations

import ast
import copy
import keyword
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import dagfactory
from conftest import airflow_dagbag, compile_yaml, compiled

FRAGMENTS = [
    '"',
    "'",
    '"""',
    "'''",
    "\\",
    "\\n",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffe",
    "\udcff",
    "\ud800",
    "{{ ds }}",
    "{{",
    "}}",
    "{%",
    "%}",
    "{% raw %}",
    "{#",
    "#}",
    "import os",
    "__import__('os')",
    "exec(",
    "eval(",
    "class",
    "def",
    "lambda",
    "None",
    ")",
    "(",
    ",",
    ":",
    "#",
    "\\x41",
    "\\u0041",
    "\\N{BULLET}",
    "f'{x}'",
    "${HOME}",
    "$(rm -rf /)",
    "`id`",
    "; ",
    "'''\nimport os\n'''",
]
IDENTIFIERS = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True),
    st.sampled_from(
        keyword.kwlist + ["__class__", "__import__", "self", "ti", "kwargs"]
    ),
)


def free_text(min_size: int = 0, max_size: int = 60) -> st.SearchStrategy[str]:
    """Any text: plain unicode, control and format characters, and hostile fragments."""
    chars = st.characters(codec=None)  # every code point but surrogates
    odd = st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp", "Co"])
    pieces = st.one_of(chars, odd, st.sampled_from(FRAGMENTS))
    return (
        st.lists(pieces, max_size=max_size)
        .map("".join)
        .filter(lambda text: min_size <= len(text) <= max_size)
    )


KWARG_VALUES = st.one_of(
    free_text(),
    st.lists(free_text(max_size=20), max_size=3),
    st.dictionaries(free_text(max_size=20), free_text(max_size=20), max_size=2),
)


def make_config(
    description: str,
    bash_command: str,
    tags: list[str],
    op_kwargs: dict[str, Any],
    owner: str,
    queue: str,
    pool: str,
    doc_md: str,
    param_default: str,
    param_description: str,
    link_owner: str,
    on_pass_command: str,
    publish_kwargs: dict[str, Any],
) -> dict[str, Any]:
    return {
        "dag": {
            "dag_id": "prop",
            "description": description,
            "start_date": "2024-01-01",
            "tags": tags,
            "default_args": {"owner": owner, "queue": queue, "pool": pool},
            "doc_md": doc_md,
            "params": {
                "p": {"default": param_default, "description": param_description}
            },
            "owner_links": {link_owner: "mailto:ml@example.org"},
        },
        "download": {"task_id": "fetch", "bash_command": bash_command},
        "trainers": {
            "group_id": "train",
            "xcom_key": "score",
            "python_callable": "pkg.models:train",
            "models": [{"task_id": "a", "op_kwargs": op_kwargs}],
        },
        "chooser": {
            "task_id": "choose",
            "threshold": 0.5,
            "on_pass": {"task_id": "deploy", "bash_command": on_pass_command},
            "on_fail": {"task_id": "alert", "bash_command": "echo no"},
        },
        "publish": {
            "task_id": "announce",
            "python_callable": "pkg.reports:publish",
            "op_kwargs": publish_kwargs,
        },
    }


FIELDS = st.fixed_dictionaries(
    {
        "description": free_text(),
        "bash_command": free_text(min_size=1),
        "tags": st.lists(free_text(min_size=1, max_size=100), max_size=3, unique=True),
        "op_kwargs": st.dictionaries(IDENTIFIERS, KWARG_VALUES, max_size=4),
        "owner": free_text(min_size=1),
        "queue": free_text(min_size=1),
        "pool": free_text(min_size=1),
        "doc_md": free_text(),
        "param_default": free_text(),
        "param_description": free_text(),
        "link_owner": free_text(min_size=1),
        "on_pass_command": free_text(min_size=1),
        "publish_kwargs": st.dictionaries(IDENTIFIERS, KWARG_VALUES, max_size=2),
    }
)
NASTY = {
    "description": '"""\nimport os\nos.system("id")\n"""',
    "bash_command": "echo {{ ds }} '\\'' \"\x00\" \u2028 $(id)",
    "tags": ["'", '"', "\\"],
    "op_kwargs": {"class": "{% raw %}", "lambda": ["\r\n"], "def": {"\n": "\x85"}},
    "owner": "')\nimport os\n#",
    "queue": "\ud800",
    "pool": "{{ var.value.secret }}",
    "doc_md": "# Title\n\n```python\nimport os\n```\n{{ macros }}",
    "param_default": "{{ params.p }}",
    "param_description": "\\'\\\"",
    "link_owner": "a'b\"c\nd",
    "on_pass_command": "rm -rf / # {{ ti }}",
    "publish_kwargs": {"return": '"""', "task_id": "\x00"},
}
KWARG_FIELDS = {"op_kwargs", "publish_kwargs"}  # their top-level keys are identifiers


def with_placeholders(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same fields with every driven text swapped for a unique plain placeholder.

    Returns the placeholder fields and what each placeholder stands for. Top-level
    keyword-argument keys stay (they are identifiers, not free text).
    """
    meaning: dict[str, Any] = {}

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            placeholder = f"placeholder-{len(meaning)}"
            meaning[placeholder] = value
            return placeholder
        if isinstance(value, list):
            return [swap(item) for item in value]
        if isinstance(value, dict):
            return {swap(key): swap(item) for key, item in value.items()}
        return value

    return {
        name: {key: swap(item) for key, item in value.items()}
        if name in KWARG_FIELDS
        else swap(value)
        for name, value in fields.items()
    }, meaning


def skeleton(tree: ast.AST) -> str:
    """The module with every text literal blanked: its statements, calls and names."""
    blank = copy.deepcopy(tree)
    for node in ast.walk(blank):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(blank)


def render_yaml(text: str) -> str | list[str]:
    """Through the real path: the generated source, or every error as printed."""
    result = compile_yaml(text, "f.yaml")
    return result if isinstance(result, list) else result.content


def dump(config: dict[str, Any], allow_unicode: bool) -> tuple[str, dict[str, Any]]:
    """YAML for ``config`` and what it says (PyYAML's dumper may fold raw NEL)."""
    text = yaml.safe_dump(config, allow_unicode=allow_unicode, sort_keys=False)
    meant = yaml.safe_load(text)
    if not allow_unicode:
        assert meant == config  # with escapes, YAML carries any text exactly
    return text, meant


LOCATED_ERROR = re.compile(r"f\.yaml:\d+:\d+: error: [^\n]+")


def check_fields(fields: dict[str, Any], allow_unicode: bool) -> str:
    """The property for one set of fields; returns the outcome, for the statistics."""
    text, meant = dump(make_config(**fields), allow_unicode)
    result = render_yaml(text)
    if isinstance(result, list):
        # Refused: located one-line errors, only for what YAML readers may disagree on.
        assert result and all(LOCATED_ERROR.fullmatch(message) for message in result)
        assert all("YAML readers disagree" in message for message in result), result
        return "refused: YAML 1.1 and 1.2 disagree on an unquoted value"
    placeholders, meaning = with_placeholders(fields)
    baseline = render_yaml(dump(make_config(**placeholders), allow_unicode=False)[0])
    tree, base_tree = ast.parse(result), ast.parse(baseline)
    # Exactly the template's statements, calls, imports and names: text is only data.
    assert skeleton(tree) == skeleton(base_tree)
    # ... and each literal where a placeholder was is exactly the text given.
    meant_fields = _fields_of(meant)
    _, meant_meaning = with_placeholders({name: meant_fields[name] for name in fields})
    assert meant_meaning.keys() == meaning.keys()
    found = {}
    for node, base in zip(ast.walk(tree), ast.walk(base_tree), strict=True):
        if isinstance(base, ast.Constant) and base.value in meaning:
            found[base.value] = node.value
    assert found == meant_meaning
    return "rendered"


def _fields_of(config: dict[str, Any]) -> dict[str, Any]:
    dag, model = config["dag"], config["trainers"]["models"][0]
    (link_owner,) = dag["owner_links"]
    return {
        "description": dag["description"],
        "bash_command": config["download"]["bash_command"],
        "tags": dag["tags"],
        "op_kwargs": model["op_kwargs"],
        **dag["default_args"],
        "doc_md": dag["doc_md"],
        "param_default": dag["params"]["p"]["default"],
        "param_description": dag["params"]["p"]["description"],
        "link_owner": link_owner,
        "on_pass_command": config["chooser"]["on_pass"]["bash_command"],
        "publish_kwargs": config["publish"]["op_kwargs"],
    }


PROPERTY_EXAMPLES = 400
# What the examples held (searched in their repr), so the statistics show the coverage.
HOSTILE_KINDS = {
    "quotes": re.compile(r"\\'|\""),
    "line breaks": re.compile(r"\\n|\\r|\\x85|\\u2028|\\u2029"),
    "NUL or control characters": re.compile(r"\\x[01][0-9a-f]|\\x7f"),
    "lone surrogates": re.compile(r"\\ud[89a-f]"),
    "Jinja braces": re.compile(r"\{\{|\{%|\{#"),
    "Python keywords as kwargs": re.compile(r"'(class|def|lambda|import|None)': "),
}


def test_hostile_text_in_every_field_stays_data():
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=PROPERTY_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @example(fields=NASTY, allow_unicode=True)
    @example(fields=NASTY, allow_unicode=False)
    @given(fields=FIELDS, allow_unicode=st.booleans())
    def check(fields: dict[str, Any], allow_unicode: bool) -> None:
        outcome = check_fields(fields, allow_unicode)
        event(outcome)
        outcomes[outcome] += 1
        driven = repr(fields)
        for kind, sign in HOSTILE_KINDS.items():
            if sign.search(driven):
                outcomes[f"with {kind}"] += 1

    check()
    examples = sum(n for kind, n in outcomes.items() if not kind.startswith("with "))
    print(f"\nproperty (render): {examples} examples, {dict(outcomes)}")
    assert outcomes["rendered"] >= PROPERTY_EXAMPLES // 2, outcomes


def test_a_jinja_looking_value_is_not_rendered_at_render_time():
    fields = {
        **NASTY,
        "description": "{{ 7 * 7 }}{% for x in range(3) %}{{ x }}{% endfor %}",
    }
    source = render_yaml(dump(make_config(**fields), allow_unicode=False)[0])
    assert (
        'description="{{ 7 * 7 }}{% for x in range(3) %}{{ x }}{% endfor %}",' in source
    )
    assert "49" not in source and "012" not in source


AIRFLOW_EXAMPLES = 150


@pytest.mark.airflow
def test_in_airflow_the_dag_carries_the_text_exactly(tmp_path_factory):
    """Loaded by a real DagBag, every attribute equals the text of the config."""
    loaded = Counter()

    @settings(
        max_examples=AIRFLOW_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @example(fields=NASTY)
    @given(fields=FIELDS)
    def check(fields: dict[str, Any]) -> None:
        text, meant = dump(make_config(**fields), allow_unicode=False)
        source = render_yaml(text)
        if isinstance(source, list):
            event("refused: YAML 1.1 and 1.2 disagree on an unquoted value")
            return
        folder = tmp_path_factory.mktemp("dags")
        (folder / "prop.py").write_text(source, encoding="utf-8")
        bag = airflow_dagbag(folder)
        assert bag.import_errors == {}
        dag = bag.dags["prop"]
        assert dag.description == fields["description"]
        assert sorted(dag.tags) == sorted(fields["tags"])
        default_args = {name: fields[name] for name in ("owner", "queue", "pool")}
        assert dag.default_args == default_args
        assert dag.get_task("fetch").bash_command == fields["bash_command"]
        trainer = dag.get_task("train.a")
        assert trainer.op_kwargs == {
            "function": "pkg.models:train",
            "arguments": fields["op_kwargs"],
            "metric_key": "score",
        }
        for task in dag.tasks:
            assert (task.owner, task.queue, task.pool) == tuple(default_args.values())
        assert dag.doc_md == fields["doc_md"]
        assert dag.params["p"] == fields["param_default"]
        assert dag.params.get_param("p").description == fields["param_description"]
        assert dag.owner_links == {fields["link_owner"]: "mailto:ml@example.org"}
        assert dag.get_task("deploy").bash_command == fields["on_pass_command"]
        assert (
            dag.get_task("announce").op_kwargs["arguments"] == fields["publish_kwargs"]
        )
        event("loaded in Airflow")
        loaded["loaded"] += 1

    check()
    print(f"\nproperty (Airflow): {loaded['loaded']} DAGs loaded and compared")
    assert loaded["loaded"] >= AIRFLOW_EXAMPLES // 2


PACKAGE = Path(dagfactory.__file__).parent
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint", "Template"}
FORBIDDEN_ATTRIBUTES = {
    # evaluating text, or loading YAML with Python tags
    "load",
    "load_all",
    "unsafe_load",
    "unsafe_load_all",
    "full_load",
    "full_load_all",
    "Loader",
    "UnsafeLoader",
    "FullLoader",
    "CLoader",
    "CUnsafeLoader",
    "CFullLoader",
    "from_string",
    "Template",
    "system",
    "popen",
    "import_module",
    "literal_eval",
}
# The one import of a module a config names: `dagfactory check` proves each callable
# where a worker would find it, in its Airflow child process, and never calls it.
CHECK_PROBE = PACKAGE / "tools" / "check_child.py"


def test_no_code_path_evaluates_user_text():
    """The package never evaluates text, loads YAML unsafely or builds templates from strings."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            where = f"{path.name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in FORBIDDEN_CALLS:
                    found.append(f"{where}: {node.func.id}(...)")
            if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
                if (path, node.attr) != (CHECK_PROBE, "import_module"):
                    found.append(f"{where}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and any(
                alias.name in FORBIDDEN_ATTRIBUTES | FORBIDDEN_CALLS
                for alias in node.names
            ):
                found.append(f"{where}: from {node.module} import ...")
            if isinstance(node, ast.keyword) and node.arg == "shell":
                found.append(f"{where}: shell=...")
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [alias.name for alias in node.names] + [
                    getattr(node, "module", "")
                ]
                found += [
                    f"{where}: imports {m}"
                    for m in modules
                    if m in {"pickle", "marshal", "shelve"}
                ]
    assert found == []
    assert CHECK_PROBE.read_text("utf-8").count(".import_module(") == 1
    # YAML is read by SafeLoader only
    assert "yaml.SafeLoader(text)" in (PACKAGE / "compile" / "load.py").read_text(
        "utf-8"
    )


# Names the template prints itself: the header, the helper a task runs, operator/Param
# argument names from fixed lists in dagfactory.compile.vocabulary, and the variables
# tasks are bound to (a task id only once spec.py checked it is a plain Python name).
# (At render time Jinja's finalize refuses any config value printed without `py`.)
TEMPLATE_OWN_NAMES = {
    "header",
    "step.runner",
    "step.operator",  # one of three operator classes, fixed in pipeline.Step.operator
    "name",
    "keyword",
    "step.binding_comment",
    "pipeline.download_name",
    "chooser.binding.name",
    "chooser.binding.comment",
    "chooser.branch_binding.name",
    "chooser.branch_binding.comment",
    "chooser.on_pass.binding.name",
    "chooser.on_fail.binding.name",
    "publish.binding.name",
    "registry.binding.name",
    "registry.binding.comment",
    "registry.operator",  # likewise, pipeline.operator_of
    "approval.binding.name",
    "approval.binding.comment",
    "gate.name",  # the chooser's or the branch's binding
    "line",  # a helper's signature, from the parameter names below
    "parameter",  # a helper's parameter, from a fixed list in the template
}
TEMPLATE_MACROS = re.compile(
    r"operator\([\w.\[\]]*\) \| continued$|signature\(\"_\w+\", .*\) \| trim$", re.S
)


def test_every_template_expression_goes_through_the_literal_filter():
    """In the template, a value reaches the code only as ``{{ ... | py }}``."""
    template = (PACKAGE / "templates" / "dag.py.j2").read_text("utf-8")
    expressions = re.findall(r"\{\{(.*?)\}\}", template, flags=re.S)
    assert expressions
    for expression in expressions:
        expression = expression.strip()
        assert (
            expression in TEMPLATE_OWN_NAMES
            or TEMPLATE_MACROS.match(expression)
            or re.search(r"\|\s*py$", expression)
        ), expression


def test_a_hostile_config_file_name_stays_in_its_comment():
    """The config's name is written into the header comment; it cannot end that line."""
    config = yaml.safe_dump(make_config(**{**NASTY, "queue": "q"}))
    baseline = compiled(config, "configs/plain.yaml").content
    for name in ['x\nimport os\n".yaml', "x\r\u2028\u2029\x85\x0b\x0c#.yaml", "\\"]:
        source = compiled(config, name).content
        assert skeleton(ast.parse(source)) == skeleton(ast.parse(baseline))
        assert source.splitlines()[1:] == baseline.splitlines()[1:]
