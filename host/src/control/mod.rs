//! The loop driver: each tick observe → predict → decide → act, with a time budget per stage,
//! ticks that never overlap, and every decision journaled before it is applied.

mod experiments;
mod journal;
mod reload;
mod view;
mod world;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use foresight_sdk::PluginKind;
use serde::Serialize;

pub use experiments::ExperimentStatus;
pub use journal::{Journal, Record};
pub use reload::{Reload, Reloader, Verdicts, prepare};
pub use view::{Band, ClusterPoint, ServicePoint, TickView};
pub use world::World;

use crate::act::Outcome;
use crate::backends::sim::{Scenario, Simulator};
use crate::config::{BackendKind, Config, RoleConfig};
use crate::decide::{DemandSource, Plan, PolicyName, ReplicaPlanner, plan_nodes};
use crate::plugins::{
    ForecastPolicy, Guarded, Limits, Native, PlanPolicy, QuarantineRule, Runtime, ScorePolicy, WasmPlugin,
};
use crate::predict::{HorizonAccuracy, Predictor};

/// How long each stage of one tick took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimes {
    /// Observe, ms.
    pub observe_ms: f64,
    /// Predict, ms.
    pub predict_ms: f64,
    /// Decide, ms.
    pub decide_ms: f64,
    /// Act, ms.
    pub act_ms: f64,
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TickSummary {
    /// Tick number, from 0.
    pub tick: u64,
    /// Time observed, Unix seconds.
    pub time: i64,
    /// Stage durations.
    pub stages: StageTimes,
    /// Decisions planned.
    pub decisions: usize,
    /// Decisions the backend rejected.
    pub rejected: usize,
    /// Whether acting was skipped (stale observation, or no forecaster answered).
    pub skipped_acting: bool,
    /// CPU time the loop itself spent on this tick (predict and decide, plugins included;
    /// not the backend), seconds.
    pub control_cpu_s: f64,
}

/// The plugin roles the loop calls.
pub struct Roles {
    /// Demand forecasting.
    pub forecaster: Guarded<dyn ForecastPolicy>,
    /// Placement scoring.
    pub scorer: Guarded<dyn ScorePolicy>,
    /// Capacity planning.
    pub cost_model: Guarded<dyn PlanPolicy>,
    /// More forecasters the host's ensemble combines with `forecaster` (`[plugins] ensemble`).
    pub ensemble: Vec<Guarded<dyn ForecastPolicy>>,
}

/// The daemon, on the simulator or on Kubernetes.
pub struct Daemon {
    config: Config,
    world: World,
    roles: Roles,
    planner: ReplicaPlanner,
    /// A baseline deciding instead of Foresight's planner (`foresight simulate --policy`).
    baseline: Option<crate::baselines::Baseline>,
    /// Where Foresight's planner gets its demand: forecasts, or a reference for comparison.
    demand_source: DemandSource,
    predictor: Predictor,
    journal: Journal,
    tick: u64,
    /// The decision-log records of the last tick, for the server.
    last_records: Vec<Record>,
    last: Option<TickSummary>,
    reloader: Option<Reloader>,
    experiments: Vec<experiments::Running>,
    /// Last tick's live forecast, to score experiments against.
    live_prev: Option<crate::predict::Forecasts>,
    /// What the backend measured over the last tick's step.
    last_step: Option<crate::backends::sim::TickReport>,
    /// The p95 per service the last plan was predicted to give.
    last_impact: Option<Vec<f64>>,
    /// The last tick as the status page shows it.
    last_view: Option<TickView>,
    _runtime: Arc<Runtime>,
}

fn rule(limits: &Limits) -> QuarantineRule {
    QuarantineRule { max_consecutive_faults: limits.max_consecutive_faults, duration: limits.quarantine() }
}

fn start(
    runtime: &Runtime,
    config: &Config,
    role: &RoleConfig,
    kind: PluginKind,
) -> anyhow::Result<WasmPlugin> {
    let file = config.plugins.file(role);
    if !file.is_file() {
        anyhow::bail!(
            "the {kind} plugin {} does not exist; build the plugins with `foresight plugin build` or point [plugins.{kind}] file at a component",
            file.display()
        );
    }
    runtime
        .start_file(&file, Some(kind), &role.limits, &role.config_text())
        .with_context(|| format!("starting the {kind} plugin from [plugins.{kind}]"))
}

