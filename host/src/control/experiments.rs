//! Experiments: a candidate plugin run beside the live one on the same observations. In
//! `shadow` mode its decisions are journaled under the experiment's name and never applied; in
//! `canary` mode (forecasters) they replace the live decisions for a fixed share of services.
//! Each experiment is scored against the live plugin by the error of its one-step p50 demand
//! forecast once the demand it forecast has been observed.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use foresight_sdk::PluginKind;
use serde::Serialize;

use crate::config::{Experiment, ExperimentMode, Guardrails};
use crate::decide::{Decision, ReplicaPlanner, plan_nodes};
use crate::observe::{Observation, Observer};
use crate::plugins::{ForecastPolicy, Guarded, Native, PlanPolicy, QuarantineRule, Runtime, ScorePolicy};
use crate::predict::{Forecasts, Predictor};

/// One experiment's running state.
pub struct Running {
    spec: Experiment,
    kind: PluginKind,
    label: String,
    forecaster: Option<Guarded<dyn ForecastPolicy>>,
    predictor: Predictor,
    cost_model: Option<Guarded<dyn PlanPolicy>>,
    scorer: Option<Guarded<dyn ScorePolicy>>,
    planner: ReplicaPlanner,
    score: Score,
    candidate_prev: Option<Forecasts>,
    decisions: u64,
    /// The candidate component, kept for promotion.
    plugin: Arc<crate::plugins::WasmPlugin>,
    /// Champion/challenger readings over the promotion window.
    window: Window,
    /// MASE of (candidate, live) over the latest full window.
    window_mase: Option<(f64, f64)>,
}

/// Running accuracy totals (sum of scaled errors, count) of both sides at a time:
/// (time, candidate, live).
type Reading = (i64, (f64, u64), (f64, u64));

/// Readings of both sides' running totals, reaching back one reading past the window, so the
/// MASE of each over the window is the difference of two readings.
#[derive(Debug, Default)]
struct Window {
    readings: std::collections::VecDeque<Reading>,
}

impl Window {
    /// Adds a reading; once the readings span `window_s` and each side has scored enough
    /// forecasts in it, each side's MASE over it: (candidate, live).
    fn push(&mut self, reading: Reading, window_s: i64) -> Option<(f64, f64)> {
        let now = reading.0;
        self.readings.push_back(reading);
        while self.readings.len() > 2 && self.readings[1].0 <= now - window_s {
            self.readings.pop_front();
        }
        let (start, cand0, live0) = *self.readings.front()?;
        if start > now - window_s {
            return None;
        }
        let (_, cand1, live1) = reading;
        // A reading can go down when the plugins served change (a swap): start over.
        let (Some(cn), Some(ln)) = (cand1.1.checked_sub(cand0.1), live1.1.checked_sub(live0.1)) else {
            self.readings.clear();
            return None;
        };
        if cn < MIN_SCORED_FOR_PROMOTION || ln < MIN_SCORED_FOR_PROMOTION {
            return None;
        }
        Some(((cand1.0 - cand0.0) / cn as f64, (live1.0 - live0.0) / ln as f64))
    }
}

/// Scored forecasts each side needs inside the window before a promotion is considered.
const MIN_SCORED_FOR_PROMOTION: u64 = 30;

/// What status and metrics show of an experiment.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentStatus {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// `shadow` or `canary`.
    pub mode: ExperimentMode,
    /// The candidate, `name@version`.
    pub candidate: String,
    /// Decisions it made (applied or not).
    pub decisions: u64,
    /// Mean absolute percentage error of its one-step p50 forecast, when it forecasts.
    pub candidate_mape: Option<f64>,
    /// The live forecaster's, over the same ticks.
    pub live_mape: Option<f64>,
    /// Champion/challenger: the candidate's and the live forecaster's MASE over the latest
    /// full promotion window.
    pub window_mase: Option<(f64, f64)>,
}

#[derive(Debug, Default)]
struct Score {
    candidate: (f64, u64),
    live: (f64, u64),
}

