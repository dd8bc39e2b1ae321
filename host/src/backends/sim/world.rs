//! The simulated world: clusters, services and their pods, moved forward one step at a time.

use std::collections::VecDeque;

use super::cluster::{Cluster, Totals};
use super::ledger::{Ledger, TickReport};
use super::rng::Rng;
use super::scenario::{Disruption, Scenario};
use crate::act::{Action, Outcome};
use crate::latency::{Route, Served, serve};
use crate::observe::ClusterKind;

/// One service replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Pod {
    /// Node index, or `None` while pending.
    pub node: Option<usize>,
    /// When it starts serving, Unix seconds (meaningful once placed).
    pub ready_at: i64,
}

/// A service's live state.
#[derive(Debug, Clone)]
pub(super) struct Service {
    /// Replicas wanted per cluster.
    pub desired: Vec<u32>,
    /// Pods per cluster.
    pub pods: Vec<Vec<Pod>>,
    /// Routing weights, row per region, column per cluster, each row summing to 1.
    pub routing: Vec<Vec<f64>>,
}

/// What the last step measured per service and cluster, for observations.
#[derive(Debug, Clone, Default)]
pub(super) struct Measured {
    /// Demand per service and region, req/s.
    pub demand: Vec<Vec<f64>>,
    /// Arrivals per service and cluster, req/s.
    pub arrivals: Vec<Vec<f64>>,
    /// Utilisation per service and cluster.
    pub utilisation: Vec<Vec<f64>>,
    /// p95 per service, ms.
    pub p95_ms: Vec<f64>,
    /// Dropped per service, req/s.
    pub dropped: Vec<f64>,
}

/// The simulator: deterministic for a scenario and seed.
pub struct Simulator {
    pub(super) scenario: Scenario,
    pub(super) now: i64,
    pub(super) rng: Rng,
    pub(super) clusters: Vec<Cluster>,
    pub(super) services: Vec<Service>,
    pub(super) ledger: Ledger,
    pub(super) measured: Measured,
    /// Demand history per service and region, one value per step, newest last.
    pub(super) history: Vec<Vec<VecDeque<f64>>>,
    pub(super) history_cap: usize,
}

impl Simulator {
    /// A world at the scenario's start. `history_s` bounds the demand history kept.
    pub fn new(scenario: Scenario, history_s: u32) -> Self {
        let clusters: Vec<Cluster> =
            scenario.clusters.iter().map(|c| Cluster::new(c, &scenario.offerings)).collect();
        let services = scenario
            .services
            .iter()
            .map(|s| Service {
                desired: s.replicas.clone(),
                pods: s
                    .replicas
                    .iter()
                    .map(|&n| vec![Pod { node: None, ready_at: scenario.start }; n as usize])
                    .collect(),
                routing: initial_routing(&scenario, &s.replicas),
            })
            .collect();
        let history_cap = (history_s / scenario.step_s).max(1) as usize;
        // Reserved up front: growing hundreds of deques by doubling costs more than the run.
        let reserve = history_cap.min(scenario.ticks() as usize + 1);
        let history = scenario
            .services
            .iter()
            .map(|_| (0..scenario.regions.len()).map(|_| VecDeque::with_capacity(reserve)).collect())
            .collect();
        let mut world = Self {
            now: scenario.start,
            rng: Rng::new(scenario.seed),
            ledger: Ledger::new(scenario.services.len()),
            measured: Measured::default(),
            history,
            history_cap,
            clusters,
            services,
            scenario,
        };
        // The scenario's initial replicas are serving from the start, not booting.
        world.schedule(true);
        // The first observation should already show demand and load, as a real cluster would.
        world.serve(world.now, false);
        world
    }

    /// Current simulated time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Totals so far.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Whether every tick of the scenario has run.
    pub fn finished(&self) -> bool {
        self.ledger.ticks >= self.scenario.ticks()
    }

