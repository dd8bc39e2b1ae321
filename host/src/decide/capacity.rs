//! Nodes per cloud cluster: the cores the planned replicas need, per horizon and quantile,
//! handed to the cost-model role; its steps due now become node requests and releases.

use foresight_sdk::{ClusterDemand, PlanRequest};

use super::{Decision, Reason};
use crate::act::Action;
use crate::observe::{ClusterKind, NodeView, Observation};
use crate::plugins::{Guarded, PlanPolicy, validate};
use crate::predict::Forecasts;

use super::sizing::{SLO_MARGIN, replicas_for_slo};

/// Most of a node's cores its pods may use for the node to be released (they start again
/// elsewhere, and serve nothing while they do).
const DRAIN_LIMIT: f64 = 0.25;

/// What a cluster's ready nodes hold, for deciding what can be released without stranding
/// pods: per node of each pool (emptiest first, the later of equals: the order the simulator
/// releases in; on Kubernetes the node autoscaler chooses, so there it is an estimate) its
/// cores in use and free and its serving pods, and the cores the pods waiting for a node need.
struct Occupancy {
    /// Per pool, each ready node, emptiest first.
    pools: Vec<Vec<NodeLoad>>,
    /// Free cores on every ready node that stays.
    free: f64,
    /// Cores of pods that wait for room: pending now, or added by this tick's replica decisions.
    waiting: f64,
    /// Per service, the serving replicas on the nodes allowed to go.
    evicted: std::collections::BTreeMap<String, u32>,
}

/// One ready node as [`Occupancy`] weighs it.
#[derive(Debug, Clone)]
struct NodeLoad {
    used: f64,
    free: f64,
    serving: std::collections::BTreeMap<String, u32>,
}

impl Occupancy {
    fn new(o: &Observation, c: usize, nodes: &[NodeView], plan: &[Decision]) -> Self {
        let cluster = &o.clusters[c];
        // The backends apply a plan in order, so the nodes are weighed as its placements leave
        // them (a node given a pod now is no longer the emptiest). Which pods a scale-in
        // removes is the backend's choice and not known here.
        let mut nodes = nodes.to_vec();
        let mut placed = 0.0;
        for d in plan {
            if let Action::PlacePod { service, cluster: at, node } = &d.action
                && *at == cluster.name
                && let (Some(n), Some(s)) =
                    (nodes.get_mut(*node as usize), o.services.iter().find(|s| s.name == *service))
            {
                n.take(s.cpu_per_replica, s.memory_gib_per_replica);
                placed += s.cpu_per_replica;
            }
        }
        let mut pools = vec![Vec::new(); cluster.pools.len()];
        let mut ordered: Vec<(usize, &NodeView)> = nodes.iter().enumerate().collect();
        ordered.sort_by_key(|&(i, n)| (n.pods, std::cmp::Reverse(i)));
        for (_, n) in ordered {
            if let Some(p) = pools.get_mut(n.pool as usize) {
                p.push(NodeLoad { used: n.cpu - n.cpu_free, free: n.cpu_free, serving: n.serving.clone() });
            }
        }
        let waiting = o
            .services
            .iter()
            .map(|s| {
                let p = &s.placements[c];
                let target = super::replicas_set(plan, &s.name, &cluster.name).unwrap_or(p.total());
                f64::from(p.waiting_at(target)) * s.cpu_per_replica
            })
            .sum::<f64>();
        // Pods placed by the plan wait no longer: they are on their nodes.
        let waiting = (waiting - placed).max(0.0);
        Self { free: nodes.iter().map(|n| n.cpu_free).sum(), pools, waiting, evicted: Default::default() }
    }

    /// How many of `wanted` releases from `pool` go through: nodes still on their way are
    /// cancelled freely; a ready node goes only if the pods on it, and those waiting, still
    /// fit in the free room of the nodes that stay (make before break). Consumes what it
    /// allows, counting the serving replicas it stops.
    fn releasable(&mut self, pool: usize, provisioning: u32, wanted: u32) -> u32 {
        let cancelled = wanted.min(provisioning);
        let mut allowed = cancelled;
        let nodes = &mut self.pools[pool];
        while allowed < wanted && !nodes.is_empty() {
            let NodeLoad { used, free, serving } = &nodes[0];
            // Pods on a released node start again elsewhere and serve nothing meanwhile: a node
            // goes only if it is mostly empty, and its pods and what waits for room still fit.
            if *used > DRAIN_LIMIT * (used + free) + 1e-9 || used + self.waiting > self.free - free + 1e-9 {
                break;
            }
            for (s, n) in serving {
                *self.evicted.entry(s.clone()).or_default() += n;
            }
            self.free -= free + used;
            nodes.remove(0);
            allowed += 1;
        }
        allowed
    }
}

