"""State machine diagrams as inline SVG, laid out from the python-statemachine classes.

Drawn from `domain.machines` at request time (the layout is cached per machine), so a
diagram cannot drift from the code that decides. No graphviz: states go in columns
by their longest path from the initial state, transitions to the next column are
straight, longer or backward ones arc above and below the row, self-transitions
loop over their state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from html import escape

from domain.machines import MACHINES, transition_table

BOX_W, BOX_H, COL_GAP, ROW_GAP, MARGIN = 156, 34, 76, 70, 16


@dataclass(frozen=True)
class Layout:
    states: tuple[str, ...]
    initial: str
    finals: frozenset[str]
    position: dict[str, tuple[float, float]]
    edges: tuple[tuple[str, str, str], ...]
    """(source, target, triggers joined) once per pair of states."""
    width: float
    height: float
    top: float


def _columns(states: list[str], initial: str, pairs: set[tuple[str, str]]) -> dict[str, int]:
    """Longest path from the initial state, ignoring self-loops and edges back (cycles)."""
    column = {initial: 0}
    for _ in range(len(states)):
        for src, dst in sorted(pairs):
            if src == dst or src not in column:
                continue
            candidate = column[src] + 1
            if candidate < len(states) and column.get(dst, -1) < candidate:
                column[dst] = candidate
    for state in states:
        column.setdefault(state, 0)
    return column


@cache
def layout(machine: str) -> Layout:
    cls = MACHINES[machine]
    states = [str(s.value) for s in cls.states]
    initial = next(str(s.value) for s in cls.states if s.initial)
    finals = frozenset(str(s.value) for s in cls.states if s.final)
    grouped: dict[tuple[str, str], list[str]] = {}
    for trigger, src, dst in transition_table(machine):
        grouped.setdefault((src, dst), []).append(trigger)
    column = _columns(states, initial, set(grouped))
    rows: dict[int, int] = {}
    top = 48 + 12 * max(column.values(), default=0)
    position: dict[str, tuple[float, float]] = {}
    for state in states:
        row = rows.get(column[state], 0)
        rows[column[state]] = row + 1
        position[state] = (MARGIN + column[state] * (BOX_W + COL_GAP), top + row * (BOX_H + ROW_GAP))
    width = MARGIN * 2 + (max(column.values()) + 1) * (BOX_W + COL_GAP) - COL_GAP
    height = top + max(rows.values()) * (BOX_H + ROW_GAP) - ROW_GAP + top
    edges = tuple((src, dst, ", ".join(triggers)) for (src, dst), triggers in sorted(grouped.items()))
    return Layout(tuple(states), initial, finals, position, edges, width, height, top)


def _edge_path(lay: Layout, src: str, dst: str, index: int) -> tuple[str, float, float]:
    """An SVG path and where its label goes."""
    x1, y1 = lay.position[src]
    x2, y2 = lay.position[dst]
    if src == dst:
        left, right, y = x1 + BOX_W * 0.3, x1 + BOX_W * 0.7, y1
        return (
            f"M{left:.0f},{y:.0f} C{left - 6:.0f},{y - 26:.0f} {right + 6:.0f},{y - 26:.0f} "
            f"{right:.0f},{y:.0f}",
            x1 + BOX_W / 2,
            y - 23,
        )
    sx, sy, tx, ty = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
    span = round((x2 - x1) / (BOX_W + COL_GAP))
    if span == 1:
        mid_x, mid_y = (sx + tx) / 2, (sy + ty) / 2
        return (
            f"M{sx:.0f},{sy:.0f} C{mid_x:.0f},{sy:.0f} {mid_x:.0f},{ty:.0f} {tx:.0f},{ty:.0f}",
            mid_x,
            mid_y - 4,
        )
    if span < 1:
        sx, tx = x1 + BOX_W / 2 + 10, x2 + BOX_W / 2 - 10
        sy, ty = y1 + BOX_H, y2 + (BOX_H if y2 >= y1 else 0)
    above = index % 2 == 1
    lift = 40 + 10 * abs(span) + 12 * (index // 2)
    sy_edge = y1 if above else y1 + BOX_H
    ty_edge = y2 if above else y2 + BOX_H
    if span >= 2:
        sx, tx = x1 + BOX_W * 0.75, x2 + BOX_W * 0.25
        sy, ty = sy_edge, ty_edge
    peak = (min(sy, ty) - lift) if above else (max(sy, ty) + lift)
    return (
        f"M{sx:.0f},{sy:.0f} C{sx:.0f},{peak:.0f} {tx:.0f},{peak:.0f} {tx:.0f},{ty:.0f}",
        (sx + tx) / 2,
        peak * 0.75 + (sy + ty) / 8 + (-3 if above else 10),
    )


def _fit(name: str) -> str:
    """Squeeze a long state name into its box rather than let it spill over."""
    return f' textLength="{BOX_W - 12}" lengthAdjust="spacingAndGlyphs"' if len(name) > 19 else ""


def render(machine: str, current: str | None, taken: Iterable[tuple[str, str]] = (), title: str = "") -> str:
    """The machine as SVG: `current` filled, states and transitions in `taken` marked."""
    lay = layout(machine)
    taken_pairs = set(taken)
    visited = {s for pair in taken_pairs for s in pair if s}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="machine" role="img" '
        f'data-machine="{escape(machine)}" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" '
        f'width="{lay.width:.0f}" height="{lay.height:.0f}">',
        f"<title>{escape(title or machine)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>',
    ]
    long_edges = 0
    labels: list[str] = []
    for src, dst, triggers in lay.edges:
        index = 0
        if src != dst and round((lay.position[dst][0] - lay.position[src][0]) / (BOX_W + COL_GAP)) != 1:
            index, long_edges = long_edges, long_edges + 1
        path, lx, ly = _edge_path(lay, src, dst, index)
        mark = " taken" if (src, dst) in taken_pairs else ""
        parts.append(
            f'<g class="edge{mark}" data-from="{src}" data-to="{dst}">'
            f'<path d="{path}" marker-end="url(#arrow)"/></g>'
        )
        labels.append(f'<text class="edge-label{mark}" x="{lx:.0f}" y="{ly:.0f}">{escape(triggers)}</text>')
    for state in lay.states:
        x, y = lay.position[state]
        classes = ["state"]
        if state == current:
            classes.append("current")
        elif state in visited:
            classes.append("visited")
        if state in lay.finals:
            classes.append("final")
        if state == lay.initial:
            classes.append("initial")
        parts.append(
            f'<g class="{" ".join(classes)}" data-state="{state}">'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="8"/>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 4:.0f}"{_fit(state)}>{state}</text>'
            "</g>"
        )
    parts += labels
    parts.append("</svg>")
    return "".join(parts)
