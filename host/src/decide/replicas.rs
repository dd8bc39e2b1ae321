//! Routing and replicas per service and cluster.
//!
//! Demand is planned at the p90 forecast for when new replicas would be serving (their startup
//! plus a step), or what is observed now if that is more. It is spread over clusters by
//! [`routing`](super::routing): edge first while the SLO holds, overflow to the cloud. Each
//! cluster gets the replicas the latency model says keep the p95 within the SLO for what it is
//! sent. Requests are routed now only to replicas that serve now, so traffic moves to a cluster
//! once its replicas are up. Guardrails clip the result.

use std::collections::HashMap;

use super::calibration::Calibration;
use super::coverage::Coverage;
use super::routing::{self, Assignment};
use super::sizing::{MAX_UTILISATION, SLO_MARGIN, feasible, replicas_for_slo, rps_within};
use super::{Decision, Reason};
use crate::act::Action;
use crate::config::Guardrails;
use crate::observe::{ClusterKind, Observation};
use crate::predict::Forecasts;

/// Forecast quantile capacity is sized for.
pub const QUANTILE: f64 = 0.9;
/// Utilisation up to which requests are routed to a cluster's serving replicas before the
/// rest is spread over every candidate: below the sizing cap, so a minute's burst above the
/// forecast has room.
const ROUTE_UTILISATION: f64 = 0.75;
/// Utilisation the candidates are run up to before more than a few per cent of requests are
/// sent out of the SLO's reach: hot, but still short of the queue's knee.
const HOT_UTILISATION: f64 = 0.9;
/// Share of an edge site's cores planned replicas may fill, leaving room for packing.
const EDGE_FILL: f64 = 0.9;
/// A routing weight changes only when it moves by more than this, so small forecast wobbles
/// do not churn the load balancers.
const ROUTING_TOLERANCE: f64 = 0.02;

/// Plans routing and replicas, remembering scale-ins for the cooldown and the last plan's
/// shares for node planning.
#[derive(Debug, Default)]
pub struct ReplicaPlanner {
    last_scale_in: HashMap<(String, String), i64>,
    shares: Vec<Vec<Vec<f64>>>,
    calibration: Calibration,
    /// Per service and cluster, the targets of the last cooldown window, oldest first.
    recent: HashMap<(String, String), std::collections::VecDeque<(i64, u32)>>,
    /// Per service of the last observation, its response-time stretch.
    stretch: Vec<f64>,
    /// Per service, how often the planned demand covered the peak that came.
    coverage: Coverage,
}

/// Replicas needed to serve `rps` with each replica's servers busy `utilisation` of the time.
pub fn replicas_at(rps: f64, service_ms: f64, cpu_per_replica: f64, utilisation: f64) -> u32 {
    let servers_per_replica = cpu_per_replica.floor().max(1.0);
    (rps * service_ms / 1000.0 / (utilisation * servers_per_replica)).ceil().max(0.0) as u32
}

/// The latency budget of a cluster for a service: the SLO (with its margin) less the longest
/// round trip of the regions planned to send it requests (the nearest region when none is).
fn budget_ms(o: &Observation, s: usize, c: usize, assignment: &Assignment) -> f64 {
    let rtts = &o.clusters[c].rtt_ms;
    let planned = (0..o.regions.len()).filter(|&r| assignment[s][r][c] > 0.0).map(|r| rtts[r]);
    let rtt = planned.reduce(f64::max).unwrap_or_else(|| rtts.iter().copied().fold(f64::INFINITY, f64::min));
    SLO_MARGIN * o.services[s].slo_p95_ms - rtt
}