    /// Simulates one step from `now`: capacity changes, demand, serving, accounting.
    pub fn step(&mut self) -> TickReport {
        let t = self.now;
        let step_s = self.scenario.step_s;
        let mut interruptions = 0;
        for c in 0..self.clusters.len() {
            let spec = &self.scenario.clusters[c];
            self.clusters[c].arrive(t, spec, &self.scenario.offerings);
            let (outage, storm) = self.disruption(c, t);
            self.clusters[c].up = !outage;
            let lost =
                self.clusters[c].interrupt(&mut self.rng, t, step_s, storm, spec, &self.scenario.offerings);
            interruptions += lost.len() as u32;
            self.forget_nodes(c, &lost);
        }
        self.schedule(false);
        let mut tick = self.serve(t, true);
        tick.interruptions = interruptions;
        tick.cost = self.cost_of_step();
        tick.utilisation = self.utilisation();
        tick.pending_pods =
            self.services.iter().flat_map(|s| s.pods.iter().flatten()).filter(|p| p.node.is_none()).count()
                as u32;
        self.ledger.record(&tick, step_s);
        self.now += i64::from(step_s);
        tick
    }

    /// (outage, spot-rate multiplier) for a cluster at `t`.
    fn disruption(&self, cluster: usize, t: i64) -> (bool, f64) {
        let mut outage = false;
        let mut multiplier = 1.0;
        for d in &self.scenario.disruptions {
            match d {
                Disruption::Outage { start, end, cluster: c }
                    if *c == cluster && (*start..*end).contains(&t) =>
                {
                    outage = true
                }
                Disruption::SpotStorm { start, end, multiplier: m, clusters }
                    if clusters.contains(&cluster) && (*start..*end).contains(&t) =>
                {
                    multiplier *= m
                }
                _ => {}
            }
        }
        (outage, multiplier)
    }

    /// Pods on removed nodes become pending; the rest follow their node's new index.
    pub(super) fn forget_nodes(&mut self, cluster: usize, removed_ascending: &[usize]) {
        if removed_ascending.is_empty() {
            return;
        }
        for service in &mut self.services {
            for pod in &mut service.pods[cluster] {
                if let Some(node) = pod.node {
                    match removed_ascending.binary_search(&node) {
                        Ok(_) => pod.node = None,
                        Err(shift) => pod.node = Some(node - shift),
                    }
                }
            }
        }
    }

    /// Matches pods to desired counts and places pending pods first-fit. With `instant`, placed
    /// pods serve at once (the scenario's starting state).
    fn schedule(&mut self, instant: bool) {
        let now = self.now;
        for (s, spec) in self.scenario.services.iter().enumerate() {
            let service = &mut self.services[s];
            for c in 0..self.clusters.len() {
                let cluster = &mut self.clusters[c];
                Self::resize(spec, cluster, &mut service.pods[c], service.desired[c] as usize, now);
                let pods = &mut service.pods[c];
                if !cluster.up {
                    continue;
                }
                let mut hint = 0;
                for pod in pods.iter_mut().filter(|p| p.node.is_none()) {
                    let Some(node) = cluster.fit(spec.cpu_per_replica, spec.memory_gib_per_replica, hint)
                    else {
                        break;
                    };
                    cluster.bind(node, spec.cpu_per_replica, spec.memory_gib_per_replica);
                    *pod = Pod {
                        node: Some(node),
                        ready_at: if instant { now } else { now + i64::from(spec.startup_s) },
                    };
                    hint = node;
                }
            }
        }
    }

    /// Brings a service's pods in a cluster to the desired count: new ones pend until placed.
    fn reconcile(&mut self, s: usize, c: usize) {
        let want = self.services[s].desired[c] as usize;
        Self::resize(
            &self.scenario.services[s],
            &mut self.clusters[c],
            &mut self.services[s].pods[c],
            want,
            self.now,
        );
    }

