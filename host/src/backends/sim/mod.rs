//! The embedded default backend: a deterministic multi-cluster edge/cloud simulator driven by
//! real traces. Plain Rust, no plugins involved: it is the ground truth policies are judged on.
//!
//! ```no_run
//! use foresight::backends::sim::{Scenario, Simulator};
//! use foresight::observe::Observer;
//!
//! let scenario = Scenario::load("config/scenarios/diurnal.toml".as_ref())?;
//! let mut sim = Simulator::from_scenario(scenario);
//! while !sim.finished() {
//!     let observation = sim.observe()?;
//!     // ... decide, then `sim.apply(&actions)` ...
//!     let tick = sim.step();
//!     assert_eq!(tick.p95_ms.len(), observation.services.len());
//! }
//! println!("cost {:.2}", sim.ledger().cost);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cluster;
mod ledger;
mod rng;
mod scenario;
mod trace;
mod world;

pub use crate::latency::{MAX_UTILISATION, Queue, Route, erlang_c, latency_quantile_ms, mean_latency_ms};
pub use ledger::{Ledger, TickReport};
pub use rng::Rng;
pub use scenario::{
    BatchSpec, ClusterSpec, Disruption, EventSpec, PoolSpec, Scenario, ScenarioError, ServiceSpec,
};
pub use trace::{Trace, TraceError, median_interval};
pub use world::Simulator;

use crate::act::{Action, Actuator, Outcome};
use crate::observe::{
    ClusterView, KnownEvent, NodeView, Observation, ObserveError, Observer, Placement, PoolView, ServiceView,
};

/// Demand history kept for forecasters: two weeks.
pub const HISTORY_S: u32 = 14 * 86_400;

impl Simulator {
    /// A simulator at the start of `scenario`, keeping [`HISTORY_S`] of demand history.
    pub fn from_scenario(scenario: Scenario) -> Self {
        Self::new(scenario, HISTORY_S)
    }
}

impl Simulator {
    /// What an observation would show now, without going through the [`Observer`] trait.
    pub fn snapshot(&self) -> Observation {
        let sc = &self.scenario;
        let clusters = sc
            .clusters
            .iter()
            .zip(&self.clusters)
            .map(|(spec, state)| {
                let (cpu_capacity, free) = (state.totals.cpu, state.totals.cpu_free);
                let pools = spec
                    .pools
                    .iter()
                    .enumerate()
                    .map(|(p, pool)| {
                        let o = &sc.offerings[pool.offering];
                        let (ready, provisioning) = state.pool_count(p);
                        PoolView {
                            offering: foresight_sdk::Offering {
                                max_nodes: pool.max_nodes,
                                current_nodes: ready + provisioning,
                                ..o.clone()
                            },
                            ready,
                            provisioning,
                        }
                    })
                    .collect();
                let c = sc.cluster_index(&spec.name).unwrap_or(0);
                let pending_pods = self
                    .services
                    .iter()
                    .map(|s| s.pods[c].iter().filter(|p| p.node.is_none()).count() as u32)
                    .sum();
                ClusterView {
                    name: spec.name.clone(),
                    kind: spec.kind,
                    up: state.up,
                    rtt_ms: spec.rtt_ms.clone(),
                    peer_rtt_ms: spec.peer_rtt_ms.clone(),
                    pools,
                    cpu_capacity,
                    cpu_allocated: cpu_capacity - free,
                    pending_pods,
                }
            })
            .collect();
        let services = sc
            .services
            .iter()
            .enumerate()
            .map(|(s, spec)| {
                let state = &self.services[s];
                let m = &self.measured;
                let placements = state
                    .pods
                    .iter()
                    .enumerate()
                    .map(|(c, pods)| {
                        let mut p = Placement {
                            ready: 0,
                            starting: 0,
                            pending: 0,
                            arrival_rps: m.arrivals.get(s).map_or(0.0, |a| a[c]),
                            utilisation: m.utilisation.get(s).map_or(0.0, |u| u[c]),
                        };
                        for pod in pods {
                            match pod.node {
                                None => p.pending += 1,
                                Some(_) if pod.ready_at <= self.now => p.ready += 1,
                                Some(_) => p.starting += 1,
                            }
                        }
                        p
                    })
                    .collect();
                ServiceView {
                    name: spec.name.clone(),
                    slo_p95_ms: spec.slo_p95_ms,
                    service_ms: spec.service_ms,
                    cpu_per_replica: spec.cpu_per_replica,
                    memory_gib_per_replica: spec.memory_gib_per_replica,
                    startup_s: spec.startup_s,
                    demand_rps: m.demand.get(s).cloned().unwrap_or_else(|| vec![0.0; sc.regions.len()]),
                    placements,
                    routing: state.routing.clone(),
                    p95_ms: m.p95_ms.get(s).copied().unwrap_or(0.0),
                    dropped_rps: m.dropped.get(s).copied().unwrap_or(0.0),
                }
            })
            .collect();
        let events = sc
            .events
            .iter()
            .filter(|e| e.announced && e.end > self.now)
            .map(|e| KnownEvent {
                name: e.name.clone(),
                service: e.service.map(|s| sc.services[s].name.clone()),
                start: e.start,
                end: e.end,
                multiplier: e.multiplier,
            })
            .collect();
        Observation {
            time: self.now,
            step_s: sc.step_s,
            regions: sc.regions.clone(),
            clusters,
            services,
            events,
        }
    }

