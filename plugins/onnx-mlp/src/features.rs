//! The model's input: [`FEATURES`] numbers per forecast, exactly as `train/features.py` computes
//! them for training (`features_match_the_training_code` holds the two together).
//!
//! Every window is on a fixed time grid, so a series' step does not matter:
//!
//! * 48 hourly means over the 48 h ending at the last observation time, oldest first, divided
//!   by the scale (their mean absolute value). An empty hour takes the hour before it (leading
//!   empty hours the first non-empty one; with none at all, the last observation).
//! * 12 points on a 5-minute grid over the last hour: the latest observation at or before each
//!   (the first observation where the history starts later), divided by the scale.
//! * For the target time minus 1, 2 and 7 days, the mean of the hour ending there divided by
//!   the scale, and a flag that it held an observation; else the mean of the last 3 hours and 0.
//! * Sine and cosine of the target's time of day and day of week, and of the last time's time
//!   of day (UTC).
//! * The lead as a share of 48 h (capped at 1) and its square root; the share of the 48 hours
//!   that held an observation.
//! * How the history moves, divided by the scale: the mean absolute change from an hour to the
//!   same hour a day later (low for a steady daily cycle), from one hour to the next, and from
//!   one point of the last hour to the next. They tell a steady series from a bursty one.
//!
//! Hours are half-open, `(t − 1 h, t]`. Gaps are NaN.

use std::f64::consts::TAU;

/// Numbers per forecast.
pub const FEATURES: usize = BINS + FINE + 2 * LAG_DAYS.len() + 6 + 2 + 1 + 3;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const BINS: usize = 48;
const FINE: usize = 12;
const FINE_STEP: i64 = 300;
const LAG_DAYS: [i64; 3] = [1, 2, 7];
/// Position of the lead among the features.
#[cfg(test)]
pub(crate) const LEAD_FEATURE: usize = BINS + FINE + 2 * LAG_DAYS.len() + 6;
/// The longest lead the model was trained for; longer ones are described as this one.
pub const MAX_LEAD_S: i64 = 48 * HOUR;
/// Feature index of the mean of the hour ending one day before the target.
pub const YESTERDAY: usize = BINS + FINE;
/// Feature index of whether the history has that hour (1) or not (0).
pub const YESTERDAY_SEEN: usize = BINS + FINE + 1;
/// Feature index of the mean of the hour ending two days before the target.
pub const TWO_DAYS: usize = BINS + FINE + 2;

/// A series' history, summarised once for all its forecasts.
pub struct History<'a> {
    start: i64,
    step: i64,
    values: &'a [f64],
    last_time: i64,
    scale: f64,
    /// What does not depend on the lead: hourly means, the last hour and its time of day.
    recent: [f64; BINS + FINE],
    level: f64,
    coverage: f64,
    last_tod: (f64, f64),
    movement: [f64; 3],
}

