"""Bar charts rendered on the server as inline SVG: readable without JavaScript, no chart library,
nothing fetched. Colours come from CSS classes (static/style.css), so the charts follow the page's
light or dark theme and need no inline style (the CSP forbids it).

Every chart carries a `<title>` and a `<desc>` for screen readers, and each bar a `<title>` that
browsers show as a tooltip; the page shows the same numbers in a table too.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 30  # room for the axis labels
GAP = 0.2  # share of each slot left between bars
LIMIT_IN_SCALE = 4  # the limit line is drawn when the busiest bar reaches a quarter of it


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar when there is room, e.g. "14:00" or "11-29"
    value: int
    detail: str  # the bar's tooltip, e.g. "2026-11-29 14:00 UTC: 1,234 requests"


def bar_chart(bars: list[Bar], *, title: str, limit: int | None = None, limit_label: str = "limit",
              label_every: int = 1) -> Markup:
    """An SVG bar chart of `bars`, with a dashed line at `limit` when one applies. The scale takes
    in the limit when the busiest bar is within LIMIT_IN_SCALE of it, so the bars show how close
    they come; far below it, the bars keep their own scale and the limit is only named."""
    peak = max([bar.value for bar in bars] + [1])
    limit_on_scale = bool(limit) and limit <= peak * LIMIT_IN_SCALE
    top_value = max(peak, limit) if limit_on_scale else peak
    scale_max = _nice_ceiling(top_value)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(bars), 1)

    def y(value: int) -> float:
        return TOP + plot_height * (1 - value / scale_max)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{_id(title)}-t {_id(title)}-d"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_id(title)}-t">{escape(title)}</title>',
        f'<desc id="{_id(title)}-d">{escape(_description(bars, limit, limit_label))}</desc>',
    ]
    for tick in (0, scale_max // 2, scale_max):
        parts.append(f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>')
        parts.append(f'<text class="chart-axis" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:,}</text>')
    for index, bar in enumerate(bars):
        x = LEFT + index * slot + slot * GAP / 2
        top = y(bar.value)
        parts.append(
            f'<rect class="chart-bar" x="{x:.1f}" y="{top:.1f}" width="{slot * (1 - GAP):.1f}" '
            f'height="{TOP + plot_height - top:.1f}"><title>{escape(bar.detail)}</title></rect>'
        )
        if index % label_every == 0:
            parts.append(f'<text class="chart-axis" x="{x + slot * (1 - GAP) / 2:.1f}" y="{HEIGHT - 10}" '
                         f'text-anchor="middle">{escape(bar.label)}</text>')
    if limit_on_scale:
        parts.append(f'<line class="chart-limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(limit):.1f}" '
                     f'y2="{y(limit):.1f}"/>')
        parts.append(f'<text class="chart-limit-label" x="{WIDTH - RIGHT}" y="{y(limit) - 4:.1f}" text-anchor="end">'
                     f'{escape(limit_label)} {limit:,}</text>')
    elif limit:
        parts.append(f'<text class="chart-limit-label" x="{WIDTH - RIGHT}" y="{TOP + 10}" text-anchor="end">'
                     f'{escape(limit_label)} {limit:,} (above the scale)</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _description(bars: list[Bar], limit: int | None, limit_label: str) -> str:
    total = sum(bar.value for bar in bars)
    peak = max(bars, key=lambda bar: bar.value, default=None)
    text = f"{total:,} requests in all"
    if peak is not None and peak.value:
        text += f"; the most, {peak.value:,}, at {peak.label}"
    if limit:
        text += f"; {limit_label} {limit:,}"
    return text + "."


def _nice_ceiling(value: int) -> int:
    """The smallest of 2, 4, 10, 20, 40, 100, … that is at least `value`: the axis reads in round
    numbers and its midpoint is a whole one."""
    magnitude = 1
    while True:
        for step in (2, 4, 10):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def _id(title: str) -> str:
    return "chart-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())
