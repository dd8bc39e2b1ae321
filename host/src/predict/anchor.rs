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
//! Where the forecaster is good — the daily shape an hour ahead — it carries the plan; where
//! it is worse than the last observation — a minute ahead, a launch no history saw coming, a
//! series whose season moved — the observation does. Weighting each level by its own loss
//! keeps the upper quantile the planner sizes at from the member that covers the tail.
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

/// Recent record of one series at one lead.
#[derive(Debug, Clone, Default, PartialEq)]
struct Errors {
    /// Forecasts scored against both.
    n: u64,
    /// Log ratios of what came to what was observed, newest last.
    ratios: VecDeque<f64>,
    /// Per level, the quantile of `ratios`.
    quantile_log: Vec<f64>,
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

    fn refresh_quantiles(&mut self, levels: &[f64]) {
        let mut sorted: Vec<f64> = self.ratios.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let last = sorted.len().saturating_sub(1) as f64;
        self.quantile_log = levels
            .iter()
            .map(|&q| {
                // Linear between order statistics (Hyndman and Fan's type 7).
                let x = q * last;
                let (i, frac) = (x.floor() as usize, x - x.floor());
                let hi = sorted.get(i + 1).copied().unwrap_or(sorted[i]);
                sorted[i] * (1.0 - frac) + hi * frac
            })
            .collect();
    }
}

/// The weight of the forecast against persistence and persistence's log-ratio quantile, per
/// level, at one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor {
    /// Per level, the weight of the served forecast, 0–1.
    pub weight: Vec<f64>,
    /// Per level, the quantile of ln(what came / what was observed).
    pub quantile_log: Vec<f64>,
}

/// Per series (`service/region`) and tracked lead time (by index), recent errors.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    horizons: Vec<u32>,
    levels: Vec<f64>,
    series: HashMap<Arc<str>, Vec<Errors>>,
}

impl Anchors {
    /// Anchors for forecasts tracked at these lead times and quantile levels.
    pub fn new(horizons: &[u32], levels: &[f64]) -> Self {
        Self { horizons: horizons.to_vec(), levels: levels.to_vec(), series: HashMap::new() }
    }

    /// Records one settled forecast — its value per level, the value observed when it was
    /// made, and what came — for a series at a tracked lead (by index).
    pub fn record(
        &mut self,
        series: &Arc<str>,
        horizon: usize,
        forecast: &[f64],
        observed: f64,
        actual: f64,
    ) {
        let (width, levels) = (self.horizons.len(), self.levels.len());
        let e =
            &mut self.series.entry(series.clone()).or_insert_with(|| vec![Errors::default(); width])[horizon];
        if e.ready() {
            e.n += 1;
            let alpha = 1.0 / e.n.min(SPAN) as f64;
            for (k, (&tau, &said)) in self.levels.iter().zip(forecast).enumerate() {
                let persistence = observed * e.quantile_log[k].exp();
                e.loss_forecast[k] += alpha * (pinball(tau, said, actual) - e.loss_forecast[k]);
                e.loss_persistence[k] += alpha * (pinball(tau, persistence, actual) - e.loss_persistence[k]);
            }
        } else if e.loss_forecast.is_empty() {
            e.loss_forecast = vec![0.0; levels];
            e.loss_persistence = vec![0.0; levels];
        }
        if observed > 0.0 && actual > 0.0 {
            if e.ratios.len() == WINDOW {
                e.ratios.pop_front();
            }
            e.ratios.push_back((actual / observed).ln());
            e.refresh_quantiles(&self.levels);
        }
    }

    /// Per tracked lead, the served forecast's weight at each level averaged over the series
    /// anchored at that lead (`None` where none is yet): how far the plan follows the forecaster.
    pub fn forecast_weights(&self) -> Vec<(u32, Option<Vec<f64>>)> {
        self.horizons
            .iter()
            .enumerate()
            .map(|(h, &lead)| {
                let ready: Vec<&Errors> = self.series.values().map(|e| &e[h]).filter(|e| e.ready()).collect();
                let mean = (!ready.is_empty()).then(|| {
                    (0..self.levels.len())
                        .map(|k| ready.iter().map(|e| e.weight(k)).sum::<f64>() / ready.len() as f64)
                        .collect()
                });
                (lead, mean)
            })
            .collect()
    }

    /// The anchor of a series `lead_s` ahead (linear between tracked leads, the nearest beyond
    /// them), or `None` before enough was scored for it.
    pub fn at(&self, series: &str, lead_s: u32) -> Option<Anchor> {
        let errors = self.series.get(series)?;
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
            quantile_log: levels.map(|k| mix(a.quantile_log[k], b.quantile_log[k])).collect(),
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
            a.record(&series(), 0, &[120.0, 120.0, 120.0], 100.0, 100.0);
            a.record(&series(), 1, &[100.0, 100.0, 100.0], 60.0, 100.0 + 0.0);
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
            a.record(&series(), 0, &[1000.0, 1000.0, 1000.0], 100.0, actual);
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
            a.record(&series(), 0, &[90.0, 100.0, 110.0], 100.0, 100.0);
        }
        assert_eq!(a.at("web/eu", 60), None);
        a.record(&series(), 0, &[90.0, 100.0, 110.0], 100.0, 100.0);
        a.record(&series(), 0, &[90.0, 100.0, 110.0], 100.0, 100.0);
        let w = &a.at("web/eu", 60).unwrap().weight;
        // One scored forecast: still mostly the prior of a half.
        assert!(w.iter().all(|&w| (w - 0.5).abs() < 0.1), "{w:?}");
    }
}
