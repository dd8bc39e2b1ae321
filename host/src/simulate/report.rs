//! `report.json`: per policy, what the SLOs, the bill and the control loop itself came to.

use std::collections::BTreeMap;

use serde::Serialize;

use super::commitment::{self, Advice};
use super::timeline::Timeline;
use crate::backends::sim::Scenario;
use crate::control::Daemon;
use crate::decide::PolicyName;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed every policy ran with.
    pub seed: u64,
    /// Per policy, by name.
    pub policies: BTreeMap<String, PolicyReport>,
    /// Foresight's policy against every other policy that ran: ratios of SLO-violation
    /// minutes and of cost (predictive / other).
    pub comparison: BTreeMap<String, Comparison>,
    /// The same for each of Foresight's planner policies (`predictive`, `reactive`,
    /// `oracle`) against each baseline: what the planner buys without a forecast
    /// (`reactive`) and at best (`oracle`), beside what it buys with one.
    pub comparison_by_policy: BTreeMap<String, BTreeMap<String, Comparison>>,
    /// Predictive against reactive — the same planner without a forecast: what prediction
    /// itself is worth. `None` unless both ran.
    pub value_of_prediction: Option<Comparison>,
    /// (V_reactive − V_predictive) / (V_reactive − V_oracle) over SLO-violation minutes: the
    /// share of what perfect foresight would save over reacting that the forecasts save.
    /// `None` unless all three ran and the oracle has fewer violations than reactive.
    pub oracle_gap_closed: Option<f64>,
    /// The same over cost: (C_reactive − C_predictive) / (C_reactive − C_oracle). `None`
    /// unless all three ran and the oracle's cost differs from reactive's.
    pub oracle_gap_closed_cost: Option<f64>,
    /// V_reactive − V_oracle: how many violation minutes perfect foresight saves over
    /// reacting, so a gap closed over a handful of minutes is read as such.
    pub oracle_headroom_minutes: Option<f64>,
}

/// Predictive against one baseline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Comparison {
    /// Predictive's SLO-violation minutes / the baseline's (`None` when the baseline had none).
    pub slo_violation_ratio: Option<f64>,
    /// Predictive's cost / the baseline's.
    pub cost_ratio: f64,
}

/// p95 latency over the run.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Over every service's served minutes, weighted by requests.
    pub overall: Option<f64>,
    /// Per service.
    pub services: BTreeMap<String, Option<f64>>,
}

/// Forecast accuracy at one lead time.
#[derive(Debug, Clone, Serialize)]
pub struct HorizonFigures {
    /// Mean absolute percentage error of the median, as a fraction.
    pub mape: Option<f64>,
    /// Mean absolute scaled error of the median.
    pub mase: Option<f64>,
    /// Share of observations inside the p10–p90 band.
    pub coverage: f64,
    /// Forecasts scored.
    pub scored: u64,
}

/// Predicted against measured p95 for one service.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyPrediction {
    /// Mean of the predictions, ms.
    pub mean_predicted_ms: f64,
    /// Mean of what was measured in the same steps, ms.
    pub mean_measured_ms: f64,
    /// Mean absolute error, ms.
    pub mean_abs_error_ms: f64,
    /// Share of steps predicted within 20 % of the measurement.
    pub within_20_percent: f64,
    /// Steps compared (both finite).
    pub steps: usize,
}

/// One policy's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// Minutes any service spent over its SLO, summed over services.
    pub slo_violation_minutes: f64,
    /// The same per service.
    pub slo_violation_minutes_by_service: BTreeMap<String, f64>,
    /// Requests dropped.
    pub dropped_requests: f64,
    /// p95 latency, ms.
    pub p95_latency_ms: Latency,
    /// Total spend, USD.
    pub cost_usd: f64,
    /// Cores busy serving over cores on ready nodes, averaged over steps.
    pub mean_cpu_utilisation: f64,
    /// Spot nodes interrupted.
    pub spot_interruptions: u64,
    /// CPU time the control loop spent deciding (forecasts, plugins and planning; the simulator
    /// excluded), seconds.
    pub control_cpu_seconds: f64,
    /// Forecast accuracy per lead time (`1m`, `5m`, …); `None` for policies that do not forecast.
    pub forecast_accuracy: Option<BTreeMap<String, HorizonFigures>>,
    /// Per lead time, the weight the plan gave the forecast against what was observed at the
    /// end of the run (mean over series, per quantile level `p10`, `p50`, `p90`); `None` for
    /// policies that do not forecast.
    pub forecast_weight: Option<BTreeMap<String, BTreeMap<String, f64>>>,
    /// Per service at the end of the run, the factor Foresight's planner put on planned demand
    /// so its plans covered the peak of their window nine times in ten (1: the plan alone did);
    /// `None` for the baselines.
    pub plan_coverage: Option<BTreeMap<String, f64>>,
    /// The queueing model's predicted p95 against the measured one, per service.
    pub latency_prediction: Option<BTreeMap<String, LatencyPrediction>>,
    /// Commitment advice from the hourly forecast floor.
    pub commitment: Option<Vec<Advice>>,
    /// Steps simulated.
    pub ticks: u64,
}