/// Extra replicas per service and edge site: an edge site's nodes are paid for whether they
/// serve or not, so the cores the sized replicas leave free go to the services planned there,
/// in proportion to their cores, as headroom for bursts no forecast sees coming.
fn edge_spare(o: &Observation, sized: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let mut spare = vec![vec![0; o.clusters.len()]; o.services.len()];
    for (c, cluster) in o.clusters.iter().enumerate() {
        if cluster.kind != ClusterKind::Edge || !cluster.up {
            continue;
        }
        let cores = |s: usize| f64::from(sized[s][c]) * o.services[s].cpu_per_replica;
        let used: f64 = (0..o.services.len()).map(cores).sum();
        let free = EDGE_FILL * cluster.cpu_capacity - used;
        if free <= 0.0 || used <= 0.0 {
            continue;
        }
        for (s, service) in o.services.iter().enumerate() {
            spare[s][c] = (free * cores(s) / used / service.cpu_per_replica).floor() as u32;
        }
    }
    spare
}

/// Most replicas of `cpu_per_replica` cores a cluster could ever hold (every pool at its limit).
pub fn holdable(cluster: &crate::observe::ClusterView, cpu_per_replica: f64) -> u32 {
    let cores: f64 = cluster.pools.iter().map(|p| f64::from(p.offering.max_nodes) * p.offering.vcpu).sum();
    (cores / cpu_per_replica.max(1e-9)).floor() as u32
}

fn cluster_load(a: &Assignment, s: usize, c: usize) -> f64 {
    a[s].iter().map(|row| row[c]).sum()
}

impl ReplicaPlanner {
    /// Share of each region's planned demand per cluster, per service (`[s][r][c]`), from the
    /// last plan: what node planning spreads forecast demand with.
    pub fn shares(&self) -> &[Vec<Vec<f64>>] {
        &self.shares
    }

    /// Per service, the factor on planned demand that keeps the plan covering its window's peak
    /// ([`Coverage`]).
    pub fn coverage(&self) -> std::collections::BTreeMap<String, f64> {
        self.coverage.factors()
    }

    /// Per service of the last plan's observation, how much longer its responses are than
    /// the M/M/c model says ([`Calibration`]): node planning and latency prediction read it.
    pub fn stretch(&self) -> &[f64] {
        &self.stretch
    }

    /// Routing and replica decisions for every service and cluster that needs a change.
    /// `rank(s, r, c)` orders clusters of one kind for a region (lower first).
    pub fn plan(
        &mut self,
        o: &Observation,
        f: &Forecasts,
        guardrails: &Guardrails,
        rank: &dyn Fn(usize, usize, usize) -> f64,
    ) -> Vec<Decision> {
        self.calibration.observe(o);
        self.stretch = o.services.iter().map(|s| self.calibration.factor(&s.name)).collect();
        // Which clusters are within reach is the model's call: the stretch is measured at the
        // operating point, queueing included, and would make reach flip with the load.
        let candidates = routing::candidates(o, &[], rank);
        let lead = |s: usize| super::lead_time::replica_lead_s(o.services[s].startup_s, o.step_s);
        for service in &o.services {
            self.coverage.observe(&service.name, o.time, service.demand_rps.iter().sum(), QUANTILE);
        }
        let planned_demand: Vec<Vec<f64>> = (0..o.services.len())
            .map(|s| {
                let covered = self.coverage.factor(&o.services[s].name);
                // Acting on max(forecast, observed) never scales in ahead of a fall; an operator
                // who allows a forecast alone to scale in gets the forecast alone.
                (0..o.regions.len())
                    .map(|r| {
                        // Up to the step new replicas first serve: replicas removed now could
                        // not be back any sooner.
                        let forecast = f.peak(s, r, o.step_s, lead(s), QUANTILE);
                        covered
                            * if guardrails.scale_in_on_forecast {
                                forecast
                            } else {
                                forecast.max(o.services[s].demand_rps[r])
                            }
                    })
                    .collect()
            })
            .collect();
        for (s, service) in o.services.iter().enumerate() {
            self.coverage.planned(&service.name, o.time, lead(s), planned_demand[s].iter().sum());
        }
        let planned = routing::assign(o, &[], &candidates, &planned_demand, &mut routing::Room::of(o));
        self.shares = planned
            .iter()
            .zip(&planned_demand)
            .map(|(rows, d)| {
                rows.iter()
                    .zip(d)
                    .map(|(row, &total)| {
                        row.iter().map(|x| if total > 0.0 { x / total } else { 0.0 }).collect()
                    })
                    .collect()
            })
            .collect();

        let replicas = self.replicas(o, f, guardrails, &planned, &lead);
        let mut decisions = self.route(o, f, &candidates, &replicas, &super::Evicted::new());
        decisions.extend(replicas);
        decisions
    }

