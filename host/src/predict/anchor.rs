//! Anchoring forecasts to what is observed, per series, lead time and quantile, by how well
//! each has done lately — so a forecast that is wrong for a series costs at most a little over
//! reacting to it.
//!
//! Two forecasts of every series are compared as their targets are observed:
//!
//! * the **served** forecast (the forecaster role's, possibly an ensemble), level by level;
//! * **persistence**: the value observed when the forecast was made, times the quantiles of
//!   the ratio of what came to what was observed over the series' last [`WINDOW`] forecasts at
//!   that lead — `P_q(h) = y_now · exp(Q_q(ln(y(t+h) / y(t))))` — what a reactive controller
//!   plans from, with a band measured on the series itself (empirical, so bursty series keep
//!   their heavy upper tail).
//!
//! Each keeps a recent pinball loss per level (exponentially weighted over about [`SPAN`]
//! forecasts; persistence is scored with the ratios known before the forecast it is scored
//! on). The planner reads, per level,
//!
//! ```text
//! Q_q(h) = w_q,h · F_q(h) + (1 − w_q,h) · P_q(h),     w = (1/L_F) / (1/L_F + 1/L_P)
//! ```
//!
//! (Bates and Granger's inverse-loss weights, shrunk towards ½ while few errors are known).
//!
//! Where the forecaster is good — the daily shape an hour ahead — it carries the plan; where
//! it is worse than the last observation — a minute ahead, a launch no history saw coming, a
//! series whose season moved — the observation does. Weighting each level by its own loss
//! keeps the upper quantile the planner sizes at from the member that covers the tail.
//!
//! Persistence's band is conditional on one thing it can see: whether the series has just
//! **risen** — its last one-step log change above the [`RISE_QUANTILE`] of its recent ones.
//! Forecasts made right after a rise keep their own ratios, and a forecast made after one is
//! scaled by them: a series whose rises go on (a launch, a burst building over minutes) plans
//! for the rest of the climb, one whose rises are noise that falls back plans for the fall.
//! Each series learns which it is; before it has [`MIN_RATIOS`] such forecasts, or when it has
//! not just risen, the band is the unconditional one.
//!
//! Source: J. M. Bates and C. W. J. Granger (1969), "The combination of forecasts",
//! *Operational Research Quarterly* 20(4); the pinball loss as a proper score for quantiles:
//! T. Gneiting and A. E. Raftery (2007), *Journal of the American Statistical Association*
//! 102(477).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Forecasts the recent losses reflect.
pub const SPAN: u64 = 200;
/// Log ratios kept per series and lead for persistence's quantiles.
pub const WINDOW: usize = 128;
/// Ratios known before persistence's quantiles are used at all.
const MIN_RATIOS: usize = 8;
/// Scored forecasts before the weight is mostly the data's: below it, shrunk towards ½.
const PRIOR: f64 = 10.0;
/// Log ratios kept per series and lead of forecasts made right after a rise.
const RISING_WINDOW: usize = 32;
/// One-step log changes kept per series to say what counts as a rise.
const CHANGES: usize = 128;
/// A rise: a one-step log change above this quantile of the series' recent ones.
pub const RISE_QUANTILE: f64 = 0.9;

/// Recent record of one series at one lead.
#[derive(Debug, Clone, Default, PartialEq)]
struct Errors {
    /// Forecasts scored against both.
    n: u64,
    /// Log ratios of what came to what was observed, newest last.
    ratios: VecDeque<f64>,
    /// Per level, the quantile of `ratios`.
    quantile_log: Vec<f64>,
    /// Log ratios of forecasts made right after a rise, newest last, and their quantiles.
    rising: VecDeque<f64>,
    rising_quantile_log: Vec<f64>,
    /// Per level, recent pinball loss of the served forecast and of persistence.
    loss_forecast: Vec<f64>,
    loss_persistence: Vec<f64>,
}

