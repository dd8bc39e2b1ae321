//! Performance-impact prediction: the p95 latency each service should see over the next step
//! once a plan is applied, from the queueing model, so it can be compared afterwards with what
//! was measured.

use super::Plan;
use crate::act::Action;
use crate::latency::serve;
use crate::observe::Observation;
use crate::predict::Forecasts;

/// Predicted p95 per service, ms, over the step after `plan`: its routing, the replicas that
/// serve during the step (ready ones, fewer where the plan scales in or its node releases stop
/// them, `evicted`) and the median forecast demand one step ahead. Infinite where demand would
/// find no serving replica.
pub fn predict_p95(
    o: &Observation,
    plan: &Plan,
    evicted: &super::Evicted,
    f: &Forecasts,
    stretch: &[f64],
) -> Vec<f64> {
    o.services
        .iter()
        .enumerate()
        .map(|(s, service)| {
            let mut routing = service.routing.clone();
            let mut serving: Vec<u32> = service.placements.iter().map(|p| p.ready).collect();
            for (c, cluster) in o.clusters.iter().enumerate() {
                if let Some(n) = evicted.get(&(service.name.clone(), cluster.name.clone())) {
                    serving[c] = serving[c].saturating_sub(*n);
                }
            }
            for d in &plan.decisions {
                match &d.action {
                    Action::SetRouting { service: n, region, weights } if *n == service.name => {
                        let (Some(r), total) = (
                            o.regions.iter().position(|x| x == region),
                            weights.iter().map(|w| w.1).sum::<f64>(),
                        ) else {
                            continue;
                        };
                        let mut row = vec![0.0; o.clusters.len()];
                        for (cluster, w) in weights {
                            if let Some(c) = o.clusters.iter().position(|x| x.name == *cluster) {
                                row[c] += w / total;
                            }
                        }
                        routing[r] = row;
                    }
                    Action::SetReplicas { service: n, cluster, replicas } if *n == service.name => {
                        if let Some(c) = o.clusters.iter().position(|x| x.name == *cluster) {
                            serving[c] = serving[c].min(*replicas);
                        }
                    }
                    _ => {}
                }
            }
            let demand: Vec<f64> = (0..o.regions.len()).map(|r| f.at(s, r, o.step_s, 0.5)).collect();
            p95_of(o, s, &routing, &serving, &demand, super::sizing::stretch_of(stretch, s))
        })
        .collect()
}

/// p95 of service `s` with these routes, serving replicas and demand per region, every
/// response time `stretch` times the M/M/c model's (arrivals at λ/stretch served in
/// stretch·s: the same utilisation, the response time scaled).
pub fn p95_of(
    o: &Observation,
    s: usize,
    routing: &[Vec<f64>],
    serving: &[u32],
    demand: &[f64],
    stretch: f64,
) -> f64 {
    let service = &o.services[s];
    let servers_per_replica = service.cpu_per_replica.floor().max(1.0) as u32;
    let servers: Vec<u32> =
        o.clusters.iter().zip(serving).map(|(c, n)| if c.up { n * servers_per_replica } else { 0 }).collect();
    let rtt = |c: usize, r: usize| o.clusters[c].rtt_ms[r];
    let demand: Vec<f64> = demand.iter().map(|d| d / stretch).collect();
    // The planner's own model: M/M/c, stretched by what it has measured.
    serve(&demand, routing, &servers, service.service_ms * stretch / 1000.0, 1.0, rtt, &mut Vec::new()).p95_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::replicas::tests::world;

    #[test]
    fn replicas_a_release_stops_are_not_counted_as_serving() {
        let o = world(4, 100.0);
        let f = Forecasts {
            horizons: vec![60],
            quantiles: vec![0.1, 0.5, 0.9],
            demand: vec![vec![vec![100.0; 3]]],
            by: vec!["test@0".into()],
            fallback_from: None,
            refreshed: 1,
        };
        let plan = Plan::default();
        let kept = predict_p95(&o, &plan, &Default::default(), &f, &[])[0];
        let three_left = [(("web".to_owned(), "cloud".to_owned()), 1)].into();
        let fewer = predict_p95(&o, &plan, &three_left, &f, &[])[0];
        let none_left = [(("web".to_owned(), "cloud".to_owned()), 4)].into();
        assert!(kept.is_finite() && fewer.is_finite() && fewer > kept, "{kept} {fewer}");
        assert!(predict_p95(&o, &plan, &none_left, &f, &[])[0].is_infinite());
    }
}
