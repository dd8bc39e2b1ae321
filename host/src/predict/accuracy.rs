//! Forecast accuracy: every forecast is kept until the demand it forecast has been observed,
//! then scored per plugin, series and lead time:
//!
//! * **MAPE** of the median (non-zero actuals only), as a fraction;
//! * **MASE**: absolute error of the median over the series' one-day seasonal-naive in-sample
//!   error (taken from the history the forecast was made from), so series of any size compare;
//! * **pinball loss** averaged over the quantile levels, scaled the same way;
//! * **coverage**: per level, the share of actuals at or below the forecast (a calibrated p90
//!   is above the demand 90 % of the time), and the share inside the outermost band (p10–p90).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::anchor::Anchors;
use crate::observe::Observation;

/// Running accuracy of the forecasts made by every plugin, per series and lead time.
#[derive(Debug, Clone)]
pub struct Accuracy {
    horizons: Vec<u32>,
    quantiles: Vec<f64>,
    /// Forecasts waiting for their target time, by target time (Unix seconds of the step
    /// whose demand they forecast).
    pending: BTreeMap<i64, Vec<Pending>>,
    /// Totals by (plugin, series, horizon index).
    totals: HashMap<(Arc<str>, Arc<str>, usize), Totals>,
    /// Recent squared scaled error of the median by (plugin, horizon index): an exponentially
    /// weighted mean over about [`RECENT`] forecasts, and how many it has seen.
    /// Keyed by plugin alone so a lookup by `&str` needs no allocation; one entry per horizon.
    recent: HashMap<Arc<str>, Vec<(f64, u64)>>,
    /// The served forecasts' errors against persistence, per series and lead.
    anchors: Anchors,
}

/// Forecasts the recent error of a plugin at a lead time reflects (its weighting's span).
pub const RECENT: u64 = 500;

/// Identifies what a forecast was for.
#[derive(Debug, Clone)]
pub struct Subject {
    /// `name@version` of the plugin that made it.
    pub plugin: Arc<str>,
    /// Service.
    pub service: String,
    /// Region index in the observation.
    pub region: usize,
    /// Series label for reports, e.g. `web/eu`.
    pub series: Arc<str>,
    /// The series' one-day seasonal-naive mean absolute error (MASE scale), if known.
    pub scale: Option<f64>,
}

#[derive(Debug, Clone)]
struct Pending {
    subject: Arc<Subject>,
    horizon: usize,
    /// One value per quantile level.
    values: Vec<f64>,
    /// For the served forecast, the value observed when it was made (persistence's forecast).
    observed: Option<f64>,
    /// Whether the series had just risen when it was made.
    rising: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    scored: u64,
    ape_sum: f64,
    ape_count: u64,
    scaled_abs_sum: f64,
    scaled_pinball_sum: f64,
    scaled_count: u64,
    inside: u64,
    at_or_below: Vec<u64>,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.scored += other.scored;
        self.ape_sum += other.ape_sum;
        self.ape_count += other.ape_count;
        self.scaled_abs_sum += other.scaled_abs_sum;
        self.scaled_pinball_sum += other.scaled_pinball_sum;
        self.scaled_count += other.scaled_count;
        self.inside += other.inside;
        self.at_or_below.resize(other.at_or_below.len(), 0);
        for (a, b) in self.at_or_below.iter_mut().zip(&other.at_or_below) {
            *a += b;
        }
    }
}

/// Accuracy of one plugin at one lead time, over one series or all of them, since start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HorizonAccuracy {
    /// `name@version` of the plugin.
    pub plugin: String,
    /// The series (`service/region`), or `None` for all of them.
    pub series: Option<String>,
    /// Lead time, seconds.
    pub horizon_s: u32,
    /// Forecasts scored.
    pub scored: u64,
    /// Sum of absolute percentage errors of the median (fractions) over positive actuals.
    pub ape_sum: f64,
    /// How many forecasts `ape_sum` covers.
    pub ape_count: u64,
    /// `ape_sum / ape_count`, when any.
    pub mape: Option<f64>,
    /// Mean absolute scaled error of the median, when the series had a scale.
    pub mase: Option<f64>,
    /// Mean pinball loss over the levels, scaled like MASE.
    pub pinball: Option<f64>,
    /// Share of actuals inside the outermost band (p10–p90 for the default levels).
    pub band_coverage: f64,
    /// Per quantile level (`levels`), the share of actuals at or below the forecast.
    pub coverage: Vec<f64>,
    /// The quantile levels `coverage` refers to.
    pub levels: Vec<f64>,
}