fn pinball(tau: f64, forecast: f64, actual: f64) -> f64 {
    let u = actual - forecast;
    if u >= 0.0 { tau * u } else { (tau - 1.0) * u }
}

impl Errors {
    fn weight(&self, k: usize) -> f64 {
        let (f, p) = (self.loss_forecast[k], self.loss_persistence[k]);
        let raw = match (f > 0.0, p > 0.0) {
            (false, false) => 0.5,
            (false, true) => 1.0,
            (true, false) => 0.0,
            (true, true) => (1.0 / f) / (1.0 / f + 1.0 / p),
        };
        let n = self.n as f64;
        (n * raw + PRIOR * 0.5) / (n + PRIOR)
    }

    fn ready(&self) -> bool {
        self.ratios.len() >= MIN_RATIOS
    }

    /// Persistence's log-ratio quantile at level `k`, right after a rise or not.
    fn band(&self, k: usize, rising: bool) -> f64 {
        if rising && self.rising.len() >= MIN_RATIOS {
            self.rising_quantile_log[k]
        } else {
            self.quantile_log[k]
        }
    }
}

/// Quantiles of a window at each level, linear between order statistics (Hyndman and Fan's
/// type 7).
fn quantiles(window: &VecDeque<f64>, levels: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = window.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    levels.iter().map(|&q| quantile_sorted(&sorted, q)).collect()
}

fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len().saturating_sub(1) as f64;
    let x = q * last;
    let (i, frac) = (x.floor() as usize, x - x.floor());
    let hi = sorted.get(i + 1).copied().unwrap_or(sorted[i]);
    sorted[i] * (1.0 - frac) + hi * frac
}

/// The same quantile of values in any order, by selection rather than a sort (they are
/// reordered): it runs for every series that rose, every step.
fn quantile_selected(values: &mut [f64], q: f64) -> f64 {
    let x = q * values.len().saturating_sub(1) as f64;
    let (i, frac) = (x.floor() as usize, x - x.floor());
    let (_, &mut lo, above) = values.select_nth_unstable_by(i, f64::total_cmp);
    let hi = above.iter().copied().min_by(f64::total_cmp).unwrap_or(lo);
    lo * (1.0 - frac) + hi * frac
}

fn push(window: &mut VecDeque<f64>, value: f64, cap: usize) {
    if window.len() == cap {
        window.pop_front();
    }
    window.push_back(value);
}

/// A series' record, new (with `leads` tracked leads) if it had none.
fn record_of<'a>(series: &'a mut HashMap<Arc<str>, Record>, leads: usize, name: &Arc<str>) -> &'a mut Record {
    series
        .entry(name.clone())
        .or_insert_with(|| Record { leads: vec![Errors::default(); leads], ..Record::default() })
}

/// What one series has done lately: its recent one-step changes and, per tracked lead, its
/// forecasts' errors.
#[derive(Debug, Clone, Default)]
struct Record {
    /// The last value observed, to take the next change from.
    last: Option<f64>,
    /// One-step log changes, newest last.
    changes: VecDeque<f64>,
    /// Whether the newest change is a rise.
    rising: bool,
    leads: Vec<Errors>,
}

impl Record {
    fn observe(&mut self, now: f64) {
        let change = self.last.filter(|&before| before > 0.0 && now > 0.0).map(|before| (now / before).ln());
        self.last = Some(now);
        let Some(change) = change else {
            self.rising = false;
            return;
        };
        // Judged against the changes before it, so a rise cannot raise its own bar.
        self.rising = change > 0.0 && self.changes.len() >= MIN_RATIOS && {
            let mut changes: Vec<f64> = self.changes.iter().copied().collect();
            change > quantile_selected(&mut changes, RISE_QUANTILE)
        };
        push(&mut self.changes, change, CHANGES);
    }
}

