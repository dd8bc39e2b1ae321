//! Locality-aware load balancing with spill-over, as a global load balancer or a service mesh
//! in front of every cluster does it.
//!
//! The model is the "waterfall by region" of a global external load balancer (Google Cloud
//! Load Balancing's backend services: each backend has a capacity — with the `UTILIZATION`
//! balancing mode, its instances at `maxUtilization`, 0.8 by default — and requests go to the
//! closest backend with capacity left; when it is full, the excess goes to the next closest;
//! when every backend is full, requests are spread over them in proportion to their
//! capacity). Envoy's and Istio's locality failover behave alike at the granularity modelled
//! here: nearest locality first, the next priority when the nearest is unhealthy.
//!
//! * A backend is a cluster that runs the service (its "home") and is up; its capacity is its
//!   **ready** replicas' servers at the fill level (pods still starting serve nothing). The
//!   baselines fill to the level at which each cluster's HPA starts to scale out — its target
//!   utilisation plus its tolerance ([`fill_for`]) — so the balancer never runs a backend
//!   hotter than the autoscaler behind it aims for: a competent team sets `maxUtilization` to
//!   agree with its HPA. (Left at the load balancer's default of 0.8, backends of one or two
//!   replicas with variable service times queue badly: on `regional`, seed 7, `hpa` has
//!   14 591 violation minutes at 0.8 against 2 969 at 0.5 and 5 607 at 0.6.)
//! * Region–cluster pairs are filled in order of round trip, so a region takes its nearest
//!   cluster before a farther region spills into it.
//! * A cluster that is down gets nothing (health checks fail it over).
//!
//! The balancer reacts within seconds; the simulator's routing is set once per step from the
//! demand measured over the last step, which at one-minute steps is the same except for
//! demand that jumps within a minute.

use crate::decide::{Decision, Reason};
use crate::observe::Observation;

/// Google Cloud's default `maxUtilization` for the `UTILIZATION` balancing mode.
pub const DEFAULT_MAX_UTILISATION: f64 = 0.8;

/// The fill level that agrees with an HPA: where its recommendation first leaves the
/// tolerance band and it scales out.
pub fn fill_for(hpa: &super::hpa::HpaSpec) -> f64 {
    (hpa.target_utilisation * (1.0 + hpa.tolerance)).min(DEFAULT_MAX_UTILISATION)
}

/// A routing weight changes only when it moves by more than this: load balancers are not
/// reprogrammed for noise.
const TOLERANCE: f64 = 0.02;

/// Requests/s a service's ready replicas in a cluster take before the balancer spills over.
fn capacity(o: &Observation, s: usize, c: usize, fill: f64) -> f64 {
    let service = &o.services[s];
    let servers = f64::from(service.placements[c].ready) * service.cpu_per_replica.floor().max(1.0);
    servers * 1000.0 / service.service_ms * fill
}

/// Routing weights (`[region][cluster]`) for service `s` over the clusters `homes` marks,
/// filling each to `fill` of its ready capacity. `None` for a region with no home up.
pub fn spill_over(o: &Observation, s: usize, homes: &[bool], fill: f64) -> Vec<Option<Vec<f64>>> {
    let clusters = o.clusters.len();
    let up: Vec<usize> = (0..clusters).filter(|&c| homes[c] && o.clusters[c].up).collect();
    let demand = &o.services[s].demand_rps;
    let capacity: Vec<f64> =
        (0..clusters).map(|c| if up.contains(&c) { capacity(o, s, c, fill) } else { 0.0 }).collect();
    let mut room = capacity.clone();
    let mut left: Vec<f64> = demand.clone();
    let mut routed = vec![vec![0.0; clusters]; o.regions.len()];
    let mut pairs: Vec<(usize, usize)> =
        (0..o.regions.len()).flat_map(|r| up.iter().map(move |&c| (r, c))).collect();
    pairs.sort_by(|a, b| o.clusters[a.1].rtt_ms[a.0].total_cmp(&o.clusters[b.1].rtt_ms[b.0]).then(a.cmp(b)));
    for (r, c) in pairs {
        let take = left[r].min(room[c]);
        if take > 0.0 {
            routed[r][c] += take;
            room[c] -= take;
            left[r] -= take;
        }
    }
    let total_capacity: f64 = capacity.iter().sum();
    (0..o.regions.len())
        .map(|r| {
            let nearest = up.iter().copied().min_by(|&a, &b| {
                o.clusters[a].rtt_ms[r].total_cmp(&o.clusters[b].rtt_ms[r]).then(a.cmp(&b))
            })?;
            let mut row = routed[r].clone();
            if left[r] > 0.0 {
                // Every backend is full: the rest in proportion to capacity, or, with nothing
                // serving anywhere, to the nearest, where the autoscaler will add replicas.
                for c in 0..clusters {
                    row[c] += if total_capacity > 0.0 { left[r] * capacity[c] / total_capacity } else { 0.0 };
                }
                if total_capacity <= 0.0 {
                    row[nearest] += left[r];
                }
            }
            let sum: f64 = row.iter().sum();
            if sum <= 0.0 {
                // No demand: keep requests headed for the nearest backend.
                row[nearest] = 1.0;
            } else {
                row.iter_mut().for_each(|w| *w /= sum);
            }
            Some(row)
        })
        .collect()
}