/// What node planning decided, and what it stops serving.
#[derive(Debug, Default)]
pub struct NodePlan {
    /// Node requests and releases.
    pub decisions: Vec<Decision>,
    /// Serving replicas the releases stop, per service and cluster name: they start again
    /// elsewhere and serve nothing meanwhile, so the coming step's routing must not count them.
    pub evicted: super::Evicted,
}

/// Node decisions for every cloud cluster whose plan changes a pool now, and the serving
/// replicas their releases stop. `plan` is the tick's plan so far (replica targets, then
/// placements). A release that would leave pods with nowhere to run is cut to what can go
/// (`nodes(cluster)` reports the ready nodes; without them nothing ready is released).
pub fn plan_nodes(
    o: &Observation,
    f: &Forecasts,
    plan: &[Decision],
    shares: &[Vec<Vec<f64>>],
    stretch: &[f64],
    nodes: &dyn Fn(&str) -> Option<Vec<NodeView>>,
    cost_model: &Guarded<dyn PlanPolicy>,
) -> NodePlan {
    let clouds: Vec<usize> = (0..o.clusters.len())
        .filter(|&c| o.clusters[c].kind == ClusterKind::Cloud && o.clusters[c].up)
        .collect();
    if clouds.is_empty() {
        return NodePlan::default();
    }
    let cells = f.horizons.len() * f.quantiles.len();
    let demands: Vec<ClusterDemand> = clouds
        .iter()
        .map(|&c| {
            let mut cpu = vec![0.0; cells];
            let mut memory = vec![0.0; cells];
            for (s, service) in o.services.iter().enumerate() {
                // Replicas already decided this tick are the floor; forecasts above it add more.
                let p = &service.placements[c];
                let floor =
                    super::replicas_set(plan, &service.name, &o.clusters[c].name).unwrap_or(p.total());
                let rtt = (0..o.regions.len())
                    .filter(|&r| shares.get(s).is_some_and(|x| x[r][c] > 0.0))
                    .map(|r| o.clusters[c].rtt_ms[r])
                    .fold(0.0, f64::max);
                let budget = (SLO_MARGIN * service.slo_p95_ms - rtt) / super::sizing::stretch_of(stretch, s);
                for (h, &horizon) in f.horizons.iter().enumerate() {
                    for (k, &q) in f.quantiles.iter().enumerate() {
                        // Spread as the plan spreads it (the current routing until there is one).
                        let share = |r: usize| shares.get(s).map_or(service.routing[r][c], |x| x[r][c]);
                        let lead = super::lead_time::node_forecast_lead_s(horizon, service.startup_s);
                        let rps: f64 = (0..o.regions.len()).map(|r| f.at(s, r, lead, q) * share(r)).sum();
                        let n = replicas_for_slo(rps, service.service_ms, service.cpu_per_replica, budget)
                            .max(floor);
                        cpu[h * f.quantiles.len() + k] += f64::from(n) * service.cpu_per_replica;
                        memory[h * f.quantiles.len() + k] += f64::from(n) * service.memory_gib_per_replica;
                    }
                }
            }
            // Quantiles must not cross once summed; they cannot, but rounding may tie them.
            ClusterDemand {
                cluster: o.clusters[c].name.clone(),
                cpu,
                memory_gib: memory,
                offerings: o.clusters[c].pools.iter().map(|p| p.offering.clone()).collect(),
            }
        })
        .collect();
    let request =
        PlanRequest { horizons: f.horizons.clone(), quantiles: f.quantiles.clone(), clusters: demands };
    let Ok(served) = cost_model.call(|p| p.plan(&request), |answer| validate::plans(&request, answer)) else {
        tracing::error!("no cost model could plan nodes this tick; capacity left as it is");
        return NodePlan::default();
    };
    let mut decisions = Vec::new();
    let mut evicted = super::Evicted::new();
    for (schedule, &c) in served.value.iter().zip(&clouds) {
        let cluster = &o.clusters[c];
        let mut occupancy = Occupancy::new(o, c, &nodes(&cluster.name).unwrap_or_default(), plan);
        for step in schedule.steps.iter().filter(|s| s.request_in_s < o.step_s) {
            let pool = &cluster.pools[step.offering as usize];
            let have = pool.ready + pool.provisioning;
            let mut guardrail = None;
            let (action, verb, count) = if step.nodes > have {
                let n = step.nodes - have;
                (
                    Action::RequestNodes {
                        cluster: cluster.name.clone(),
                        offering: pool.offering.name.clone(),
                        count: n,
                    },
                    "request",
                    n,
                )
            } else if step.nodes < have {
                let wanted = have - step.nodes;
                let n = occupancy.releasable(step.offering as usize, pool.provisioning, wanted);
                if n < wanted {
                    guardrail = Some(format!(
                        "make before break: {} of the {wanted} nodes hold pods with nowhere else to run",
                        wanted - n
                    ));
                }
                if n == 0 {
                    continue;
                }
                (
                    Action::ReleaseNodes {
                        cluster: cluster.name.clone(),
                        offering: pool.offering.name.clone(),
                        count: n,
                    },
                    "release",
                    n,
                )
            } else {
                continue;
            };
            let cores =
                request.clusters.iter().find(|d| d.cluster == cluster.name).map(|d| d.cpu[d.cpu.len() - 1]);
            decisions.push(Decision {
                action,
                reason: Reason {
                    summary: format!(
                        "{verb} {count} × {} in {}: {have} → {} nodes; plan costs {:.2}/h for the forecast cores",
                        pool.offering.name,
                        cluster.name,
                        if verb == "release" { have - count } else { step.nodes },
                        schedule.hourly_cost
                    ),
                    plugins: f.by.iter().cloned().chain([served.by.clone()]).collect(),
                    quantile: f.quantiles.last().copied(),
                    horizon_s: f.horizons.last().copied(),
                    forecast: cores,
                    observed: Some(cluster.cpu_allocated),
                    guardrail,
                },
            });
        }
        for (service, n) in occupancy.evicted {
            evicted.insert((service, cluster.name.clone()), n);
        }
    }
    NodePlan { decisions, evicted }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::replicas::tests::world;

    fn node(used: f64, pods: u32, serving: &[(&str, u32)]) -> NodeView {
        NodeView {
            pool: 0,
            cpu: 4.0,
            cpu_free: 4.0 - used,
            memory_gib: 16.0,
            memory_free_gib: 16.0 - used,
            pods,
            serving: serving.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect(),
        }
    }

    #[test]
    fn releases_go_emptiest_first_while_what_they_hold_fits_and_count_what_stops_serving() {
        // The simulator releases the emptiest node, the later one of equals: here node 1, whose
        // pod is still starting, then node 0, one serving replica of `web`. Node 2 is too full.
        let nodes = [node(1.0, 1, &[("web", 1)]), node(1.0, 1, &[]), node(2.0, 2, &[("web", 2)])];
        let o = world(4, 100.0);
        let mut first = Occupancy::new(&o, 0, &nodes, &[]);
        assert_eq!(first.releasable(0, 0, 1), 1);
        assert!(first.evicted.is_empty(), "{:?}", first.evicted);
        let mut both = Occupancy::new(&o, 0, &nodes, &[]);
        assert_eq!(both.releasable(0, 0, 3), 2);
        assert_eq!(both.evicted, [("web".to_owned(), 1)].into());
        // Nodes still on their way are cancelled first and stop nothing.
        let mut coming = Occupancy::new(&o, 0, &nodes, &[]);
        assert_eq!(coming.releasable(0, 2, 2), 2);
        assert!(coming.evicted.is_empty());
    }

    #[test]
    fn a_node_the_plan_places_a_pod_on_is_no_longer_the_emptiest() {
        let nodes = [node(1.0, 1, &[("web", 1)]), node(1.0, 1, &[]), node(1.0, 2, &[("web", 1)])];
        // Alone, node 1 (the later of two equals) would go first and stop nothing. The plan
        // places a pod of `web` on it before the release, so node 0 goes, and with it one
        // serving replica.
        let place = Decision {
            action: Action::PlacePod { service: "web".into(), cluster: "cloud".into(), node: 1 },
            reason: Default::default(),
        };
        let mut occupancy = Occupancy::new(&world(4, 100.0), 0, &nodes, &[place]);
        assert_eq!(occupancy.releasable(0, 0, 1), 1);
        assert_eq!(occupancy.evicted, [("web".to_owned(), 1)].into());
    }
}
