"""What check says when a function cannot take what its tasks pass (no Airflow).

The child of ``check`` binds each call to the function's signature; the parent
reports a keyword the function does not take where that op_kwargs key is written.
Both halves are pure: the child's against functions of a module made here, the
parent's against references compiled from a config.
"""

from __future__ import annotations

import textwrap
from types import ModuleType

from test_references import CHOOSER, HEAD

from conftest import compiled
from dagfactory.tools.check_child import _probe


def cluster(n_neighbors: int, color: str = "red", *, seed: int = 0) -> None:
    """Stands for a user's function: one required parameter, two with defaults."""


def probe(*keywords: str, positional: int = 0) -> list[list[str | None]] | None:
    """What the child finds when a task passes ``keywords`` to :func:`cluster`."""
    module = ModuleType("pkg.models")
    module.cluster = cluster
    call = {
        "target": "pkg.models:cluster",
        "keywords": list(keywords),
        "written": list(keywords),
        "positional": positional,
        "passes": f"task t passes {', '.join(keywords)}",
    }
    found = _probe(call, {"pkg.models": module}, "dags", 30)
    return None if found is None else [list(finding) for finding in found]


def test_a_misspelled_key_is_about_that_key_with_the_parameter_it_meant():
    assert probe("n_neighbours", "colour") == [
        [
            "cluster() got an unexpected keyword argument 'n_neighbours' "
            "(did you mean 'n_neighbors'?); it accepts: n_neighbors, color, seed "
            "(task t passes n_neighbours, colour)",
            "",
            "n_neighbours",
        ],
        [
            "cluster() got an unexpected keyword argument 'colour' "
            "(did you mean 'color'?); it accepts: n_neighbors, color, seed "
            "(task t passes n_neighbours, colour)",
            "",
            "colour",
        ],
    ]


def test_a_key_like_no_parameter_is_named_with_what_the_function_accepts():
    (finding,) = probe("n_neighbors", "depth")
    assert finding == [
        "cluster() got an unexpected keyword argument 'depth'; "
        "it accepts: n_neighbors, color, seed (task t passes n_neighbors, depth)",
        "",
        "depth",
    ]


def test_a_missing_parameter_is_about_the_call_unless_a_misspelled_key_meant_it():
    assert probe("color") == [
        [
            "cluster() missing a required argument: 'n_neighbors'; "
            "it accepts: n_neighbors, color, seed (task t passes color)",
            "",
            None,
        ]
    ]
    # n_neighbours meant n_neighbors: one mistake, reported once, at the key
    assert [keyword for *_, keyword in probe("n_neighbours")] == ["n_neighbours"]
    # a key that means nothing leaves the parameter missing: both are said
    assert [keyword for *_, keyword in probe("depth")] == ["depth", None]


def test_calls_that_fit_find_nothing():
    assert probe("n_neighbors", "seed") is None
    assert probe(positional=1) is None  # n_neighbors taken by position


def test_a_keyword_the_config_does_not_write_is_about_the_call_as_python_says():
    module = ModuleType("pkg.reports")
    module.cluster = cluster
    call = {
        "target": "pkg.reports:cluster",
        "keywords": ["n_neighbors", "task_id", "value"],
        "written": ["n_neighbors"],
        "positional": 0,
        "passes": "a publish step gets the winner as task_id and value",
    }
    assert _probe(call, {"pkg.reports": module}, "dags", 30) == [
        (
            "cluster() got an unexpected keyword argument 'task_id'; it accepts: "
            "n_neighbors, color, seed (a publish step gets the winner as task_id and value)",
            "",
            None,
        )
    ]


def test_the_parent_reports_a_keyword_where_its_key_is_written():
    config = HEAD + textwrap.dedent(
        """\
        trainers:
          group_id: train
          python_callable: pkg.models:cluster
          op_kwargs: {colour: red}
          models:
            - task_id: a
              op_kwargs: {n_neighbours: 5}
            - task_id: b
              op_kwargs: {n_neighbours: 7}
        """
    )
    (trainers,) = compiled(config + CHOOSER).references
    assert trainers.tasks == ("train.a", "train.b")
    assert [
        str(problem) for problem in trainers.keyword_problems("n_neighbours", "typo")
    ] == [
        "c.yaml:13:19: error: trainers.models[0].op_kwargs.n_neighbours: typo",
        "c.yaml:15:19: error: trainers.models[1].op_kwargs.n_neighbours: typo",
    ]
    (group,) = trainers.keyword_problems("colour", "typo")
    assert (group.line, group.column) == (10, 15)
    assert group.spec_path == ("trainers", "op_kwargs", "colour")
    # a keyword nobody wrote (none here) is reported at the callable
    (unwritten,) = trainers.keyword_problems("task_id", "typo")
    assert (unwritten.line, unwritten.column) == (9, 20)


def test_a_matrix_key_and_a_publish_value_are_located_as_the_spec_reads_them():
    config = HEAD + textwrap.dedent(
        """\
        trainers:
          group_id: grid
          python_callable: pkg.models:cluster
          matrix:
            n_neighbours: [3, 5]
        """
    )
    publish = (
        "publish:\n  task_id: p\n  python_callable: pkg.r:p\n  op_kwargs: {value: 1}\n"
    )
    grid, published = compiled(config + CHOOSER + publish).references
    (matrix_key,) = grid.keyword_problems("n_neighbours", "typo")
    assert (matrix_key.line, matrix_key.column) == (11, 5)
    # _call_with_winner passes the op_kwargs value to a function that takes no
    # value (the winner's replaces it only where it does): at the key
    (value,) = published.keyword_problems("value", "typo")
    assert value.spec_path == ("publish", "op_kwargs", "value")
