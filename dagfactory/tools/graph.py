"""Draw a pipeline from its validated spec, without Airflow: Mermaid text or an SVG picture.

The layout follows the order Airflow runs the tasks in, one column per stage: the
download task(s), the trainers' TaskGroup (one box per trainer, or one box for a mapped
trainer), the chooser, then the threshold branch and the publish and registry tasks,
then the branch's follow-ups (publish among them when it waits for the threshold:
``publish.when``; the registry task when there is a threshold); an approval task takes
publish's place, publish and the registry task after it. The SVG is written by hand (no
graph library, no fonts to measure): a monospace font makes text widths predictable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from dagfactory.compile.pipeline import Pipeline, Step
from dagfactory.files import write_atomic
from dagfactory.problems import SetupError, UsageError

DETAIL_LIMIT = 48  # characters of a command or callable shown under a task id


@dataclass(frozen=True)
class Node:
    """A task box: its id, a second line saying what it runs, and its role (for colour)."""

    key: str
    title: str
    detail: str
    role: str


@dataclass(frozen=True)
class Layout:
    """The columns of boxes left to right, which column is the trainers' group, and the arrows."""

    columns: list[list[Node]]
    group_column: int
    group_title: str
    edges: list[tuple[Node, Node]]


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def _step_detail(step: Step) -> str:
    if step.docker is not None:
        return _shorten(f"docker: {step.docker.arguments['image']}")
    if step.bash_command is not None:
        return _shorten(f"bash: {step.bash_command}")
    return _shorten(f"{step.python_callable}()")


def layout(pipeline: Pipeline) -> Layout:
    """Where every task of the pipeline goes, and what follows what."""
    downloads = [
        Node(f"download_{index}", step.task_id, _step_detail(step), "download")
        for index, step in enumerate(pipeline.downloads)
    ]
    trainers = pipeline.trainers
    if trainers.mapped_task_id:
        first = trainers.models[0]
        detail = f"mapped ×{len(trainers.models)}: {_step_detail(first)}"
        models = [
            Node("trainer_0", trainers.mapped_task_id, _shorten(detail), "trainer")
        ]
    else:
        models = [
            Node(f"trainer_{index}", model.task_id, _step_detail(model), "trainer")
            for index, model in enumerate(trainers.models)
        ]
    chooser = pipeline.chooser
    metric = (
        f"{chooser.xcom_key}[{chooser.metric!r}]"
        if chooser.metric
        else chooser.xcom_key
    )
    choose = Node(
        "chooser",
        chooser.task_id,
        _shorten(f"{chooser.mode} {metric} → {chooser.push_key}"),
        "chooser",
    )
    columns = [downloads, models, [choose]]
    edges = [(d, m) for d in downloads for m in models] + [(m, choose) for m in models]
    after_chooser: list[Node] = []
    outcomes: list[Node] = []
    if chooser.threshold is not None:
        comparison = ">=" if chooser.mode == "max" else "<="
        branch = Node(
            "branch",
            chooser.branch_task_id,
            f"branch: best {comparison} {chooser.threshold:g}",
            "chooser",
        )
        after_chooser.append(branch)
        outcomes = [
            Node(key, step.task_id, _step_detail(step), "follow_up")
            for key, step in (
                ("on_pass", chooser.on_pass),
                ("on_fail", chooser.on_fail),
            )
            if step is not None
        ]
        edges += [(choose, branch)] + [(branch, outcome) for outcome in outcomes]
    released: list[Node] = []  # publish and the registry, when a person approves first
    approval: Node | None = None
    if pipeline.publish is not None:
        publish = Node(
            "publish",
            pipeline.publish.task_id,
            _step_detail(pipeline.publish),
            "follow_up",
        )
        gate = publish
        if pipeline.approval is not None:
            gate = approval = Node(
                "approval", pipeline.approval.task_id, "a person approves", "chooser"
            )
            released.append(publish)
        if pipeline.publish_gated:  # it runs only when the winner passes
            outcomes.insert(1 if chooser.on_pass else 0, gate)
            edges.append((branch, gate))
        else:
            after_chooser.append(gate)
            edges.append((choose, gate))
        if gate is not publish:
            edges.append((gate, publish))
    if pipeline.registry is not None:
        registry = pipeline.registry
        mlflow = Node(
            "registry",
            registry.task_id,
            _shorten(f"MLflow: {registry.op_kwargs['model_name']}"),
            "follow_up",
        )
        if registry.gated:  # it registers only a winner that passes
            edges.append((branch, mlflow))
        if approval is not None:  # and only an approved one
            released.append(mlflow)
            edges.append((approval, mlflow))
        elif registry.gated:
            outcomes.append(mlflow)
        else:
            after_chooser.append(mlflow)
            edges.append((choose, mlflow))
    if after_chooser:
        columns.append(after_chooser)
    if outcomes:
        columns.append(outcomes)
    if released:
        columns.append(released)
    title = f"{trainers.group_id} (push {trainers.xcom_key})"
    return Layout(columns, 1, title, edges)


