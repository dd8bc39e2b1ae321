//! Replicas per service and cluster: enough that the forecast (or the observed, whichever is
//! larger) demand routed to the cluster runs at the target utilisation, then guardrails.

use std::collections::HashMap;

use super::{Decision, Reason};
use crate::act::Action;
use crate::config::Guardrails;
use crate::observe::Observation;
use crate::predict::Forecasts;

/// Utilisation replicas are sized for: low enough that queueing stays a small part of latency.
pub const TARGET_UTILISATION: f64 = 0.7;
/// Forecast quantile capacity is sized for.
pub const QUANTILE: f64 = 0.9;

/// Plans replicas, remembering scale-ins for the cooldown.
#[derive(Debug, Default)]
pub struct ReplicaPlanner {
    last_scale_in: HashMap<(String, String), i64>,
}

/// Replicas needed to serve `rps` at the target utilisation.
pub fn replicas_for(rps: f64, service_ms: f64, cpu_per_replica: f64) -> u32 {
    replicas_at(rps, service_ms, cpu_per_replica, TARGET_UTILISATION)
}

/// Replicas needed to serve `rps` with each replica's servers busy `utilisation` of the time.
pub fn replicas_at(rps: f64, service_ms: f64, cpu_per_replica: f64, utilisation: f64) -> u32 {
    let servers_per_replica = cpu_per_replica.floor().max(1.0);
    (rps * service_ms / 1000.0 / (utilisation * servers_per_replica)).ceil().max(0.0) as u32
}

impl ReplicaPlanner {
    /// Replica decisions for every service and cluster that needs a change.
    pub fn plan(&mut self, o: &Observation, f: &Forecasts, guardrails: &Guardrails) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (s, service) in o.services.iter().enumerate() {
            let lead = service.startup_s.max(o.step_s);
            let bounds = guardrails.bounds(&service.name);
            for (c, cluster) in o.clusters.iter().enumerate() {
                if !cluster.up {
                    continue;
                }
                let placement = &service.placements[c];
                let current = placement.ready + placement.starting + placement.pending;
                let forecast: f64 =
                    (0..o.regions.len()).map(|r| f.at(s, r, lead, QUANTILE) * service.routing[r][c]).sum();
                let observed = placement.arrival_rps;
                if forecast <= 0.0 && observed <= 0.0 && current == 0 {
                    continue;
                }
                let by_forecast = replicas_for(forecast, service.service_ms, service.cpu_per_replica);
                let by_observed = replicas_for(observed, service.service_ms, service.cpu_per_replica);
                // Scale out on whichever is larger; scale in only when both agree, unless the
                // operator allows a forecast alone to scale in.
                let mut target = by_forecast.max(by_observed);
                if guardrails.scale_in_on_forecast && by_forecast < current {
                    target = by_forecast;
                }
                let routed = (0..o.regions.len()).any(|r| service.routing[r][c] > 0.0);
                let mut clipped = None;
                if routed && target < bounds.min_replicas {
                    target = bounds.min_replicas;
                    clipped = Some(format!("min-replicas {}", bounds.min_replicas));
                }
                if target > bounds.max_replicas {
                    target = bounds.max_replicas;
                    clipped = Some(format!("max-replicas {}", bounds.max_replicas));
                }
                let step = guardrails.max_replica_change;
                if target > current + step {
                    target = current + step;
                    clipped = Some(format!("max-replica-change {step}"));
                } else if current > target + step {
                    target = current - step;
                    clipped = Some(format!("max-replica-change {step}"));
                }
                let key = (service.name.clone(), cluster.name.clone());
                if target < current {
                    let cooled = self
                        .last_scale_in
                        .get(&key)
                        .is_none_or(|&t| o.time - t >= guardrails.scale_in_cooldown_s as i64);
                    if !cooled {
                        continue;
                    }
                    self.last_scale_in.insert(key, o.time);
                }
                if target == current {
                    continue;
                }
                let summary = format!(
                    "{} replicas of {} in {}: {current} → {target}; p{:.0} forecast {forecast:.1} req/s in {lead} s, observed {observed:.1} req/s, sized for {:.0} % utilisation",
                    if target > current { "add" } else { "remove" },
                    service.name,
                    cluster.name,
                    QUANTILE * 100.0,
                    TARGET_UTILISATION * 100.0
                );
                decisions.push(Decision {
                    action: Action::SetReplicas {
                        service: service.name.clone(),
                        cluster: cluster.name.clone(),
                        replicas: target,
                    },
                    reason: Reason {
                        summary,
                        plugins: f.by.clone(),
                        quantile: Some(QUANTILE),
                        horizon_s: Some(lead),
                        forecast: Some(forecast),
                        observed: Some(observed),
                        guardrail: clipped,
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

    #[test]
    fn replicas_cover_demand_at_the_target_utilisation() {
        // 100 req/s × 20 ms = 2 busy servers; at 70 % that is 2.86 → 3 single-core replicas.
        assert_eq!(replicas_for(100.0, 20.0, 1.0), 3);
        // Two-core replicas serve two requests at once.
        assert_eq!(replicas_for(100.0, 20.0, 2.0), 2);
        assert_eq!(replicas_for(0.0, 20.0, 1.0), 0);
    }
}
