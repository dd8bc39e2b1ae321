//! Capacity fixed at the peak: every cluster holds, all the time, the replicas the peak of the
//! demand routed to it needs at the HPA's target utilisation, on the cheapest nodes that hold
//! them (on-demand first, spot only beyond what on-demand may hold). Each region is planned to its service's nearest home; an edge site keeps
//! the share of the peak its nodes hold (packed by CPU and memory) and the nearest cloud home
//! is sized for the rest. Requests follow the plan, and the capacity that serves: what a
//! cluster's missing replicas would have carried goes to the service's other homes.

use crate::act::Action;
use crate::backends::sim::Scenario;
use crate::decide::{Decision, Reason, replicas_at};
use crate::observe::{ClusterKind, Observation};

use super::autoscaler::{PodRequest, pack};
use super::hpa::HpaSpec;

const LABEL: &str = "baseline:static-peak";

/// The fixed plan.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticPeak {
    /// Replicas per service and cluster.
    replicas: Vec<Vec<u32>>,
    /// Nodes per cluster and pool (cloud clusters; edge pools stay as they are).
    nodes: Vec<Vec<u32>>,
    homes: Vec<Vec<bool>>,
    /// Share of each region's requests per cluster, per service, as planned.
    weights: Vec<Vec<Vec<f64>>>,
}

/// Peak requests/s each cluster receives per service over the whole scenario when each region
/// `r` of service `s` sends the share `weights[s][r][c]` to cluster `c`.
pub fn routed_peaks(scenario: &Scenario, weights: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let mut peaks = vec![vec![0.0; scenario.clusters.len()]; scenario.services.len()];
    let mut at = vec![0.0; scenario.clusters.len()];
    for tick in 0..scenario.ticks() as i64 {
        let t = scenario.start + tick * i64::from(scenario.step_s);
        for s in 0..scenario.services.len() {
            at.iter_mut().for_each(|x| *x = 0.0);
            for (r, d) in scenario.demand(s, t).into_iter().enumerate() {
                for (x, w) in at.iter_mut().zip(&weights[s][r]) {
                    *x += d * w;
                }
            }
            for (p, a) in peaks[s].iter_mut().zip(&at) {
                *p = f64::max(*p, *a);
            }
        }
    }
    peaks
}

/// The nearest of the clusters `allowed` to region `r`.
fn nearest(scenario: &Scenario, r: usize, allowed: impl Fn(usize) -> bool) -> Option<usize> {
    (0..scenario.clusters.len())
        .filter(|&c| allowed(c))
        .min_by(|&a, &b| scenario.clusters[a].rtt_ms[r].total_cmp(&scenario.clusters[b].rtt_ms[r]))
}