impl Roles {
    /// Starts every role's plugin, each backed by the built-in native baseline.
    pub fn start(runtime: &Runtime, config: &Config) -> anyhow::Result<Self> {
        let p = &config.plugins;
        let forecaster: Arc<dyn ForecastPolicy> =
            Arc::new(start(runtime, config, &p.forecaster, PluginKind::Forecaster)?);
        let scorer: Arc<dyn ScorePolicy> = Arc::new(start(runtime, config, &p.scorer, PluginKind::Scorer)?);
        let cost_model: Arc<dyn PlanPolicy> =
            Arc::new(start(runtime, config, &p.cost_model, PluginKind::CostModel)?);
        let native = |e: foresight_sdk::PluginError| anyhow::anyhow!("built-in baseline: {e}");
        let ensemble = p
            .ensemble
            .iter()
            .enumerate()
            .map(|(i, file)| {
                let path = p.dir().join(file);
                let wasm = path.with_extension("wasm");
                if path.extension().is_none() && wasm.exists() {
                    anyhow::bail!(
                        "[plugins] ensemble[{i}] names {}; components end in `.wasm`: did you mean {}?",
                        path.display(),
                        wasm.display()
                    );
                }
                let member = runtime
                    .start_file(&path, Some(PluginKind::Forecaster), &p.forecaster.limits, "")
                    .with_context(|| {
                        format!("starting ensemble member {} ([plugins] ensemble[{i}])", path.display())
                    })?;
                Ok(Guarded::new(
                    "forecaster",
                    Arc::new(member) as Arc<dyn ForecastPolicy>,
                    Arc::new(Native::<seasonal_naive::SeasonalNaive>::forecaster("").map_err(native)?),
                    rule(&p.forecaster.limits),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            ensemble,
            forecaster: Guarded::new(
                "forecaster",
                forecaster,
                Arc::new(Native::<seasonal_naive::SeasonalNaive>::forecaster("").map_err(native)?),
                rule(&p.forecaster.limits),
            ),
            scorer: Guarded::new(
                "scorer",
                scorer,
                Arc::new(Native::<latency_aware::LatencyAware>::scorer("").map_err(native)?),
                rule(&p.scorer.limits),
            ),
            cost_model: Guarded::new(
                "cost-model",
                cost_model,
                Arc::new(Native::<spot_mix::SpotMix>::cost_model("").map_err(native)?),
                rule(&p.cost_model.limits),
            ),
        })
    }
}

impl Daemon {
    /// A daemon for `config`: its backend, its plugins and its decision log. With
    /// `watched`, its file and the plugin folder are watched and changes swapped in.
    pub fn new(config: Config, watched: Option<crate::config::Source>) -> anyhow::Result<Self> {
        if config.backend.kind == BackendKind::Kubernetes {
            let k = &config.backend.kubernetes;
            let step =
                crate::config::kubernetes::duration("backend.kubernetes.prometheus.step", &k.prometheus.step)
                    .map_err(|(key, m)| anyhow::anyhow!("`{key}` {m}"))?;
            let backend = crate::backends::kubernetes::KubeBackend::connect(k, step.as_secs() as u32)
                .context("starting the Kubernetes backend ([backend.kubernetes])")?;
            return Self::with_world(config, watched, World::Kube(Box::new(backend)), "kubernetes");
        }
        let scenario_path = config.backend.scenario.relative();
        let scenario = Scenario::load(&scenario_path).with_context(|| "loading [backend] scenario")?;
        Self::with_scenario(config, watched, scenario)
    }

    /// A daemon running `scenario` rather than the configured one (benchmarks scale one up).
    pub fn with_scenario(
        config: Config,
        watched: Option<crate::config::Source>,
        scenario: Scenario,
    ) -> anyhow::Result<Self> {
        let name = scenario.name.clone();
        Self::with_world(config, watched, World::Sim(Box::new(Simulator::from_scenario(scenario))), &name)
    }

    /// A daemon on `world`; `label` names it in the log (the scenario, or `kubernetes`).
    pub fn with_world(
        config: Config,
        watched: Option<crate::config::Source>,
        world: World,
        label: &str,
    ) -> anyhow::Result<Self> {
        let runtime = Arc::new(
            Runtime::new(Some(config.plugins.cache_dir()))
                .map_err(|e| anyhow::anyhow!("plugin runtime: {e:#}"))?,
        );
        let roles = Roles::start(&runtime, &config)?;
        let log = config.decisions.log.relative();
        let journal = Journal::open(&log, config.decisions.fsync, config.decisions.journal)
            .with_context(|| format!("opening the decision log {}", log.display()))?;
        let refresh_s = config.tick.forecast_refresh_s().map_err(|e| anyhow::anyhow!("[tick] {e}"))?;
        let experiments = config
            .experiments
            .iter()
            .map(|e| experiments::Running::start(&runtime, e, &config.plugins.dir(), refresh_s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let reloader = match watched {
            Some(source) => Some(
                Reloader::start(runtime.clone(), source, config.clone())
                    .map_err(|e| anyhow::anyhow!("cannot watch the config file and plugin folder: {e}"))?,
            ),
            None => None,
        };
        tracing::info!(
            backend = world.name(),
            scenario = %label,
            forecaster = %roles.forecaster.live_label(),
            scorer = %roles.scorer.live_label(),
            cost_model = %roles.cost_model.live_label(),
            "daemon ready"
        );
        let mut predictor = Predictor::new(refresh_s);
        predictor.set_calendar(&config.events);
        Ok(Self {
            world,
            config,
            roles,
            planner: ReplicaPlanner::default(),
            baseline: None,
            demand_source: DemandSource::Forecast,
            predictor,
            journal,
            tick: 0,
            last_records: Vec::new(),
            last: None,
            reloader,
            experiments,
            live_prev: None,
            last_step: None,
            last_impact: None,
            last_view: None,
            _runtime: runtime,
        })
    }

    /// Decides with `policy` from now on: Foresight's planner, or a baseline in its place.
    pub fn set_policy(&mut self, policy: PolicyName) {
        let Some(sim) = self.world.sim() else {
            tracing::warn!("baseline policies run on the simulator only; keeping Foresight's planner");
            return;
        };
        let scenario = sim.scenario();
        self.demand_source = policy.demand_source().unwrap_or(DemandSource::Forecast);
        self.baseline = policy.baseline().map(|kind| {
            let replicas: Vec<Vec<u32>> = scenario.services.iter().map(|s| s.replicas.clone()).collect();
            let peak = (kind == crate::baselines::Kind::StaticPeak)
                .then(|| crate::baselines::static_peak::StaticPeak::from_scenario(scenario));
            crate::baselines::Baseline::new(kind, &replicas, peak)
        });
    }

    /// Whether this daemon's forecasts come from the forecaster role and are scored (not a
    /// baseline, nor a reference fed observed or true demand).
    pub fn tracks_accuracy(&self) -> bool {
        self.baseline.is_none() && self.demand_source == DemandSource::Forecast
    }

    /// The roles, for status and metrics.
    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether the scenario has run to its end.
    pub fn finished(&self) -> bool {
        self.world.sim().is_some_and(Simulator::finished)
    }

    /// Runs one tick.
    pub fn tick(&mut self) -> anyhow::Result<TickSummary> {
        let tick = self.tick;
        let span = tracing::info_span!("tick", tick);
        let _entered = span.enter();
        self.last_records.clear();
        self.apply_reloads(tick)?;
        let budgets = &self.config.tick;
        let mut stages = StageTimes::default();
        let over = |stage: &str, took: f64, budget: u64| {
            if took > budget as f64 {
                tracing::warn!(stage, took_ms = took, budget_ms = budget, "stage overran its budget");
            }
        };

        let started = Instant::now();
        let observation = match self.world.observe() {
            Ok(o) => o,
            // Nothing is decided on data the backend cannot vouch for; the loop goes on.
            Err(e) => {
                tracing::warn!(error = %e, "cannot observe; skipping this tick");
                stages.observe_ms = ms(started.elapsed());
                let summary = TickSummary {
                    tick,
                    time: self.last.as_ref().map_or(0, |l| l.time),
                    stages,
                    decisions: 0,
                    rejected: 0,
                    skipped_acting: true,
                    control_cpu_s: 0.0,
                };
                self.tick += 1;
                self.last = Some(summary.clone());
                return Ok(summary);
            }
        };
        stages.observe_ms = ms(started.elapsed());
        over("observe", stages.observe_ms, budgets.observe_ms);
        let observed_at = Instant::now();

        let cpu_started = cpu_time::ThreadTime::now();
        let started = Instant::now();
        let forecasts = match (&self.baseline, self.demand_source) {
            (Some(_), _) => None,
            (None, DemandSource::Forecast) => Some(self.predictor.predict(
                &observation,
                self.world.observer(),
                &self.roles.forecaster,
                &self.roles.ensemble,
            )),
            (None, DemandSource::Observed) => Some(Ok(crate::predict::reference::observed(&observation))),
            (None, DemandSource::Oracle) => self.world.sim().map(|sim| {
                let scenario = sim.scenario();
                Ok(crate::predict::reference::oracle(&observation, |s, r, t| scenario.demand(s, t)[r]))
            }),
        };
        stages.predict_ms = ms(started.elapsed());
        over("predict", stages.predict_ms, budgets.predict_ms);

        let started = Instant::now();
        let mut plan = match (&mut self.baseline, &forecasts) {
            (Some(baseline), _) => baseline.plan(&observation, self.world.observer()),
            (None, None) => Plan::default(),
            (None, Some(Ok(f))) => {
                let rank = crate::decide::placement::cluster_ranks(&observation, f, &self.roles.scorer);
                let mut decisions =
                    self.planner.plan(&observation, f, &self.config.guardrails, &|s, r, c| rank[s][r][c]);
                let placements = crate::decide::placement::place_pods(
                    &observation,
                    self.world.observer(),
                    &decisions,
                    &self.roles.scorer,
                );
                decisions.extend(placements);
                let nodes = plan_nodes(
                    &observation,
                    f,
                    &decisions,
                    self.planner.shares(),
                    self.planner.stretch(),
                    &|cluster| self.world.observer().nodes(cluster),
                    &self.roles.cost_model,
                );
                // Replicas on released nodes serve nothing until they start again elsewhere:
                // the coming step's requests go to those that still serve.
                self.planner
                    .reroute(&observation, f, &mut decisions, &nodes.evicted, &|s, r, c| rank[s][r][c]);
                decisions.extend(nodes.decisions);
                let plan = Plan { decisions };
                self.last_impact = Some(crate::decide::impact::predict_p95(
                    &observation,
                    &plan,
                    &nodes.evicted,
                    f,
                    self.planner.stretch(),
                ));
                plan
            }
            (None, Some(Err(faults))) => {
                tracing::error!(?faults, "no forecaster answered; not acting this tick");
                Plan::default()
            }
        };
        let forecasts = forecasts.and_then(Result::ok);
        self.last_view =
            Some(TickView::new(tick, &observation, forecasts.as_ref(), self.last_impact.as_deref()));
        // Experiments see the same observation; shadows are journaled, canaries take over
        // their share of services.
        let mut sources = vec!["live".to_owned(); plan.decisions.len()];
        let mut shadow_records = Vec::new();
        for exp in &mut self.experiments {
            let candidate = exp.decide(
                &observation,
                self.world.observer(),
                forecasts.as_ref(),
                self.live_prev.as_ref(),
                &plan.decisions,
                &self.config.guardrails,
            );
            // Everything decided for one service goes to whichever side decides that service.
            let service_of = |d: &crate::decide::Decision| match &d.action {
                crate::act::Action::SetReplicas { service, .. }
                | crate::act::Action::SetRouting { service, .. }
                | crate::act::Action::PlacePod { service, .. } => Some(service.clone()),
                _ => None,
            };
            let canary: Vec<_> =
                candidate.iter().filter(|d| service_of(d).is_some_and(|s| exp.takes(&s))).cloned().collect();
            // A shadow takes no service: its decisions are journaled. A canary decides its
            // share of services even on a tick it leaves them alone, so the live ones go.
            let is_canary =
                plan.decisions.iter().chain(&candidate).any(|d| service_of(d).is_some_and(|s| exp.takes(&s)));
            if !is_canary {
                shadow_records.extend(candidate.into_iter().enumerate().map(|(index, d)| Record::Decision {
                    tick,
                    time: observation.time,
                    index,
                    source: exp.name().to_owned(),
                    decision: Box::new(d),
                }));
            } else {
                let keep: Vec<bool> =
                    plan.decisions.iter().map(|d| !service_of(d).is_some_and(|s| exp.takes(&s))).collect();
                let mut i = 0;
                plan.decisions.retain(|_| {
                    i += 1;
                    keep[i - 1]
                });
                sources = sources.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| s).collect();
                sources.extend(std::iter::repeat_n(exp.name().to_owned(), canary.len()));
                plan.decisions.extend(canary);
            }
        }
        self.live_prev = forecasts.clone();
        if !shadow_records.is_empty() {
            // Shadow decisions are numbered after the applied ones, so outcomes (which only
            // applied decisions get) match by (tick, index) alone.
            let first = plan.decisions.len();
            for (k, r) in shadow_records.iter_mut().enumerate() {
                if let Record::Decision { index, .. } = r {
                    *index = first + k;
                }
            }
            self.last_records.extend(shadow_records.iter().cloned());
            self.journal.append(shadow_records, false).context("writing the decision log")?;
        }
        stages.decide_ms = ms(started.elapsed());
        over("decide", stages.decide_ms, budgets.decide_ms);
        let control_cpu_s = cpu_started.elapsed().as_secs_f64();

        // Never act on a stale observation: if the stages ate the freshness budget, skip.
        let age = observed_at.elapsed();
        let stale = age > Duration::from_millis(budgets.max_observation_age_ms);
        let skipped_acting = stale || (self.baseline.is_none() && forecasts.is_none());
        if stale {
            tracing::warn!(
                age_ms = ms(age),
                "observation went stale before acting; skipping this tick's actions"
            );
        }

        let started = Instant::now();
        let mut rejected = 0;
        if !skipped_acting && !plan.decisions.is_empty() {
            let records: Vec<Record> = plan
                .decisions
                .iter()
                .enumerate()
                .map(|(index, d)| Record::Decision {
                    tick,
                    time: observation.time,
                    index,
                    source: sources.get(index).cloned().unwrap_or_else(|| "live".into()),
                    decision: Box::new(d.clone()),
                })
                .collect();
            self.last_records.extend(records.iter().cloned());
            self.journal.append(records, false).context("writing the decision log")?;
            let outcomes = self.world.apply(&plan.decisions);
            for (d, o) in plan.decisions.iter().zip(&outcomes) {
                if let Outcome::Rejected { reason } = o {
                    rejected += 1;
                    tracing::warn!(action = ?d.action, %reason, "backend rejected an action");
                }
            }
            let records: Vec<Record> = outcomes
                .into_iter()
                .enumerate()
                .map(|(index, outcome)| Record::Outcome { tick, index, outcome })
                .collect();
            self.last_records.extend(records.iter().cloned());
            self.journal.append(records, true).context("writing the decision log")?;
        }
        self.last_step = self.world.sim_mut().map(Simulator::step);
        stages.act_ms = ms(started.elapsed());
        over("act", stages.act_ms, budgets.act_ms);
        // Between ticks, like any other swap.
        self.promote_challengers(tick, observation.time)?;
        self.tick += 1;
        tracing::debug!(decisions = plan.decisions.len(), rejected, "tick done");
        let summary = TickSummary {
            tick,
            time: observation.time,
            stages,
            decisions: plan.decisions.len(),
            rejected,
            skipped_acting,
            control_cpu_s,
        };
        self.last = Some(summary.clone());
        Ok(summary)
    }

    /// The simulator, read-only (evaluations read what it measured); `None` on Kubernetes.
    pub fn simulator(&self) -> Option<&Simulator> {
        self.world.sim()
    }

    /// What the backend measured over the last tick's step.
    pub fn last_step(&self) -> Option<&crate::backends::sim::TickReport> {
        self.last_step.as_ref()
    }

    /// The forecasts the last tick acted on (none for a baseline, or when no forecaster answered).
    pub fn last_forecasts(&self) -> Option<&crate::predict::Forecasts> {
        self.live_prev.as_ref()
    }

    /// The last tick as the status page shows it.
    pub fn last_view(&self) -> Option<&TickView> {
        self.last_view.as_ref()
    }

    /// The p95 latency per service the last plan was predicted to give (Foresight's policy only).
    pub fn last_impact(&self) -> Option<&[f64]> {
        self.last_impact.as_deref()
    }

    /// Gives the backend `span_s` of demand history from before the start.
    pub fn prefill_history(&mut self, span_s: u32) {
        if let Some(sim) = self.world.sim_mut() {
            sim.prefill_history(span_s);
        }
    }

    /// The simulator's ledger so far; `None` on Kubernetes (cost is the cloud bill there).
    pub fn ledger(&self) -> Option<&crate::backends::sim::Ledger> {
        self.world.sim().map(Simulator::ledger)
    }

    /// Champion/challenger: a shadow forecaster that has beaten the live one over its window
    /// takes the live role; its experiment ends, and the promotion is journaled.
    fn promote_challengers(&mut self, tick: u64, now: i64) -> anyhow::Result<()> {
        let live = self.predictor.served_totals();
        let mut promoted = None;
        for (i, exp) in self.experiments.iter_mut().enumerate() {
            if let Some(plugin) = exp.challenge(now, live) {
                let (candidate, champion) = exp.status().window_mase.unwrap_or_default();
                promoted = Some((i, plugin, candidate, champion));
                break;
            }
        }
        let Some((i, plugin, candidate, champion)) = promoted else { return Ok(()) };
        let exp = self.experiments.remove(i);
        let what = format!("experiment {}", exp.name());
        let old = self.roles.forecaster.live_label();
        let label = self.swap(PluginKind::Forecaster, plugin);
        let detail = format!(
            "promoted {label} over {old}: MASE {candidate:.3} against {champion:.3} over the promotion window"
        );
        tracing::info!(experiment = exp.name(), %detail, "challenger promoted");
        let record = Record::Reload { tick, what, accepted: true, detail };
        self.last_records.push(record.clone());
        self.journal.append(vec![record], true).context("writing the decision log")
    }

    /// Swaps in whatever the reloader has made ready, between ticks, and journals it.
    fn apply_reloads(&mut self, tick: u64) -> anyhow::Result<()> {
        let Some(reloader) = &self.reloader else { return Ok(()) };
        let ready: Vec<Reload> = reloader.ready.try_iter().collect();
        let mut records = Vec::new();
        for reload in ready {
            records.push(match reload {
                Reload::Plugin { kind, plugin, cause } => {
                    let what = plugin.path().display().to_string();
                    let label = self.swap(kind, plugin);
                    Record::Reload {
                        tick,
                        what,
                        accepted: true,
                        detail: format!("{kind} is now {label} ({cause})"),
                    }
                }
                Reload::Config(config) => {
                    self.config = *config;
                    if let Ok(refresh_s) = self.config.tick.forecast_refresh_s() {
                        self.predictor.set_refresh(refresh_s);
                    }
                    self.predictor.set_calendar(&self.config.events);
                    Record::Reload {
                        tick,
                        what: "configuration".into(),
                        accepted: true,
                        detail: "applied".into(),
                    }
                }
                Reload::Refused { what, reason } => {
                    Record::Reload { tick, what, accepted: false, detail: reason }
                }
            });
        }
        self.last_records.extend(records.iter().cloned());
        self.journal.append(records, true).context("writing the decision log")
    }

    /// Puts a started plugin in a role, between ticks; returns its label.
    pub fn swap(&mut self, kind: PluginKind, plugin: Arc<WasmPlugin>) -> String {
        let label = crate::plugins::Policy::label(plugin.as_ref());
        match kind {
            PluginKind::Forecaster => {
                self.roles.forecaster.swap(plugin);
                // Forecasts made by the old plugin are not the new one's to answer for.
                self.predictor.invalidate();
            }
            PluginKind::Scorer => self.roles.scorer.swap(plugin),
            PluginKind::CostModel => self.roles.cost_model.swap(plugin),
        }
        tracing::info!(role = %kind, plugin = %label, "plugin swapped in");
        label
    }

    /// The plugin runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self._runtime
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tick interval now in force (it may change with the configuration).
    pub fn interval(&self) -> Duration {
        self.config.tick.interval().unwrap_or(Duration::from_millis(100))
    }

    /// The decision-log records the last tick wrote.
    pub fn last_records(&self) -> &[Record] {
        &self.last_records
    }

    /// The status document served at `/api/v1/status`.
    pub fn status(&self) -> serde_json::Value {
        let role = |label: String, stats: crate::plugins::StatsSnapshot| serde_json::json!({ "live": label, "stats": stats });
        serde_json::json!({
            "state": "running",
            "backend": self.world.name(),
            "scenario": self.world.sim().map(|s| s.scenario().name.clone()),
            "tick": self.tick,
            "tick_interval": self.config.tick.interval,
            "time": self.world.sim().map_or(self.last.as_ref().map_or(0, |l| l.time), Simulator::now),
            "last_tick": self.last,
            "plugins": {
                "forecaster": role(self.roles.forecaster.live_label(), self.roles.forecaster.stats()),
                "scorer": role(self.roles.scorer.live_label(), self.roles.scorer.stats()),
                "cost-model": role(self.roles.cost_model.live_label(), self.roles.cost_model.stats()),
            },
            "services": self.service_names(),
            "experiments": self.experiments.iter().map(|e| e.status()).collect::<Vec<_>>(),
            "forecast_accuracy": self.forecast_accuracy(),
            "ledger": self.ledger(),
            "clusters": self.clusters_status(),
        })
    }

    /// Advances the simulator without deciding (to build up demand history).
    pub fn warm_up(&mut self, steps: u64) {
        let Some(sim) = self.world.sim_mut() else { return };
        for _ in 0..steps {
            sim.step();
        }
    }

    /// The live forecasts' accuracy per lead time so far.
    pub fn forecast_accuracy(&self) -> Vec<HorizonAccuracy> {
        self.predictor.accuracy().by_horizon()
    }

    /// Per tracked lead, the weight the plan gives the forecast against what is observed (mean
    /// over series, per quantile level).
    pub fn forecast_weights(&self) -> Vec<(u32, Option<Vec<f64>>)> {
        self.predictor.accuracy().anchors().forecast_weights()
    }

    /// Per service, the factor Foresight's planner puts on planned demand so the plan covers its
    /// window's peak nine times in ten; `None` while a baseline decides.
    pub fn plan_coverage(&self) -> Option<std::collections::BTreeMap<String, f64>> {
        self.baseline.is_none().then(|| self.planner.coverage())
    }

    /// The live forecasts' accuracy per plugin, series and lead time so far.
    pub fn forecast_accuracy_by_series(&self) -> Vec<HorizonAccuracy> {
        self.predictor.accuracy().by_series()
    }

    /// Each experiment's status.
    pub fn experiments(&self) -> Vec<ExperimentStatus> {
        self.experiments.iter().map(|e| e.status()).collect()
    }

    /// Role statistics, for metrics.
    pub fn role_stats(&self) -> [(&'static str, crate::plugins::StatsSnapshot); 3] {
        [
            ("forecaster", self.roles.forecaster.stats()),
            ("scorer", self.roles.scorer.stats()),
            ("cost-model", self.roles.cost_model.stats()),
        ]
    }

    /// Names of the services, in ledger order.
    pub fn service_names(&self) -> Vec<String> {
        match &self.world {
            World::Sim(sim) => sim.scenario().services.iter().map(|s| s.name.clone()).collect(),
            World::Kube(k) => k.snapshot().demand.keys().cloned().collect(),
        }
    }

    /// Each cluster's health and whether this instance may act, for metrics (Kubernetes only).
    pub fn cluster_health(&self) -> Option<(Vec<crate::server::ClusterHealth>, bool)> {
        let World::Kube(k) = &self.world else { return None };
        let stale: Vec<Option<String>> = k.snapshot().clusters.iter().map(|c| c.stale.clone()).collect();
        let health = k
            .health()
            .into_iter()
            .enumerate()
            .map(|(i, (cluster, h))| crate::server::ClusterHealth {
                cluster,
                stale: stale.get(i).is_some_and(Option::is_some),
                watch_errors: h.errors,
            })
            .collect();
        Some((health, k.leadership().is_ok()))
    }

    /// Each cluster's watch health and this instance's leadership (Kubernetes only).
    fn clusters_status(&self) -> serde_json::Value {
        let World::Kube(k) = &self.world else { return serde_json::Value::Null };
        let now = std::time::SystemTime::now();
        serde_json::json!({
            "dry_run": self.config.backend.kubernetes.dry_run,
            "leader": match k.leadership() { Ok(()) => serde_json::json!({"this": true}), Err(holder) => serde_json::json!({"this": false, "holder": holder}) },
            "health": k.health().into_iter().map(|(name, h)| serde_json::json!({
                "name": name,
                "synced": h.synced.iter().all(|s| *s),
                "stale": k.snapshot().cluster(&name).and_then(|c| c.stale.clone()),
                "failing_for_s": h.failing_since.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs()),
                "last_error": h.last_error,
                "watch_events": h.events,
                "watch_errors": h.errors,
            })).collect::<Vec<_>>(),
        })
    }

    /// Labels of the live plugins.
    pub fn plugin_labels(&self) -> [String; 3] {
        [
            self.roles.forecaster.live_label(),
            self.roles.scorer.live_label(),
            self.roles.cost_model.live_label(),
        ]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