/// The request-weighted `q`-quantile of finite values.
fn weighted_quantile(values: impl Iterator<Item = (f64, f64)>, q: f64) -> Option<f64> {
    let mut v: Vec<(f64, f64)> = values.filter(|(x, w)| x.is_finite() && *w > 0.0).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = v.iter().map(|x| x.1).sum();
    let mut seen = 0.0;
    for (x, w) in &v {
        seen += w;
        if seen >= q * total {
            return Some(*x);
        }
    }
    v.last().map(|x| x.0)
}

fn label(lead_s: u32) -> String {
    match lead_s {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

impl PolicyReport {
    /// The figures of a finished run.
    pub fn from_run(
        daemon: &Daemon,
        timeline: &Timeline,
        control_cpu_seconds: f64,
        scenario: &Scenario,
        offers: &[commitment::Offer],
    ) -> Self {
        let ledger = daemon.ledger().expect("a simulation runs on the simulator");
        let names: Vec<String> = scenario.services.iter().map(|s| s.name.clone()).collect();
        let by_service: BTreeMap<String, f64> =
            names.iter().cloned().zip(ledger.slo_violation_minutes.iter().copied()).collect();
        let services = names
            .iter()
            .zip(&timeline.services)
            .map(|(n, s)| {
                (n.clone(), weighted_quantile(s.p95_ms.iter().copied().zip(s.demand.iter().copied()), 0.95))
            })
            .collect();
        let overall = weighted_quantile(
            timeline.services.iter().flat_map(|s| s.p95_ms.iter().copied().zip(s.demand.iter().copied())),
            0.95,
        );
        let utilisation: Vec<f64> = timeline
            .busy_cores
            .iter()
            .zip(&timeline.capacity_cores)
            .filter(|(_, c)| **c > 0.0)
            .map(|(b, c)| b / c)
            .collect();
        let forecasting = timeline.floor_cores.iter().any(|x| x.is_finite());
        // The references (observed now, the oracle) plan from demand they did not forecast.
        let forecast_accuracy = (forecasting && daemon.tracks_accuracy()).then(|| {
            daemon
                .forecast_accuracy()
                .into_iter()
                .map(|h| {
                    (
                        label(h.horizon_s),
                        HorizonFigures {
                            mape: h.mape,
                            mase: h.mase,
                            coverage: h.band_coverage,
                            scored: h.scored,
                        },
                    )
                })
                .collect()
        });
        let forecast_weight = daemon.tracks_accuracy().then(|| {
            daemon
                .forecast_weights()
                .into_iter()
                .filter_map(|(lead, levels)| {
                    let levels = levels?;
                    Some((
                        label(lead),
                        crate::predict::QUANTILES
                            .iter()
                            .zip(levels)
                            .map(|(q, w)| (format!("p{:.0}", q * 100.0), w))
                            .collect(),
                    ))
                })
                .collect()
        });
        let latency_prediction = forecasting.then(|| {
            names
                .iter()
                .zip(&timeline.services)
                .map(|(n, s)| {
                    let pairs: Vec<(f64, f64)> = s
                        .predicted_p95_ms
                        .iter()
                        .zip(&s.p95_ms)
                        .filter(|(p, m)| p.is_finite() && m.is_finite())
                        .map(|(p, m)| (*p, *m))
                        .collect();
                    let n_pairs = pairs.len().max(1) as f64;
                    (
                        n.clone(),
                        LatencyPrediction {
                            mean_predicted_ms: pairs.iter().map(|p| p.0).sum::<f64>() / n_pairs,
                            mean_measured_ms: pairs.iter().map(|p| p.1).sum::<f64>() / n_pairs,
                            mean_abs_error_ms: pairs.iter().map(|p| (p.0 - p.1).abs()).sum::<f64>() / n_pairs,
                            within_20_percent: pairs.iter().filter(|p| (p.0 - p.1).abs() <= 0.2 * p.1).count()
                                as f64
                                / n_pairs,
                            steps: pairs.len(),
                        },
                    )
                })
                .collect()
        });
        // Without an on-demand cloud offering there is nothing to commit to.
        let commitment = on_demand_core_price(scenario).filter(|_| forecasting).map(|price| {
            let per_hour = (3600 / scenario.step_s.max(1)).max(1) as usize;
            let hourly = |v: &[f64]| -> Vec<f64> {
                v.chunks(per_hour).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect()
            };
            commitment::advise(&hourly(&timeline.floor_cores), &hourly(&timeline.cloud_cores), price, offers)
        });
        Self {
            slo_violation_minutes: ledger.slo_violation_minutes.iter().sum(),
            slo_violation_minutes_by_service: by_service,
            dropped_requests: ledger.dropped_requests,
            p95_latency_ms: Latency { overall, services },
            cost_usd: ledger.cost,
            mean_cpu_utilisation: if utilisation.is_empty() {
                0.0
            } else {
                utilisation.iter().sum::<f64>() / utilisation.len() as f64
            },
            spot_interruptions: ledger.interruptions,
            control_cpu_seconds,
            forecast_accuracy,
            forecast_weight,
            plan_coverage: daemon.plan_coverage(),
            latency_prediction,
            commitment,
            ticks: ledger.ticks,
        }
    }
}

/// The cheapest on-demand cloud price per core-hour in the scenario.
fn on_demand_core_price(scenario: &Scenario) -> Option<f64> {
    scenario
        .clusters
        .iter()
        .filter(|c| c.kind == crate::observe::ClusterKind::Cloud)
        .flat_map(|c| c.pools.iter().map(|p| &scenario.offerings[p.offering]))
        .filter(|o| !o.spot && o.vcpu > 0.0)
        .map(|o| o.hourly_price / o.vcpu)
        .min_by(f64::total_cmp)
}

impl Comparison {
    /// `ours` against `theirs`.
    pub fn of(ours: &PolicyReport, theirs: &PolicyReport) -> Self {
        Self {
            slo_violation_ratio: (theirs.slo_violation_minutes > 0.0)
                .then(|| ours.slo_violation_minutes / theirs.slo_violation_minutes),
            cost_ratio: ours.cost_usd / theirs.cost_usd,
        }
    }
}

/// (reactive − predictive) / (reactive − oracle), when the denominator is not ~0.
fn gap_closed(reactive: f64, predictive: f64, oracle: f64) -> Option<f64> {
    let room = reactive - oracle;
    (room.abs() > 1e-9).then(|| (reactive - predictive) / room)
}

impl Report {
    /// The report of runs on one scenario and seed.
    pub fn new(scenario: &str, seed: u64, runs: &[(PolicyName, PolicyReport)]) -> Self {
        let policies: BTreeMap<String, PolicyReport> =
            runs.iter().map(|(p, r)| (p.as_str().to_owned(), r.clone())).collect();
        let get = |p: PolicyName| policies.get(p.as_str());
        let mut comparison = BTreeMap::new();
        if let Some(ours) = get(PolicyName::Predictive) {
            for (name, theirs) in policies.iter().filter(|(n, _)| *n != PolicyName::Predictive.as_str()) {
                comparison.insert(name.clone(), Comparison::of(ours, theirs));
            }
        }
        let mut comparison_by_policy = BTreeMap::new();
        for planner in [PolicyName::Predictive, PolicyName::Reactive, PolicyName::Oracle] {
            let Some(ours) = get(planner) else { continue };
            let against: BTreeMap<String, Comparison> = runs
                .iter()
                .filter(|(p, _)| p.baseline().is_some())
                .map(|(p, theirs)| (p.as_str().to_owned(), Comparison::of(ours, theirs)))
                .collect();
            if !against.is_empty() {
                comparison_by_policy.insert(planner.as_str().to_owned(), against);
            }
        }
        let (p, r, o) = (get(PolicyName::Predictive), get(PolicyName::Reactive), get(PolicyName::Oracle));
        let value_of_prediction = p.zip(r).map(|(p, r)| Comparison::of(p, r));
        let three = p.zip(r).zip(o).map(|((p, r), o)| (p, r, o));
        let oracle_gap_closed = three
            .filter(|(_, r, o)| r.slo_violation_minutes > o.slo_violation_minutes)
            .and_then(|(p, r, o)| {
                gap_closed(r.slo_violation_minutes, p.slo_violation_minutes, o.slo_violation_minutes)
            });
        let oracle_gap_closed_cost =
            three.and_then(|(p, r, o)| gap_closed(r.cost_usd, p.cost_usd, o.cost_usd));
        let oracle_headroom_minutes =
            three.map(|(_, r, o)| r.slo_violation_minutes - o.slo_violation_minutes);
        Self {
            scenario: scenario.to_owned(),
            seed,
            policies,
            comparison,
            comparison_by_policy,
            value_of_prediction,
            oracle_gap_closed,
            oracle_gap_closed_cost,
            oracle_headroom_minutes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_quantile_by_hand() {
        // 90 % of the requests at 10 ms, 10 % at 100 ms: the p95 request waits 100 ms.
        let v = [(10.0, 9.0), (100.0, 1.0)];
        assert_eq!(weighted_quantile(v.into_iter(), 0.95), Some(100.0));
        assert_eq!(weighted_quantile(v.into_iter(), 0.5), Some(10.0));
        // Unserved minutes (infinite) and idle ones (no weight) are left out.
        let v = [(f64::INFINITY, 5.0), (20.0, 1.0), (99.0, 0.0)];
        assert_eq!(weighted_quantile(v.into_iter(), 0.95), Some(20.0));
        assert_eq!(weighted_quantile(std::iter::empty(), 0.95), None);
    }

    fn figures(minutes: f64, cost: f64) -> PolicyReport {
        PolicyReport {
            slo_violation_minutes: minutes,
            slo_violation_minutes_by_service: BTreeMap::new(),
            dropped_requests: 0.0,
            p95_latency_ms: Latency { overall: None, services: BTreeMap::new() },
            cost_usd: cost,
            mean_cpu_utilisation: 0.0,
            spot_interruptions: 0,
            control_cpu_seconds: 0.0,
            forecast_accuracy: None,
            forecast_weight: None,
            plan_coverage: None,
            latency_prediction: None,
            commitment: None,
            ticks: 0,
        }
    }

    #[test]
    fn the_skeptics_figures_by_hand() {
        let runs = [
            (PolicyName::Predictive, figures(300.0, 110.0)),
            (PolicyName::Reactive, figures(1000.0, 100.0)),
            (PolicyName::Oracle, figures(100.0, 120.0)),
            (PolicyName::Hpa, figures(2000.0, 125.0)),
        ];
        let r = Report::new("s", 7, &runs);
        let v = r.value_of_prediction.expect("both ran");
        assert_eq!((v.slo_violation_ratio, v.cost_ratio), (Some(0.3), 1.1));
        // Reacting loses 900 minutes to perfect foresight; the forecasts win back 700 of them.
        assert!((r.oracle_gap_closed.unwrap() - 700.0 / 900.0).abs() < 1e-12);
        assert!((r.oracle_gap_closed_cost.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(r.oracle_headroom_minutes, Some(900.0));
        assert_eq!(r.comparison["hpa"].slo_violation_ratio, Some(0.15));
        assert_eq!(r.comparison_by_policy["reactive"]["hpa"].slo_violation_ratio, Some(0.5));
        assert!(!r.comparison_by_policy["oracle"].contains_key("reactive"), "baselines only");
        // An oracle no better than reacting leaves nothing to close.
        let runs = [runs[0].clone(), runs[1].clone(), (PolicyName::Oracle, figures(1000.0, 100.0))];
        let r = Report::new("s", 7, &runs);
        assert_eq!((r.oracle_gap_closed, r.oracle_gap_closed_cost), (None, None));
        assert!(Report::new("s", 7, &runs[..1]).value_of_prediction.is_none());
    }

    #[test]
    fn lead_labels() {
        assert_eq!(
            (label(60), label(900), label(3600), label(45)),
            ("1m".into(), "15m".into(), "1h".into(), "45s".into())
        );
    }
}
