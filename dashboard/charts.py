"""Altair charts with one colour per meaning, the same on every page.

actual = blue, forecast and its interval = orange, anomaly = red, capacity and replicas = green,
fixtures = grey shading. An SRE learns the colours once.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

__all__ = ["COLOURS", "fixture_timeline", "series_chart", "what_if_chart"]

COLOURS = {
    "actual": "#1f77b4",
    "forecast": "#ff7f0e",
    "anomaly": "#d62728",
    "capacity": "#2ca02c",
    "fixture": "#9e9e9e",
}
_AXIS = alt.Axis(format="%H:%M", labelOverlap=True, tickCount=8)
_TIME = alt.X("ds:T", title="time (UTC)", axis=_AXIS)


def _time_axis(domain: tuple[pd.Timestamp, pd.Timestamp] | None) -> alt.X:
    if domain is None:
        return _TIME
    lo, hi = (t.isoformat() for t in domain)
    return alt.X("ds:T", title="time (UTC)", axis=_AXIS, scale=alt.Scale(domain=[lo, hi]))


def _fixture_layer(
    fixtures: pd.DataFrame, domain: tuple[pd.Timestamp, pd.Timestamp] | None
) -> alt.Chart | None:
    if fixtures.empty:
        return None
    shown = fixtures.copy()
    if domain is not None:  # clip to the chart, so a match that began earlier does not widen it
        shown["start"] = shown["start"].clip(lower=domain[0])
        shown["end"] = shown["end"].clip(upper=domain[1])
        shown = shown[shown["start"] < shown["end"]]
    return (
        alt.Chart(shown)
        .mark_rect(opacity=0.08, color=COLOURS["fixture"])
        .encode(x=alt.X("start:T", scale=alt.Scale(domain=[t.isoformat() for t in domain]))
                if domain else "start:T", x2="end:T", tooltip=["name:N", "competition:N", alt.Tooltip("start:T", format="%H:%M")])
    )


def series_chart(
    title: str,
    points: pd.DataFrame,
    forecast: pd.DataFrame,
    anomalies: pd.DataFrame,
    fixtures: pd.DataFrame,
    replicas: pd.DataFrame | None = None,
    domain: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> alt.LayerChart:
    """Actuals, forecast with its interval band, anomalies by kind, fixtures shaded, and the
    recommended replicas as a step line on a second axis; zoomable along time."""
    zoom = alt.selection_interval(bind="scales", encodings=["x"])
    layers: list[alt.Chart] = []
    x = _time_axis(domain)
    shade = _fixture_layer(fixtures, domain)
    if shade is not None:
        layers.append(shade)
    if not forecast.empty:
        base = alt.Chart(forecast).encode(x=x)
        layers.append(base.mark_area(opacity=0.25, color=COLOURS["forecast"]).encode(
            y=alt.Y("yhat_lower:Q", title=title), y2="yhat_upper:Q"))
        layers.append(base.mark_line(color=COLOURS["forecast"], strokeDash=[5, 3]).encode(
            y="yhat:Q", tooltip=["ds:T", "yhat:Q", "yhat_lower:Q", "yhat_upper:Q", "model:N"]))
    if not points.empty:
        layers.append(alt.Chart(points).mark_line(color=COLOURS["actual"]).encode(
            x=x, y=alt.Y("y:Q", title=title), tooltip=["ds:T", "y:Q"]))
    if not anomalies.empty:
        layers.append(alt.Chart(anomalies).mark_point(
            color=COLOURS["anomaly"], filled=True, size=70).encode(
            x=x, y="y:Q", shape=alt.Shape("kind:N", title="anomaly"),
            tooltip=["ds:T", "kind:N", "y:Q", "expected:Q", "score:Q", "state:N"]))
    value_chart = alt.layer(*layers) if layers else alt.Chart(pd.DataFrame({"ds": []})).mark_line()
    value_chart = value_chart.add_params(zoom)
    if replicas is not None and not replicas.empty:
        step = alt.Chart(replicas).mark_line(interpolate="step-after", color=COLOURS["capacity"]).encode(
            x=x, y=alt.Y("replicas:Q", title="recommended replicas",
                             axis=alt.Axis(titleColor=COLOURS["capacity"])),
            tooltip=["ds:T", "replicas:Q", "reason:N"])  # fmt: skip
        return alt.layer(value_chart, step).resolve_scale(y="independent").properties(height=360)
    return alt.layer(value_chart).properties(height=360)


def what_if_chart(
    plan: pd.DataFrame, unit: str = "req/s", model_until: pd.Timestamp | None = None
) -> alt.VConcatChart:
    """Forecast demand against the capacity the plan has ready, and the overload risk below;
    a dashed rule marks where the model's forecast ends (``model_until``)."""
    base = alt.Chart(plan).encode(x=_TIME)
    demand = base.mark_area(opacity=0.25, color=COLOURS["forecast"]).encode(
        y=alt.Y("yhat:Q", title=unit), y2="yhat_upper:Q")
    line = base.mark_line(color=COLOURS["forecast"], strokeDash=[5, 3]).encode(
        y="yhat:Q", tooltip=["ds:T", "yhat:Q", "yhat_upper:Q"])
    ready = base.mark_line(interpolate="step-after", color=COLOURS["capacity"]).encode(
        y="ready_capacity:Q", tooltip=["ds:T", "ready_replicas:Q", "ready_capacity:Q"])
    risk = base.mark_bar(color=COLOURS["anomaly"]).encode(
        y=alt.Y("overload_risk:Q", title="overload risk", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        tooltip=["ds:T", alt.Tooltip("overload_risk:Q", format=".1%")])  # fmt: skip
    layers = [demand, line, ready]
    if model_until is not None and plan["ds"].max() > model_until:
        edge = pd.DataFrame({"ds": [model_until], "label": ["model horizon"]})
        layers.append(alt.Chart(edge).mark_rule(strokeDash=[2, 2], color=COLOURS["fixture"])
                      .encode(x="ds:T", tooltip=["label:N", "ds:T"]))  # fmt: skip
    return alt.vconcat(
        alt.layer(*layers).properties(height=260, width="container"),
        risk.properties(height=110, width="container"),
    )


def fixture_timeline(outlook: pd.DataFrame, now: pd.Timestamp) -> alt.LayerChart:
    """The coming fixtures as bars from kickoff to end, darker the bigger the predicted surge,
    each labelled with its service, surge and replicas; a tick marks when those replicas must be
    ready and a rule marks now."""
    rows = outlook.sort_values("kickoff", kind="stable").reset_index(drop=True)
    rows["end"] = rows["end"].fillna(rows["kickoff"] + pd.Timedelta(hours=2))
    # one row per fixture even when two share a name (a row label keeps them apart)
    rows["row"] = [f"{r.kickoff:%H:%M} {r.fixture}" for r in rows.itertuples()]
    rows["label"] = [
        f"{r.service} x{r.surge:.1f}, {int(r.replicas)} replicas" if pd.notna(r.surge) else "no estimate"
        for r in rows.itertuples()
    ]
    y = alt.Y("row:N", sort=None, title=None, axis=alt.Axis(labelLimit=260))
    x = alt.X("kickoff:T", title="time (UTC)", axis=_AXIS)
    tooltip = ["fixture:N", "competition:N", alt.Tooltip("kickoff:T", format="%H:%M"),
               "service:N", alt.Tooltip("surge:Q", format=".1f"), "replicas:Q",
               alt.Tooltip("ready by:T", format="%H:%M"), "basis:N"]  # fmt: skip
    base = alt.Chart(rows)
    bars = base.mark_bar(height=14, cornerRadius=3).encode(
        x=x, x2="end:T", y=y, tooltip=tooltip,
        color=alt.Color("surge:Q", scale=alt.Scale(scheme="oranges", domain=[1, 6], clamp=True),
                        legend=None),
    )  # fmt: skip
    labels = base.mark_text(align="left", dx=4, fontSize=11).encode(x=x, y=y, text="label:N")
    ready = base.mark_tick(color=COLOURS["capacity"], thickness=3, size=18).encode(
        x="ready by:T", y=y, tooltip=tooltip)
    now_rule = alt.Chart(pd.DataFrame({"now": [now]})).mark_rule(
        color=COLOURS["anomaly"], strokeDash=[3, 3]).encode(x="now:T")
    return alt.layer(bars, ready, labels, now_rule).properties(height=alt.Step(30))