impl Accuracy {
    /// A tracker for forecasts over these lead times and quantile levels.
    pub fn new(horizons: &[u32], quantiles: &[f64]) -> Self {
        Self {
            horizons: horizons.to_vec(),
            quantiles: quantiles.to_vec(),
            pending: BTreeMap::new(),
            totals: HashMap::new(),
            recent: HashMap::new(),
            anchors: Anchors::new(horizons, quantiles),
        }
    }

    /// The served forecasts' recent errors against persistence.
    pub fn anchors(&self) -> &Anchors {
        &self.anchors
    }

    /// The same, to tell it what each series is observed at now.
    pub fn anchors_mut(&mut self) -> &mut Anchors {
        &mut self.anchors
    }

    /// Remembers a forecast made from a series whose last value is the step starting at
    /// `last`: `row` holds `horizons × quantiles` values, row-major, at exactly the tracked
    /// lead times. `observed` is that last value when this is the forecast the planner is
    /// served, so it is also compared with persistence.
    pub fn expect(&mut self, subject: Arc<Subject>, last: i64, row: &[f64], observed: Option<f64>) {
        let q = self.quantiles.len();
        let rising = observed.is_some() && self.anchors.rising(&subject.series);
        for (h, &horizon) in self.horizons.iter().enumerate() {
            let values = row[h * q..(h + 1) * q].to_vec();
            self.pending.entry(last + i64::from(horizon)).or_default().push(Pending {
                subject: subject.clone(),
                horizon: h,
                values,
                observed,
                rising,
            });
        }
    }

