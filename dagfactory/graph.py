"""Draw a pipeline from its validated spec, without Airflow: Mermaid text or an SVG picture.

Every pipeline has the same shape, so the layout is fixed: three columns, the download
task, the trainers' TaskGroup (one box per trainer) and the chooser, with an arrow from
the download to each trainer and from each trainer to the chooser, as Airflow runs them.
The SVG is written by hand (no graph library, no fonts to measure): a monospace font
makes text widths predictable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from dagfactory.model import Pipeline, Step

DETAIL_LIMIT = 48  # characters of a command or callable shown under a task id


@dataclass(frozen=True)
class Node:
    """A task box: its id, a second line saying what it runs, and its role (for colour)."""

    key: str
    title: str
    detail: str
    role: str


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def _step_detail(step: Step) -> str:
    if step.bash_command is not None:
        return _shorten(f"bash: {step.bash_command}")
    return _shorten(f"{step.python_callable}()")


def _nodes(pipeline: Pipeline) -> tuple[Node, list[Node], Node]:
    download = Node(
        "download",
        pipeline.download.task_id,
        _step_detail(pipeline.download),
        "download",
    )
    trainers = [
        Node(f"trainer_{index}", model.task_id, _step_detail(model), "trainer")
        for index, model in enumerate(pipeline.trainers.models)
    ]
    chooser = pipeline.chooser
    detail = f"{chooser.mode} {chooser.xcom_key} → {chooser.push_key}"
    return (
        download,
        trainers,
        Node("chooser", chooser.task_id, _shorten(detail), "chooser"),
    )


def _group_title(pipeline: Pipeline) -> str:
    return f"{pipeline.trainers.group_id} (push {pipeline.trainers.xcom_key})"


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

    download, trainers, chooser = _nodes(pipeline)
    lines = [
        "flowchart LR",
        f"    {box(download)}",
        f'    subgraph trainers["{label(_group_title(pipeline))}"]',
        *(f"        {box(trainer)}" for trainer in trainers),
        "    end",
        f"    {box(chooser)}",
        *(f"    {download.key} --> {trainer.key}" for trainer in trainers),
        *(f"    {trainer.key} --> {chooser.key}" for trainer in trainers),
    ]
    return "\n".join(lines) + "\n"


# SVG geometry, in pixels.
_CHAR = 8.0  # width of one character of 13 px monospace (7.8), with room to spare
_PAD, _BOX_H, _GAP, _COLUMN_GAP, _MARGIN = 12, 44, 14, 56, 20
_GROUP_PAD, _GROUP_TITLE, _TITLE_H = 14, 22, 34
_COLOURS = {
    "download": ("#e8f1fb", "#4a7fb5"),
    "trainer": ("#eaf6ea", "#4f9a4f"),
    "chooser": ("#fdf1e3", "#c98a2e"),
}


def _width(*texts: str) -> float:
    return max(len(text) for text in texts) * _CHAR + 2 * _PAD


def to_svg(pipeline: Pipeline) -> str:
    """A self-contained SVG picture of the DAG (deterministic: same spec, same bytes)."""
    download, trainers, chooser = _nodes(pipeline)
    trainer_w = _width(*(t.title for t in trainers), *(t.detail for t in trainers))
    group_title = _group_title(pipeline)
    group_w = max(trainer_w + 2 * _GROUP_PAD, _width(group_title))
    group_h = _GROUP_TITLE + len(trainers) * (_BOX_H + _GAP) - _GAP + 2 * _GROUP_PAD
    download_w = _width(download.title, download.detail)
    chooser_w = _width(chooser.title, chooser.detail)

    top = _MARGIN + _TITLE_H
    # The download and the chooser line up with the middle of the trainers' stack.
    middle = top + (group_h + _GROUP_TITLE) / 2
    x_download = _MARGIN
    x_group = x_download + download_w + _COLUMN_GAP
    x_trainer = x_group + (group_w - trainer_w) / 2
    x_chooser = x_group + group_w + _COLUMN_GAP
    width = x_chooser + chooser_w + _MARGIN
    height = top + group_h + _MARGIN

    boxes = {download.key: (x_download, middle - _BOX_H / 2, download_w)}
    for index, trainer in enumerate(trainers):
        y = top + _GROUP_PAD + _GROUP_TITLE + index * (_BOX_H + _GAP)
        boxes[trainer.key] = (x_trainer, y, trainer_w)
    boxes[chooser.key] = (x_chooser, middle - _BOX_H / 2, chooser_w)

    def n(value: float) -> str:
        return f"{value:g}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{n(width)}" height="{n(height)}" '
        f'viewBox="0 0 {n(width)} {n(height)}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="13">',
        f"<title>{escape(pipeline.dag.dag_id)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        f'<rect width="{n(width)}" height="{n(height)}" fill="#ffffff"/>',
        f'<text x="{n(_MARGIN)}" y="{n(_MARGIN + 16)}" font-size="15" font-weight="bold" fill="#222">'
        f"{escape(pipeline.dag.dag_id)}</text>",
        f'<rect x="{n(x_group)}" y="{n(top)}" width="{n(group_w)}" height="{n(group_h)}" rx="8" '
        'fill="#f6f6f6" stroke="#999" stroke-dasharray="5 4"/>',
        f'<text x="{n(x_group + _GROUP_PAD)}" y="{n(top + _GROUP_PAD + 12)}" fill="#555">{escape(group_title)}</text>',
    ]

    def spread(index: int) -> float:
        """Where the index-th arrow meets the single download or chooser box: fanned out."""
        step = min(8.0, (_BOX_H - 12) / max(len(trainers) - 1, 1))
        return (index - (len(trainers) - 1) / 2) * step

    def arrow(source: str, target: str, index: int) -> str:
        sx, sy, sw = boxes[source]
        tx, ty, _ = boxes[target]
        x1, y1, x2, y2 = sx + sw, sy + _BOX_H / 2, tx, ty + _BOX_H / 2
        if source == download.key:
            y1 += spread(index)
        else:
            y2 += spread(index)
        bend = (x2 - x1) / 2
        return (
            f'<path d="M{n(x1)},{n(y1)} C{n(x1 + bend)},{n(y1)} {n(x2 - bend)},{n(y2)} {n(x2)},{n(y2)}" '
            'fill="none" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>'
        )

    for index, trainer in enumerate(trainers):
        parts.append(arrow(download.key, trainer.key, index))
        parts.append(arrow(trainer.key, chooser.key, index))
    for node in (download, *trainers, chooser):
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


class PngUnavailable(RuntimeError):
    """Raised when a PNG is asked for and CairoSVG (or the Cairo library) is missing."""


def write_png(path: Path, svg: str) -> None:
    """Convert ``svg`` to a PNG at ``path`` with CairoSVG, the one optional dependency."""
    try:
        import cairosvg
    except (ImportError, OSError) as exc:  # OSError: CairoSVG is there, libcairo is not
        raise PngUnavailable(PNG_HINT) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    cairosvg.svg2png(bytestring=svg.encode(), write_to=str(path), scale=2)
