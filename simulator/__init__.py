"""Deterministic simulator of a mid-size online sportsbook's service metrics.

Generates the canonical long frame ``unique_id, ds, y`` for four kinds of service (odds-api,
bet-placement, account, payments), a fixture calendar (``fixtures``) and ground-truth incident
labels (``incidents``). Shapes are calibrated on ``shared/BETTING_TRAFFIC.md``.

Scale (service ``scale=1``, default config, UTC; medians over 28 days, peaks = max minute):

==================================  =========  ===========  ===========  ======  ========
series                              03-05 UTC  weekday 15h  weekday eve  median  peak
==================================  =========  ===========  ===========  ======  ========
bet-placement bets_per_second       5          ~20-27       ~80          ~20     400-750
bet-placement requests_per_second   12         65           180          48      ~2,600
bet-placement stake_per_second      60         320          980          230     ~8,000
odds-api requests_per_second        155        800          2,500        590     ~20,000
account requests_per_second         23         120          355          90      ~2,800
account logins_per_second           0.8        4.9          7.4          3.7     ~60
payments deposits_per_second        0.33       2.0          2.9          1.6     ~30
payments withdrawals_per_second     0.1        0.6          0.9          0.43    ~7
==================================  =========  ===========  ===========  ======  ========

Bets: ~20/s on a quiet weekday afternoon, several hundred per second at big kickoffs
(Champions League 20:00, Saturday 15:00), so the peak minute is x4-13 the day mean. Odds-api
reads ~30 per bet [BF07]; account ~4 requests per bet plus 3 per login [OB], ~4 % of logins
fail; deposits ~0.08 per bet (x1.4 count at weekends [TRU]), 15 % of attempts fail [PAY];
withdrawals flat over the week with a wave after each final whistle. Error ratios sit at
0.2-0.8 % and p95 latencies at 45 ms (odds) to 650 ms (payments), both rising with load.

Values depend only on (seed, config, time): every UTC day is rendered from RNGs seeded by
``(seed, day, ...)``, so any window is the concatenation of its sub-windows.

Example:
    >>> from simulator import Simulator, SimulatorConfig
    >>> sim = Simulator(SimulatorConfig(seed=7, step="1min"))
    >>> sim.series_ids()[:2]
    ['account:error_ratio', 'account:latency_p95_seconds']
"""

from simulator.config import ServiceSpec, SimulatorConfig
from simulator.engine import Simulator
from simulator.files import generate_files
from simulator.openmetrics import write_openmetrics

__all__ = ["ServiceSpec", "Simulator", "SimulatorConfig", "generate_files", "write_openmetrics"]
