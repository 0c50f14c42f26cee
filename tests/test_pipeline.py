"""The tick end to end on the real simulator and a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from collectors import CollectorError, SeriesRequest, SimulatedCollector
from surgecast.config import Settings
from surgecast.errors import DataError
from surgecast.pipeline import Pipeline
from surgecast.store import Store
from surgecast.wiring import build_pipeline, build_sources, resolve_series

NOW = pd.Timestamp("2026-11-20 18:00", tz="UTC")  # a Friday evening


def small_settings(tmp_path, url: str, **overrides) -> Settings:
    data = {
        "backfill_days": 3,
        "stale_after_seconds": 900,
        "sources": {"simulator": {"type": "simulator", "seed": 11, "step": "5min"}},
        "store": {"url": url},
        "models_dir": str(tmp_path / "models"),
        "forecast": {"history_days": 3},
        "detect": {"history_days": 2, "rescore_minutes": 60},
    }
    data.update(overrides)
    return Settings(**data)


@pytest.fixture
def settings(tmp_path, store_url):
    return small_settings(tmp_path, store_url)


@pytest.fixture
def pipeline(settings, store):
    return build_pipeline(settings, store)


def test_first_tick_backfills_and_recommends_for_every_service(pipeline, store, settings):
    report = pipeline.tick(NOW)
    assert report.errors == []
    expected_points = int(pd.Timedelta(days=3) / pd.Timedelta("5min"))
    assert len(report.points) == len(pipeline.series) > 10
    # every series got its history (silenced series may miss a window, never more than it had)
    assert max(report.points.values()) == expected_points
    recs = {r["service"]: r for r in store.latest_recommendations()}
    assert set(recs) == set(settings.services)
    for rec in recs.values():
        assert rec["recommended_replicas"] >= settings.services[rec["service"]].min_replicas
        assert rec["reason"].startswith(rec["service"])
        assert pd.Timestamp(rec["valid_until"]) > pd.Timestamp(rec["at"])
        assert isinstance(rec["stale"], bool)
        assert (
            rec["inputs"]["capacity_per_replica"]
            == settings.services[rec["service"]].capacity_per_replica
        )
    assert report.forecasts > 0
    assert store.last_tick()["ok"] is True


def test_ticks_are_incremental_and_idempotent(pipeline, store):
    pipeline.tick(NOW)
    counts = store.series_summary().set_index("unique_id")["n_points"]
    again = pipeline.tick(NOW)
    assert sum(again.points.values()) == 0
    later = pipeline.tick(NOW + pd.Timedelta("5min"))
    assert set(later.points.values()) <= {0, 1}
    assert sum(later.points.values()) >= len(pipeline.series) - 2  # silenced series add nothing
    after = store.series_summary().set_index("unique_id")["n_points"]
    assert ((after - counts) <= 1).all()


def test_restart_fills_the_gap_without_duplicates(settings, store):
    build_pipeline(settings, store).tick(NOW)
    # "crash", then a new process two hours later on the same store
    restarted = build_pipeline(settings, store)
    report = restarted.tick(NOW + pd.Timedelta(hours=2))
    assert report.errors == []
    uid = "bet-placement:requests_per_second"
    points = store.read_points(
        uid, start=NOW - pd.Timedelta(days=3), end=NOW + pd.Timedelta(hours=2)
    )
    assert points["ds"].is_unique
    steps = points["ds"].diff().dropna().unique()
    assert list(steps) == [pd.Timedelta("5min")]  # contiguous: the gap was filled
    assert report.points[uid] == 24


def test_simulator_values_are_identical_across_processes(settings, store, tmp_path):
    build_pipeline(settings, store).tick(NOW)
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        build_pipeline(settings, other).tick(NOW)
        uid = "payments:deposits_per_second"
        a = store.read_points(uid, end=NOW)
        b = other.read_points(uid, end=NOW)
        pd.testing.assert_frame_equal(a, b)
    finally:
        other.close()


class BrokenCollector:
    name = "broken"

    def fetch(self, request: SeriesRequest, start, end):
        raise CollectorError(f"cannot reach source for {request.query}")


class PartlyBrokenCollector:
    """The real simulator collector, except one series fails and one returns garbage."""

    name = "simulator"

    def __init__(self, inner: SimulatedCollector, fail: str, garbage: str) -> None:
        self.inner, self.fail, self.garbage = inner, fail, garbage

    def fetch(self, request, start, end):
        if request.unique_id == self.fail:
            raise CollectorError("connection refused")
        frame = self.inner.fetch(request, start, end)
        if request.unique_id == self.garbage:
            frame = frame.astype({"y": object})
            frame.loc[frame.index[0], "y"] = "n/a"
        return frame


class Altered:
    """The real simulator collector, with one series changed by ``alter(frame, start, end)``."""

    name = "simulator"

    def __init__(self, inner, unique_id: str, alter) -> None:
        self.inner, self.unique_id, self.alter = inner, unique_id, alter

    def fetch(self, request, start, end):
        frame = self.inner.fetch(request, start, end)
        return self.alter(frame, start, end) if request.unique_id == self.unique_id else frame


def quiet_settings(tmp_path) -> Settings:
    """5-min data, 4 days, no simulated incidents: the detectors have 3 days at each phase."""
    return small_settings(
        tmp_path, "sqlite://", backfill_days=4,
        sources={"simulator": {"type": "simulator", "seed": 11, "step": "5min", "incidents_per_day": 0}},
        detect={"history_days": 3.5, "rescore_minutes": 60},
    )  # fmt: skip


def spike(since: pd.Timestamp, factor: float = 40.0):
    def alter(frame, start, end):
        frame.loc[frame["ds"] >= since, "y"] *= factor
        return frame

    return alter


def test_one_failing_series_never_stops_the_others(settings, store):
    sources = build_sources(settings)
    series = resolve_series(settings, sources)
    collector = PartlyBrokenCollector(
        sources.collectors["simulator"],
        fail="odds-api:requests_per_second",
        garbage="account:logins_per_second",
    )
    pipeline = Pipeline(settings, store, {"simulator": collector}, series)
    report = pipeline.tick(NOW)
    failed = {(e["stage"], e["subject"]) for e in report.errors}
    assert ("collect", "odds-api:requests_per_second") in failed
    assert ("collect", "account:logins_per_second") in failed
    garbage_error = next(e for e in report.errors if e["subject"] == "account:logins_per_second")
    assert "non-numeric" in garbage_error["error"]
    assert report.points["bet-placement:requests_per_second"] > 0
    recs = {r["service"]: r for r in report.recommendations}
    # odds-api has no data at all: a recommendation is still published, stale, at least min
    assert recs["odds-api"]["stale"] is True
    assert recs["odds-api"]["recommended_replicas"] >= settings.services["odds-api"].min_replicas
    assert recs["bet-placement"]["stale"] is False
    assert store.last_tick()["ok"] is False


def counting_validations(monkeypatch) -> list[str]:
    """The ``source`` of every validate_series call the tick makes."""
    import surgecast.pipeline as pipeline_module

    calls: list[str] = []
    real = pipeline_module.validate_series

    def counted(frame, *, source="input"):
        calls.append(source)
        return real(frame, source=source)

    monkeypatch.setattr(pipeline_module, "validate_series", counted)
    return calls


def test_a_clean_tick_is_validated_in_one_call_and_counted_per_series(settings, store, monkeypatch):
    calls = counting_validations(monkeypatch)
    sources = build_sources(settings)
    # configured series need not be in id order (templates expand metric by metric)
    series = list(reversed(resolve_series(settings, sources)))
    pipeline = Pipeline(settings, store, sources.collectors, series)
    report = pipeline.tick(NOW)
    assert calls == ["collect"] and report.repairs == []
    summary = store.series_summary().set_index("unique_id")["n_points"]
    assert len(summary) == len(pipeline.series) > 10
    for uid, n in summary.items():
        assert report.points[uid] == n > 0
    calls.clear()
    report = pipeline.tick(NOW + pd.Timedelta("5min"))
    assert calls == ["collect"]
    assert set(report.points.values()) == {1}  # one new 5-minute point each


def _shuffled_with_a_gap(frame):
    frame = frame.iloc[::-1].reset_index(drop=True)
    frame.loc[3, "y"] = float("nan")
    return frame


@pytest.mark.parametrize(
    ("alter", "repairs", "lost"),
    [
        (_shuffled_with_a_gap, ["dropped 1 missing (NaN) value(s); they are not observations",
                                "sorted rows by unique_id and ds"], 1),
        (lambda f: f.assign(ds=f["ds"].dt.tz_convert("Europe/Paris")),
         ["converted ds from Europe/Paris to UTC"], 0),
        (lambda f: f.assign(ds=f["ds"].dt.tz_localize(None)), ["ds had no timezone; taken as UTC"], 0),
    ],
    ids=["unsorted-with-nan", "paris-time", "naive-time"],
)
def test_a_frame_to_repair_is_validated_alone_and_named(settings, store, monkeypatch, alter,
                                                        repairs, lost):
    calls = counting_validations(monkeypatch)
    uid = "payments:deposits_per_second"
    sources = build_sources(settings)
    collector = Altered(sources.collectors["simulator"], uid, lambda f, start, end: alter(f))
    pipeline = Pipeline(settings, store, {"simulator": collector}, resolve_series(settings, sources))
    report = pipeline.tick(NOW)
    assert calls == ["collect", f"simulator:{uid}"]  # the clean ones together, then this one
    assert report.repairs == [f"simulator:{uid}: {r}" for r in repairs]
    assert report.errors == []
    stored = store.read_points(uid, end=NOW)
    assert stored["ds"].is_monotonic_increasing and stored["y"].notna().all()
    assert report.points[uid] == len(stored) == 3 * 24 * 12 - lost
    assert report.points["odds-api:requests_per_second"] == 3 * 24 * 12


def test_rows_of_another_series_in_a_frame_are_not_stored(settings, store, monkeypatch):
    calls = counting_validations(monkeypatch)
    uid, other = "payments:deposits_per_second", "payments:requests_per_second"

    def mislabelled(frame, start, end):
        stray = frame.tail(2).assign(unique_id="payments:ghost_per_second")
        return pd.concat([frame, stray], ignore_index=True)

    sources = build_sources(settings)
    collector = Altered(sources.collectors["simulator"], uid, mislabelled)
    pipeline = Pipeline(settings, store, {"simulator": collector}, resolve_series(settings, sources))
    report = pipeline.tick(NOW)
    assert calls == ["collect", f"simulator:{uid}"]
    assert "payments:ghost_per_second" not in set(store.series_summary()["unique_id"])
    assert report.points[uid] == report.points[other] == 3 * 24 * 12


def test_an_empty_frame_without_columns_is_an_error_of_its_series(settings, store):
    uid = "payments:deposits_per_second"
    sources = build_sources(settings)
    collector = Altered(sources.collectors["simulator"], uid, lambda f, s, e: pd.DataFrame())
    pipeline = Pipeline(settings, store, {"simulator": collector}, resolve_series(settings, sources))
    report = pipeline.tick(NOW)
    [error] = [e for e in report.errors if e["stage"] == "collect"]
    assert error["subject"] == uid and "missing column" in error["error"]
    assert report.points["odds-api:requests_per_second"] == 3 * 24 * 12


def test_a_steady_tick_refits_no_detector(settings, store, monkeypatch):
    pipeline = build_pipeline(settings, store)
    pipeline.tick(NOW)
    watched = [s.unique_id for s in pipeline.series if pipeline.detection.watches(s.unique_id)]
    assert all(pipeline.detection.has(uid) for uid in watched)
    # error ratios have no per-series detector: they must not be "fitted" again every tick
    assert any(s.unique_id.endswith("error_ratio") for s in pipeline.series)
    reads: list[str] = []
    real = store.read_anomalies

    def counted(unique_id, *args, **kwargs):
        reads.append(unique_id)
        return real(unique_id, *args, **kwargs)

    monkeypatch.setattr(store, "read_anomalies", counted)
    report = pipeline.tick(NOW + pd.Timedelta("5min"))
    assert reads == [] and report.errors == []


def test_missing_data_never_scales_down(settings, store):
    sources = build_sources(settings)
    series = resolve_series(settings, sources)
    good = Pipeline(settings, store, sources.collectors, series)
    first = {r["service"]: r for r in good.tick(NOW).recommendations}
    # force a high previous recommendation, then lose the source for 20 minutes
    high = dict(first["bet-placement"], recommended_replicas=45, at=NOW + pd.Timedelta("1min"))
    store.save_recommendation(high)
    dead = Pipeline(settings, store, {"simulator": BrokenCollector()}, series)
    report = dead.tick(NOW + pd.Timedelta("20min"))
    rec = next(r for r in report.recommendations if r["service"] == "bet-placement")
    assert rec["stale"] is True
    assert rec["recommended_replicas"] >= 45
    assert "stale" in rec["reason"] or "holding" in rec["reason"]


def test_a_failing_model_falls_back_to_holding(settings, store, monkeypatch):
    pipeline = build_pipeline(settings, store)
    pipeline.tick(NOW)

    def boom(self, frame, events=None):
        raise DataError("model exploded")

    before = {r["service"]: r["recommended_replicas"] for r in store.latest_recommendations()}
    monkeypatch.setattr("models.SeasonalNaive.fit", boom)
    report = pipeline.tick(NOW + pd.Timedelta(hours=1))
    assert any(e["stage"] == "forecast" for e in report.errors)
    assert len(report.recommendations) == len(settings.services)
    assert all(r["stale"] for r in report.recommendations)
    # no forecast: hold exactly what was recommended before, and say why
    for rec in report.recommendations:
        assert rec["recommended_replicas"] == before[rec["service"]]
        assert "holding" in rec["reason"] and rec["model"] == "none"


def test_anomalies_are_detected_and_stored(tmp_path, store):
    # no simulated incidents: the only anomaly is the one injected below. On 5-min data the
    # detector needs three previous days at the same phase, hence 4 days of history.
    settings = quiet_settings(tmp_path)
    sources = build_sources(settings)
    series = resolve_series(settings, sources)
    spiky = Altered(
        sources.collectors["simulator"], "payments:deposit_failures_per_second",
        spike(NOW - pd.Timedelta("15min")),
    )  # fmt: skip
    pipeline = Pipeline(settings, store, {"simulator": spiky}, series)
    report = pipeline.tick(NOW)
    assert report.anomalies >= 1
    found = store.read_anomalies("payments:deposit_failures_per_second")
    assert len(found) >= 1
    assert (found["kind"] == "spike").all()
    # one alert for the condition in the outbox, in Alertmanager's shape, not one per point
    pending = store.pending_alerts(now=NOW + pd.Timedelta("1min"))
    ours = [a for a in pending if a["payload"]["labels"]["series"] == "payments:deposit_failures_per_second"]
    assert len(ours) == 1
    assert ours[0]["payload"]["labels"]["kind"] == "spike"
    assert "expected about" in ours[0]["payload"]["annotations"]["description"]
    assert report.alerts >= 1
    # the next tick sees the condition again: the pending alert is not duplicated
    pipeline.tick(NOW + pd.Timedelta("5min"))
    pending = store.pending_alerts(now=NOW + pd.Timedelta("10min"))
    assert len([a for a in pending if a["payload"]["labels"]["series"] == "payments:deposit_failures_per_second"]) == 1


def test_retrain_chooses_per_series_and_the_next_tick_uses_the_choice(tmp_path, store):
    # 5-min data, 9 days: enough for the backtest windows of every candidate
    settings = small_settings(
        tmp_path, "sqlite://", backfill_days=9,
        forecast={"history_days": 9, "retrain_window_days": 9, "event_model": "none",
                  "retrain_backtest_windows": 3},
    )  # fmt: skip
    pipeline = build_pipeline(settings, store)
    first = pipeline.tick(NOW)
    assert {r["model"] for r in first.recommendations} == {"seasonal_naive"}
    results = pipeline.retrain(NOW)
    chosen = {uid: model for uid, model in results.items() if not model.startswith(("error", "no "))}
    assert len(chosen) >= len(pipeline.series) - 2
    entry = store.latest_model("bet-placement:requests_per_second")
    meta = entry["metadata"]
    for key in ("series", "training_window", "data_hash", "scores", "libraries", "policy"):
        assert key in meta
    assert entry["model"] == chosen["bet-placement:requests_per_second"]
    # the next tick picks the registered choice up
    report = pipeline.tick(NOW + pd.Timedelta("5min"))
    rec = next(r for r in report.recommendations if r["service"] == "bet-placement")
    assert rec["model"] == entry["model"]
    assert [e for e in report.errors if e["stage"] == "forecast"] == []


def test_a_tampered_registry_file_is_refused(tmp_path, store):
    settings = small_settings(
        tmp_path, "sqlite://", backfill_days=9,
        forecast={"history_days": 9, "retrain_window_days": 9, "event_model": "none",
                  "retrain_backtest_windows": 2},
    )  # fmt: skip
    pipeline = build_pipeline(settings, store)
    pipeline.tick(NOW)
    pipeline.retrain(NOW)
    uid = "bet-placement:requests_per_second"
    path = Path(store.latest_model(uid)["path"])
    payload = json.loads(path.read_text())
    payload["model"] = "ets"
    path.write_text(json.dumps(payload))
    fresh = build_pipeline(settings, store)  # a new process reads the registry
    report = fresh.tick(NOW + pd.Timedelta("5min"))
    refused = [e for e in report.errors if e["subject"] == uid]
    assert refused and "does not match its registry checksum" in refused[0]["error"]
    rec = next(r for r in report.recommendations if r["service"] == "bet-placement")
    assert rec["model"] == "seasonal_naive"  # the floor, not the tampered choice


def test_a_failing_batch_upsert_is_retried_series_by_series(settings, store, monkeypatch):
    pipeline = build_pipeline(settings, store)
    real = store.upsert_points

    def picky(frame):
        if frame["unique_id"].nunique() > 1:
            raise DataError("batch rejected")
        if frame["unique_id"].iloc[0] == "payments:deposits_per_second":
            raise DataError("this one is bad")
        return real(frame)

    monkeypatch.setattr(store, "upsert_points", picky)
    report = pipeline.tick(NOW)
    failed = [e for e in report.errors if e["stage"] == "collect"]
    assert [e["subject"] for e in failed] == ["payments:deposits_per_second"]
    assert report.points["payments:deposits_per_second"] == 0
    summary = store.series_summary().set_index("unique_id")
    assert "payments:deposits_per_second" not in summary.index
    assert summary.loc["payments:requests_per_second", "n_points"] > 0


def test_a_restarted_process_rescores_points_the_dead_one_never_scored(tmp_path, store):
    settings = quiet_settings(tmp_path)
    sources = build_sources(settings)
    series = resolve_series(settings, sources)
    spiked = "payments:deposit_failures_per_second"
    spiky = Altered(sources.collectors["simulator"], spiked, spike(NOW - pd.Timedelta("10min")))

    # the first process stores the points and "dies" before detection
    first = Pipeline(settings, store, {"simulator": spiky}, series)
    first._detect = lambda now, report: None  # type: ignore[method-assign]
    first.tick(NOW)
    assert store.read_anomalies(spiked).empty
    # the next process has nothing new to fetch at first, then one new point
    second = Pipeline(settings, store, {"simulator": spiky}, series)
    second.tick(NOW + pd.Timedelta("5min"))
    assert len(store.read_anomalies(spiked)) >= 1


def test_load_series_use_the_event_aware_model_when_fixtures_are_known(tmp_path, store):
    settings = small_settings(
        tmp_path, "sqlite://", backfill_days=9,
        forecast={"history_days": 3, "event_history_days": 9, "event_refit_minutes": 30},
    )  # fmt: skip
    pipeline = build_pipeline(settings, store)
    report = pipeline.tick(NOW)
    assert report.errors == []
    recs = {r["service"]: r for r in report.recommendations}
    assert {r["model"] for r in recs.values()} == {"seasonal_events"}
    # the other series keep the floor
    other = store.read_forecast("payments:deposits_per_second", start=NOW)
    assert set(other["model"]) == {"seasonal_naive"}
    # within the refit interval the cached fit is reused: no second fit, same forecast values
    cache = pipeline.event_forecasts
    fitted = cache._cache["bet-placement:requests_per_second"].fitted_at
    pipeline.tick(NOW + pd.Timedelta("5min"))
    assert cache._cache["bet-placement:requests_per_second"].fitted_at == fitted


def test_a_failing_event_model_keeps_the_floor_and_reports_it(tmp_path, store, monkeypatch):
    settings = small_settings(
        tmp_path, "sqlite://", backfill_days=9, forecast={"history_days": 3, "event_history_days": 9}
    )

    def boom(self, frame, events=None):
        raise DataError("event model exploded")

    monkeypatch.setattr("models.forecasting.seasonal_events.SeasonalEvents.fit", boom)
    report = build_pipeline(settings, store).tick(NOW)
    assert {e["stage"] for e in report.errors} == {"forecast"}
    assert all(r["model"] == "seasonal_naive" for r in report.recommendations)
    assert not any(r["stale"] for r in report.recommendations)


def test_a_series_that_stops_arriving_is_absent_and_alerted(settings, store):
    sources = build_sources(settings)
    series = resolve_series(settings, sources)
    silent = "account:logins_per_second"

    silencing = Altered(sources.collectors["simulator"], silent, lambda f, a, b: f[f["ds"] < NOW])

    pipeline = Pipeline(settings, store, {"simulator": silencing}, series)
    pipeline.tick(NOW)
    assert store.read_anomalies(silent).empty
    report = pipeline.tick(NOW + pd.Timedelta("20min"))  # 4 points of 5 min missing
    found = store.read_anomalies(silent)
    assert list(found["kind"]) == ["absent"]
    others = store.read_anomalies("account:requests_per_second")
    assert "absent" not in set(others["kind"])
    alerts = [a for a in store.pending_alerts(now=NOW + pd.Timedelta("1h"))
              if a["payload"]["labels"]["series"] == silent]
    assert [a["payload"]["labels"]["kind"] for a in alerts] == ["absent"]
    assert report.alerts >= 1


def test_a_payment_outage_alerts_through_the_ratio_detector(tmp_path, store):
    settings = quiet_settings(tmp_path)
    sources = build_sources(settings)
    series = resolve_series(settings, sources)
    outage_from = NOW + pd.Timedelta("10min")
    simulated = sources.collectors["simulator"]

    def outage(frame, start, end):
        request = SeriesRequest("payments:deposits_per_second", "payments:deposits_per_second")
        deposits = simulated.fetch(request, start, end).set_index("ds")["y"]
        late = frame["ds"] >= outage_from
        # 80% of deposits fail from outage_from on (normally ~15%)
        frame.loc[late, "y"] = 0.8 * frame.loc[late, "ds"].map(deposits).to_numpy()
        return frame

    outage_collector = Altered(simulated, "payments:deposit_failures_per_second", outage)
    pipeline = Pipeline(settings, store, {"simulator": outage_collector}, series)
    pipeline.tick(NOW)
    for minutes in (5, 10, 15, 20, 25, 30):
        pipeline.tick(NOW + pd.Timedelta(minutes=minutes))
    alerts = store.pending_alerts(now=NOW + pd.Timedelta("1h"))
    ratio_alerts = [a for a in alerts if a["payload"]["labels"]["series"] == "payments:deposit_failure_ratio"]
    assert len(ratio_alerts) == 1
    started = pd.Timestamp(ratio_alerts[0]["payload"]["startsAt"])
    assert outage_from <= started <= outage_from + pd.Timedelta("15min")
