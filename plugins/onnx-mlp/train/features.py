"""The model's input features, computed exactly as `src/features.rs` computes them.

Both sides describe one forecast (a series' history up to its last index `o`, a lead of `k`
steps) by FEATURES numbers, all on fixed time grids so the series' step does not matter:

* 48 hourly means over the 48 h ending at the last index, oldest first, divided by `scale`
  (the mean absolute value of those 48 means). Empty hours are filled from the hour before
  (the first non-empty hour for leading ones; the last observation if all are empty).
* 12 values on a 5-minute grid over the last hour, the latest observation at or before each
  point (the first observation when the history starts later), divided by `scale`.
* The mean of the hour ending at the target time minus 1 day, 2 days and 7 days, divided by
  `scale`, each followed by a flag that is 1 when that hour holds an observation; without one
  the value is the mean of the last 3 hourly means and the flag 0.
* Sine and cosine of the target's time of day and day of week, and of the last index's time
  of day (UTC).
* The lead as a fraction of 48 h (capped at 1) and its square root.
* The share of the 48 hours that held an observation.
* How the history moves, divided by `scale`: the mean absolute change between an hour and the
  same hour a day earlier (low for a steady daily cycle), between consecutive hours, and
  between consecutive points of the last hour. These tell a steady series from a bursty one.

Hours are half-open intervals (t - 3600, t]. The history is `values[h0 ..= o]`: nothing before
`h0` or after `o` is seen. Gaps are NaN. Every function here takes arrays of forecasts of one
series, so training data is built without a Python loop per sample.
"""

import numpy as np

HOUR = 3600
DAY = 86_400
BINS = 48
FINE = 12
FINE_STEP = 300
LAG_DAYS = (1, 2, 7)
MAX_LEAD = 48 * HOUR
FEATURES = BINS + FINE + 2 * len(LAG_DAYS) + 6 + 2 + 1 + 3
# Positions of the same hour 1 day back, its flag, and the same hour 2 days back.
YESTERDAY, YESTERDAY_SEEN, TWO_DAYS = BINS + FINE, BINS + FINE + 1, BINS + FINE + 2


class Series:
    """An evenly spaced series and the running sums the windows need."""

    def __init__(self, start, step, values):
        self.start = int(start)
        self.step = int(step)
        self.values = np.asarray(values, dtype=np.float64)
        valid = ~np.isnan(self.values)
        self.sums = np.concatenate([[0.0], np.cumsum(np.where(valid, self.values, 0.0))])
        self.counts = np.concatenate([[0], np.cumsum(valid)])
        n = len(self.values)
        index = np.arange(n)
        # Latest valid index at or before i, and first valid index at or after i (-1 / n: none).
        self.prev_valid = np.maximum.accumulate(np.where(valid, index, -1))
        self.next_valid = np.minimum.accumulate(np.where(valid, index, n)[::-1])[::-1]

    def index_at(self, t):
        """Index of the last grid point at or before Unix time `t` (floor division)."""
        return np.floor_divide(t - self.start, self.step)

    def window_mean(self, lo, hi, h0, o):
        """Mean and count of the observations in (lo, hi] within values[h0 ..= o]."""
        first = np.maximum(self.index_at(lo) + 1, h0)
        last = np.minimum(self.index_at(hi), o)
        empty = last < first
        first = np.where(empty, 0, first)
        last = np.where(empty, -1, last)
        count = self.counts[last + 1] - self.counts[first]
        total = self.sums[last + 1] - self.sums[first]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return mean, count


def calendar(t):
    """(sin, cos) of time of day and of day of week (Monday = 0; 1970-01-01 was a Thursday)."""
    day_phase = np.mod(t, DAY) / DAY
    weekday = np.mod(np.floor_divide(t, DAY) + 3, 7) / 7.0
    return (
        np.sin(2 * np.pi * day_phase),
        np.cos(2 * np.pi * day_phase),
        np.sin(2 * np.pi * weekday),
        np.cos(2 * np.pi * weekday),
    )


def features(s, o, h0, k, calendar_shift=0):
    """Features of forecasts from history values[h0 ..= o], `k` steps ahead: (len(o), FEATURES).

    Also returns each forecast's scale, which turns the model's outputs back into units.
    `calendar_shift` (seconds, training only) moves the clock the calendar features read.
    """
    o = np.asarray(o, dtype=np.int64)
    h0 = np.asarray(h0, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    last_time = s.start + o * s.step
    target = last_time + k * s.step
    last_seen = s.prev_valid[o]
    assert np.all(last_seen >= h0), "every history needs one observation"

    bins = np.empty((len(o), BINS))
    for b in range(BINS):
        hi = last_time - (BINS - 1 - b) * HOUR
        bins[:, b], _ = s.window_mean(hi - HOUR, hi, h0, o)
    coverage = np.mean(~np.isnan(bins), axis=1)
    # Forward fill, then back fill the leading gap; all empty: the last observation.
    for b in range(1, BINS):
        bins[:, b] = np.where(np.isnan(bins[:, b]), bins[:, b - 1], bins[:, b])
    for b in range(BINS - 2, -1, -1):
        bins[:, b] = np.where(np.isnan(bins[:, b]), bins[:, b + 1], bins[:, b])
    bins = np.where(np.isnan(bins), s.values[last_seen][:, None], bins)
    scale = np.mean(np.abs(bins), axis=1)
    scale = np.where(scale > 0, scale, 1.0)

    first_seen = s.next_valid[h0]
    fine = np.empty((len(o), FINE))
    for j in range(FINE):
        i = np.minimum(s.index_at(last_time - (FINE - 1 - j) * FINE_STEP), o)
        seen = np.where(i >= h0, s.prev_valid[np.maximum(i, 0)], -1)
        seen = np.where(seen >= h0, seen, first_seen)
        fine[:, j] = s.values[seen]

    level = np.mean(bins[:, -3:], axis=1)
    lags = []
    for days in LAG_DAYS:
        mean, count = s.window_mean(target - days * DAY - HOUR, target - days * DAY, h0, o)
        lags += [np.where(count > 0, mean, level), (count > 0).astype(np.float64)]
    lags = np.stack(lags, axis=1)
    lags[:, 0::2] /= scale[:, None]

    tod_s, tod_c, dow_s, dow_c = calendar(target + calendar_shift)
    last_s, last_c, _, _ = calendar(last_time + calendar_shift)
    lead = np.minimum(k * s.step, MAX_LEAD) / MAX_LEAD

    bins = bins / scale[:, None]
    fine = fine / scale[:, None]
    daily_change = np.mean(np.abs(bins[:, 24:] - bins[:, :24]), axis=1)
    hourly_change = np.mean(np.abs(np.diff(bins, axis=1)), axis=1)
    fine_change = np.mean(np.abs(np.diff(fine, axis=1)), axis=1)

    x = np.concatenate(
        [
            bins,
            fine,
            lags,
            np.stack(
                [tod_s, tod_c, dow_s, dow_c, last_s, last_c, lead, np.sqrt(lead), coverage]
                + [daily_change, hourly_change, fine_change],
                axis=1,
            ),
        ],
        axis=1,
    )
    assert x.shape[1] == FEATURES
    return x, scale
