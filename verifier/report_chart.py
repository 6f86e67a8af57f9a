"""The events-per-month bar chart of the HTML report, as inline SVG (no script, no assets)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from html import escape

from .timeutil import from_ns

Month = tuple[int, int]  # (year, month), UTC

_W, _H = 760, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 20, 56
_MID = 'text-anchor="middle"'


def month_counts(times_ns: Iterable[int]) -> list[tuple[Month, int]]:
    """Counts per calendar month (UTC), for every month from the first to the last, in order."""
    counts = Counter((d.year, d.month) for d in map(from_ns, times_ns))
    if not counts:
        return []
    (y, m), last = min(counts), max(counts)
    out: list[tuple[Month, int]] = []
    while (y, m) <= last:
        out.append(((y, m), counts.get((y, m), 0)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _step(top: int) -> int:
    """A 1-2-5 tick step giving at most five intervals up to ``top``."""
    mag = 1
    while True:
        for mult in (1, 2, 5):
            if top <= 5 * mult * mag:
                return mult * mag
        mag *= 10


def _f(x: float) -> str:
    return f"{x:.1f}"


def events_chart(times_ns: Iterable[int]) -> str:
    """An accessible SVG bar chart of events per month, or a note when there are none."""
    data = month_counts(times_ns)
    if not data:
        return '<p class="muted">No model events were recorded by this point in time.</p>'
    step = _step(max(c for _, c in data))
    top = step * -(-max(c for _, c in data) // step)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    band = plot_w / len(data)
    bar = min(band * 0.72, 56.0)
    every = -(-len(data) // 12)  # label at most about 12 months
    total = sum(c for _, c in data)
    span = f"{_label(data[0][0])} to {_label(data[-1][0])}"
    desc = "; ".join(f"{_label(mo)}: {c}" for mo, c in data)
    parts = [
        (f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
         'aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMidYMid meet">'),
        f'<title id="chart-title">Model events per month (UTC), {span}: {total} in all</title>',
        f'<desc id="chart-desc">{escape(desc)}</desc>',
    ]
    for tick in range(0, top + 1, step):
        y = _TOP + plot_h - plot_h * tick / top
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_f(y)}" '
                     f'y2="{_f(y)}"/><text class="tick" x="{_LEFT - 6}" y="{_f(y + 4)}" '
                     f'text-anchor="end">{tick}</text>')
    for i, (mo, count) in enumerate(data):
        x = _LEFT + band * i + (band - bar) / 2
        h = plot_h * count / top
        noun = "event" if count == 1 else "events"
        parts.append(f'<rect class="bar" data-month="{_label(mo)}" x="{_f(x)}" '
                     f'y="{_f(_TOP + plot_h - h)}" width="{_f(bar)}" height="{_f(h)}">'
                     f"<title>{_label(mo)}: {count} {noun}</title></rect>")
        cx = _f(x + bar / 2)
        if count and band >= 22:
            parts.append(f'<text class="value" x="{cx}" y="{_f(_TOP + plot_h - h - 4)}" '
                         f'text-anchor="middle">{count}</text>')
        if i % every == 0:
            parts.append(f'<text class="tick" x="{cx}" y="{_TOP + plot_h + 16}" '
                         f'text-anchor="middle">{_label(mo)}</text>')
    base, mid_x, mid_y = _TOP + plot_h, _f(_LEFT + plot_w / 2), _f(_TOP + plot_h / 2)
    parts += [
        f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{base}" y2="{base}"/>',
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{base}"/>',
        f'<text class="axis-label" x="{mid_x}" y="{_H - 12}" {_MID}>Month (UTC)</text>',
        f'<text class="axis-label" x="14" y="{mid_y}" {_MID} {_rot(mid_y)}>Events</text>',
        "</svg>",
    ]
    return "\n".join(parts)


def _rot(y: str) -> str:
    return f'transform="rotate(-90 14 {y})"'


def _label(mo: Month) -> str:
    return f"{mo[0]:04d}-{mo[1]:02d}"