impl Running {
    /// Starts an experiment's candidate; a forecaster candidate refreshes each series every
    /// `refresh_s`, as the live one does.
    pub fn start(
        runtime: &Runtime,
        spec: &Experiment,
        plugin_dir: &std::path::Path,
        refresh_s: u32,
    ) -> anyhow::Result<Self> {
        let kind: PluginKind =
            spec.role.parse().map_err(|e: String| anyhow::anyhow!("experiment `{}`: {e}", spec.name))?;
        let file = if spec.file.is_absolute() { spec.file.clone() } else { plugin_dir.join(&spec.file) };
        let table: toml::Table = spec.config.clone().into_iter().collect();
        let plugin = runtime
            .start_file(&file, Some(kind), &spec.limits, &toml::to_string(&table).unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("experiment `{}`: {e}", spec.name))?;
        let label = crate::plugins::Policy::label(&plugin);
        let plugin = Arc::new(plugin);
        let kept = plugin.clone();
        let rule = QuarantineRule {
            max_consecutive_faults: spec.limits.max_consecutive_faults,
            duration: spec.limits.quarantine(),
        };
        let native = |e: foresight_sdk::PluginError| anyhow::anyhow!("built-in baseline: {e}");
        let (forecaster, cost_model, scorer) = match kind {
            PluginKind::Forecaster => (
                Some(Guarded::new(
                    &spec.name,
                    plugin as Arc<dyn ForecastPolicy>,
                    Arc::new(Native::<seasonal_naive::SeasonalNaive>::forecaster("").map_err(native)?),
                    rule,
                )),
                None,
                None,
            ),
            PluginKind::CostModel => (
                None,
                Some(Guarded::new(
                    &spec.name,
                    plugin as Arc<dyn PlanPolicy>,
                    Arc::new(Native::<spot_mix::SpotMix>::cost_model("").map_err(native)?),
                    rule,
                )),
                None,
            ),
            PluginKind::Scorer => (
                None,
                None,
                Some(Guarded::new(
                    &spec.name,
                    plugin as Arc<dyn ScorePolicy>,
                    Arc::new(Native::<latency_aware::LatencyAware>::scorer("").map_err(native)?),
                    rule,
                )),
            ),
        };
        Ok(Self {
            spec: spec.clone(),
            kind,
            label,
            forecaster,
            predictor: Predictor::new(refresh_s),
            cost_model,
            scorer,
            planner: ReplicaPlanner::default(),
            score: Score::default(),
            candidate_prev: None,
            decisions: 0,
            plugin: kept,
            window: Window::default(),
            window_mase: None,
        })
    }

    /// Champion/challenger: after each tick, compares the candidate's MASE with the live
    /// forecaster's over the trailing window; returns the candidate when it has beaten the
    /// live one by the margin and should be promoted.
    pub fn challenge(&mut self, now: i64, live: (f64, u64)) -> Option<Arc<crate::plugins::WasmPlugin>> {
        let window = self.spec.promotion_window_s().ok().flatten()?;
        let (candidate, champion) = self.window.push((now, self.predictor.served_totals(), live), window)?;
        self.window_mase = Some((candidate, champion));
        (candidate < champion * (1.0 - self.spec.promote_margin)).then(|| self.plugin.clone())
    }

    /// Name of the experiment.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether a service is in this canary's share (stable across restarts).
    pub fn takes(&self, service: &str) -> bool {
        if self.spec.mode != ExperimentMode::Canary {
            return false;
        }
        let mut h = std::hash::DefaultHasher::new();
        (&self.spec.name, service).hash(&mut h);
        (h.finish() % 10_000) as f64 / 10_000.0 < self.spec.share
    }

