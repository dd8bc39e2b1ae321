//! Rolling-origin evaluation of forecasters on recorded series.
//!
//! The protocol, for every series:
//! * **Origins** every 24 h over the last 20 % of the series: the first at 80 % of its points,
//!   then one a day later, and so on while any value is left to score.
//! * **No peeking**: at an origin a forecaster sees only the values before it.
//! * **Lead exactly H**: the error for horizon H is the p50 forecast at lead H after the last
//!   value seen, against the value observed there; a lead that is not a whole number of steps
//!   of the series is not scored for it, and neither is a target that is a gap or lies beyond
//!   the end.
//! * **Scores** per series and horizon: MASE (mean absolute error over the in-sample mean
//!   absolute error of a one-day seasonal-naive forecast on the values before the first
//!   origin; a lag of one step when the series has no whole day), MAPE (over non-zero actuals,
//!   as a fraction), and p10–p90 coverage (share of actuals within the band) with the share
//!   beyond each edge, so a band that misses on one side only shows it.
//! * **Ensemble**: at each origin the members' forecasts are combined with weights from their
//!   errors on this series at targets observed before that origin ([`super::ensemble`]),
//!   made every 4 h from three weeks before the test part to its last origin (so the first test
//!   origin is weighed too, and weights rest on more than one error a day); only the daily
//!   origins are scored, and the ensemble's time includes the extra forecasts.

use std::sync::Arc;
use std::time::Instant;

use foresight_sdk::{ForecastRequest, Series};
use serde::Serialize;

use super::ensemble::{Weights, combine};
use crate::plugins::{ForecastPolicy, validate};

/// Quantile levels every evaluated forecast is asked for: p10, p50, p90.
pub const LEVELS: [f64; 3] = [0.1, 0.5, 0.9];
/// Time between origins.
pub const ORIGIN_EVERY_S: i64 = 86_400;
/// Share of each series that origins cover, at its end.
pub const TEST_SHARE: f64 = 0.2;
/// Latest errors per member and horizon the ensemble weighs: a week of weighing origins.
const ENSEMBLE_WINDOW: usize = 126;
/// Days before the test part from which ensemble members are scored first.
const WARM_UP_DAYS: usize = 21;
/// Time between the origins ensemble members are weighed at.
const WEIGH_EVERY_S: i64 = 4 * 3_600;

/// A forecaster under evaluation.
pub struct Contender {
    /// Name in the report.
    pub name: String,
    /// The forecaster.
    pub policy: Arc<dyn ForecastPolicy>,
}

/// Scores of one forecaster on one series at one horizon.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Series (file name).
    pub series: String,
    /// Forecaster.
    pub plugin: String,
    /// Horizon as given, e.g. `6h`.
    pub horizon: String,
    /// Mean absolute scaled error.
    pub mase: f64,
    /// Mean absolute percentage error, as a fraction (`None` when every actual was 0).
    pub mape: Option<f64>,
    /// Share of actuals within p10–p90.
    pub coverage: f64,
    /// Share of actuals below p10 (nominally 0.1).
    pub below_p10: f64,
    /// Share of actuals above p90 (nominally 0.1).
    pub above_p90: f64,
    /// Forecasts scored.
    pub scored: usize,
}

/// What one series gave: rows, forecasting time per contender, or why it was skipped.
#[derive(Debug, Default)]
pub struct SeriesResult {
    /// Scores.
    pub rows: Vec<Row>,
    /// Seconds each contender spent forecasting this series (ensemble: its members' total).
    pub seconds: Vec<(String, f64)>,
    /// Contenders that failed on this series, with the reason.
    pub failures: Vec<(String, String)>,
}

/// Origin indices of a series: the model sees `values[..origin]`.
pub fn origins(series: &Series) -> Vec<usize> {
    let n = series.values.len();
    let per_day = (ORIGIN_EVERY_S / i64::from(series.step.max(1))).max(1) as usize;
    let first = ((n as f64) * (1.0 - TEST_SHARE)).ceil() as usize;
    (first.max(2)..n).step_by(per_day).collect()
}

