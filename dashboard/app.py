"""surgecast SRE dashboard: what is coming, what is wrong, what surgecast did and why.

Talks to the surgecast API over HTTP only (``SURGECAST_API_URL``, default
``http://127.0.0.1:8000``), so it runs anywhere an SRE can reach the API. Operator actions
(acknowledge, retrain) need an operator token: ``SURGECAST_API_TOKEN`` or the sidebar field.

Run: ``streamlit run dashboard/app.py`` (``surgecast run`` starts it on 127.0.0.1:8501).
The page is chosen in the sidebar or with ``?page=overview|series|anomalies|models|what-if``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from actions.what_if import WhatIfSettings, extend_with_history, summarise, what_if_plan
from dashboard.charts import COLOURS, fixture_timeline, series_chart, what_if_chart
from dashboard.client import ApiClient, ApiError, ApiUnreachable
from dashboard.views import (
    anomaly_states,
    fixture_outlook,
    frame,
    models_table,
    overview_table,
    related_context,
    to_time,
)

log = logging.getLogger("surgecast.dashboard")
API_URL = os.environ.get("SURGECAST_API_URL", "http://127.0.0.1:8000").rstrip("/")
REFRESH = os.environ.get("SURGECAST_DASHBOARD_REFRESH", "30s")
# API reads are cached this long: no shorter than the 15 s an autoscaler polls at, and well
# below the tick interval, so a refresh shows each tick
CACHE_TTL_S = 15
PAGES = {
    "overview": "Overview",
    "series": "Series explorer",
    "anomalies": "Anomalies & alerts",
    "models": "Models",
    "what-if": "What-if",
}

st.set_page_config(page_title="surgecast", page_icon=":chart_with_upwards_trend:", layout="wide")


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _cached_get(base_url: str, token: str | None, path: str, params: tuple[tuple[str, Any], ...]) -> Any:
    return ApiClient(base_url, token).get(path, dict(params))


def api_get(path: str, **params: Any) -> Any:
    """A cached API read (errors are not cached: the next refresh tries again).

    Timestamps in ``params`` (``start``, ``end``) are widened to whole minutes, so the reruns
    within the cache's TTL (a widget change, another viewer) ask for the same window and share
    one read; an exact "now" would make every read a new one."""
    window = {k: (v.floor("min") if k == "start" else v.ceil("min")).isoformat()
              for k, v in params.items() if isinstance(v, pd.Timestamp)}
    return _cached_get(API_URL, token(), path, tuple(sorted({**params, **window}.items())))


def token() -> str | None:
    return st.session_state.get("token") or os.environ.get("SURGECAST_API_TOKEN") or None


def now_utc() -> pd.Timestamp:
    """The service's now (``/healthz``): the wall clock in production, the simulated time of a
    ``--speed`` demo; the wall clock if the API does not say."""
    try:
        said = to_time(ApiClient(API_URL, token()).get("/healthz").get("now"))
    except ApiError:
        said = None
    return said if said is not None else pd.Timestamp.now(tz="UTC")


def iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def guarded(render: Callable[[], None]) -> None:
    """Run a page; an unreachable API or an API error is a banner, never a stack trace."""
    try:
        render()
    except ApiUnreachable as exc:
        st.error(
            f"**surgecast API unreachable** at {API_URL}: {exc}. The page retries every "
            f"{REFRESH}; nothing shown here is current until it answers.",
            icon=":material/cloud_off:",
        )
    except ApiError as exc:
        st.error(f"**The surgecast API refused a request**: {exc}", icon=":material/error:")
    except Exception as exc:  # a wall screen shows a banner, the log keeps the traceback
        log.exception("dashboard page failed")
        st.error(f"**This page hit a bug**: {type(exc).__name__}: {exc}. The other pages still "
                 "work; the dashboard's log has the details.", icon=":material/bug_report:")


def no_data_message() -> str:
    """The empty state: when the first tick will have data."""
    try:
        ready = ApiClient(API_URL, token()).get("/readyz")
    except ApiError as exc:  # not ready yet: 503, with the same body
        ready = exc.body if isinstance(exc.body, dict) else {}
    process = ready.get("process") or {}
    if process.get("alive") or process.get("running"):
        # surgecast run's scheduler child starts its first tick at once (an in-process
        # scheduler says it is running one)
        return "No data yet: the first tick is running now (it backfills history first)."
    return (
        "No data yet: no tick has finished. Is a scheduler (`surgecast run` or `surgecast "
        "scheduler`) running against this store?"
    )


# ---------------------------------------------------------------------------------- overview


def overview_page() -> None:
    now = now_utc()
    recs = api_get("/v1/recommendations")
    if not recs:
        st.info(no_data_message(), icon=":material/hourglass_empty:")
        return
    anomalies = api_get("/v1/anomalies", start=now - pd.Timedelta(hours=2), limit=500)["items"]
    table = overview_table(recs, anomalies, now)
    stale = table[table["stale"]]
    if len(stale):
        st.error(
            "**STALE DATA**: " + "; ".join(f"{r.service}: {r.data}" for r in stale.itertuples())
            + ". Recommendations are held (never lowered) until fresh data arrives.",
            icon=":material/warning:",
        )
    cols = st.columns(len(table))
    for col, row in zip(cols, table.to_dict("records"), strict=True):
        peak = row["forecast peak"]
        peak_text = f"peak {peak:,.0f} req/s in the lead window" if pd.notna(peak) else "no forecast"
        opened = row["open anomalies"]
        col.metric(
            row["service"], f"{row['replicas']} replicas",
            f"{opened} open {'anomaly' if opened == 1 else 'anomalies'}" if opened else None,
            delta_color="inverse", help=f"{peak_text}; data {row['data']}",
        )  # fmt: skip
    st.subheader("Services")
    st.dataframe(
        table.drop(columns=["stale"]), hide_index=True, width="stretch", key="recommendations",
        column_config={
            "load now": st.column_config.NumberColumn(format="%.0f req/s"),
            "ready capacity": st.column_config.NumberColumn(
                format="%.0f req/s", help="previous recommendation x capacity per replica"),
            "forecast peak": st.column_config.NumberColumn(
                format="%.0f req/s", help="upper bound of the forecast in the lead window"),
            "peak at": st.column_config.DatetimeColumn(format="HH:mm"),
            "lead (min)": st.column_config.NumberColumn(format="%.0f"),
            "reason": st.column_config.TextColumn(width="large"),
        },
    )  # fmt: skip
    throttled = table[table["throttle"] != ""]
    for row in throttled.itertuples():
        st.warning(f"**Throttle {row.service}**: {row.throttle}", icon=":material/speed:")
    st.subheader("Coming up: fixtures and the surge predicted for each")
    outlook = _outlook(recs, now)
    if outlook.empty:
        st.info("No fixtures in the next 6 hours.")
    else:
        for line in outlook["outlook"].head(8):
            st.markdown(f"- {line}")
        st.altair_chart(fixture_timeline(outlook, now), width="stretch", key="fixture_timeline")
        st.caption("Bars: fixtures, darker the bigger the surge; green ticks: when the replicas "
                   "must be ready; red rule: now.")  # fmt: skip
        st.dataframe(
            outlook.drop(columns=["outlook", "end"]), hide_index=True, width="stretch", key="outlook",
            column_config={
                "kickoff": st.column_config.DatetimeColumn(format="HH:mm"),
                "ready by": st.column_config.DatetimeColumn(format="HH:mm"),
                "surge": st.column_config.NumberColumn(
                    format="x%.1f", help="peak over the load an hour before kickoff"),
                "peak": st.column_config.NumberColumn(format="%.0f req/s"),
                "importance": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0),
            },
        )  # fmt: skip


def _outlook(recs: list[dict[str, Any]], now: pd.Timestamp) -> pd.DataFrame:
    fixtures = api_get(
        "/v1/fixtures", start=now - pd.Timedelta(days=2), end=now + pd.Timedelta(hours=6)
    )["events"]
    forecasts, history = {}, {}
    for rec in recs:
        uid = (rec.get("inputs") or {}).get("load_series")
        if not uid:
            continue
        fc = api_get(f"/v1/series/{uid}/forecast", start=now - pd.Timedelta(hours=1),
                     end=now + pd.Timedelta(hours=6))["points"]  # fmt: skip
        pts = api_get(f"/v1/series/{uid}/points", start=now - pd.Timedelta(days=2),
                      end=now)["points"]  # fmt: skip
        forecasts[rec["service"]] = frame(fc)
        history[rec["service"]] = frame(pts)
    return fixture_outlook(fixtures, recs, forecasts, history, now)


# ---------------------------------------------------------------------------- series explorer

WINDOWS = {"6 h": 6, "24 h": 24, "48 h": 48}


def series_page() -> None:
    series = [s["unique_id"] for s in api_get("/v1/series")]
    if not series:
        st.info(no_data_message(), icon=":material/hourglass_empty:")
        return
    default = next((i for i, s in enumerate(series) if s.endswith(":requests_per_second")), 0)
    left, right = st.columns([3, 1])
    uid = left.selectbox("Series", series, index=default, key="series")
    hours = WINDOWS[right.radio("Window", list(WINDOWS), horizontal=True, key="window")]
    render_series(uid, hours)


@st.fragment(run_every=REFRESH)
def render_series(uid: str, hours: int) -> None:
    def render() -> None:
        now = now_utc()
        start = now - pd.Timedelta(hours=hours)
        points = frame(api_get(f"/v1/series/{uid}/points", start=start, end=now)["points"])
        forecast = frame(api_get(f"/v1/series/{uid}/forecast", start=start,
                                 end=now + pd.Timedelta(hours=6))["points"])  # fmt: skip
        alerts = api_get("/v1/alerts", limit=500)["items"]
        anomalies = anomaly_states(api_get("/v1/anomalies", unique_id=uid, start=start,
                                           limit=1000)["items"], alerts)  # fmt: skip
        until = max(forecast["ds"].max(), now) if len(forecast) else now
        fixtures = frame(api_get("/v1/fixtures", start=start, end=until)["events"],
                         ("start", "end"))  # fmt: skip
        service = uid.partition(":")[0]
        history = api_get(f"/v1/recommendations/{service}/history", start=start,
                          limit=1000)["items"] if _known_service(service) else []  # fmt: skip
        replicas = frame(history, ("at",)).rename(columns={"at": "ds", "recommended_replicas": "replicas"})
        metric = uid.partition(":")[2] or uid
        st.altair_chart(
            series_chart(metric, points, forecast, anomalies, fixtures,
                         replicas if len(replicas) else None, domain=(start, until)),
            width="stretch", key="series_chart",
        )
        last = f"{points['y'].iloc[-1]:,.4g} at {points['ds'].iloc[-1]:%H:%M}" if len(points) else "none"
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Last value", last)
        c2.metric("Forecast points ahead", int((forecast["ds"] > now).sum()) if len(forecast) else 0)
        c3.metric("Anomalies in window", len(anomalies))
        c4.metric("Fixtures in window", len(fixtures))
        st.caption(
            f"Colours: actual (blue {COLOURS['actual']}), forecast and interval (orange), "
            "anomalies (red, shape by kind), recommended replicas (green, right axis), fixtures "
            "(grey). Drag to pan, scroll to zoom."
        )

    guarded(render)


def _known_service(service: str) -> bool:
    return service in {r["service"] for r in api_get("/v1/recommendations")}


# ------------------------------------------------------------------------- anomalies & alerts

STATES = ["firing", "flagged", "resolved", "acknowledged", "silenced"]


def anomalies_page() -> None:
    now = now_utc()
    f1, f2, f3, f4 = st.columns(4)
    hours = WINDOWS[f1.radio("Window", list(WINDOWS), index=1, horizontal=True, key="a_window")]
    anomalies = api_get("/v1/anomalies", start=now - pd.Timedelta(hours=hours), limit=1000)["items"]
    alerts = api_get("/v1/alerts", limit=500)["items"]
    table = anomaly_states(anomalies, alerts)
    services = sorted(table["service"].unique()) if len(table) else []
    kinds = sorted(k for k in table["kind"].dropna().unique()) if len(table) else []
    pick_services = f2.multiselect("Service", services, key="a_service")
    pick_kinds = f3.multiselect("Kind", kinds, key="a_kind")
    pick_states = f4.multiselect("State", STATES, key="a_state")
    shown = table
    if pick_services:
        shown = shown[shown["service"].isin(pick_services)]
    if pick_kinds:
        shown = shown[shown["kind"].isin(pick_kinds)]
    if pick_states:
        shown = shown[shown["state"].isin(pick_states)]
    st.subheader(f"Anomalies ({len(shown)} of {len(table)} in the last {hours} h)")
    if shown.empty:
        st.info("No anomalies match." if len(table) else f"No anomalies in the last {hours} h.")
    else:
        cols = ["ds", "state", "service", "unique_id", "kind", "score", "y", "expected", "lower",
                "upper", "detector"]  # fmt: skip
        st.dataframe(
            shown[cols], hide_index=True, width="stretch", key="anomalies_table",
            column_config={"ds": st.column_config.DatetimeColumn("time", format="MMM D HH:mm"),
                           "score": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)},
        )  # fmt: skip
        anomaly_detail(shown.reset_index(drop=True))
    st.subheader("Alerts")
    if not alerts:
        st.info("No alerts in the last 7 days.")
    else:
        rows = []
        for a in alerts:
            labels = (a.get("payload") or {}).get("labels") or {}
            notes = (a.get("payload") or {}).get("annotations") or {}
            rows.append({
                "created": to_time(a["created_at"]), "alert": labels.get("alertname", ""),
                "service": labels.get("service", ""), "series": labels.get("series", ""),
                "firing": a["firing"], "delivery": a["status"], "attempts": a["attempts"],
                "summary": notes.get("summary", ""), "last error": a.get("last_error") or "",
            })  # fmt: skip
        st.dataframe(pd.DataFrame(rows).sort_values("created", ascending=False), hide_index=True,
                     width="stretch", key="alerts_table")  # fmt: skip


def anomaly_detail(shown: pd.DataFrame) -> None:
    labels = [f"{r.ds:%b %d %H:%M} {r.unique_id} {r.kind} ({r.state})" for r in shown.itertuples()]
    i = st.selectbox("Detail", range(len(labels)), format_func=lambda k: labels[k], key="a_detail")
    row = shown.iloc[int(i)]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Value", f"{row['y']:,.4g}" if pd.notna(row["y"]) else "missing")
    expected = (f"{row['lower']:,.4g} .. {row['upper']:,.4g}"
                if pd.notna(row["lower"]) and pd.notna(row["upper"]) else "unknown")  # fmt: skip
    c2.metric("Expected range", expected)
    c3.metric("Score", f"{row['score']:.2f}" if pd.notna(row["score"]) else "-")
    c4.metric("State", row["state"])
    service = row["service"]
    at = row["ds"]
    siblings = [s["unique_id"] for s in api_get("/v1/series") if s["unique_id"].startswith(f"{service}:")]
    window = {"start": at - pd.Timedelta(hours=1), "end": at + pd.Timedelta(minutes=10)}
    points = {u: frame(api_get(f"/v1/series/{u}/points", **window)["points"]) for u in siblings}
    st.markdown(f"**What moved with it** (every {service} series at {at:%H:%M}, against the hour before)")
    st.dataframe(related_context(row.to_dict(), points), hide_index=True, width="stretch",
                 key="related", column_config={"ratio": st.column_config.NumberColumn(format="x%.2f")})
    with st.form("ack_form", clear_on_submit=True):
        reason = st.text_input("Reason", key="ack_reason", placeholder="e.g. provider incident, handled")
        submitted = st.form_submit_button("Acknowledge", disabled=not token())
    if not token():
        st.caption("Acknowledging needs an operator token (sidebar).")
    if submitted:
        body = {"action": "ack", "unique_id": row["unique_id"], "kind": row["kind"],
                "ds": iso(at), "reason": reason or "acknowledged from the dashboard"}  # fmt: skip
        try:
            ApiClient(API_URL, token()).post("/v1/anomalies/acks", body)
        except ApiError as exc:
            st.error(f"Not acknowledged: {exc}")
        else:
            _cached_get.clear()
            st.success(f"Acknowledged {row['unique_id']} at {at:%H:%M}.")


# ------------------------------------------------------------------------------------ models


def models_page() -> None:
    now = now_utc()
    models = api_get("/v1/models")
    left, right = st.columns([3, 1])
    with right:
        retrain_controls()
    if not models:
        left.info(
            "No model registered yet: until the retrain job has backtested each series, the "
            "service forecasts with its configured floor model. Retrain now, or wait for the "
            "retrain after start."
        )
        return
    table = models_table(models, now)
    left.dataframe(
        table, hide_index=True, width="stretch", key="models_table",
        column_config={"MASE": st.column_config.NumberColumn(format="%.3f", help="lower is better"),
                       "sMAPE (%)": st.column_config.NumberColumn(format="%.1f"),
                       "coverage": st.column_config.NumberColumn(
                           format="percent", help="held-out coverage of the forecast interval"),
                       "trained": st.column_config.DatetimeColumn(format="MMM D HH:mm"),
                       "age (h)": st.column_config.NumberColumn(format="%.1f")},
    )  # fmt: skip
    uid = st.selectbox("Score trend of", table["series"].tolist(), key="m_series")
    versions = api_get(f"/v1/models/{uid}", limit=50)
    if len(versions) > 1:
        trend = models_table(versions, now)
        st.line_chart(trend.set_index("trained")[["MASE"]], height=220)
    else:
        st.caption("One version so far: the trend appears after the next retrain.")


def retrain_controls() -> None:
    st.markdown("**Retrain**")
    client = ApiClient(API_URL, token())
    if st.button("Retrain now", disabled=not token(), key="retrain"):
        try:
            client.post("/v1/retrain")
        except ApiError as exc:
            st.error(f"Retrain not requested: {exc.detail}")
        else:
            st.success("Retrain requested: the scheduler runs it within seconds.")
    if not token():
        st.caption("Needs an operator token (sidebar).")
    try:
        status = client.get("/v1/retrain")
    except ApiError:
        return
    if status["state"] == "queued":
        st.info(f"Queued at {to_time(status['requested_at']):%H:%M:%S} by {status['requested_by']}; "
                "waiting for the scheduler.")  # fmt: skip
    elif status["state"] == "running":
        st.info(f"Running since {to_time(status['started_at']):%H:%M:%S}.")
    elif status["state"] == "finished":
        chosen = len(status.get("result") or {})
        st.caption(f"Last retrain finished {to_time(status['finished_at']):%H:%M:%S}"
                   + (f" with an error: {status['error']}" if status.get("error")
                      else f": {chosen} series."))  # fmt: skip


# ----------------------------------------------------------------------------------- what-if


def what_if_page() -> None:
    now = now_utc()
    recs = {r["service"]: r for r in api_get("/v1/recommendations")}
    if not recs:
        st.info(no_data_message(), icon=":material/hourglass_empty:")
        return
    service = st.selectbox("Service", sorted(recs), key="w_service")
    inputs = recs[service].get("inputs") or {}
    uid = inputs.get("load_series")
    now_settings = WhatIfSettings.from_inputs(
        inputs, ready_now=int(recs[service]["recommended_replicas"]))
    c1, c2, c3 = st.columns(3)
    capacity = c1.number_input("Capacity per replica (req/s)", min_value=0.1,
                               value=now_settings.capacity_per_replica, key="w_capacity")  # fmt: skip
    startup = c2.number_input("Startup delay (s)", min_value=0, max_value=3600, step=30,
                              value=now_settings.startup_delay_s, key="w_startup")  # fmt: skip
    util = c3.slider("Target utilisation", 0.1, 1.0, now_settings.target_utilization, 0.05, key="w_util")
    forecast = frame(api_get(f"/v1/series/{uid}/forecast", start=now,
                             end=now + pd.Timedelta(hours=6))["points"]) if uid else pd.DataFrame()
    if forecast.empty:
        st.info(f"No forecast for {service} yet; the what-if plans from the stored forecast.")
        return
    forecast = forecast.reset_index(drop=True)
    horizon_end = forecast["ds"].max()
    extend = st.toggle(
        "Look 6 h ahead: past the model's horizon, plan on the load a day earlier",
        value=True, key="w_extend",
    )  # fmt: skip
    if extend:
        history = frame(api_get(f"/v1/series/{uid}/points", start=now - pd.Timedelta(days=1),
                                end=now - pd.Timedelta(hours=18))["points"])  # fmt: skip
        forecast = extend_with_history(forecast, history, now + pd.Timedelta(hours=6))
    changed = dataclasses.replace(now_settings, capacity_per_replica=float(capacity),
                                  startup_delay_s=int(startup), target_utilization=float(util))
    same = changed == now_settings  # no deltas to show until a setting changes
    try:
        base_plan = what_if_plan(forecast, now_settings)
        plan = base_plan if same else what_if_plan(forecast, changed)
    except ValueError as exc:
        st.error(f"Cannot plan: {exc}")
        return
    base, new = summarise(base_plan, now_settings), summarise(plan, changed)

    def delta(new_value: float, old_value: float, fmt: str = "{:+.1f}") -> str | None:
        return None if same else fmt.format(new_value - old_value)

    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Peak replicas", new.peak_replicas,
              delta(new.peak_replicas, base.peak_replicas, "{:+d}"), delta_color="off")
    m2.metric("Replica-hours", f"{new.replica_hours:.1f}",
              delta(new.replica_hours, base.replica_hours), delta_color="inverse")
    m3.metric("Expected overloaded minutes", f"{new.expected_overload_minutes:.1f}",
              delta(new.expected_overload_minutes, base.expected_overload_minutes),
              delta_color="inverse")
    m4.metric("Worst overload risk", f"{new.max_overload_risk:.0%}")
    end = forecast["ds"].max()
    beyond = f", then on the load a day earlier until {end:%H:%M}" if end > horizon_end else ""
    st.caption(
        f"Planned with surgecast's planner over the stored forecast of {uid} until "
        f"{horizon_end:%H:%M} UTC (the model's horizon){beyond}. Deltas compare with the "
        f"service's settings now: "
        f"{now_settings.capacity_per_replica:g} req/s per replica, {now_settings.startup_delay_s} s "
        f"startup, {now_settings.target_utilization:.0%} target."
    )
    st.altair_chart(what_if_chart(plan, model_until=horizon_end), width="stretch", key="what_if_chart")
    st.dataframe(plan, hide_index=True, width="stretch", key="what_if_table",
                 column_config={"ds": st.column_config.DatetimeColumn(format="HH:mm"),
                                "overload_risk": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)})


# -------------------------------------------------------------------------------------- main

RENDER = {
    "overview": overview_page,
    "series": series_page,
    "anomalies": anomalies_page,
    "models": models_page,
    "what-if": what_if_page,
}


@st.fragment(run_every=REFRESH)
def refreshed(page: str) -> None:
    guarded(RENDER[page])


def main() -> None:
    wanted = st.query_params.get("page", "overview")
    if "page" not in st.session_state:
        st.session_state["page"] = wanted if wanted in PAGES else "overview"
    with st.sidebar:
        st.title("surgecast")
        page = st.radio("Page", list(PAGES), format_func=PAGES.get, key="page")
        st.query_params["page"] = page
        st.text_input("Operator token", type="password", key="token",
                      help="for acknowledging and retraining; SURGECAST_API_TOKEN sets a default")
        st.caption(f"API: {API_URL}  \nrefresh every {REFRESH}, reads cached {CACHE_TTL_S} s")
    st.header(PAGES[page])
    if page == "series":  # its widgets live outside the refreshing fragment
        guarded(series_page)
    else:
        refreshed(page)


main()