/// The weight of the forecast against persistence and persistence's log-ratio quantile, per
/// level, at one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor {
    /// Per level, the weight of the served forecast, 0–1.
    pub weight: Vec<f64>,
    /// Per level, the quantile of ln(what came / what was observed), right after a rise if the
    /// series has just risen.
    pub quantile_log: Vec<f64>,
}

/// Per series (`service/region`) and tracked lead time (by index), recent errors.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    horizons: Vec<u32>,
    levels: Vec<f64>,
    series: HashMap<Arc<str>, Record>,
}

impl Anchors {
    /// Anchors for forecasts tracked at these lead times and quantile levels.
    pub fn new(horizons: &[u32], levels: &[f64]) -> Self {
        Self { horizons: horizons.to_vec(), levels: levels.to_vec(), series: HashMap::new() }
    }

    /// Takes the value a series is observed at this step, which says whether it has just
    /// risen; call it once per step, before the step's forecasts are made or blended.
    pub fn observe(&mut self, series: &Arc<str>, now: f64) {
        record_of(&mut self.series, self.horizons.len(), series).observe(now);
    }

    /// Whether a series' last observed change is a rise.
    pub fn rising(&self, series: &str) -> bool {
        self.series.get(series).is_some_and(|r| r.rising)
    }

    /// Records one settled forecast — its value per level, the value observed when it was
    /// made and whether the series had just risen then, and what came — for a series at a
    /// tracked lead (by index).
    pub fn record(
        &mut self,
        series: &Arc<str>,
        horizon: usize,
        forecast: &[f64],
        observed: f64,
        rising: bool,
        actual: f64,
    ) {
        let levels = self.levels.len();
        let e = &mut record_of(&mut self.series, self.horizons.len(), series).leads[horizon];
        if e.ready() {
            e.n += 1;
            let alpha = 1.0 / e.n.min(SPAN) as f64;
            for (k, (&tau, &said)) in self.levels.iter().zip(forecast).enumerate() {
                let persistence = observed * e.band(k, rising).exp();
                e.loss_forecast[k] += alpha * (pinball(tau, said, actual) - e.loss_forecast[k]);
                e.loss_persistence[k] += alpha * (pinball(tau, persistence, actual) - e.loss_persistence[k]);
            }
        } else if e.loss_forecast.is_empty() {
            e.loss_forecast = vec![0.0; levels];
            e.loss_persistence = vec![0.0; levels];
        }
        if observed > 0.0 && actual > 0.0 {
            let ratio = (actual / observed).ln();
            push(&mut e.ratios, ratio, WINDOW);
            e.quantile_log = quantiles(&e.ratios, &self.levels);
            if rising {
                push(&mut e.rising, ratio, RISING_WINDOW);
                e.rising_quantile_log = quantiles(&e.rising, &self.levels);
            }
        }
    }

    /// Per tracked lead, the served forecast's weight at each level averaged over the series
    /// anchored at that lead (`None` where none is yet): how far the plan follows the forecaster.
    pub fn forecast_weights(&self) -> Vec<(u32, Option<Vec<f64>>)> {
        self.horizons
            .iter()
            .enumerate()
            .map(|(h, &lead)| {
                let ready: Vec<&Errors> =
                    self.series.values().map(|r| &r.leads[h]).filter(|e| e.ready()).collect();
                let mean = (!ready.is_empty()).then(|| {
                    (0..self.levels.len())
                        .map(|k| ready.iter().map(|e| e.weight(k)).sum::<f64>() / ready.len() as f64)
                        .collect()
                });
                (lead, mean)
            })
            .collect()
    }