impl<'a> History<'a> {
    /// The history of an evenly spaced series (`step` ≥ 1 s), or `None` when every value is a gap.
    pub fn new(start: i64, step: u32, values: &'a [f64]) -> Option<Self> {
        let last_seen = values.iter().rposition(|v| !v.is_nan())?;
        let first_seen = values.iter().position(|v| !v.is_nan())?;
        let step = i64::from(step.max(1));
        let last_time = start + (values.len() as i64 - 1) * step;
        let mut history = Self {
            start,
            step,
            values,
            last_time,
            scale: 1.0,
            recent: [0.0; BINS + FINE],
            level: 0.0,
            coverage: 0.0,
            last_tod: calendar(last_time).0,
            movement: [0.0; 3],
        };

        let mut bins = [f64::NAN; BINS];
        for (b, bin) in bins.iter_mut().enumerate() {
            let hi = last_time - (BINS - 1 - b) as i64 * HOUR;
            *bin = history.window_mean(hi - HOUR, hi).unwrap_or(f64::NAN);
        }
        history.coverage = bins.iter().filter(|b| !b.is_nan()).count() as f64 / BINS as f64;
        let fill = bins.iter().copied().find(|b| !b.is_nan()).unwrap_or(values[last_seen]);
        let mut previous = fill;
        for bin in &mut bins {
            if bin.is_nan() {
                *bin = previous;
            }
            previous = *bin;
        }
        let scale = bins.iter().map(|b| b.abs()).sum::<f64>() / BINS as f64;
        // An all-zero history has no scale; its numbers are used as they are.
        history.scale = if scale > 0.0 { scale } else { 1.0 };
        history.level = bins[BINS - 3..].iter().sum::<f64>() / 3.0;

        let last = values.len() as i64 - 1;
        for j in 0..FINE {
            let at = history.index_at(last_time - (FINE - 1 - j) as i64 * FINE_STEP).min(last);
            let seen = (at >= 0).then(|| values[..=at as usize].iter().rposition(|v| !v.is_nan())).flatten();
            history.recent[BINS + j] = values[seen.unwrap_or(first_seen)];
        }
        history.recent[..BINS].copy_from_slice(&bins);
        for v in &mut history.recent {
            *v /= history.scale;
        }
        let (bins, fine) = history.recent.split_at(BINS);
        let mean_abs = |pairs: &mut dyn Iterator<Item = (&f64, &f64)>, n: usize| {
            pairs.map(|(a, b)| (b - a).abs()).sum::<f64>() / n as f64
        };
        history.movement = [
            mean_abs(&mut bins[..BINS / 2].iter().zip(&bins[BINS / 2..]), BINS / 2),
            mean_abs(&mut bins.iter().zip(&bins[1..]), BINS - 1),
            mean_abs(&mut fine.iter().zip(&fine[1..]), FINE - 1),
        ];
        Some(history)
    }

    /// What the model's outputs are multiplied by to return to the series' units.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Appends the features of the forecast `k` steps past the last value.
    pub fn features(&self, k: usize, out: &mut Vec<f32>) {
        let lead = k as i64 * self.step;
        let target = self.last_time + lead;
        out.extend(self.recent.iter().map(|&v| v as f32));
        for days in LAG_DAYS {
            let at = target - days * DAY;
            let (value, seen) = match self.window_mean(at - HOUR, at) {
                Some(mean) => (mean, 1.0),
                None => (self.level, 0.0),
            };
            out.extend([(value / self.scale) as f32, seen]);
        }
        let (tod, dow) = calendar(target);
        let lead = lead.min(MAX_LEAD_S) as f64 / MAX_LEAD_S as f64;
        out.extend(
            [tod.0, tod.1, dow.0, dow.1, self.last_tod.0, self.last_tod.1, lead, lead.sqrt(), self.coverage]
                .map(|v| v as f32),
        );
        out.extend(self.movement.map(|v| v as f32));
    }

    /// Index of the last grid point at or before Unix time `t`.
    fn index_at(&self, t: i64) -> i64 {
        (t - self.start).div_euclid(self.step)
    }

    /// Mean of the observations in `(lo, hi]`, if any.
    fn window_mean(&self, lo: i64, hi: i64) -> Option<f64> {
        let first = (self.index_at(lo) + 1).max(0);
        let last = self.index_at(hi).min(self.values.len() as i64 - 1);
        if last < first {
            return None;
        }
        let (sum, count) = self.values[first as usize..=last as usize]
            .iter()
            .filter(|v| !v.is_nan())
            .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
        (count > 0).then(|| sum / f64::from(count))
    }
}

/// (sin, cos) of the time of day and of the day of week (Monday = 0; 1970-01-01 was a
/// Thursday), in UTC.
fn calendar(t: i64) -> ((f64, f64), (f64, f64)) {
    let day = t.rem_euclid(DAY) as f64 / DAY as f64;
    let week = ((t.div_euclid(DAY) + 3).rem_euclid(7)) as f64 / 7.0;
    ((libm::sin(TAU * day), libm::cos(TAU * day)), (libm::sin(TAU * week), libm::cos(TAU * week)))
}
