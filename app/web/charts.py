"""The one chart component: a Plotly figure built in Python, drawn by one static script.

A view turns its numbers into a ``Chart``: the figure (``plotly.graph_objects``,
serialised with ``Figure.to_json``), the same numbers as a table (the "view
as table" twin, for screen readers and copy and paste), an optional change
against the previous period, and the sentence shown instead of an empty
chart. ``templates/components/_chart.html`` renders it: the figure's JSON
in a ``<script type="application/json">`` (data, never run), and
``static/js/charts.js`` draws every such block with the vendored plotly.js
(``static/vendor/plotly.min.js``), so the strict Content-Security-Policy
(``script-src 'self'``, no ``unsafe-eval``, no inline script) holds.

Used by the organization's analytics (``app.analytics``) and by the platform
console's overview (``app.platform``): a foundation module so both draw the
same way without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import plotly.graph_objects as go
from markupsafe import Markup

# The palette of app.css (accessible contrast on white), in series order.
COLORS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#4b5563")


@dataclass(frozen=True)
class Series:
    """One named line or bar series: a count per day (missing days are 0)."""

    name: str
    values: Mapping[date, int | float]
    kind: str = "bar"  # bar | line
    dash: str | None = None  # a line's dash ("dot"): the previous period


@dataclass(frozen=True)
class Delta:
    """The change of a chart's headline number against the previous period."""

    current: int | float
    previous: int | float

    @property
    def percent(self) -> float | None:
        if not self.previous:
            return None
        return (self.current - self.previous) * 100.0 / self.previous

    @property
    def text(self) -> str:
        """``+12 %``, ``−5 %``, ``no change``, or ``new`` (nothing before)."""
        if self.current == self.previous:
            return "no change"
        p = self.percent
        if p is None:
            return "new"
        sign = "+" if p > 0 else "\u2212"
        return f"{sign}{abs(p):.0f}\u00a0%"

    @property
    def direction(self) -> str:
        return "up" if self.current > self.previous else ("down" if self.current < self.previous else "flat")


@dataclass
class Chart:
    """Everything the component renders for one chart."""

    key: str
    title: str
    figure_json: str | None  # None: nothing to draw (``empty`` says why)
    columns: list[str]
    rows: list[list]
    empty: str | None = None
    delta: Delta | None = None
    summary: str = ""  # one sentence for the figure's accessible description
    extra: dict = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return self.figure_json is None


def days_between(start: date, end: date) -> list[date]:
    """Every day of ``[start, end]``."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def safe_json(figure: go.Figure) -> Markup:
    """The figure's JSON, safe inside ``<script type="application/json">``:
    ``<``, ``>``, ``&`` and ``'`` escaped as ``\\u`` sequences (still the same
    JSON), so no label a user typed can close the element."""
    s = figure.to_json()
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        s = s.replace(ch, esc)
    return Markup(s)


def _layout(**overrides) -> dict:
    layout = {
        # Not plotly's default template: 6.5 KB of JSON per chart for styles set here anyway.
        "template": "none",
        "margin": {"l": 48, "r": 12, "t": 8, "b": 36},
        "height": 260,
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.18},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"type": "date", "tickformat": "%d %b", "fixedrange": True},
        "yaxis": {"rangemode": "tozero", "fixedrange": True, "gridcolor": "#e5e7eb", "tickformat": ",d"},
        "hovermode": "x unified",
    }
    layout.update(overrides)
    return layout


def daily_figure(days: Sequence[date], series: Iterable[Series], *, stacked: bool = False) -> go.Figure:
    """A figure of per-day series over ``days`` (a bar or line trace each)."""
    x = [d.isoformat() for d in days]
    traces = []
    for i, s in enumerate(series):
        y = [s.values.get(d, 0) for d in days]
        color = COLORS[i % len(COLORS)]
        if s.kind == "line":
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": s.name,
                    "x": x,
                    "y": y,
                    "line": {"color": color, "width": 2, **({"dash": s.dash} if s.dash else {})},
                }
            )
        else:
            traces.append({"type": "bar", "name": s.name, "x": x, "y": y, "marker": {"color": color}})
    layout = _layout(barmode="stack" if stacked else "group")
    if stacked:
        top = max((sum(t["y"][i] for t in traces if t["type"] == "bar") for i in range(len(x))), default=0)
    else:
        top = max((max(t["y"], default=0) for t in traces), default=0)
    if top < 6:  # counts are whole: no 0.2 steps on a small axis
        layout["yaxis"] = {**layout["yaxis"], "dtick": 1}
    return go.Figure(data=traces, layout=layout)


def bar_figure(labels: Sequence[str], values: Sequence[int | float], name: str) -> go.Figure:
    """A horizontal bar figure (ranked items, largest on top)."""
    return go.Figure(
        data=[
            {
                "type": "bar",
                "orientation": "h",
                "name": name,
                "x": list(reversed(values)),
                "y": list(reversed(labels)),
                "marker": {"color": COLORS[0]},
            }
        ],
        layout=_layout(
            showlegend=False,
            xaxis={"rangemode": "tozero", "fixedrange": True, "gridcolor": "#e5e7eb", "tickformat": ",d"},
            yaxis={"automargin": True, "fixedrange": True},
            height=max(160, 28 * len(labels) + 60),
            hovermode="closest",
        ),
    )


def daily_table(days: Sequence[date], series: Sequence[Series]) -> tuple[list[str], list[list]]:
    """The twin table of ``daily_figure``: a row per day, a column per series."""
    columns = ["Day"] + [s.name for s in series]
    rows = [[d.isoformat()] + [s.values.get(d, 0) for s in series] for d in days]
    return columns, rows


def daily_chart(
    key: str,
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    empty: str,
    delta: Delta | None = None,
    table_series: Sequence[Series] | None = None,
) -> Chart:
    """A per-day chart and its table; ``empty`` is shown instead when every value is 0.

    ``table_series`` (default: ``series``) are the table's columns, so a
    comparison line drawn on the chart can stay out of the table, or in.
    """
    columns, rows = daily_table(days, table_series if table_series is not None else series)
    in_range = set(days)
    has_data = any(v for s in series for d, v in s.values.items() if d in in_range)
    fig = daily_figure(days, series, stacked=stacked) if has_data else None
    span = f"from {days[0].isoformat()} to {days[-1].isoformat()}" if days else ""
    counted = [s for s in series if s.kind == "bar"]
    if counted:
        total = sum(v for s in counted for d, v in s.values.items() if d in in_range)
        summary = f"{title}: {total:,} in all {span}."
    else:
        summary = f"{title} {span}."
    return Chart(
        key=key,
        title=title,
        figure_json=safe_json(fig) if fig is not None else None,
        columns=columns,
        rows=rows,
        empty=None if has_data else empty,
        delta=delta,
        summary=summary,
    )