    /// The anchor of a series `lead_s` ahead as of its last observed change (linear between
    /// tracked leads, the nearest beyond them), or `None` before enough was scored for it.
    pub fn at(&self, series: &str, lead_s: u32) -> Option<Anchor> {
        let record = self.series.get(series)?;
        let (errors, rising) = (&record.leads, record.rising);
        let hi = self.horizons.partition_point(|&h| h < lead_s).min(self.horizons.len() - 1);
        let lo = hi.saturating_sub(1);
        let (h0, h1) = (f64::from(self.horizons[lo]), f64::from(self.horizons[hi]));
        let w = if h1 > h0 { ((f64::from(lead_s) - h0) / (h1 - h0)).clamp(0.0, 1.0) } else { 1.0 };
        // A lead not ready yet borrows the other's.
        let (a, b) = match (errors[lo].ready(), errors[hi].ready()) {
            (false, false) => return None,
            (false, true) => (&errors[hi], &errors[hi]),
            (true, false) => (&errors[lo], &errors[lo]),
            (true, true) => (&errors[lo], &errors[hi]),
        };
        let mix = |x: f64, y: f64| (1.0 - w) * x + w * y;
        let levels = 0..self.levels.len();
        Some(Anchor {
            weight: levels.clone().map(|k| mix(a.weight(k), b.weight(k))).collect(),
            quantile_log: levels.map(|k| mix(a.band(k, rising), b.band(k, rising))).collect(),
        })
    }