def to_mermaid(pipeline: Pipeline) -> str:
    """A Mermaid flowchart, ready to paste into Markdown on GitHub."""

    def label(text: str) -> str:
        # Mermaid's entity codes keep quotes, brackets and '#' from ending the label.
        for char, code in (
            ("#", "#35;"),
            ('"', "#quot;"),
            ("<", "#lt;"),
            (">", "#gt;"),
        ):
            text = text.replace(char, code)
        return text

    def box(node: Node) -> str:
        return f'{node.key}["{label(node.title)}<br/>{label(node.detail)}"]'

    plan = layout(pipeline)
    lines = ["flowchart LR"]
    for index, column in enumerate(plan.columns):
        if index == plan.group_column:
            lines.append(f'    subgraph trainers["{label(plan.group_title)}"]')
            lines += [f"        {box(node)}" for node in column]
            lines.append("    end")
        else:
            lines += [f"    {box(node)}" for node in column]
    lines += [f"    {source.key} --> {target.key}" for source, target in plan.edges]
    return "\n".join(lines) + "\n"


# SVG geometry, in pixels.
_CHAR = 8.0  # width of one character of 13 px monospace (7.8), with room to spare
_PAD, _BOX_H, _GAP, _COLUMN_GAP, _MARGIN = 12, 44, 14, 56, 20
_GROUP_PAD, _GROUP_TITLE, _TITLE_H = 14, 22, 34
_COLOURS = {
    "download": ("#e8f1fb", "#4a7fb5"),
    "trainer": ("#eaf6ea", "#4f9a4f"),
    "chooser": ("#fdf1e3", "#c98a2e"),
    "follow_up": ("#f1ecf8", "#7a5ea8"),
}


def _width(*texts: str) -> float:
    return max(len(text) for text in texts) * _CHAR + 2 * _PAD


def _stack_height(count: int) -> float:
    return count * (_BOX_H + _GAP) - _GAP


