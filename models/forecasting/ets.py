"""ETS / Holt-Winters: statsmodels additive damped trend + additive daily seasonality.

The fitted model is reduced to level, slope, damping and one seasonal cycle (read off its own
forecast, so it repeats exactly what statsmodels would forecast). Optimiser warnings are caught
here: a fit that does not converge still gives usable smoothing constants, and a fit that
breaks raises :class:`~models.errors.ModelError` so the caller falls back to seasonal naive.
"""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from models.errors import ModelError
from models.forecasting._components import ComponentForecaster, Components, damped_steps

__all__ = ["ETS"]

# "estimated" initial states are too slow beyond a day of hourly points (m = 288 takes seconds)
MAX_ESTIMATED_SEASON = 48


class ETS(ComponentForecaster):
    """Holt-Winters (A, Ad, A) with day-ahead residual intervals; needs two days of history.

    Example:
        >>> import numpy as np, pandas as pd
        >>> ds = pd.date_range("2026-01-01", periods=24 * 4, freq="h", tz="UTC")
        >>> y = 100 + 10 * np.sin(2 * np.pi * np.arange(96) / 24)
        >>> fc = ETS().fit(pd.DataFrame({"unique_id": "a", "ds": ds, "y": y})).predict(6)
        >>> bool(np.allclose(fc["yhat"], y[:6], atol=1.0))
        True
    """

    name = "ets"

    def _fit_values(self, values: np.ndarray, season: int) -> Components:
        init = "estimated" if season <= MAX_ESTIMATED_SEASON else "heuristic"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                res = ExponentialSmoothing(
                    values, trend="add", damped_trend=True, seasonal="add",
                    seasonal_periods=season, initialization_method=init,
                ).fit()
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ModelError(f"ETS: Holt-Winters fit failed ({exc})") from exc
        phi = float(res.params["damping_trend"])
        level, slope = float(res.level[-1]), float(res.trend[-1])
        path = np.asarray(res.forecast(season), dtype=float)
        cycle = path - (level + slope * damped_steps(phi, season))
        # day-ahead in-sample errors: forecast y[t] from the state at t - season
        lv, tr = np.asarray(res.level, float), np.asarray(res.trend, float)
        seas = np.asarray(res.season, float)
        n = values.size
        origin = np.arange(0, n - season)
        pred = lv[origin] + tr[origin] * damped_steps(phi, season)[-1] + seas[origin]
        errors = values[origin + season] - pred
        return Components(
            level=level, slope=slope, phi=phi, cycles=(cycle,), day_ahead_errors=errors
        )
