"""Chart geometry for the static dashboard: numbers in, SVG coordinates out.

Charts are inline SVG drawn by the template, so the page needs no script, no CDN and
no build step and works from ``file://``. This module only does the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 180, 44, 22, 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    value: float
    y2: float = 0.0  # top of the highlighted part (errors), when there is one
    h2: float = 0.0


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    plot_bottom: float
    bars: tuple[Bar, ...]
    line: str  # SVG polyline points, "" when there is nothing to draw
    ticks: tuple[tuple[float, str], ...]  # (y, label)
    x_labels: tuple[tuple[float, str], ...]
    empty: bool


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def bars(labels: list[str], values: list[float], highlight: list[float] | None = None,
         *, every: int = 0) -> Chart:
    """Vertical bars (e.g. executions per step) with an optional highlighted share (errors)."""
    top = _nice_max(max(values, default=0))
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - BOTTOM - TOP
    n = max(1, len(values))
    slot = plot_w / n
    out = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        part = (highlight[i] if highlight else 0.0)
        h2 = plot_h * part / top
        out.append(Bar(x=round(LEFT + i * slot + slot * 0.12, 2), y=round(TOP + plot_h - h, 2),
                       w=round(slot * 0.76, 2), h=round(h, 2), label=label, value=value,
                       y2=round(TOP + plot_h - h2, 2), h2=round(h2, 2)))
    return Chart(width=WIDTH, height=HEIGHT, left=LEFT, plot_bottom=TOP + plot_h,
                 bars=tuple(out), line="", ticks=_ticks(top, plot_h),
                 x_labels=_x_labels(labels, slot, every), empty=not any(values))


def line(labels: list[str], values: list[float | None], *, every: int = 0) -> Chart:
    """A polyline through the points that have a value (gaps are skipped)."""
    known = [v for v in values if v is not None]
    top = _nice_max(max(known, default=0))
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - BOTTOM - TOP
    n = max(1, len(values))
    slot = plot_w / n
    points = [f"{LEFT + (i + 0.5) * slot:.1f},{TOP + plot_h - plot_h * v / top:.1f}"
              for i, v in enumerate(values) if v is not None]
    return Chart(width=WIDTH, height=HEIGHT, left=LEFT, plot_bottom=TOP + plot_h, bars=(),
                 line=" ".join(points), ticks=_ticks(top, plot_h),
                 x_labels=_x_labels(labels, slot, every), empty=not known)


def hbars(items: list[tuple[str, float]]) -> tuple[tuple[str, float, float], ...]:
    """Horizontal bars as (label, value, width percent of the largest)."""
    top = max((v for _, v in items), default=0) or 1
    return tuple((label, value, round(100 * value / top, 1)) for label, value in items)


def _ticks(top: float, plot_h: float) -> tuple[tuple[float, str], ...]:
    return tuple((round(TOP + plot_h - plot_h * f, 1), _fmt(top * f)) for f in (0, 0.5, 1))


def _x_labels(labels: list[str], slot: float, every: int) -> tuple[tuple[float, str], ...]:
    step = every or max(1, len(labels) // 6)
    return tuple((round(LEFT + (i + 0.5) * slot, 1), label)
                 for i, label in enumerate(labels) if i % step == 0)
