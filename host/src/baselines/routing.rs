//! Nearest-cluster routing, as a geo-DNS or global load balancer with health checks does it:
//! each region's requests go to the nearest cluster that runs the service and is up.

use crate::act::Action;
use crate::decide::{Decision, Reason};
use crate::observe::Observation;

/// The nearest up cluster among `homes[c]` for region `r`, if any is up.
pub fn nearest_cluster(o: &Observation, homes: &[bool], r: usize) -> Option<usize> {
    (0..o.clusters.len())
        .filter(|&c| homes[c] && o.clusters[c].up)
        .min_by(|&a, &b| o.clusters[a].rtt_ms[r].total_cmp(&o.clusters[b].rtt_ms[r]))
}

/// Routing changes for every service and region whose nearest healthy home is not where its
/// requests go now.
pub fn nearest(o: &Observation, homes: &[Vec<bool>], label: &str) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for (s, service) in o.services.iter().enumerate() {
        for (r, region) in o.regions.iter().enumerate() {
            let Some(c) = nearest_cluster(o, &homes[s], r) else { continue };
            if (service.routing[r][c] - 1.0).abs() < 1e-9 {
                continue;
            }
            decisions.push(Decision {
                action: Action::SetRouting {
                    service: service.name.clone(),
                    region: region.clone(),
                    weights: vec![(o.clusters[c].name.clone(), 1.0)],
                },
                reason: Reason {
                    summary: format!(
                        "{label}: {region}'s {} requests to {}, the nearest cluster up that runs it ({:.0} ms)",
                        service.name, o.clusters[c].name, o.clusters[c].rtt_ms[r]
                    ),
                    plugins: vec![label.into()],
                    ..Reason::default()
                },
            });
        }
    }
    decisions
}