    fn resize(
        spec: &super::scenario::ServiceSpec,
        cluster: &mut Cluster,
        pods: &mut Vec<Pod>,
        want: usize,
        now: i64,
    ) {
        // Scale in: pending pods go first, then the newest.
        while pods.len() > want {
            let victim = pods.iter().position(|p| p.node.is_none()).unwrap_or(pods.len() - 1);
            if let Some(node) = pods[victim].node {
                cluster.unbind(node, spec.cpu_per_replica, spec.memory_gib_per_replica);
            }
            pods.remove(victim);
        }
        pods.resize(want, Pod { node: None, ready_at: now });
    }

    /// Serves one step of demand and measures latency and drops.
    fn serve(&mut self, t: i64, record_history: bool) -> TickReport {
        let sc = &self.scenario;
        let regions = sc.regions.len();
        let n_clusters = self.clusters.len();
        let mut measured = Measured::default();
        let (mut offered, mut dropped_total) = (0.0, 0.0);
        let mut p95s = Vec::with_capacity(sc.services.len());
        let mut violated = Vec::with_capacity(sc.services.len());
        let mut routes: Vec<Route> = Vec::with_capacity(regions * n_clusters);
        let mut servers: Vec<u32> = Vec::with_capacity(n_clusters);

        for (s, spec) in sc.services.iter().enumerate() {
            let demand = sc.demand(s, t);
            for (r, d) in demand.iter().enumerate().filter(|_| record_history) {
                let h = &mut self.history[s][r];
                if h.len() == self.history_cap {
                    h.pop_front();
                }
                h.push_back(*d);
            }
            let service = &self.services[s];
            let servers_per_replica = spec.cpu_per_replica.floor().max(1.0) as u32;
            servers.clear();
            servers.extend((0..n_clusters).map(|c| {
                let ready = if self.clusters[c].up {
                    service.pods[c].iter().filter(|p| p.node.is_some() && p.ready_at <= t).count() as u32
                } else {
                    0
                };
                ready * servers_per_replica
            }));
            let Served { arrivals, utilisation, dropped, p95_ms: p95 } = serve(
                &demand,
                &service.routing,
                &servers,
                spec.service_ms / 1000.0,
                spec.service_time_cv,
                |c, r| sc.clusters[c].rtt_ms[r],
                &mut routes,
            );
            let total: f64 = demand.iter().sum();
            // Dropped requests count against the SLO too: more than 5 % dropped means the 95th
            // percentile request was not served.
            let over = p95 > spec.slo_p95_ms || (total > 0.0 && dropped / total > 0.05);
            offered += total;
            dropped_total += dropped;
            p95s.push(p95);
            violated.push(over);
            measured.demand.push(demand);
            measured.arrivals.push(arrivals);
            measured.utilisation.push(utilisation);
            measured.dropped.push(dropped);
        }
        measured.p95_ms = p95s.clone();
        self.measured = measured;
        TickReport {
            time: t,
            cost: 0.0,
            p95_ms: p95s,
            slo_violated: violated,
            offered_rps: offered,
            dropped_rps: dropped_total,
            utilisation: Vec::new(),
            pending_pods: 0,
            interruptions: 0,
        }
    }

    /// Spend over one step: every node that exists or is being provisioned is billed.
    fn cost_of_step(&self) -> f64 {
        let hours = f64::from(self.scenario.step_s) / 3600.0;
        self.clusters
            .iter()
            .zip(&self.scenario.clusters)
            .map(|(cluster, spec)| {
                let coming: f64 = cluster
                    .provisioning
                    .iter()
                    .map(|p| self.scenario.offerings[spec.pools[p.pool].offering].hourly_price)
                    .sum();
                cluster.totals.hourly_price + coming
            })
            .sum::<f64>()
            * hours
    }