/// The MASE scale: in-sample MAE of the one-day seasonal-naive forecast over `values`; for a
/// series that repeats itself exactly every day, the one-step naive MAE instead (a scale of 0
/// would make every error infinite); `None` for a series that never changes.
pub fn naive_scale(values: &[f64], step: u32) -> Option<f64> {
    let mae = |lag: usize| {
        let (sum, count) = values
            .iter()
            .zip(values.iter().skip(lag))
            .filter(|(a, b)| !a.is_nan() && !b.is_nan())
            .fold((0.0, 0usize), |(s, c), (a, b)| (s + (b - a).abs(), c + 1));
        (count > 0 && sum > 0.0).then(|| sum / count as f64)
    };
    let day = if step > 0 && 86_400 % step == 0 { (86_400 / step) as usize } else { 1 };
    mae(if day < values.len() { day } else { 1 }).or_else(|| mae(1))
}

/// Whether a model has something to go on at `origin`: two observations before it.
fn has_history(series: &Series, origin: usize) -> bool {
    series.values[..origin].iter().filter(|v| !v.is_nan()).count() >= 2
}

/// The series' history up to each origin, asking for `leads` at [`LEVELS`].
fn request_at(series: &Series, origins: &[usize], leads: &[u32]) -> ForecastRequest {
    ForecastRequest {
        series: origins
            .iter()
            .map(|&o| Series { values: series.values[..o].to_vec(), ..series.clone() })
            .collect(),
        horizons: leads.to_vec(),
        quantiles: LEVELS.to_vec(),
    }
}