    /// Scores every forecast whose target step has now been observed: the observation reports
    /// the demand of the step that started `step_s` before it.
    pub fn settle(&mut self, o: &Observation) {
        let observed_step = o.time - i64::from(o.step_s);
        let due: Vec<i64> = self.pending.range(..=observed_step).map(|(t, _)| *t).collect();
        if due.is_empty() {
            return;
        }
        let index: HashMap<&str, usize> =
            o.services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let median = self
            .quantiles
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - 0.5).abs().total_cmp(&(b.1 - 0.5).abs()))
            .map_or(0, |(k, _)| k);
        let levels = self.quantiles.len();
        for target in due {
            let Some(batch) = self.pending.remove(&target) else { continue };
            // A target that fell between ticks (a lead not a multiple of the step) is scored
            // against the step that contains it; anything older has no observation left.
            if target <= observed_step - i64::from(o.step_s) {
                continue;
            }
            for p in batch {
                let s = &p.subject;
                let Some(&actual) =
                    index.get(s.service.as_str()).and_then(|&i| o.services[i].demand_rps.get(s.region))
                else {
                    continue;
                };
                let t = self
                    .totals
                    .entry((s.plugin.clone(), s.series.clone(), p.horizon))
                    .or_insert_with(|| Totals { at_or_below: vec![0; levels], ..Totals::default() });
                t.scored += 1;
                if let Some(observed) = p.observed {
                    self.anchors.record(&s.series, p.horizon, &p.values, observed, p.rising, actual);
                }
                let error = p.values[median] - actual;
                if actual > 0.0 {
                    t.ape_sum += error.abs() / actual;
                    t.ape_count += 1;
                }
                if let Some(scale) = s.scale.filter(|s| *s > 0.0) {
                    let pinball: f64 = self
                        .quantiles
                        .iter()
                        .zip(&p.values)
                        .map(
                            |(tau, q)| {
                                if actual >= *q { tau * (actual - q) } else { (1.0 - tau) * (q - actual) }
                            },
                        )
                        .sum::<f64>()
                        / levels as f64;
                    t.scaled_abs_sum += error.abs() / scale;
                    let horizons = self.horizons.len();
                    let recent =
                        self.recent.entry(s.plugin.clone()).or_insert_with(|| vec![(0.0, 0); horizons]);
                    let (mean, n) = &mut recent[p.horizon];
                    *n += 1;
                    // Plain mean until the span is reached, then exponential forgetting.
                    let alpha = 1.0 / (*n).min(RECENT) as f64;
                    *mean += alpha * ((error / scale).powi(2) - *mean);
                    t.scaled_pinball_sum += pinball / scale;
                    t.scaled_count += 1;
                }
                if let (Some(lo), Some(hi)) = (p.values.first(), p.values.last()) {
                    t.inside += u64::from(*lo <= actual && actual <= *hi);
                }
                for (k, v) in p.values.iter().enumerate() {
                    t.at_or_below[k] += u64::from(actual <= *v);
                }
            }
        }
    }

    /// Sum of scaled absolute errors of the median and their count, over the plugins `counts`
    /// picks, every series and lead time: differences of two readings give the MASE over the
    /// time between them.
    pub fn scaled_totals(&self, counts: impl Fn(&str) -> bool) -> (f64, u64) {
        self.totals
            .iter()
            .filter(|((plugin, _, _), _)| counts(plugin))
            .fold((0.0, 0), |(s, n), (_, t)| (s + t.scaled_abs_sum, n + t.scaled_count))
    }

    /// A plugin's recent mean squared scaled error at a lead time (by index), and how many
    /// forecasts it rests on.
    pub fn recent(&self, plugin: &str, horizon: usize) -> (f64, u64) {
        self.recent.get(plugin).map_or((0.0, 0), |r| r[horizon])
    }

    /// Forecasts waiting for their target time.
    pub fn pending(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Accuracy per plugin and lead time, over all series.
    pub fn by_horizon(&self) -> Vec<HorizonAccuracy> {
        let mut merged: BTreeMap<(Arc<str>, usize), Totals> = BTreeMap::new();
        for ((plugin, _, h), t) in &self.totals {
            merged.entry((plugin.clone(), *h)).or_default().add(t);
        }
        merged.iter().map(|((plugin, h), t)| self.report(plugin, None, *h, t)).collect()
    }

    /// Accuracy per plugin, series and lead time.
    pub fn by_series(&self) -> Vec<HorizonAccuracy> {
        let mut keys: Vec<&(Arc<str>, Arc<str>, usize)> = self.totals.keys().collect();
        keys.sort();
        keys.into_iter().map(|k| self.report(&k.0, Some(&k.1), k.2, &self.totals[k])).collect()
    }

    fn report(&self, plugin: &str, series: Option<&str>, h: usize, t: &Totals) -> HorizonAccuracy {
        let share = |n: u64| if t.scored > 0 { n as f64 / t.scored as f64 } else { 0.0 };
        let scaled = |sum: f64| (t.scaled_count > 0).then(|| sum / t.scaled_count as f64);
        HorizonAccuracy {
            plugin: plugin.to_owned(),
            series: series.map(str::to_owned),
            horizon_s: self.horizons[h],
            scored: t.scored,
            ape_sum: t.ape_sum,
            ape_count: t.ape_count,
            mape: (t.ape_count > 0).then(|| t.ape_sum / t.ape_count as f64),
            mase: scaled(t.scaled_abs_sum),
            pinball: scaled(t.scaled_pinball_sum),
            band_coverage: share(t.inside),
            coverage: t.at_or_below.iter().map(|&n| share(n)).collect(),
            levels: self.quantiles.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ServiceView;

    fn observation(time: i64, demand: f64) -> Observation {
        Observation {
            time,
            step_s: 60,
            regions: vec!["eu".into()],
            clusters: vec![],
            services: vec![ServiceView {
                name: "web".into(),
                slo_p95_ms: 100.0,
                service_ms: 10.0,
                cpu_per_replica: 1.0,
                memory_gib_per_replica: 1.0,
                startup_s: 30,
                demand_rps: vec![demand],
                placements: vec![],
                routing: vec![],
                p95_ms: 0.0,
                dropped_rps: 0.0,
            }],
            events: vec![],
        }
    }

    fn subject(service: &str, scale: Option<f64>) -> Arc<Subject> {
        Arc::new(Subject {
            plugin: "p@1".into(),
            service: service.into(),
            region: 0,
            series: format!("{service}/eu").into(),
            scale,
        })
    }

    #[test]
    fn forecasts_are_scored_when_their_step_is_observed() {
        let mut a = Accuracy::new(&[60, 120], &[0.1, 0.5, 0.9]);
        // Last value is the step starting at 0: targets are the steps at 60 and 120.
        a.expect(subject("web", Some(10.0)), 0, &[80.0, 100.0, 110.0, 60.0, 80.0, 120.0], None);
        assert_eq!(a.pending(), 2);
        // The observation at 120 reports the step that started at 60.
        a.settle(&observation(120, 90.0));
        let h = a.by_horizon();
        assert_eq!(h.len(), 1, "only the first lead has been scored");
        assert_eq!((h[0].horizon_s, h[0].scored), (60, 1));
        assert!((h[0].mape.unwrap() - 10.0 / 90.0).abs() < 1e-12);
        assert!((h[0].mase.unwrap() - 1.0).abs() < 1e-12, "error 10 over a scale of 10");
        // Pinball: p10 80 under 90 → 0.1·10; p50 100 over → 0.5·10; p90 110 over → 0.1·20.
        assert!((h[0].pinball.unwrap() - (1.0 + 5.0 + 2.0) / 3.0 / 10.0).abs() < 1e-12);
        assert_eq!(h[0].coverage, vec![0.0, 1.0, 1.0]);
        assert_eq!(h[0].band_coverage, 1.0);
        a.settle(&observation(180, 130.0));
        let h = a.by_horizon();
        assert_eq!(h[1].coverage, vec![0.0, 0.0, 0.0]);
        assert_eq!(h[1].band_coverage, 0.0, "130 is above the p90 of 120");
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn recent_error_is_the_mean_squared_scaled_error_per_plugin_and_lead() {
        let mut a = Accuracy::new(&[60], &[0.5]);
        a.expect(subject("web", Some(10.0)), 0, &[120.0], None);
        a.settle(&observation(120, 100.0));
        a.expect(subject("web", Some(10.0)), 60, &[100.0], None);
        a.settle(&observation(180, 110.0));
        // Scaled errors 2 and 1: mean square 2.5 over two forecasts.
        assert_eq!(a.recent("p@1", 0), (2.5, 2));
        assert_eq!(a.recent("other@1", 0), (0.0, 0));
    }

    #[test]
    fn totals_are_kept_per_series_and_merged_per_plugin() {
        let mut a = Accuracy::new(&[60], &[0.5]);
        a.expect(subject("web", None), 0, &[100.0], None);
        a.expect(subject("api", None), 0, &[50.0], None);
        a.settle(&observation(120, 100.0));
        let series = a.by_series();
        assert_eq!(series.len(), 1, "api is not observed, so it is not scored");
        assert_eq!(series[0].series.as_deref(), Some("web/eu"));
        assert_eq!(series[0].mape, Some(0.0));
        assert_eq!(series[0].mase, None, "no scale, no MASE");
        assert_eq!(a.by_horizon()[0].scored, 1);
    }

    #[test]
    fn zero_demand_counts_for_coverage_but_not_percentage_error() {
        let mut a = Accuracy::new(&[60], &[0.5]);
        a.expect(subject("web", None), 0, &[3.0], None);
        a.settle(&observation(120, 0.0));
        let h = &a.by_horizon()[0];
        assert_eq!((h.scored, h.ape_count, h.mape), (1, 0, None));
        assert_eq!(h.coverage, vec![1.0]);
    }

    #[test]
    fn targets_missed_by_a_gap_in_observations_are_dropped_unscored() {
        let mut a = Accuracy::new(&[60], &[0.5]);
        a.expect(subject("web", None), 0, &[3.0], None);
        // The daemon was not observing at 120; by 600 that step's demand is gone.
        a.settle(&observation(600, 5.0));
        assert!(a.by_horizon().is_empty());
        assert_eq!(a.pending(), 0);
    }
}
