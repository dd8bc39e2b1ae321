//! Prometheus metrics: what an operator alerts on — tick and stage durations, plugin faults,
//! fallbacks and quarantines, decisions by kind and outcome, SLO violations, cost, drops.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::backends::sim::Ledger;
use crate::control::TickSummary;
use crate::plugins::StatsSnapshot;
use crate::predict::HorizonAccuracy;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stage {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Role {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleFault {
    role: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExperimentLabel {
    experiment: String,
    side: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HorizonLabel {
    plugin: String,
    horizon_s: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CoverageLabel {
    plugin: String,
    horizon_s: u32,
    quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabel {
    cluster: String,
}

/// One Kubernetes cluster's watch health, as metrics report it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterHealth {
    /// Cluster name.
    pub cluster: String,
    /// Whether its data is too old to act on.
    pub stale: bool,
    /// Watch failures since start.
    pub watch_errors: u64,
}

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    stage_seconds: Family<Stage, Histogram>,
    ticks: Counter,
    skipped: Counter,
    decisions: Family<DecisionLabel, Counter>,
    plugin_calls: Family<Role, Counter>,
    plugin_call_seconds: Family<Role, Counter<f64, AtomicU64>>,
    plugin_faults: Family<RoleFault, Counter>,
    plugin_fallbacks: Family<Role, Counter>,
    plugin_quarantines: Family<Role, Counter>,
    plugin_quarantined: Family<Role, Gauge>,
    slo_minutes: Family<ServiceLabel, Counter<f64, AtomicU64>>,
    predicted_p95: Family<ServiceLabel, Gauge<f64, AtomicU64>>,
    cluster_stale: Family<ClusterLabel, Gauge>,
    cluster_watch_errors: Family<ClusterLabel, Gauge>,
    leader: Gauge,
    control_cpu: Counter<f64, AtomicU64>,
    cost: Counter<f64, AtomicU64>,
    dropped: Counter<f64, AtomicU64>,
    experiment_decisions: Family<ExperimentLabel, Gauge>,
    experiment_mape: Family<ExperimentLabel, Gauge<f64, AtomicU64>>,
    forecast_scored: Family<HorizonLabel, Counter>,
    forecast_ape_sum: Family<HorizonLabel, Counter<f64, AtomicU64>>,
    forecast_ape_count: Family<HorizonLabel, Counter>,
    forecast_mape: Family<HorizonLabel, Gauge<f64, AtomicU64>>,
    forecast_mase: Family<HorizonLabel, Gauge<f64, AtomicU64>>,
    forecast_pinball: Family<HorizonLabel, Gauge<f64, AtomicU64>>,
    forecast_band_coverage: Family<HorizonLabel, Gauge<f64, AtomicU64>>,
    forecast_coverage: Family<CoverageLabel, Gauge<f64, AtomicU64>>,
    /// What was last exported, to turn the daemon's running totals into counter increments.
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    roles: std::collections::HashMap<String, StatsSnapshot>,
    ledger: Ledger,
    accuracy: Vec<HorizonAccuracy>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("foresight");
        let stage_seconds = Family::<Stage, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register(
            "tick_stage_seconds",
            "Duration of each tick stage (observe, predict, decide, act, total)",
            stage_seconds.clone(),
        );
        let ticks = Counter::default();
        registry.register("ticks", "Ticks completed", ticks.clone());
        let skipped = Counter::default();
        registry.register(
            "ticks_skipped_acting",
            "Ticks that did not act (stale observation or no forecast)",
            skipped.clone(),
        );
        let decisions = Family::<DecisionLabel, Counter>::default();
        registry.register("decisions", "Decisions by action kind and outcome", decisions.clone());
        let plugin_calls = Family::<Role, Counter>::default();
        registry.register("plugin_calls", "Calls to a policy role", plugin_calls.clone());
        let plugin_call_seconds = Family::<Role, Counter<f64, AtomicU64>>::default();
        registry.register(
            "plugin_call_seconds",
            "Time spent in a role's calls, fallbacks included (divide by plugin_calls for the mean)",
            plugin_call_seconds.clone(),
        );
        let plugin_faults = Family::<RoleFault, Counter>::default();
        registry.register(
            "plugin_faults",
            "Calls on which the live plugin faulted, by fault kind",
            plugin_faults.clone(),
        );
        let plugin_fallbacks = Family::<Role, Counter>::default();
        registry.register(
            "plugin_fallbacks",
            "Calls answered by a fallback plugin",
            plugin_fallbacks.clone(),
        );
        let plugin_quarantines = Family::<Role, Counter>::default();
        registry.register("plugin_quarantines", "Quarantines begun", plugin_quarantines.clone());
        let plugin_quarantined = Family::<Role, Gauge>::default();
        registry.register(
            "plugin_quarantined",
            "1 while the role's live plugin is quarantined",
            plugin_quarantined.clone(),
        );
        let slo_minutes = Family::<ServiceLabel, Counter<f64, AtomicU64>>::default();
        registry.register(
            "slo_violation_minutes",
            "Minutes a service spent over its SLO",
            slo_minutes.clone(),
        );
        let predicted_p95 = Family::<ServiceLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "predicted_p95_ms",
            "p95 latency the last plan is predicted to give each service, from the queueing model (alert when over the SLO)",
            predicted_p95.clone(),
        );
        let control_cpu = Counter::<f64, AtomicU64>::default();
        registry.register(
            "control_cpu_seconds",
            "CPU time the loop spent forecasting and planning (plugins included)",
            control_cpu.clone(),
        );
        let cost = Counter::<f64, AtomicU64>::default();
        registry.register("cost", "Spend so far (node-hours × price)", cost.clone());
        let dropped = Counter::<f64, AtomicU64>::default();
        registry.register("dropped_requests", "Requests dropped", dropped.clone());
        let experiment_decisions = Family::<ExperimentLabel, Gauge>::default();
        registry.register(
            "experiment_decisions",
            "Decisions an experiment's candidate has made",
            experiment_decisions.clone(),
        );
        let experiment_mape = Family::<ExperimentLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "experiment_forecast_mape",
            "Mean absolute percentage error of the one-step p50 forecast, candidate and live side by side",
            experiment_mape.clone(),
        );
        let forecast_scored = Family::<HorizonLabel, Counter>::default();
        registry.register(
            "forecast_scored",
            "Live forecasts scored against the demand they forecast, by lead time",
            forecast_scored.clone(),
        );
        let forecast_ape_sum = Family::<HorizonLabel, Counter<f64, AtomicU64>>::default();
        registry.register(
            "forecast_abs_pct_error",
            "Sum of absolute percentage errors (as fractions) of the live p50 forecast, by lead time; divide its rate by forecast_abs_pct_error_samples' for MAPE over a window",
            forecast_ape_sum.clone(),
        );
        let forecast_ape_count = Family::<HorizonLabel, Counter>::default();
        registry.register(
            "forecast_abs_pct_error_samples",
            "Forecasts summed in forecast_abs_pct_error (those whose actual demand was positive)",
            forecast_ape_count.clone(),
        );
        let forecast_mape = Family::<HorizonLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "forecast_mape",
            "Mean absolute percentage error (fraction) of the live p50 forecast since start, by lead time",
            forecast_mape.clone(),
        );
        let forecast_mase = Family::<HorizonLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "forecast_mase",
            "Mean absolute scaled error of the p50 forecast since start (scaled by each series' one-day seasonal-naive error), by plugin and lead time",
            forecast_mase.clone(),
        );
        let forecast_pinball = Family::<HorizonLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "forecast_pinball",
            "Mean pinball loss over the quantile levels since start, scaled like MASE, by plugin and lead time",
            forecast_pinball.clone(),
        );
        let forecast_band_coverage = Family::<HorizonLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "forecast_band_coverage",
            "Share of observed demand inside the p10-p90 forecast band since start (calibrated: 0.8)",
            forecast_band_coverage.clone(),
        );
        let forecast_coverage = Family::<CoverageLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "forecast_coverage",
            "Share of observed demand at or below the live forecast of each quantile level since start (calibrated: equal to the level)",
            forecast_coverage.clone(),
        );
        let cluster_stale = Family::<ClusterLabel, Gauge>::default();
        registry.register(
            "cluster_stale",
            "1 while a Kubernetes cluster's watches have failed longer than max-data-age (no action is taken on it)",
            cluster_stale.clone(),
        );
        let cluster_watch_errors = Family::<ClusterLabel, Gauge>::default();
        registry.register(
            "cluster_watch_errors",
            "Watch failures (expired, dropped, refused) of a Kubernetes cluster since start",
            cluster_watch_errors.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this instance holds the leader Lease and may act",
            leader.clone(),
        );
        Self {
            registry,
            cluster_stale,
            cluster_watch_errors,
            leader,
            forecast_scored,
            forecast_ape_sum,
            forecast_ape_count,
            forecast_mape,
            forecast_mase,
            forecast_pinball,
            forecast_band_coverage,
            forecast_coverage,
            stage_seconds,
            experiment_decisions,
            experiment_mape,
            ticks,
            skipped,
            decisions,
            plugin_calls,
            plugin_call_seconds,
            plugin_faults,
            plugin_fallbacks,
            plugin_quarantines,
            plugin_quarantined,
            slo_minutes,
            predicted_p95,
            control_cpu,
            cost,
            dropped,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Records one tick.
    pub fn tick(&self, summary: &TickSummary, decisions: &[(String, String)]) {
        let s = &summary.stages;
        for (stage, ms) in
            [("observe", s.observe_ms), ("predict", s.predict_ms), ("decide", s.decide_ms), ("act", s.act_ms)]
        {
            self.stage_seconds.get_or_create(&Stage { stage: stage.into() }).observe(ms / 1e3);
        }
        let total = (s.observe_ms + s.predict_ms + s.decide_ms + s.act_ms) / 1e3;
        self.stage_seconds.get_or_create(&Stage { stage: "total".into() }).observe(total);
        self.ticks.inc();
        self.control_cpu.inc_by(summary.control_cpu_s);
        if summary.skipped_acting {
            self.skipped.inc();
        }
        for (kind, outcome) in decisions {
            self.decisions
                .get_or_create(&DecisionLabel { kind: kind.clone(), outcome: outcome.clone() })
                .inc();
        }
    }

    /// Publishes the p95 the last plan was predicted to give each service (infinite when
    /// nothing would serve it).
    pub fn predicted_latency(&self, services: &[String], predicted: &[f64]) {
        for (service, p95) in services.iter().zip(predicted) {
            self.predicted_p95.get_or_create(&ServiceLabel { service: service.clone() }).set(*p95);
        }
    }

    /// Publishes the Kubernetes backend's cluster health and leadership.
    pub fn clusters(&self, health: &[ClusterHealth], leader: bool) {
        for h in health {
            let label = ClusterLabel { cluster: h.cluster.clone() };
            self.cluster_stale.get_or_create(&label).set(i64::from(h.stale));
            self.cluster_watch_errors.get_or_create(&label).set(h.watch_errors as i64);
        }
        self.leader.set(i64::from(leader));
    }

    /// Brings role and ledger counters up to the daemon's running totals.
    pub fn totals(&self, roles: &[(&str, StatsSnapshot)], ledger: Option<&Ledger>, services: &[String]) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (role, now) in roles {
            let label = Role { role: (*role).into() };
            let before = seen.roles.get(*role).cloned().unwrap_or_default();
            self.plugin_calls.get_or_create(&label).inc_by(now.calls - before.calls);
            self.plugin_call_seconds
                .get_or_create(&label)
                .inc_by((now.call_seconds - before.call_seconds).max(0.0));
            self.plugin_fallbacks.get_or_create(&label).inc_by(now.fallbacks - before.fallbacks);
            self.plugin_quarantines.get_or_create(&label).inc_by(now.quarantines - before.quarantines);
            self.plugin_quarantined.get_or_create(&label).set(i64::from(now.quarantined));
            for (kind, n) in &now.faults_by_kind {
                let prev = before.faults_by_kind.get(kind).copied().unwrap_or(0);
                self.plugin_faults
                    .get_or_create(&RoleFault { role: (*role).into(), kind: (*kind).into() })
                    .inc_by(n - prev);
            }
            seen.roles.insert((*role).into(), now.clone());
        }
        // The simulator keeps a ledger; on Kubernetes cost and SLOs are the cloud's and
        // Prometheus' to report.
        let Some(ledger) = ledger else { return };
        for (i, service) in services.iter().enumerate() {
            let now = ledger.slo_violation_minutes.get(i).copied().unwrap_or(0.0);
            let before = seen.ledger.slo_violation_minutes.get(i).copied().unwrap_or(0.0);
            self.slo_minutes.get_or_create(&ServiceLabel { service: service.clone() }).inc_by(now - before);
        }
        self.cost.inc_by(ledger.cost - seen.ledger.cost);
        self.dropped.inc_by(ledger.dropped_requests - seen.ledger.dropped_requests);
        seen.ledger = ledger.clone();
    }

    /// Publishes each experiment's figures.
    pub fn experiments(&self, experiments: &[crate::control::ExperimentStatus]) {
        for e in experiments {
            let label = |side: &str| ExperimentLabel { experiment: e.name.clone(), side: side.into() };
            self.experiment_decisions.get_or_create(&label("candidate")).set(e.decisions as i64);
            if let Some(m) = e.candidate_mape {
                self.experiment_mape.get_or_create(&label("candidate")).set(m);
            }
            if let Some(m) = e.live_mape {
                self.experiment_mape.get_or_create(&label("live")).set(m);
            }
        }
    }

    /// Brings forecast-accuracy series up to the running totals (per plugin and lead time).
    pub fn forecast_accuracy(&self, accuracy: &[HorizonAccuracy]) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for a in accuracy {
            let label = HorizonLabel { plugin: a.plugin.clone(), horizon_s: a.horizon_s };
            let before = seen.accuracy.iter().find(|b| b.plugin == a.plugin && b.horizon_s == a.horizon_s);
            let (scored, sum, count) = before.map_or((0, 0.0, 0), |b| (b.scored, b.ape_sum, b.ape_count));
            self.forecast_scored.get_or_create(&label).inc_by(a.scored.saturating_sub(scored));
            self.forecast_ape_sum.get_or_create(&label).inc_by((a.ape_sum - sum).max(0.0));
            self.forecast_ape_count.get_or_create(&label).inc_by(a.ape_count.saturating_sub(count));
            for (family, value) in [
                (&self.forecast_mape, a.mape),
                (&self.forecast_mase, a.mase),
                (&self.forecast_pinball, a.pinball),
                (&self.forecast_band_coverage, (a.scored > 0).then_some(a.band_coverage)),
            ] {
                if let Some(v) = value {
                    family.get_or_create(&label).set(v);
                }
            }
            if a.scored > 0 {
                for (level, share) in a.levels.iter().zip(&a.coverage) {
                    let label = CoverageLabel {
                        plugin: a.plugin.clone(),
                        horizon_s: a.horizon_s,
                        quantile: format!("{level}"),
                    };
                    self.forecast_coverage.get_or_create(&label).set(*share);
                }
            }
        }
        seen.accuracy = accuracy.to_vec();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_health_and_leadership_are_published() {
        let m = Metrics::new();
        let health = [
            ClusterHealth { cluster: "eu".into(), stale: true, watch_errors: 7 },
            ClusterHealth { cluster: "us".into(), stale: false, watch_errors: 0 },
        ];
        m.clusters(&health, true);
        let text = m.encode();
        assert!(text.contains("foresight_cluster_stale{cluster=\"eu\"} 1"), "{text}");
        assert!(text.contains("foresight_cluster_stale{cluster=\"us\"} 0"), "{text}");
        assert!(text.contains("foresight_cluster_watch_errors{cluster=\"eu\"} 7"), "{text}");
        assert!(text.contains("foresight_leader 1"), "{text}");
    }
}