/// Routing changes for every service and region whose balancer weights moved.
pub fn balance(o: &Observation, homes: &[Vec<bool>], fill: f64, label: &str) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for (s, service) in o.services.iter().enumerate() {
        for (r, row) in spill_over(o, s, &homes[s], fill).into_iter().enumerate() {
            let Some(row) = row else { continue };
            let moved = row.iter().zip(&service.routing[r]).any(|(a, b)| (a - b).abs() > TOLERANCE);
            // A cluster that went down must lose its share however small.
            let stale = service.routing[r].iter().zip(&o.clusters).any(|(w, c)| *w > 0.0 && !c.up);
            if !moved && !stale {
                continue;
            }
            let region = &o.regions[r];
            let shares = row
                .iter()
                .zip(&o.clusters)
                .filter(|(w, _)| **w > 0.0)
                .map(|(w, c)| format!("{} {:.0} %", c.name, w * 100.0))
                .collect::<Vec<_>>()
                .join(", ");
            decisions.push(Decision {
                action: crate::decide::routing_action(o, s, r, &row),
                reason: Reason {
                    summary: format!(
                        "{label}: {region}'s {} requests {shares}: nearest cluster first, spilling over above {:.0} % of its ready capacity",
                        service.name,
                        fill * 100.0
                    ),
                    plugins: vec![label.into()],
                    observed: Some(service.demand_rps[r]),
                    ..Reason::default()
                },
            });
        }
    }
    decisions
}

/// The weights `decisions` give a region's requests.
#[cfg(test)]
fn weights(decisions: &[Decision], region: &str) -> Option<Vec<(String, f64)>> {
    decisions.iter().find_map(|d| match &d.action {
        crate::act::Action::SetRouting { region: r, weights, .. } if r == region => Some(weights.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fill_level_is_where_the_hpa_scales_out() {
        let hpa = super::super::hpa::HpaSpec::default();
        assert!((fill_for(&hpa) - 0.55).abs() < 1e-12);
    }

    /// The planner's fixture: regions eu and ap; edge-eu (5 ms from eu), edge-ap (8 ms from
    /// ap), cloud-eu (20 ms from eu, 150 ms from ap); `web` takes 14 ms per request.
    fn world(ready: [u32; 3], demand: [f64; 2]) -> Observation {
        let mut o = crate::decide::routing::tests::observation();
        for (p, n) in o.services[0].placements.iter_mut().zip(ready) {
            p.ready = n;
        }
        o.services[0].demand_rps = demand.to_vec();
        o
    }

    /// The fill level the tests run at.
    const FILL: f64 = 0.8;
    /// Requests/s one single-core replica of `web` takes before spilling: 1000/14 × 0.8.
    const PER_REPLICA: f64 = 1000.0 / 14.0 * FILL;

    #[test]
    fn the_nearest_cluster_takes_everything_it_has_room_for() {
        let o = world([10, 10, 10], [100.0, 50.0]);
        let rows = spill_over(&o, 0, &[true, true, true], FILL);
        assert_eq!(rows[0], Some(vec![1.0, 0.0, 0.0]));
        assert_eq!(rows[1], Some(vec![0.0, 1.0, 0.0]));
    }

    #[test]
    fn the_excess_spills_to_the_next_nearest_and_down_clusters_get_nothing() {
        // edge-eu has two replicas: it takes 2 × PER_REPLICA of eu's 300 req/s, the cloud the rest.
        let mut o = world([2, 10, 10], [300.0, 0.0]);
        let rows = spill_over(&o, 0, &[true, true, true], FILL);
        let eu = rows[0].clone().unwrap();
        assert!((eu[0] - 2.0 * PER_REPLICA / 300.0).abs() < 1e-9, "{eu:?}");
        assert!((eu[2] - (1.0 - 2.0 * PER_REPLICA / 300.0)).abs() < 1e-9, "{eu:?}");
        // edge-ap (170 ms from eu) comes after the cloud (20 ms) and is not needed.
        assert_eq!(eu[1], 0.0);
        o.services[0].routing[0] = eu;
        o.clusters[0].up = false;
        let d = balance(&o, &[vec![true, true, true]], FILL, "baseline:hpa");
        assert_eq!(weights(&d, "eu"), Some(vec![("cloud-eu".to_owned(), 1.0)]));
    }

    #[test]
    fn when_every_backend_is_full_the_rest_follows_capacity() {
        // 1 + 3 replicas for 10 000 req/s: far beyond both; the excess splits 1 : 3.
        let o = world([1, 0, 3], [10_000.0, 0.0]);
        let eu = spill_over(&o, 0, &[true, false, true], FILL)[0].clone().unwrap();
        assert!((eu[0] - 0.25).abs() < 1e-9 && (eu[2] - 0.75).abs() < 1e-9, "{eu:?}");
        // With nothing ready anywhere, everything heads for the nearest home.
        let o = world([0, 0, 0], [10.0, 0.0]);
        assert_eq!(spill_over(&o, 0, &[true, false, true], FILL)[0], Some(vec![1.0, 0.0, 0.0]));
    }

    #[test]
    fn regions_take_their_nearest_cluster_before_others_spill_into_it() {
        // edge-ap holds 3 replicas; ap's own demand fills it before eu's overflow could.
        let o = world([1, 3, 0], [1000.0, 3.0 * PER_REPLICA]);
        let rows = spill_over(&o, 0, &[true, true, false], FILL);
        assert_eq!(rows[1], Some(vec![0.0, 1.0, 0.0]));
    }
}