/// The largest factor in [0, 1] (to 1e-6) for which `fits` holds, assuming it holds at 0 and,
/// once it fails, keeps failing for larger factors.
fn largest_fitting(fits: impl Fn(f64) -> bool) -> f64 {
    if fits(1.0) {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..20 {
        let mid = 0.5 * (lo + hi);
        if fits(mid) { lo = mid } else { hi = mid }
    }
    lo
}

/// Whether `count(s)` pods of each service pack onto `bins` (CPU and memory).
fn packs(scenario: &Scenario, count: impl Fn(usize) -> u32, bins: &[(f64, f64)]) -> bool {
    let pods: Vec<PodRequest> = scenario
        .services
        .iter()
        .enumerate()
        .flat_map(|(s, spec)| {
            std::iter::repeat_n(
                PodRequest { cpu: spec.cpu_per_replica, memory_gib: spec.memory_gib_per_replica },
                count(s) as usize,
            )
        })
        .collect();
    pack(&pods, &mut bins.to_vec()).is_empty()
}

/// A cloud cluster's pools that hold the largest pod, on-demand before spot and cheapest per
/// core first within each: where its fixed nodes come from, each filled to its `max-nodes`
/// before the next (spot only when on-demand cannot hold the peak).
fn cloud_pools(scenario: &Scenario, c: usize) -> Vec<usize> {
    let cluster = &scenario.clusters[c];
    let largest = scenario
        .services
        .iter()
        .fold((0.0f64, 0.0f64), |a, s| (a.0.max(s.cpu_per_replica), a.1.max(s.memory_gib_per_replica)));
    let offering = |p: usize| &scenario.offerings[cluster.pools[p].offering];
    let per_core = |p: usize| offering(p).hourly_price / offering(p).vcpu;
    let mut pools: Vec<usize> = (0..cluster.pools.len())
        .filter(|&p| offering(p).vcpu >= largest.0 && offering(p).memory_gib >= largest.1)
        .collect();
    pools.sort_by(|&a, &b| {
        offering(a).spot.cmp(&offering(b).spot).then(per_core(a).total_cmp(&per_core(b))).then(a.cmp(&b))
    });
    pools
}

impl StaticPeak {
    /// The plan for `scenario`, its peaks read off the whole run.
    ///
    /// 1. Each region goes to its service's nearest home.
    /// 2. An edge site keeps the share of what is sent there whose peak packs onto its nodes
    ///    (CPU and memory, one factor for every service there); the rest goes to the
    ///    service's nearest cloud home.
    /// 3. Every home gets the replicas its peak needs at the HPA's target utilisation.
    /// 4. A cloud cluster whose pool cannot hold all of that even at its `max-nodes` scales
    ///    every service there by one factor, so none is starved by the order pods are
    ///    scheduled in.
    pub fn from_scenario(scenario: &Scenario) -> Self {
        let homes: Vec<Vec<bool>> =
            scenario.services.iter().map(|s| s.replicas.iter().map(|&n| n > 0).collect()).collect();
        let clusters = scenario.clusters.len();
        let mut weights: Vec<Vec<Vec<f64>>> = homes
            .iter()
            .map(|h| {
                (0..scenario.regions.len())
                    .map(|r| {
                        let mut row = vec![0.0; clusters];
                        if let Some(c) = nearest(scenario, r, |c| h[c]) {
                            row[c] = 1.0;
                        }
                        row
                    })
                    .collect()
            })
            .collect();
        let target = HpaSpec::default().target_utilisation;
        let needed = |s: usize, rps: f64| {
            let spec = &scenario.services[s];
            if rps > 0.0 { replicas_at(rps, spec.service_ms, spec.cpu_per_replica, target).max(1) } else { 0 }
        };
        let peaks = routed_peaks(scenario, &weights);
        for (e, cluster) in scenario.clusters.iter().enumerate().filter(|(_, c)| c.kind == ClusterKind::Edge)
        {
            let nodes: Vec<(f64, f64)> = cluster
                .pools
                .iter()
                .flat_map(|p| {
                    let o = &scenario.offerings[p.offering];
                    std::iter::repeat_n((o.vcpu, o.memory_gib), p.nodes as usize)
                })
                .collect();
            let keep = largest_fitting(|k| packs(scenario, |s| needed(s, k * peaks[s][e]), &nodes));
            if keep >= 1.0 {
                continue;
            }
            for (rows, home) in weights.iter_mut().zip(&homes) {
                for (r, row) in rows.iter_mut().enumerate() {
                    if row[e] <= 0.0 {
                        continue;
                    }
                    let cloud =
                        nearest(scenario, r, |c| home[c] && scenario.clusters[c].kind == ClusterKind::Cloud);
                    if let Some(cloud) = cloud {
                        let moved = row[e] * (1.0 - keep);
                        row[e] -= moved;
                        row[cloud] += moved;
                    }
                }
            }
        }
        let peaks = routed_peaks(scenario, &weights);
        let mut replicas: Vec<Vec<u32>> = (0..scenario.services.len())
            .map(|s| (0..clusters).map(|c| if homes[s][c] { needed(s, peaks[s][c]) } else { 0 }).collect())
            .collect();
        let mut nodes: Vec<Vec<u32>> =
            scenario.clusters.iter().map(|c| c.pools.iter().map(|p| p.nodes).collect()).collect();
        for c in (0..clusters).filter(|&c| scenario.clusters[c].kind == ClusterKind::Cloud) {
            let pools = cloud_pools(scenario, c);
            let spec = &scenario.clusters[c];
            let shape = |p: usize| {
                let o = &scenario.offerings[spec.pools[p].offering];
                (o.vcpu, o.memory_gib)
            };
            let bins: Vec<(f64, f64)> = pools
                .iter()
                .flat_map(|&p| std::iter::repeat_n(shape(p), spec.pools[p].max_nodes as usize))
                .collect();
            // Max-min fair when the peak does not fit: every service keeps what it needs up to
            // one common number of cores, so a spiky service cannot crowd out a steady one.
            let need: Vec<u32> = replicas.iter().map(|row| row[c]).collect();
            let most = need
                .iter()
                .zip(&scenario.services)
                .map(|(&n, sp)| f64::from(n) * sp.cpu_per_replica)
                .fold(0.0, f64::max);
            let capped = |k: f64, s: usize| {
                let cores = k * most;
                let sp = &scenario.services[s];
                need[s].min(((cores / sp.cpu_per_replica).floor() as u32).max(u32::from(need[s] > 0)))
            };
            let level = largest_fitting(|k| packs(scenario, |s| capped(k, s), &bins));
            for (s, row) in replicas.iter_mut().enumerate() {
                row[c] = capped(level, s);
            }
            // Nodes: the bins the pods land on, per pool.
            let pods: Vec<PodRequest> = scenario
                .services
                .iter()
                .enumerate()
                .flat_map(|(s, sp)| {
                    std::iter::repeat_n(
                        PodRequest { cpu: sp.cpu_per_replica, memory_gib: sp.memory_gib_per_replica },
                        replicas[s][c] as usize,
                    )
                })
                .collect();
            let mut filled = bins.clone();
            pack(&pods, &mut filled);
            nodes[c].iter_mut().for_each(|n| *n = 0);
            let mut k = 0;
            for &p in &pools {
                for _ in 0..spec.pools[p].max_nodes {
                    if filled[k] != bins[k] {
                        nodes[c][p] += 1;
                    }
                    k += 1;
                }
            }
        }
        Self { replicas, nodes, homes, weights }
    }

    /// Routing as planned, following the capacity that serves: a cluster with fewer ready
    /// replicas than planned (pods that could not start, a site that is down) keeps only the
    /// share its ready replicas carry, and the rest fails over to the nearest home that is up
    /// with all its planned replicas ready (or, failing that, any ready at all).
    pub fn routing(&self, o: &Observation) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (s, service) in o.services.iter().enumerate() {
            let carried: Vec<f64> = (0..o.clusters.len())
                .map(|c| {
                    let planned = f64::from(self.replicas[s][c]);
                    if !o.clusters[c].up || !self.homes[s][c] || planned <= 0.0 {
                        return 0.0;
                    }
                    (f64::from(service.placements[c].ready) / planned).min(1.0)
                })
                .collect();
            for (r, region) in o.regions.iter().enumerate() {
                let mut row = self.weights[s][r].clone();
                let mut moved = 0.0;
                for c in 0..row.len() {
                    moved += row[c] * (1.0 - carried[c]);
                    row[c] *= carried[c];
                }
                if moved > 0.0 {
                    let by_rtt =
                        |a: &usize, b: &usize| o.clusters[*a].rtt_ms[r].total_cmp(&o.clusters[*b].rtt_ms[r]);
                    let full = (0..o.clusters.len()).filter(|&c| carried[c] >= 1.0).min_by(by_rtt);
                    let any = (0..o.clusters.len()).filter(|&c| carried[c] > 0.0).min_by(by_rtt);
                    let up = (0..o.clusters.len())
                        .filter(|&c| self.homes[s][c] && o.clusters[c].up)
                        .min_by(by_rtt);
                    if let Some(h) = full.or(any).or(up) {
                        row[h] += moved;
                    }
                }
                let total: f64 = row.iter().sum();
                if total <= 0.0 {
                    continue;
                }
                row.iter_mut().for_each(|w| *w /= total);
                let same = row.iter().zip(&service.routing[r]).all(|(a, b)| (a - b).abs() < 0.02);
                let stale = service.routing[r].iter().zip(&o.clusters).any(|(w, c)| *w > 0.0 && !c.up);
                if same && !stale {
                    continue;
                }
                decisions.push(Decision {
                    action: crate::decide::routing_action(o, s, r, &row),
                    reason: Reason {
                        summary: format!(
                            "static-peak: {region}'s {} requests as planned for the peak, moved off capacity that is not serving",
                            service.name
                        ),
                        plugins: vec![LABEL.into()],
                        ..Reason::default()
                    },
                });
            }
        }
        decisions
    }

    /// Replica decisions for every deployment not at its fixed count.
    pub fn replicas(&self, o: &Observation) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (s, service) in o.services.iter().enumerate() {
            for (c, cluster) in o.clusters.iter().enumerate() {
                let p = &service.placements[c];
                let want = self.replicas[s][c];
                if p.total() == want || !cluster.up {
                    continue;
                }
                decisions.push(Decision {
                    action: Action::SetReplicas {
                        service: service.name.clone(),
                        cluster: cluster.name.clone(),
                        replicas: want,
                    },
                    reason: Reason {
                        summary: format!(
                            "static-peak: {} in {} fixed at {want} replicas for its peak",
                            service.name, cluster.name
                        ),
                        plugins: vec![LABEL.into()],
                        ..Reason::default()
                    },
                });
            }
        }
        decisions
    }

    /// Node decisions for every cloud pool not at its fixed count.
    pub fn nodes(&self, o: &Observation) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (c, cluster) in o.clusters.iter().enumerate() {
            if cluster.kind == ClusterKind::Edge || !cluster.up {
                continue;
            }
            // Old nodes go only once the new ones serve, so the pods on them have somewhere to go.
            let arrived = cluster.pools.iter().zip(&self.nodes[c]).all(|(pool, &want)| pool.ready >= want);
            for (p, pool) in cluster.pools.iter().enumerate() {
                let (have, want) = (pool.ready + pool.provisioning, self.nodes[c][p]);
                if have > want && !arrived {
                    continue;
                }
                let action = if want > have {
                    Action::RequestNodes {
                        cluster: cluster.name.clone(),
                        offering: pool.offering.name.clone(),
                        count: want - have,
                    }
                } else if have > want {
                    Action::ReleaseNodes {
                        cluster: cluster.name.clone(),
                        offering: pool.offering.name.clone(),
                        count: have - want,
                    }
                } else {
                    continue;
                };
                decisions.push(Decision {
                    action,
                    reason: Reason {
                        summary: format!(
                            "static-peak: {} holds {want} × {} for the peak",
                            cluster.name, pool.offering.name
                        ),
                        plugins: vec![LABEL.into()],
                        ..Reason::default()
                    },
                });
            }
        }
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::Simulator;
    use crate::backends::sim::tests::Fixture;

    #[test]
    fn the_plan_holds_the_peak_at_the_target_on_the_cheapest_on_demand_nodes() {
        let scenario = Fixture::new(100.0).scenario("").expect("scenario");
        // Flat demand, every region to the one home (the cloud): its peak is the total.
        let total: f64 = scenario.demand(0, scenario.start).iter().sum();
        let plan = StaticPeak::from_scenario(&scenario);
        // 10 ms per request at 50 %: total / 50 single-core replicas, four to a 4-core node.
        let replicas = (total * 0.010 / 0.5).ceil() as u32;
        assert_eq!(plan.replicas[0], vec![0, replicas]);
        assert_eq!(plan.nodes[1], vec![replicas.div_ceil(4).min(4), 0]);
        let o = Simulator::from_scenario(scenario).snapshot();
        let d = plan.replicas(&o);
        assert!(
            matches!(&d[..], [Decision { action: Action::SetReplicas { replicas: n, .. }, .. }] if *n == replicas),
            "{d:?}"
        );
    }
}