/// Asks a contender, holding its answer to the contract; errors name it.
pub fn ask(c: &Contender, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, String> {
    let answer = c.policy.forecast(request).map_err(|f| format!("{}: {f}", c.name))?;
    validate::forecasts(request, &answer).map_err(|e| format!("{} answered wrongly: {e}", c.name))?;
    Ok(answer)
}

/// Evaluates every contender (and, with `ensemble`, their combination) on one series at the
/// given horizons (`(label, seconds)`).
pub fn evaluate_series(
    name: &str,
    series: &Series,
    contenders: &[Contender],
    ensemble: bool,
    horizons: &[(String, u32)],
) -> SeriesResult {
    let mut result = SeriesResult::default();
    let origins = origins(series);
    let step = series.step.max(1);
    // Horizons this series can be scored at: whole steps.
    let usable: Vec<(usize, u32)> = horizons
        .iter()
        .enumerate()
        .filter(|(_, (_, s))| *s >= step && s % step == 0)
        .map(|(i, (_, s))| (i, *s))
        .collect();
    let Some(first) = origins.first() else { return result };
    let Some(scale) = naive_scale(&series.values[..*first], step) else { return result };
    let origins: Vec<usize> = origins.into_iter().filter(|&o| has_history(series, o)).collect();
    if usable.is_empty() || origins.is_empty() {
        return result;
    }
    let leads: Vec<u32> = usable.iter().map(|(_, s)| *s).collect();
    let timed = |c: &Contender, at: &[usize]| -> Result<(Vec<Vec<f64>>, f64), String> {
        let started = Instant::now();
        let answer = ask(c, &request_at(series, at, &leads))?;
        Ok((answer, started.elapsed().as_secs_f64()))
    };
    let q = LEVELS.len();
    // Ensemble members also forecast between the scored origins and in the weeks before them,
    // so weights rest on several errors a day and the first scored origin is weighed too.
    let weigh_every = (WEIGH_EVERY_S / i64::from(step)).max(1) as usize;
    let per_day = (ORIGIN_EVERY_S / i64::from(step)).max(1) as usize;
    let extra: Vec<usize> = if ensemble && contenders.len() > 1 {
        let last = *origins.last().expect("origins is not empty");
        let from = origins[0].saturating_sub(WARM_UP_DAYS * per_day).max(2 * per_day);
        (0..)
            .map(|k| origins[0] as i64 - (k * weigh_every) as i64)
            .take_while(|&o| o >= from as i64)
            .map(|o| o as usize)
            .chain((origins[0]..=last).step_by(weigh_every))
            .filter(|o| !origins.contains(o) && has_history(series, *o))
            .collect()
    } else {
        Vec::new()
    };
    // forecasts[contender][origin]: horizons × levels, scored origins first, then the extra.
    let mut forecasts: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    let mut ensemble_seconds = 0.0;
    for c in contenders {
        let answer = timed(c, &origins).and_then(|(mut all, seconds)| {
            let (more, extra_seconds) = if extra.is_empty() { (Vec::new(), 0.0) } else { timed(c, &extra)? };
            all.extend(more);
            Ok((all, seconds, extra_seconds))
        });
        match answer {
            Ok((all, seconds, extra_seconds)) => {
                ensemble_seconds += seconds + extra_seconds;
                result.seconds.push((c.name.clone(), seconds));
                forecasts.push((c.name.clone(), all));
            }
            Err(e) => result.failures.push((c.name.clone(), e)),
        }
    }
    let actual = |origin: usize, lead: u32| -> Option<f64> {
        let target = origin - 1 + (lead / step) as usize;
        series.values.get(target).copied().filter(|v| !v.is_nan())
    };
    if ensemble && forecasts.len() > 1 {
        let all_origins: Vec<usize> = origins.iter().chain(&extra).copied().collect();
        // Every forecast's error at each lead, in the order the targets were observed.
        let mut errors: Vec<(usize, usize, Vec<f64>)> = Vec::new();
        for (j, &earlier) in all_origins.iter().enumerate() {
            for (h, &(_, lead)) in usable.iter().enumerate() {
                let Some(y) = actual(earlier, lead) else { continue };
                let target = earlier - 1 + (lead / step) as usize;
                let e = forecasts.iter().map(|(_, f)| (f[j][h * q + 1] - y).abs() / scale).collect();
                errors.push((target, h, e));
            }
        }
        errors.sort_by_key(|(target, _, _)| *target);
        let mut combined = Vec::with_capacity(origins.len());
        for (k, &origin) in origins.iter().enumerate() {
            // Errors whose targets were observed before this origin.
            let mut weights = Weights::new(forecasts.len(), usable.len(), ENSEMBLE_WINDOW);
            for (_, h, e) in errors.iter().take_while(|(target, _, _)| *target < origin) {
                for (m, e) in e.iter().enumerate() {
                    weights.record(m, *h, *e);
                }
            }
            let per_horizon: Vec<Vec<f64>> = (0..usable.len()).map(|h| weights.at(h)).collect();
            let members: Vec<&[f64]> = forecasts.iter().map(|(_, f)| f[k].as_slice()).collect();
            combined.push(combine(&members, &per_horizon, q));
        }
        result.seconds.push(("ensemble".into(), ensemble_seconds));
        forecasts.push(("ensemble".into(), combined));
    }
    // Only the daily origins are scored.
    for (_, f) in &mut forecasts {
        f.truncate(origins.len());
    }
    for (plugin, f) in &forecasts {
        for (h, &(label_index, lead)) in usable.iter().enumerate() {
            let (mut abs, mut pct, mut pct_n, mut n) = (0.0, 0.0, 0usize, 0usize);
            let (mut below, mut above) = (0usize, 0usize);
            for (k, &origin) in origins.iter().enumerate() {
                let Some(y) = actual(origin, lead) else { continue };
                let row = &f[k][h * q..(h + 1) * q];
                let e = (row[1] - y).abs();
                abs += e;
                if y != 0.0 {
                    pct += e / y.abs();
                    pct_n += 1;
                }
                below += usize::from(y < row[0]);
                above += usize::from(y > row[2]);
                n += 1;
            }
            if n == 0 {
                continue;
            }
            result.rows.push(Row {
                series: name.to_owned(),
                plugin: plugin.clone(),
                horizon: horizons[label_index].0.clone(),
                mase: abs / n as f64 / scale,
                mape: (pct_n > 0).then(|| pct / pct_n as f64),
                coverage: (n - below - above) as f64 / n as f64,
                below_p10: below as f64 / n as f64,
                above_p90: above as f64 / n as f64,
                scored: n,
            });
        }
    }
    result
}

/// Ensemble weights for forecasting `series` from its end: each contender forecasts at the
/// series' own rolling origins, and its errors at every observed target set its weight per
/// lead (`weights[lead][contender]`). Contenders that fail are an error naming them.
pub fn fitted_weights(
    series: &Series,
    contenders: &[Contender],
    leads: &[u32],
) -> Result<Vec<Vec<f64>>, String> {
    let step = series.step.max(1);
    let origins: Vec<usize> = origins(series).into_iter().filter(|&o| has_history(series, o)).collect();
    let scale = origins.first().and_then(|&o| naive_scale(&series.values[..o], step)).unwrap_or(1.0);
    let mut weights = Weights::new(contenders.len(), leads.len(), usize::MAX);
    if !origins.is_empty() {
        let request = request_at(series, &origins, leads);
        for (m, c) in contenders.iter().enumerate() {
            let answer = ask(c, &request)?;
            for (k, &origin) in origins.iter().enumerate() {
                for (h, &lead) in leads.iter().enumerate() {
                    let target = origin - 1 + (lead / step) as usize;
                    if let Some(y) = series.values.get(target).filter(|v| !v.is_nan()) {
                        weights.record(m, h, (answer[k][h * LEVELS.len() + 1] - y).abs() / scale);
                    }
                }
            }
        }
    }
    Ok((0..leads.len()).map(|h| weights.at(h)).collect())
}

#[cfg(test)]
mod tests {
    use foresight_sdk::{Descriptor, PluginKind};

    use super::*;
    use crate::plugins::{Fault, Policy};

    /// Forecasts the last observed value, with a ±1 band.
    struct Last(Descriptor);

    impl Policy for Last {
        fn descriptor(&self) -> &Descriptor {
            &self.0
        }
    }

    impl ForecastPolicy for Last {
        fn forecast(&self, r: &ForecastRequest) -> Result<Vec<Vec<f64>>, Fault> {
            Ok(r.series
                .iter()
                .map(|s| {
                    let last = s.values.iter().rev().find(|v| !v.is_nan()).copied().unwrap_or(0.0);
                    r.horizons.iter().flat_map(|_| [last - 1.0, last, last + 1.0]).collect()
                })
                .collect())
        }
    }

    fn last() -> Contender {
        Contender {
            name: "last".into(),
            policy: Arc::new(Last(Descriptor::new("last", "1.0.0", PluginKind::Forecaster, "test"))),
        }
    }

    #[test]
    fn origins_are_daily_over_the_last_fifth() {
        // Ten days of hours: 240 points, origins from 192 every 24.
        let s = Series { step: 3600, values: vec![1.0; 240], ..Default::default() };
        assert_eq!(origins(&s), vec![192, 216]);
    }

    #[test]
    fn the_scale_is_the_one_day_naive_error() {
        // Hourly: a day-over-day change of 2 everywhere.
        let values: Vec<f64> = (0..72).map(|i| (i / 24) as f64 * 2.0).collect();
        assert_eq!(naive_scale(&values, 3600), Some(2.0));
        // Daily series: lag of one step.
        assert_eq!(naive_scale(&[1.0, 4.0, 2.0], 86_400), Some(2.5));
        // A series that repeats every day exactly falls back to the one-step error.
        let cycle: Vec<f64> = (0..48).map(|i| f64::from(i % 24)).collect();
        assert_eq!(naive_scale(&cycle, 3600), Some(69.0 / 47.0), "46 steps of 1 and one of 23");
        assert_eq!(naive_scale(&[3.0; 30], 3600), None);
    }

    #[test]
    fn errors_are_taken_at_exactly_the_lead() {
        // A ramp of 1 per hour over ten days: the last value seen is `origin − 1`, the value
        // H hours later is `origin − 1 + H`, so the error at H is H and the naive daily error 24.
        let values: Vec<f64> = (0..240).map(f64::from).collect();
        let s = Series { step: 3600, values, ..Default::default() };
        let horizons = vec![("1h".to_owned(), 3600), ("6h".into(), 6 * 3600), ("90m".into(), 5400)];
        let r = evaluate_series("ramp", &s, &[last()], false, &horizons);
        assert_eq!(r.rows.len(), 2, "90 min is not a whole number of hourly steps");
        let one = &r.rows[0];
        assert_eq!((one.horizon.as_str(), one.scored), ("1h", 2));
        assert!((one.mase - 1.0 / 24.0).abs() < 1e-12);
        assert_eq!(one.coverage, 1.0, "an error of 1 is on the band's edge");
        let six = &r.rows[1];
        assert!((six.mase - 6.0 / 24.0).abs() < 1e-12);
        assert_eq!(six.coverage, 0.0);
        // A ramp outruns the band: every miss is above p90.
        assert_eq!((six.below_p10, six.above_p90), (0.0, 1.0));
        assert_eq!((one.below_p10, one.above_p90), (0.0, 0.0));
        // MAPE: 6 / actual at each origin (197 and 221).
        assert!((six.mape.unwrap() - (6.0 / 197.0 + 6.0 / 221.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn gaps_are_not_scored_and_the_ensemble_of_one_kind_is_itself() {
        let mut values: Vec<f64> = (0..240).map(f64::from).collect();
        values[192] = f64::NAN; // the 1 h target of the first origin
        let s = Series { step: 3600, values, ..Default::default() };
        let horizons = vec![("1h".to_owned(), 3600)];
        let r = evaluate_series("gappy", &s, &[last(), last()], true, &horizons);
        let rows: Vec<&Row> = r.rows.iter().filter(|r| r.plugin == "ensemble").collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].scored, 1);
        assert!((rows[0].mase - 1.0 / 24.0).abs() < 1e-12);
    }
}