def to_svg(pipeline: Pipeline) -> str:
    """A self-contained SVG picture of the DAG (deterministic: same spec, same bytes)."""
    plan = layout(pipeline)
    group = plan.columns[plan.group_column]
    group_h = _GROUP_TITLE + _stack_height(len(group)) + 2 * _GROUP_PAD
    tallest = max(_stack_height(len(column)) for column in plan.columns)
    top = _MARGIN + _TITLE_H
    # Every column is centred on the middle of the trainers' stack.
    middle = top + max(
        group_h - _GROUP_PAD - _stack_height(len(group)) / 2, tallest / 2
    )
    group_top = middle + _stack_height(len(group)) / 2 + _GROUP_PAD - group_h

    boxes: dict[str, tuple[float, float, float]] = {}  # key -> x, y, width
    x = _MARGIN
    group_x = group_w = 0.0
    for index, column in enumerate(plan.columns):
        width = _width(*(n.title for n in column), *(n.detail for n in column))
        column_w = width
        if index == plan.group_column:
            column_w = max(width + 2 * _GROUP_PAD, _width(plan.group_title))
            group_x, group_w = x, column_w
        y = middle - _stack_height(len(column)) / 2
        for node in column:
            boxes[node.key] = (x + (column_w - width) / 2, y, width)
            y += _BOX_H + _GAP
        x += column_w + _COLUMN_GAP
    width = x - _COLUMN_GAP + _MARGIN
    bottom = max(group_top + group_h, middle + tallest / 2)
    height = max(bottom, top + group_h) + _MARGIN

    def n(value: float) -> str:
        return f"{value:g}"

    dag_id = escape(pipeline.dag.dag_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{n(width)}" height="{n(height)}" '
        f'viewBox="0 0 {n(width)} {n(height)}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="13">',
        f"<title>{dag_id}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        f'<rect width="{n(width)}" height="{n(height)}" fill="#ffffff"/>',
        f'<text x="{n(_MARGIN)}" y="{n(_MARGIN + 16)}" font-size="15" font-weight="bold" fill="#222">{dag_id}</text>',
        f'<rect x="{n(group_x)}" y="{n(group_top)}" width="{n(group_w)}" height="{n(group_h)}" rx="8" '
        'fill="#f6f6f6" stroke="#999" stroke-dasharray="5 4"/>',
        f'<text x="{n(group_x + _GROUP_PAD)}" y="{n(group_top + _GROUP_PAD + 12)}" fill="#555">'
        f"{escape(plan.group_title)}</text>",
    ]

    def fan(node: Node, others: list[Node], other: Node) -> float:
        """Where on ``node``'s side the arrow to ``other`` starts or ends: fanned out when many."""
        if len(others) < 2:
            return 0.0
        step = min(8.0, (_BOX_H - 12) / (len(others) - 1))
        return (others.index(other) - (len(others) - 1) / 2) * step

    for source, target in plan.edges:
        outgoing = [t for s, t in plan.edges if s == source]
        incoming = [s for s, t in plan.edges if t == target]
        sx, sy, sw = boxes[source.key]
        tx, ty, _ = boxes[target.key]
        x1, y1 = sx + sw, sy + _BOX_H / 2 + fan(source, outgoing, target)
        x2, y2 = tx, ty + _BOX_H / 2 + fan(target, incoming, source)
        bend = (x2 - x1) / 2
        parts.append(
            f'<path d="M{n(x1)},{n(y1)} C{n(x1 + bend)},{n(y1)} {n(x2 - bend)},{n(y2)} {n(x2)},{n(y2)}" '
            'fill="none" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>'
        )
    for column in plan.columns:
        for node in column:
            x, y, w = boxes[node.key]
            fill, stroke = _COLOURS[node.role]
            parts += [
                f"<g><title>{escape(node.title)}: {escape(node.detail)}</title>",
                f'<rect x="{n(x)}" y="{n(y)}" width="{n(w)}" height="{_BOX_H}" rx="6" fill="{fill}" stroke={quoteattr(stroke)} stroke-width="1.5"/>',
                f'<text x="{n(x + _PAD)}" y="{n(y + 18)}" font-weight="bold" fill="#222">{escape(node.title)}</text>',
                f'<text x="{n(x + _PAD)}" y="{n(y + 35)}" font-size="12" fill="#555">{escape(node.detail)}</text>',
                "</g>",
            ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


PNG_HINT = (
    "PNG needs CairoSVG and the Cairo library: pip install 'dagfactory[png]' "
    "(and e.g. apt-get install libcairo2), or write an .svg instead"
)


class PngUnavailable(SetupError):
    """Raised when a PNG is asked for and CairoSVG (or the Cairo library) is missing."""


def write_png(path: Path, svg: str) -> None:
    """Convert ``svg`` to a PNG at ``path`` with CairoSVG, the one optional dependency."""
    try:
        import cairosvg
    except (ImportError, OSError) as exc:  # OSError: CairoSVG is there, libcairo is not
        raise PngUnavailable(PNG_HINT) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    cairosvg.svg2png(bytestring=svg.encode(), write_to=str(path), scale=2)


def draw(pipeline: Pipeline, picture: Path) -> None:
    """Write the picture of ``pipeline`` to ``picture``: an ``.svg`` or a ``.png`` file."""
    suffix = picture.suffix.lower()
    if suffix == ".svg":
        write_atomic(picture, to_svg(pipeline))
    elif suffix == ".png":
        write_png(picture, to_svg(pipeline))
    else:
        raise UsageError(f"{picture}: the picture's name must end in .svg or .png")
