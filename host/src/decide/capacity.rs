//! Nodes per cloud cluster: the cores the planned replicas need, per horizon and quantile,
//! handed to the cost-model role; its steps due now become node requests and releases.

use foresight_sdk::{ClusterDemand, PlanRequest};

use super::{Decision, Reason};
use crate::act::Action;
use crate::observe::{ClusterKind, Observation};
use crate::plugins::{Guarded, PlanPolicy, validate};
use crate::predict::Forecasts;

use super::sizing::{SLO_MARGIN, replicas_for_slo};

/// Node decisions for every cloud cluster whose plan changes a pool now.
pub fn plan_nodes(
    o: &Observation,
    f: &Forecasts,
    replica_decisions: &[Decision],
    shares: &[Vec<Vec<f64>>],
    cost_model: &Guarded<dyn PlanPolicy>,
) -> Vec<Decision> {
    let clouds: Vec<usize> = (0..o.clusters.len())
        .filter(|&c| o.clusters[c].kind == ClusterKind::Cloud && o.clusters[c].up)
        .collect();
    if clouds.is_empty() {
        return Vec::new();
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
                let floor = super::replicas_set(replica_decisions, &service.name, &o.clusters[c].name)
                    .unwrap_or(p.total());
                let rtt = (0..o.regions.len())
                    .filter(|&r| shares.get(s).is_some_and(|x| x[r][c] > 0.0))
                    .map(|r| o.clusters[c].rtt_ms[r])
                    .fold(0.0, f64::max);
                let budget = SLO_MARGIN * service.slo_p95_ms - rtt;
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
        return Vec::new();
    };
    let mut decisions = Vec::new();
    for (plan, &c) in served.value.iter().zip(&clouds) {
        let cluster = &o.clusters[c];
        for step in plan.steps.iter().filter(|s| s.request_in_s < o.step_s) {
            let pool = &cluster.pools[step.offering as usize];
            let have = pool.ready + pool.provisioning;
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
                let n = have - step.nodes;
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
                        pool.offering.name, cluster.name, step.nodes, plan.hourly_cost
                    ),
                    plugins: f.by.iter().cloned().chain([served.by.clone()]).collect(),
                    quantile: f.quantiles.last().copied(),
                    horizon_s: f.horizons.last().copied(),
                    forecast: cores,
                    observed: Some(cluster.cpu_allocated),
                    guardrail: None,
                },
            });
        }
    }
    decisions
}