    /// `forecast` (`leads × levels`, row-major) anchored to `observed` now, per lead and level.
    pub fn blend(&self, series: &str, leads: &[u32], observed: f64, forecast: &mut [f64]) {
        let width = self.levels.len();
        for (row, &lead) in forecast.chunks_exact_mut(width).zip(leads) {
            let Some(a) = self.at(series, lead) else { continue };
            for (k, v) in row.iter_mut().enumerate() {
                let persistence = observed * a.quantile_log[k].exp();
                *v = a.weight[k] * *v + (1.0 - a.weight[k]) * persistence;
            }
            // Pooled levels of two uncrossed rows are uncrossed; rounding may tie them.
            for k in 1..width {
                row[k] = row[k].max(row[k - 1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Arc<str> {
        "web/eu".into()
    }

    const LEVELS: [f64; 3] = [0.1, 0.5, 0.9];

    #[test]
    fn the_better_member_carries_the_weight_at_each_lead() {
        let mut a = Anchors::new(&[60, 3600], &LEVELS);
        // A minute ahead what comes is what was observed and the forecast is 20 % high; an
        // hour ahead the forecast is right and what was observed is far off.
        for _ in 0..500 {
            a.record(&series(), 0, &[120.0, 120.0, 120.0], 100.0, false, 100.0);
            a.record(&series(), 1, &[100.0, 100.0, 100.0], 60.0, false, 100.0 + 0.0);
        }
        let near = a.at("web/eu", 60).unwrap();
        let far = a.at("web/eu", 3600).unwrap();
        assert!(near.weight.iter().all(|&w| w < 0.05), "{near:?}");
        // An hour ahead persistence learnt the ratio 100/60 exactly, so it ties with the forecast.
        assert!(far.weight.iter().all(|&w| (w - 0.5).abs() < 0.05), "{far:?}");
        assert_eq!(a.at("api/eu", 60), None);
        let means = a.forecast_weights();
        assert_eq!((means[0].0, means[1].0), (60, 3600));
        assert!(
            means[0].1.as_ref().unwrap()[2] < 0.05 && (means[1].1.as_ref().unwrap()[2] - 0.5).abs() < 0.05,
            "{means:?}"
        );
    }

    #[test]
    fn persistence_carries_its_measured_band() {
        let mut a = Anchors::new(&[60], &LEVELS);
        // What comes is the observation ×1.2 or ×0.8, alternately; the forecaster is useless.
        for k in 0..400 {
            let actual = if k % 2 == 0 { 120.0 } else { 80.0 };
            a.record(&series(), 0, &[1000.0, 1000.0, 1000.0], 100.0, false, actual);
        }
        let mut f = vec![1000.0, 1000.0, 1000.0];
        a.blend("web/eu", &[60], 200.0, &mut f);
        // Almost all persistence (the forecast keeps the little weight the prior leaves it): its
        // p10 and p90 near the observed ratios ×0.8 and ×1.2, the median between.
        assert!(f[0] > 150.0 && f[0] < 185.0 && f[2] > 230.0 && f[2] < 275.0, "{f:?}");
        assert!(f[0] <= f[1] && f[1] <= f[2], "{f:?}");
    }

    #[test]
    fn nothing_is_anchored_before_enough_is_known() {
        let mut a = Anchors::new(&[60], &LEVELS);
        for _ in 0..MIN_RATIOS - 1 {
            a.record(&series(), 0, &[90.0, 100.0, 110.0], 100.0, false, 100.0);
        }
        assert_eq!(a.at("web/eu", 60), None);
        a.record(&series(), 0, &[90.0, 100.0, 110.0], 100.0, false, 100.0);
        a.record(&series(), 0, &[90.0, 100.0, 110.0], 100.0, false, 100.0);
        let w = &a.at("web/eu", 60).unwrap().weight;
        // One scored forecast: still mostly the prior of a half.
        assert!(w.iter().all(|&w| (w - 0.5).abs() < 0.1), "{w:?}");
    }

    #[test]
    fn after_a_rise_persistence_plans_for_what_rises_did() {
        for (after_rise, expected) in [(1.5, 1.5_f64.ln()), (0.9, 0.9_f64.ln())] {
            let mut a = Anchors::new(&[60], &LEVELS);
            // Calm forecasts come true within 2 %; those made right after a rise see the climb
            // go on (×1.5) — or fall back (×0.9).
            for k in 0..200 {
                let calm = if k % 2 == 0 { 98.0 } else { 102.0 };
                a.record(&series(), 0, &[1e6; 3], 100.0, false, calm);
                if k % 10 == 0 {
                    a.record(&series(), 0, &[1e6; 3], 100.0, true, 100.0 * after_rise);
                }
            }
            // Small changes set the bar; a 30 % jump clears it.
            for k in 0..20 {
                a.observe(&series(), 100.0 + f64::from(k % 3));
            }
            assert!(!a.rising("web/eu"));
            a.observe(&series(), 130.0);
            assert!(a.rising("web/eu"));
            let median = a.at("web/eu", 60).unwrap().quantile_log[1];
            assert!((median - expected).abs() < 0.02, "{after_rise}: {median}");
            // The next step holds: the unconditional band again.
            a.observe(&series(), 130.0);
            assert!(!a.rising("web/eu"));
            let median = a.at("web/eu", 60).unwrap().quantile_log[1];
            assert!(median.abs() < 0.03, "{after_rise}: {median}");
        }
    }

    #[test]
    fn a_fall_or_the_first_value_is_never_a_rise() {
        let mut a = Anchors::new(&[60], &LEVELS);
        a.observe(&series(), 100.0);
        assert!(!a.rising("web/eu"), "nothing to compare the first value with");
        for k in 0..20 {
            a.observe(&series(), 100.0 - f64::from(k));
        }
        // Every change so far was a fall: the bar is below zero, but a fall never clears it.
        a.observe(&series(), 79.5);
        assert!(!a.rising("web/eu"));
        a.observe(&series(), 0.0);
        a.observe(&series(), 50.0);
        assert!(!a.rising("web/eu"), "no ratio from zero");
    }

    #[test]
    fn selection_and_sorting_agree_on_every_quantile() {
        let mut x = 17_u64;
        let values: Vec<f64> = (0..101)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 11) as f64 / (1_u64 << 53) as f64 - 0.5
            })
            .collect();
        for q in [0.0, 0.1, 0.5, 0.9, 0.93, 1.0] {
            for n in [1, 2, 9, 101] {
                let mut part = values[..n].to_vec();
                let mut part_sorted = part.clone();
                part_sorted.sort_by(f64::total_cmp);
                assert_eq!(quantile_selected(&mut part, q), quantile_sorted(&part_sorted, q), "q {q}, n {n}");
            }
        }
    }
}