    /// Replaces the routing of a plan whose node releases stop `evicted` serving replicas by
    /// routing planned without them, first as routing goes; the rest of `decisions` is kept.
    /// Routing is planned from the same inputs as before, so only what the releases change
    /// differs.
    pub fn reroute(
        &self,
        o: &Observation,
        f: &Forecasts,
        decisions: &mut Vec<Decision>,
        evicted: &super::Evicted,
        rank: &dyn Fn(usize, usize, usize) -> f64,
    ) {
        if evicted.is_empty() {
            return;
        }
        let routes = self.route(o, f, &routing::candidates(o, &[], rank), decisions, evicted);
        decisions.retain(|d| !matches!(d.action, Action::SetRouting { .. }));
        decisions.splice(0..0, routes);
    }

    /// Routing for the coming step: its demand, over the replicas that serve during it — those
    /// ready now, less any `replicas` removes or `evicted` stops.
    fn route(
        &self,
        o: &Observation,
        f: &Forecasts,
        candidates: &routing::Candidates,
        replicas: &[Decision],
        evicted: &super::Evicted,
    ) -> Vec<Decision> {
        let target =
            |s: usize, c: usize| super::replicas_set(replicas, &o.services[s].name, &o.clusters[c].name);
        let now_demand: Vec<Vec<f64>> = (0..o.services.len())
            .map(|s| {
                (0..o.regions.len())
                    .map(|r| f.at(s, r, o.step_s, 0.5).max(o.services[s].demand_rps[r]))
                    .collect()
            })
            .collect();
        let mut decisions = Vec::new();
        let mut far_routed = vec![0.0; o.services.len()];
        for (s, service) in o.services.iter().enumerate() {
            let capacity: Vec<f64> = service
                .placements
                .iter()
                .enumerate()
                .map(|(c, p)| {
                    let stopped = evicted.get(&(service.name.clone(), o.clusters[c].name.clone()));
                    let serving = target(s, c)
                        .map_or(p.ready, |t| t.min(p.ready))
                        .saturating_sub(stopped.copied().unwrap_or(0));
                    if o.clusters[c].up {
                        rps_within(serving, service.service_ms, service.cpu_per_replica) * ROUTE_UTILISATION
                            / MAX_UTILISATION
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut serving = capacity.clone();
            let mut hotter: Vec<f64> =
                capacity.iter().map(|c| c * (HOT_UTILISATION / ROUTE_UTILISATION - 1.0)).collect();
            // Regions with fewer clusters in reach take their share of those first.
            let mut order: Vec<usize> = (0..o.regions.len()).collect();
            order.sort_by_key(|&r| (candidates[s][r].len(), r));
            for r in order {
                let region = &o.regions[r];
                let d = now_demand[s][r];
                let mut weights = vec![0.0; o.clusters.len()];
                let mut left = d;
                // Over the candidates in proportion to what their serving replicas take, so
                // each runs equally hot: demand a minute from now is not the forecast, and a
                // cluster filled to the brim by plan is the first to queue when it is higher.
                let reach: Vec<usize> = candidates[s][r]
                    .iter()
                    .copied()
                    .filter(|&c| {
                        feasible(o.clusters[c].rtt_ms[r], service.slo_p95_ms, service.service_ms, 1.0)
                    })
                    .collect();
                let room: f64 = reach.iter().map(|&c| serving[c].max(0.0)).sum();
                if room > 0.0 {
                    let taken = left.min(room);
                    for &c in &reach {
                        let take = taken * serving[c].max(0.0) / room;
                        weights[c] += take;
                        serving[c] -= take;
                    }
                    left -= taken;
                }
                // Beyond the routing utilisation, the slowest few per cent may travel: clusters
                // out of the SLO's reach with idle replicas take up to what leaves the p95
                // alone (nearest first); then the candidates run hotter; then, since a request
                // served slowly beats one dropped, the far clusters take what they can.
                let total_demand: f64 = now_demand[s].iter().sum();
                let mut further: Vec<usize> =
                    (0..o.clusters.len()).filter(|c| !reach.contains(c) && serving[*c] > 0.0).collect();
                further.sort_by(|&a, &b| o.clusters[a].rtt_ms[r].total_cmp(&o.clusters[b].rtt_ms[r]));
                let mut slow = (routing::SLOW_SHARE * total_demand - far_routed[s]).max(0.0);
                for &c in &further {
                    let take = left.min(serving[c]).min(slow);
                    weights[c] += take;
                    serving[c] -= take;
                    left -= take;
                    slow -= take;
                    far_routed[s] += take;
                }
                for &c in &reach {
                    let take = left.min(hotter[c].max(0.0));
                    weights[c] += take;
                    hotter[c] -= take;
                    left -= take;
                }
                for &c in &further {
                    let take = left.min(serving[c]);
                    weights[c] += take;
                    serving[c] -= take;
                    left -= take;
                }
                // More than the serving replicas take at the routing utilisation: spread the
                // rest over the candidates by what they serve, so they run equally hot; a
                // cluster whose replicas are still starting would only drop it. With nothing
                // serving anywhere, follow the plan, which is where capacity is coming.
                let spread = |left: f64, weights: &mut [f64]| {
                    let list = &candidates[s][r];
                    let total: f64 = list.iter().map(|&c| capacity[c]).sum();
                    let planned_total: f64 = self.shares[s][r].iter().sum();
                    for (c, w) in weights.iter_mut().enumerate() {
                        let share = if total > 0.0 {
                            if list.contains(&c) { capacity[c] / total } else { 0.0 }
                        } else if planned_total > 0.0 {
                            self.shares[s][r][c] / planned_total
                        } else {
                            0.0
                        };
                        *w += left * share;
                    }
                };
                if left > 0.0 {
                    spread(left, &mut weights);
                }
                if weights.iter().sum::<f64>() <= 0.0 {
                    // Nothing expected: the first requests that come still need a route to
                    // replicas that serve (within reach, as any demand would take them), not
                    // one to a cluster this plan empties.
                    let room: f64 = reach.iter().map(|&c| capacity[c]).sum();
                    if room > 0.0 {
                        reach.iter().for_each(|&c| weights[c] = capacity[c] / room);
                    } else {
                        spread(1.0, &mut weights);
                    }
                }
                let total: f64 = weights.iter().sum();
                if total <= 0.0 {
                    continue;
                }
                weights.iter_mut().for_each(|w| *w /= total);
                let moved =
                    weights.iter().zip(&service.routing[r]).any(|(a, b)| (a - b).abs() > ROUTING_TOLERANCE);
                if !moved {
                    continue;
                }
                let summary = format!(
                    "route {region}'s {} requests: {}; edge first within the {:.0} ms SLO, overflow to the cloud",
                    service.name,
                    weights
                        .iter()
                        .enumerate()
                        .filter(|(_, w)| **w > 0.0)
                        .map(|(c, w)| format!("{} {:.0} %", o.clusters[c].name, w * 100.0))
                        .collect::<Vec<_>>()
                        .join(", "),
                    service.slo_p95_ms
                );
                decisions.push(Decision {
                    action: super::routing_action(o, s, r, &weights),
                    reason: Reason {
                        summary,
                        plugins: f.by.clone(),
                        quantile: Some(0.5),
                        horizon_s: Some(o.step_s),
                        forecast: Some(d),
                        observed: Some(service.demand_rps[r]),
                        guardrail: None,
                    },
                });
            }
        }
        decisions
    }

    fn replicas(
        &mut self,
        o: &Observation,
        f: &Forecasts,
        guardrails: &Guardrails,
        planned: &Assignment,
        lead: &dyn Fn(usize) -> u32,
    ) -> Vec<Decision> {
        let sized: Vec<Vec<u32>> = o
            .services
            .iter()
            .enumerate()
            .map(|(s, service)| {
                (0..o.clusters.len())
                    .map(|c| {
                        let budget = budget_ms(o, s, c, planned) / self.stretch[s];
                        replicas_for_slo(
                            cluster_load(planned, s, c),
                            service.service_ms,
                            service.cpu_per_replica,
                            budget,
                        )
                    })
                    .collect()
            })
            .collect();
        let spare = edge_spare(o, &sized);
        let mut decisions = Vec::new();
        for (s, service) in o.services.iter().enumerate() {
            let lead = lead(s);
            let bounds = guardrails.bounds(&service.name);
            for (c, cluster) in o.clusters.iter().enumerate() {
                if !cluster.up {
                    continue;
                }
                let placement = &service.placements[c];
                let current = placement.total();
                let forecast = cluster_load(planned, s, c);
                let observed = placement.arrival_rps;
                if forecast <= 0.0 && observed <= 0.0 && current == 0 {
                    continue;
                }
                let budget = budget_ms(o, s, c, planned);
                let by_forecast = sized[s][c] + spare[s][c];
                let by_observed = replicas_for_slo(
                    observed,
                    service.service_ms,
                    service.cpu_per_replica,
                    budget / self.stretch[s],
                );
                // Scale out on whichever is larger; scale in only when both agree, unless the
                // operator allows a forecast alone to scale in.
                let mut target = by_forecast.max(by_observed);
                if guardrails.scale_in_on_forecast && by_forecast < current {
                    target = by_forecast;
                }
                // Scale-in is stabilised as the HPA's is: down only to the highest target of
                // the last cooldown window, so a minute's dip in noisy demand does not take
                // replicas that the next minute needs back and cannot have in time.
                let window = self.recent.entry((service.name.clone(), cluster.name.clone())).or_default();
                window.push_back((o.time, target));
                while window
                    .front()
                    .is_some_and(|&(t, _)| t <= o.time - guardrails.scale_in_cooldown_s as i64)
                {
                    window.pop_front();
                }
                if target < current {
                    target = window.iter().map(|&(_, n)| n).max().unwrap_or(target).min(current);
                }
                let routed = forecast > 0.0 || observed > 0.0;
                let mut clipped = None;
                if routed && target < bounds.min_replicas {
                    target = bounds.min_replicas;
                    clipped = Some(format!("min-replicas {}", bounds.min_replicas));
                }
                if target > bounds.max_replicas {
                    target = bounds.max_replicas;
                    clipped = Some(format!("max-replicas {}", bounds.max_replicas));
                }
                let holdable = holdable(cluster, service.cpu_per_replica);
                if target > holdable {
                    target = holdable;
                    clipped = Some(format!("{} holds at most {holdable} replicas", cluster.name));
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
                    "{} replicas of {} in {}: {current} → {target}; p{:.0} forecast {forecast:.1} req/s routed here in {lead} s, observed {observed:.1} req/s, p95 kept within {budget:.0} ms",
                    if target > current { "add" } else { "remove" },
                    service.name,
                    cluster.name,
                    QUANTILE * 100.0,
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
pub(crate) mod tests {
    use super::*;
    use crate::observe::{ClusterView, Placement, PoolView, ServiceView};

    /// One region, one cloud cluster 20 ms away, one service (20 ms per request, SLO 200 ms)
    /// with `current` ready replicas receiving `observed` req/s.
    pub(crate) fn world(current: u32, observed: f64) -> Observation {
        let offering = foresight_sdk::Offering {
            name: "m".into(),
            vcpu: 4.0,
            memory_gib: 16.0,
            hourly_price: 0.2,
            max_nodes: 100,
            lead_time_s: 240,
            ..Default::default()
        };
        Observation {
            time: 0,
            step_s: 60,
            regions: vec!["eu".into()],
            clusters: vec![ClusterView {
                name: "cloud".into(),
                kind: ClusterKind::Cloud,
                up: true,
                rtt_ms: vec![20.0],
                peer_rtt_ms: vec![],
                pools: vec![PoolView { offering, ready: 10, provisioning: 0 }],
                cpu_capacity: 40.0,
                cpu_allocated: 0.0,
                pending_pods: 0,
            }],
            services: vec![ServiceView {
                name: "web".into(),
                slo_p95_ms: 200.0,
                service_ms: 20.0,
                cpu_per_replica: 1.0,
                memory_gib_per_replica: 1.0,
                startup_s: 60,
                demand_rps: vec![observed],
                placements: vec![Placement {
                    ready: current,
                    starting: 0,
                    pending: 0,
                    arrival_rps: observed,
                    utilisation: 0.0,
                }],
                routing: vec![vec![1.0]],
                p95_ms: 0.0,
                dropped_rps: 0.0,
            }],
            events: vec![],
        }
    }

    /// The same forecast at every lead and quantile.
    fn flat(rps: f64) -> Forecasts {
        Forecasts {
            horizons: vec![60, 300, 900, 3600],
            quantiles: vec![0.1, 0.5, 0.9],
            demand: vec![vec![vec![rps; 12]]],
            by: vec!["test@0".into()],
            fallback_from: None,
            refreshed: 1,
        }
    }

    fn replicas(decisions: &[Decision]) -> Option<u32> {
        decisions.iter().find_map(|d| match d.action {
            Action::SetReplicas { replicas, .. } => Some(replicas),
            _ => None,
        })
    }

    fn plan(p: &mut ReplicaPlanner, o: &Observation, f: &Forecasts, g: &Guardrails) -> Vec<Decision> {
        p.plan(o, f, g, &|_, r, c| o.clusters[c].rtt_ms[r])
    }

    #[test]
    fn replicas_cover_demand_at_the_utilisation() {
        // 100 req/s × 20 ms = 2 busy servers; at 70 % that is 2.86 → 3 single-core replicas.
        assert_eq!(replicas_at(100.0, 20.0, 1.0, 0.7), 3);
        // Two-core replicas serve two requests at once.
        assert_eq!(replicas_at(100.0, 20.0, 2.0, 0.7), 2);
        assert_eq!(replicas_at(0.0, 20.0, 1.0, 0.7), 0);
    }

    #[test]
    fn scale_out_acts_on_the_larger_of_forecast_and_observed() {
        let g = Guardrails::default();
        let want = replicas_for_slo(500.0, 20.0, 1.0, SLO_MARGIN * 200.0 - 20.0);
        // The forecast says 100 req/s, 500 are arriving: size for 500.
        let d = plan(&mut ReplicaPlanner::default(), &world(2, 500.0), &flat(100.0), &g);
        assert_eq!(replicas(&d), Some(want));
        // And the other way round.
        let d = plan(&mut ReplicaPlanner::default(), &world(2, 100.0), &flat(500.0), &g);
        assert_eq!(replicas(&d), Some(want));
    }

    #[test]
    fn a_forecast_alone_does_not_scale_in_unless_allowed() {
        let mut g = Guardrails::default();
        let by_observed = replicas_for_slo(300.0, 20.0, 1.0, SLO_MARGIN * 200.0 - 20.0);
        // 20 replicas, 300 req/s arriving, the forecast says 10: only down to what 300 need.
        let d = plan(&mut ReplicaPlanner::default(), &world(20, 300.0), &flat(10.0), &g);
        assert_eq!(replicas(&d), Some(by_observed));
        g.scale_in_on_forecast = true;
        let d = plan(&mut ReplicaPlanner::default(), &world(20, 300.0), &flat(10.0), &g);
        assert_eq!(replicas(&d), Some(1));
    }

    #[test]
    fn steps_are_limited_and_scale_ins_cool_down() {
        let g = Guardrails { max_replica_change: 5, scale_in_cooldown_s: 300, ..Guardrails::default() };
        let mut p = ReplicaPlanner::default();
        let d = plan(&mut p, &world(2, 0.0), &flat(1000.0), &g);
        assert_eq!(replicas(&d), Some(7));
        assert_eq!(
            d.iter().find_map(|d| d.reason.guardrail.clone()).as_deref(),
            Some("max-replica-change 5")
        );
        // A scale-in at 0 s; the next one waits until 300 s.
        let mut p = ReplicaPlanner::default();
        let mut o = world(20, 0.0);
        assert_eq!(replicas(&plan(&mut p, &o, &flat(0.0), &g)), Some(15));
        o.time = 240;
        o.services[0].placements[0].ready = 15;
        assert_eq!(replicas(&plan(&mut p, &o, &flat(0.0), &g)), None);
        o.time = 300;
        assert_eq!(replicas(&plan(&mut p, &o, &flat(0.0), &g)), Some(10));
    }

    #[test]
    fn a_dip_scales_in_only_to_the_highest_target_of_the_window() {
        let g = Guardrails { max_replica_change: 100, scale_in_cooldown_s: 300, ..Guardrails::default() };
        let mut p = ReplicaPlanner::default();
        let mut o = world(2, 0.0);
        let busy = replicas(&plan(&mut p, &o, &flat(1000.0), &g)).expect("scaled out");
        // A minute later demand dips: the target of a minute ago still holds.
        o.time = 60;
        o.services[0].placements[0].ready = busy;
        assert_eq!(replicas(&plan(&mut p, &o, &flat(100.0), &g)), None);
        // Once the busy minute has left the window, down to what the dip needs.
        o.time = 300;
        let quiet = replicas(&plan(&mut p, &o, &flat(100.0), &g)).expect("scaled in");
        assert!(quiet < busy, "{quiet} < {busy}");
    }

    #[test]
    fn max_replicas_and_cluster_size_bound_the_target() {
        let g = Guardrails {
            bounds: crate::config::Bounds { min_replicas: 1, max_replicas: 8 },
            max_replica_change: 100,
            ..Guardrails::default()
        };
        let d = plan(&mut ReplicaPlanner::default(), &world(2, 0.0), &flat(5000.0), &g);
        assert_eq!(replicas(&d), Some(8));
        let mut o = world(2, 0.0);
        o.clusters[0].pools[0].offering.max_nodes = 3;
        let g = Guardrails { max_replica_change: 100, ..Guardrails::default() };
        let d = plan(&mut ReplicaPlanner::default(), &o, &flat(5000.0), &g);
        // Three 4-core nodes hold twelve single-core replicas at most.
        assert_eq!(replicas(&d), Some(12));
    }

    #[test]
    fn beyond_every_candidate_idle_replicas_further_away_serve_rather_than_drop() {
        let g = Guardrails::default();
        // eu's cluster has one replica for 200 req/s; ap's cluster, 150 ms from eu and out of
        // the SLO's reach, has ten replicas and little to do.
        let mut o = world(1, 200.0);
        o.regions.push("ap".into());
        o.clusters[0].rtt_ms.push(150.0);
        let mut far = o.clusters[0].clone();
        far.name = "far".into();
        far.rtt_ms = vec![150.0, 10.0];
        o.clusters.push(far);
        let service = &mut o.services[0];
        service.demand_rps = vec![200.0, 10.0];
        service.placements.push(Placement {
            ready: 10,
            starting: 0,
            pending: 0,
            arrival_rps: 10.0,
            utilisation: 0.1,
        });
        service.routing = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let mut f = flat(0.0);
        f.demand = vec![vec![vec![200.0; 12], vec![10.0; 12]]];
        let d = plan(&mut ReplicaPlanner::default(), &o, &f, &g);
        let eu = d.iter().find_map(|d| match &d.action {
            Action::SetRouting { region, weights, .. } if region == "eu" => Some(weights.clone()),
            _ => None,
        });
        let eu = eu.expect("eu is re-routed");
        assert!(eu.iter().any(|(c, w)| c == "far" && *w > 0.0), "{eu:?}");
        assert!(eu.iter().any(|(c, w)| c == "cloud" && *w > 0.0), "{eu:?}");
    }

    /// `o` with a cluster "near" (5 ms away) before its own, where `web` has `placement`, and
    /// `web`'s requests split evenly between the two.
    fn with_near(mut o: Observation, placement: Placement) -> Observation {
        let mut near = o.clusters[0].clone();
        near.name = "near".into();
        near.rtt_ms = vec![5.0];
        o.clusters.insert(0, near);
        o.services[0].placements.insert(0, placement);
        o.services[0].routing = vec![vec![0.5, 0.5]];
        o
    }

    #[test]
    fn requests_go_only_to_replicas_that_serve() {
        let g = Guardrails::default();
        // Two clusters, the nearer with no replica ready yet: everything goes to the other.
        let idle = Placement { ready: 0, starting: 2, pending: 0, arrival_rps: 0.0, utilisation: 0.0 };
        let o = with_near(world(4, 50.0), idle);
        let d = plan(&mut ReplicaPlanner::default(), &o, &flat(50.0), &g);
        let routed = d.iter().find_map(|d| match &d.action {
            Action::SetRouting { weights, .. } => Some(weights.clone()),
            _ => None,
        });
        assert_eq!(routed, Some(vec![("cloud".to_owned(), 1.0)]));
    }

    #[test]
    fn replicas_a_node_release_stops_are_sent_no_requests() {
        let g = Guardrails::default();
        // Two clusters serving `web` equally; node planning then releases the node that holds
        // every replica of the nearer one.
        let serving = Placement { ready: 4, starting: 0, pending: 0, arrival_rps: 25.0, utilisation: 0.0 };
        let o = with_near(world(4, 50.0), serving);
        let rank = |_: usize, r: usize, c: usize| o.clusters[c].rtt_ms[r];
        let mut p = ReplicaPlanner::default();
        let d = p.plan(&o, &flat(50.0), &g, &rank);
        let to = |d: &[Decision]| {
            d.iter().find_map(|d| match &d.action {
                Action::SetRouting { weights, .. } => Some(weights.iter().map(|(c, _)| c.clone()).collect()),
                _ => None,
            })
        };
        // Without the release the split stands (no routing decision)...
        assert_eq!(to(&d), None, "{d:?}");
        let mut same = d.clone();
        p.reroute(&o, &flat(50.0), &mut same, &Default::default(), &rank);
        assert_eq!(same, d);
        // ...with it, every request goes to the replicas that still serve, routing first and
        // the replica decisions kept.
        let evicted = [(("web".to_owned(), "near".to_owned()), 4)].into();
        let mut rerouted = d.clone();
        p.reroute(&o, &flat(50.0), &mut rerouted, &evicted, &rank);
        assert_eq!(to(&rerouted), Some(vec!["cloud".to_owned()]), "{rerouted:?}");
        assert!(matches!(rerouted[0].action, Action::SetRouting { .. }));
        assert_eq!(&rerouted[1..], &d[..]);
    }

    #[test]
    fn with_nothing_expected_requests_still_go_where_replicas_serve() {
        let g = Guardrails::default();
        let mut p = ReplicaPlanner::default();
        // A quiet evening: the cloud scales in to one replica, which its cooldown then keeps.
        plan(&mut p, &world(3, 1.0), &flat(1.0), &g);
        // Night: nothing arrives or is forecast, and the routing still sends half the requests
        // to "near", whose last replica this plan removes. The first request of the morning
        // must go to the replica that still serves.
        let last = Placement { ready: 1, starting: 0, pending: 0, arrival_rps: 0.0, utilisation: 0.0 };
        let mut o = with_near(world(1, 0.0), last);
        o.time = 60;
        let d = plan(&mut p, &o, &flat(0.0), &g);
        assert!(
            d.iter().any(|d| matches!(&d.action,
                Action::SetReplicas { cluster, replicas: 0, .. } if cluster == "near")),
            "{d:?}"
        );
        let routed = d.iter().find_map(|d| match &d.action {
            Action::SetRouting { weights, .. } => Some(weights.clone()),
            _ => None,
        });
        assert_eq!(routed, Some(vec![("cloud".to_owned(), 1.0)]));
    }
}