    /// Runs the candidate on this tick's observation. `live` is the live forecast (scored
    /// alongside) and `live_decisions` the live replica decisions (the floor for node plans).
    pub fn decide(
        &mut self,
        o: &Observation,
        observer: &dyn Observer,
        live: Option<&Forecasts>,
        live_prev: Option<&Forecasts>,
        live_decisions: &[Decision],
        guardrails: &Guardrails,
    ) -> Vec<Decision> {
        let decisions = match (self.kind, &self.forecaster, &self.cost_model, live) {
            (PluginKind::Forecaster, Some(forecaster), _, _) => {
                match self.predictor.predict(o, observer, forecaster, &[]) {
                    Ok(f) => {
                        score(&mut self.score.candidate, self.candidate_prev.as_ref(), o);
                        score(&mut self.score.live, live_prev, o);
                        let d = self.planner.plan(o, &f, guardrails, &|_, r, c| o.clusters[c].rtt_ms[r]);
                        self.candidate_prev = Some(f);
                        d
                    }
                    Err(faults) => {
                        tracing::warn!(experiment = %self.spec.name, ?faults, "candidate forecaster failed this tick");
                        Vec::new()
                    }
                }
            }
            (PluginKind::CostModel, _, Some(cost_model), Some(f)) => {
                plan_nodes(o, f, live_decisions, &[], &[], &|cluster| observer.nodes(cluster), cost_model)
                    .decisions
            }
            // A candidate scorer ranks clusters and nodes for the live forecast.
            (PluginKind::Scorer, _, _, Some(f)) if self.scorer.is_some() => {
                let scorer = self.scorer.as_ref().expect("checked");
                let rank = crate::decide::placement::cluster_ranks(o, f, scorer);
                let mut d = self.planner.plan(o, f, guardrails, &|s, r, c| rank[s][r][c]);
                let placed = crate::decide::placement::place_pods(o, observer, &d, scorer);
                d.extend(placed);
                d
            }
            _ => Vec::new(),
        };
        self.decisions += decisions.len() as u64;
        decisions
    }

    /// Status for the API and metrics.
    pub fn status(&self) -> ExperimentStatus {
        let mape = |(sum, n): (f64, u64)| (n > 0).then(|| sum / n as f64);
        ExperimentStatus {
            name: self.spec.name.clone(),
            role: self.spec.role.clone(),
            mode: self.spec.mode,
            candidate: self.label.clone(),
            decisions: self.decisions,
            candidate_mape: mape(self.score.candidate),
            live_mape: mape(self.score.live),
            window_mase: self.window_mase,
        }
    }
}

/// Adds the absolute percentage errors of last tick's one-step p50 forecasts against the
/// demand this observation reports.
fn score(acc: &mut (f64, u64), previous: Option<&Forecasts>, o: &Observation) {
    let Some(f) = previous else { return };
    for (s, service) in o.services.iter().enumerate() {
        for (r, actual) in service.demand_rps.iter().enumerate() {
            if *actual > 0.0 && s < f.demand.len() {
                let forecast = f.at(s, r, o.step_s, 0.5);
                acc.0 += (forecast - actual).abs() / actual;
                acc.1 += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_compares_both_sides_over_the_same_span() {
        let mut w = Window::default();
        // Totals at t = 0, 600, 1200 with a window of 1000 s: nothing until it is spanned.
        assert_eq!(w.push((0, (0.0, 0), (0.0, 0)), 1000), None);
        assert_eq!(w.push((600, (20.0, 40), (40.0, 40)), 1000), None);
        // Over 0..1200 the candidate erred 30 over 60 forecasts, the live side 90 over 60.
        assert_eq!(w.push((1200, (30.0, 60), (90.0, 60)), 1000), Some((0.5, 1.5)));
        // Then the window slides: 600..1800 compares with the reading at 600.
        assert_eq!(w.push((1800, (50.0, 100), (120.0, 100)), 1000), Some((0.5, 80.0 / 60.0)));
    }

    #[test]
    fn too_few_forecasts_or_a_swap_decide_nothing() {
        let mut w = Window::default();
        w.push((0, (0.0, 0), (0.0, 0)), 100);
        assert_eq!(w.push((200, (1.0, 10), (1.0, 10)), 100), None, "under 30 scored forecasts");
        // The live side's reading fell (its plugin was swapped): the window starts over.
        assert_eq!(w.push((400, (40.0, 80), (0.0, 0)), 100), None);
        assert!(w.readings.is_empty());
    }
}