    /// Allocated / capacity cores per cluster, batch work included.
    fn utilisation(&self) -> Vec<f64> {
        self.clusters
            .iter()
            .enumerate()
            .map(|(c, cluster)| {
                let Totals { cpu, cpu_free: free, .. } = cluster.totals;
                if cpu <= 1e-9 || !cluster.up {
                    return 0.0;
                }
                let batch: f64 =
                    self.scenario.batch_jobs.iter().filter(|b| b.cluster == c).map(|b| b.cores).sum();
                ((cpu - free) + batch.min(free.max(0.0))) / cpu
            })
            .collect()
    }

    /// Applies actions in order; an invalid one is rejected with its reason and changes nothing.
    pub fn apply(&mut self, actions: &[Action]) -> Vec<Outcome> {
        actions
            .iter()
            .map(|a| match self.apply_one(a) {
                Ok(()) => Outcome::Applied,
                Err(reason) => Outcome::Rejected { reason },
            })
            .collect()
    }

    fn service_index(&self, name: &str) -> Result<usize, String> {
        self.scenario
            .services
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| format!("unknown service `{name}`"))
    }

    fn cluster_index(&self, name: &str) -> Result<usize, String> {
        self.scenario.cluster_index(name).ok_or_else(|| format!("unknown cluster `{name}`"))
    }

    fn pool_index(&self, cluster: usize, offering: &str) -> Result<usize, String> {
        let spec = &self.scenario.clusters[cluster];
        spec.pools
            .iter()
            .position(|p| self.scenario.offerings[p.offering].name == offering)
            .ok_or_else(|| format!("cluster `{}` has no pool of offering `{offering}`", spec.name))
    }

    fn apply_one(&mut self, action: &Action) -> Result<(), String> {
        match action {
            Action::SetReplicas { service, cluster, replicas } => {
                let (s, c) = (self.service_index(service)?, self.cluster_index(cluster)?);
                let spec = &self.scenario.services[s];
                let most_cores: f64 = self.scenario.clusters[c]
                    .pools
                    .iter()
                    .map(|p| f64::from(p.max_nodes) * self.scenario.offerings[p.offering].vcpu)
                    .sum();
                if f64::from(*replicas) * spec.cpu_per_replica > most_cores {
                    return Err(format!(
                        "{replicas} replicas of `{service}` need {} cores but `{cluster}` can never hold more than {most_cores}",
                        f64::from(*replicas) * spec.cpu_per_replica
                    ));
                }
                self.services[s].desired[c] = *replicas;
                self.reconcile(s, c);
                Ok(())
            }
            Action::SetRouting { service, region, weights } => {
                let s = self.service_index(service)?;
                let r = self
                    .scenario
                    .regions
                    .iter()
                    .position(|x| x == region)
                    .ok_or_else(|| format!("unknown region `{region}`"))?;
                let mut row = vec![0.0; self.clusters.len()];
                for (cluster, w) in weights {
                    let c = self.cluster_index(cluster)?;
                    if !w.is_finite() || *w < 0.0 {
                        return Err(format!("weight {w} for `{cluster}` must be finite and non-negative"));
                    }
                    row[c] += w;
                }
                let total: f64 = row.iter().sum();
                if total <= 0.0 {
                    return Err("routing weights sum to zero: at least one cluster must get traffic".into());
                }
                row.iter_mut().for_each(|w| *w /= total);
                self.services[s].routing[r] = row;
                Ok(())
            }
            Action::RequestNodes { cluster, offering, count } => {
                let c = self.cluster_index(cluster)?;
                let pool = self.pool_index(c, offering)?;
                let spec = &self.scenario.clusters[c];
                if spec.kind == ClusterKind::Edge {
                    return Err(format!("`{cluster}` is an edge site: its pools are fixed"));
                }
                let (ready, coming) = self.clusters[c].pool_count(pool);
                let max = spec.pools[pool].max_nodes;
                if ready + coming + count > max {
                    return Err(format!(
                        "over capacity: {ready} ready + {coming} coming + {count} requested exceed the pool's {max} nodes"
                    ));
                }
                let lead = self.scenario.offerings[spec.pools[pool].offering].lead_time_s;
                let ready_at = self.now + i64::from(lead);
                self.clusters[c]
                    .provisioning
                    .extend((0..*count).map(|_| super::cluster::Provision { pool, ready_at }));
                Ok(())
            }
            Action::ReleaseNodes { cluster, offering, count } => {
                let c = self.cluster_index(cluster)?;
                let pool = self.pool_index(c, offering)?;
                if self.scenario.clusters[c].kind == ClusterKind::Edge {
                    return Err(format!("`{cluster}` is an edge site: its pools are fixed"));
                }
                let (ready, coming) = self.clusters[c].pool_count(pool);
                if *count > ready + coming {
                    return Err(format!(
                        "cannot release {count} nodes: the pool has {ready} ready and {coming} coming"
                    ));
                }
                let mut left = *count;
                // Cancel what has not arrived, then remove the emptiest nodes.
                while left > 0 {
                    let Some(i) = self.clusters[c].provisioning.iter().rposition(|p| p.pool == pool) else {
                        break;
                    };
                    self.clusters[c].provisioning.remove(i);
                    left -= 1;
                }
                let mut candidates: Vec<usize> = (0..self.clusters[c].nodes.len())
                    .filter(|&i| self.clusters[c].nodes[i].pool == pool)
                    .collect();
                candidates.sort_by_key(|&i| (self.clusters[c].nodes[i].pods, std::cmp::Reverse(i)));
                let mut removed: Vec<usize> = candidates.into_iter().take(left as usize).collect();
                removed.sort_unstable();
                self.clusters[c].remove_nodes(&removed, &self.scenario.clusters[c], &self.scenario.offerings);
                self.forget_nodes(c, &removed);
                Ok(())
            }
            Action::PlacePod { service, cluster, node } => {
                let (s, c) = (self.service_index(service)?, self.cluster_index(cluster)?);
                let n = *node as usize;
                let spec = &self.scenario.services[s];
                let (cpu, mem) = (spec.cpu_per_replica, spec.memory_gib_per_replica);
                let startup = i64::from(spec.startup_s);
                let now = self.now;
                let Some(target) = self.clusters[c].nodes.get(n) else {
                    return Err(format!(
                        "`{cluster}` has no node {node} ({} nodes)",
                        self.clusters[c].nodes.len()
                    ));
                };
                let Some(pending) = self.services[s].pods[c].iter().position(|p| p.node.is_none()) else {
                    return Err(format!("`{service}` has no pending replica in `{cluster}`"));
                };
                if target.cpu_free + 1e-9 < cpu || target.memory_free + 1e-9 < mem {
                    return Err(format!(
                        "over capacity: node {node} of `{cluster}` has {:.2} cores and {:.2} GiB free",
                        target.cpu_free, target.memory_free
                    ));
                }
                let pod = &mut self.services[s].pods[c][pending];
                *pod = Pod { node: Some(n), ready_at: now + startup };
                self.clusters[c].bind(n, cpu, mem);
                Ok(())
            }
        }
    }
}

/// Each region's requests go to the nearest cluster that starts with replicas of the service
/// (or the nearest cluster at all when none does).
fn initial_routing(scenario: &Scenario, replicas: &[u32]) -> Vec<Vec<f64>> {
    (0..scenario.regions.len())
        .map(|r| {
            let nearest = |only_staffed: bool| {
                scenario
                    .clusters
                    .iter()
                    .enumerate()
                    .filter(|(c, _)| !only_staffed || replicas[*c] > 0)
                    .min_by(|a, b| a.1.rtt_ms[r].total_cmp(&b.1.rtt_ms[r]))
                    .map(|(c, _)| c)
            };
            let target = nearest(true).or_else(|| nearest(false)).unwrap_or(0);
            let mut row = vec![0.0; scenario.clusters.len()];
            row[target] = 1.0;
            row
        })
        .collect()
}