    /// Fills the demand history with the `span_s` before the scenario's start, read off its
    /// traces (events left out), as a backend with a metrics store has it on its first tick.
    pub fn prefill_history(&mut self, span_s: u32) {
        let step = self.scenario.step_s;
        let steps = (span_s / step) as i64;
        for s in 0..self.scenario.services.len() {
            for r in 0..self.scenario.regions.len() {
                let trace = &self.scenario.services[s].demand[r];
                let past: Vec<f64> =
                    (1..=steps).rev().map(|k| trace.at(self.now - k * i64::from(step)).max(0.0)).collect();
                let h = &mut self.history[s][r];
                let room = self.history_cap.saturating_sub(h.len());
                // Newest first onto the front, so the oldest ends up first.
                for v in past.into_iter().rev().take(room) {
                    h.push_front(v);
                }
            }
        }
    }
}

impl Observer for Simulator {
    fn observe(&mut self) -> Result<Observation, ObserveError> {
        Ok(self.snapshot())
    }

    fn demand_history(&self, service: &str, region: &str, window_s: u32) -> Option<foresight_sdk::Series> {
        let s = self.scenario.services.iter().position(|x| x.name == service)?;
        let r = self.scenario.regions.iter().position(|x| x == region)?;
        let h = &self.history[s][r];
        let step = self.scenario.step_s;
        let take = ((window_s / step) as usize).min(h.len());
        let values: Vec<f64> = h.iter().skip(h.len() - take).copied().collect();
        // The newest value is the demand of the step that just ended.
        let start = self.now - i64::from(step) * take as i64;
        Some(foresight_sdk::Series { start, step, values, ..Default::default() })
    }

    fn nodes(&self, cluster: &str) -> Option<Vec<NodeView>> {
        let c = self.scenario.cluster_index(cluster)?;
        let spec = &self.scenario.clusters[c];
        let mut serving =
            vec![std::collections::BTreeMap::<String, u32>::new(); self.clusters[c].nodes.len()];
        for (spec, service) in self.scenario.services.iter().zip(&self.services) {
            for pod in service.pods[c].iter().filter(|p| p.ready_at <= self.now) {
                if let Some(on) = pod.node.and_then(|n| serving.get_mut(n)) {
                    *on.entry(spec.name.clone()).or_default() += 1;
                }
            }
        }
        Some(
            self.clusters[c]
                .nodes
                .iter()
                .zip(serving)
                .map(|(n, serving)| {
                    let o = &self.scenario.offerings[spec.pools[n.pool].offering];
                    NodeView {
                        pool: n.pool as u32,
                        cpu: o.vcpu,
                        cpu_free: n.cpu_free,
                        memory_gib: o.memory_gib,
                        memory_free_gib: n.memory_free,
                        pods: n.pods,
                        serving,
                    }
                })
                .collect(),
        )
    }
}

impl Actuator for Simulator {
    fn apply(&mut self, actions: &[Action]) -> Vec<Outcome> {
        Simulator::apply(self, actions)
    }
}

#[cfg(test)]
pub(crate) mod tests;
