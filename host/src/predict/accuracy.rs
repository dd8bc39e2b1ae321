//! Forecast accuracy: every forecast is kept until the demand it forecast has been observed,
//! then scored — absolute percentage error of the median and, per quantile level, whether the
//! observation fell at or below it (a calibrated p90 is above the demand 90 % of the time).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::observe::Observation;

/// Running accuracy of one forecaster, per lead time.
#[derive(Debug, Clone)]
pub struct Accuracy {
    horizons: Vec<u32>,
    quantiles: Vec<f64>,
    /// Forecasts waiting for their target time, by target time (Unix seconds of the step
    /// whose demand they forecast).
    pending: BTreeMap<i64, Vec<Pending>>,
    totals: Vec<Totals>,
}

#[derive(Debug, Clone)]
struct Pending {
    service: String,
    region: usize,
    horizon: usize,
    /// One value per quantile level.
    values: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    scored: u64,
    ape_sum: f64,
    ape_count: u64,
    at_or_below: Vec<u64>,
}

/// Accuracy at one lead time, since the daemon started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HorizonAccuracy {
    /// Lead time, seconds.
    pub horizon_s: u32,
    /// Forecasts scored.
    pub scored: u64,
    /// Sum of absolute percentage errors of the median forecast (as fractions), over the
    /// forecasts whose actual demand was positive.
    pub ape_sum: f64,
    /// How many forecasts `ape_sum` covers.
    pub ape_count: u64,
    /// `ape_sum / ape_count`, when any.
    pub mape: Option<f64>,
    /// Per quantile level (`levels`), the share of observations at or below the forecast.
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
            totals: vec![
                Totals { at_or_below: vec![0; quantiles.len()], ..Totals::default() };
                horizons.len()
            ],
        }
    }

    /// Remembers a forecast made from a series whose last value is the step starting at
    /// `last`: `row` holds `horizons × quantiles` values, row-major, at exactly the tracked
    /// lead times.
    pub fn expect(&mut self, service: &str, region: usize, last: i64, row: &[f64]) {
        let q = self.quantiles.len();
        for (h, &horizon) in self.horizons.iter().enumerate() {
            let values = row[h * q..(h + 1) * q].to_vec();
            self.pending.entry(last + i64::from(horizon)).or_default().push(Pending {
                service: service.to_owned(),
                region,
                horizon: h,
                values,
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
        let index: std::collections::HashMap<&str, usize> =
            o.services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let median = self
            .quantiles
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - 0.5).abs().total_cmp(&(b.1 - 0.5).abs()))
            .map_or(0, |(k, _)| k);
        for target in due {
            let Some(batch) = self.pending.remove(&target) else { continue };
            // A target that fell between ticks (a lead not a multiple of the step) is scored
            // against the step that contains it; anything older has no observation left.
            if target <= observed_step - i64::from(o.step_s) {
                continue;
            }
            for p in batch {
                let Some(actual) =
                    index.get(p.service.as_str()).and_then(|&s| o.services[s].demand_rps.get(p.region))
                else {
                    continue;
                };
                let t = &mut self.totals[p.horizon];
                t.scored += 1;
                if *actual > 0.0 {
                    t.ape_sum += (p.values[median] - actual).abs() / actual;
                    t.ape_count += 1;
                }
                for (k, v) in p.values.iter().enumerate() {
                    t.at_or_below[k] += u64::from(*actual <= *v);
                }
            }
        }
    }

    /// Forecasts waiting for their target time.
    pub fn pending(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Accuracy per lead time so far.
    pub fn by_horizon(&self) -> Vec<HorizonAccuracy> {
        self.horizons
            .iter()
            .zip(&self.totals)
            .map(|(&horizon_s, t)| HorizonAccuracy {
                horizon_s,
                scored: t.scored,
                ape_sum: t.ape_sum,
                ape_count: t.ape_count,
                mape: (t.ape_count > 0).then(|| t.ape_sum / t.ape_count as f64),
                coverage: t
                    .at_or_below
                    .iter()
                    .map(|&n| if t.scored > 0 { n as f64 / t.scored as f64 } else { 0.0 })
                    .collect(),
                levels: self.quantiles.clone(),
            })
            .collect()
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

    #[test]
    fn forecasts_are_scored_when_their_step_is_observed() {
        let mut a = Accuracy::new(&[60, 120], &[0.5, 0.9]);
        // Last value is the step starting at 0: targets are the steps at 60 and 120.
        a.expect("web", 0, 0, &[100.0, 110.0, 80.0, 120.0]);
        assert_eq!(a.pending(), 2);
        // The observation at 120 reports the step that started at 60.
        a.settle(&observation(120, 90.0));
        let h = a.by_horizon();
        assert_eq!(h[0].scored, 1);
        assert!((h[0].mape.unwrap() - 10.0 / 90.0).abs() < 1e-12);
        // 90 is at or below both the median (100) and the p90 (110).
        assert_eq!(h[0].coverage, vec![1.0, 1.0]);
        assert_eq!(h[1].scored, 0);
        a.settle(&observation(180, 100.0));
        let h = a.by_horizon();
        assert!((h[1].mape.unwrap() - 0.2).abs() < 1e-12);
        // 100 is above the median (80) and below the p90 (120).
        assert_eq!(h[1].coverage, vec![0.0, 1.0]);
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn zero_demand_counts_for_coverage_but_not_percentage_error() {
        let mut a = Accuracy::new(&[60], &[0.5]);
        a.expect("web", 0, 0, &[3.0]);
        a.settle(&observation(120, 0.0));
        let h = &a.by_horizon()[0];
        assert_eq!((h.scored, h.ape_count, h.mape), (1, 0, None));
        assert_eq!(h.coverage, vec![1.0]);
    }

    #[test]
    fn targets_missed_by_a_gap_in_observations_are_dropped_unscored() {
        let mut a = Accuracy::new(&[60], &[0.5]);
        a.expect("web", 0, 0, &[3.0]);
        a.expect("gone", 0, 0, &[3.0]);
        // The daemon was not observing at 120; by 600 that step's demand is gone.
        a.settle(&observation(600, 5.0));
        assert_eq!(a.by_horizon()[0].scored, 0);
        assert_eq!(a.pending(), 0);
    }
}
