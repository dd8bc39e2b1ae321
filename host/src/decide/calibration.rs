//! Latency calibration: how much slower each service's requests really are than the planner's
//! M/M/c model says, learnt from the p95 the backend measures.
//!
//! The planner sizes replicas with an M/M/c queue (exponential service times). Real services
//! are rarely exponential: a heavy-tailed service time makes both the service and the wait
//! longer in the tail than the model predicts, and the model then puts too few replicas where
//! it matters most (small deployments, where a single slow request holds a server). After each
//! step, the model is run again on what actually happened — the routing, the ready replicas and
//! the demand of that step — with every response time stretched by a factor `k` (requests
//! arriving at rate λ/k served in k·s, which keeps the utilisation and scales the response
//! time distribution by exactly `k`), and `k` is solved for so that the model's p95 equals the
//! measured one. The planner then reads `k` as a smoothed, per-service correction: a replica
//! count must keep the stretched p95 within the latency budget, and a route counts as within
//! the SLO's reach only with its stretched unqueued p95.
//!
//! The correction is a single number, not a model of the service time distribution: it is
//! right at the operating point it was measured at and approximately so nearby, and it keeps
//! learning. Steps that say nothing about latency (no demand, requests dropped, nothing
//! measured, a request routed where nothing serves) are skipped.

use std::collections::HashMap;

use crate::latency::serve;
use crate::observe::Observation;

/// Smallest and largest correction: beyond them the measurement says more about something
/// the model does not know (a saturated cluster, a network problem) than about service times.
pub const MIN_FACTOR: f64 = 0.5;
/// See [`MIN_FACTOR`].
pub const MAX_FACTOR: f64 = 8.0;
/// Weight of each new measurement in the smoothed (log) factor: about the last 20 steps.
const SMOOTHING: f64 = 0.1;
/// Steps with more than this share of requests dropped are about capacity, not latency.
const MAX_DROPPED: f64 = 0.01;
/// Bisection steps on ln k: the bracket of ln 16 shrinks to under 0.1 %.
const STEPS: u32 = 12;

/// Per-service response-time factors, learnt from measured p95.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    log_factor: HashMap<String, f64>,
}

/// p95 (ms) of service `s` over the last step with every response time stretched by `k`.
fn stretched_p95(o: &Observation, s: usize, k: f64) -> f64 {
    let service = &o.services[s];
    let per_replica = service.cpu_per_replica.floor().max(1.0) as u32;
    let servers: Vec<u32> = o
        .clusters
        .iter()
        .zip(&service.placements)
        .map(|(c, p)| if c.up { p.ready * per_replica } else { 0 })
        .collect();
    let demand: Vec<f64> = service.demand_rps.iter().map(|d| d / k).collect();
    let rtt = |c: usize, r: usize| o.clusters[c].rtt_ms[r];
    serve(&demand, &service.routing, &servers, service.service_ms * k / 1000.0, 1.0, rtt, &mut Vec::new())
        .p95_ms
}

/// The factor that makes the model's p95 for the last step equal the measured one, if the
/// step says anything about latency.
pub fn measure(o: &Observation, s: usize) -> Option<f64> {
    let service = &o.services[s];
    let total: f64 = service.demand_rps.iter().sum();
    let measured = service.p95_ms;
    if total <= 0.0 || !measured.is_finite() || measured <= 0.0 || service.dropped_rps > MAX_DROPPED * total {
        return None;
    }
    let at = |ln_k: f64| stretched_p95(o, s, ln_k.exp());
    let (mut lo, mut hi) = (MIN_FACTOR.ln(), MAX_FACTOR.ln());
    let (low, high) = (at(lo), at(hi));
    if !low.is_finite() {
        return None;
    }
    if low >= measured {
        return Some(MIN_FACTOR);
    }
    if high.is_finite() && high <= measured {
        return Some(MAX_FACTOR);
    }
    for _ in 0..STEPS {
        let mid = 0.5 * (lo + hi);
        if at(mid) < measured {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((0.5 * (lo + hi)).exp())
}

impl Calibration {
    /// Learns from the step the observation reports.
    pub fn observe(&mut self, o: &Observation) {
        for (s, service) in o.services.iter().enumerate() {
            let Some(k) = measure(o, s) else { continue };
            let entry = self.log_factor.entry(service.name.clone()).or_insert(0.0);
            *entry += SMOOTHING * (k.ln() - *entry);
        }
    }

    /// The response-time factor of a service (1 until something was measured).
    pub fn factor(&self, service: &str) -> f64 {
        self.log_factor.get(service).map_or(1.0, |l| l.exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planner's fixture: one region, one cloud cluster 20 ms away, `web` (20 ms per
    /// request) on four ready replicas, with `measured_p95`.
    fn world(demand: f64, measured_p95: f64) -> Observation {
        let mut o = crate::decide::replicas::tests::world(4, demand);
        o.services[0].p95_ms = measured_p95;
        o
    }

    #[test]
    fn a_measurement_the_model_gets_right_gives_one_and_a_slower_one_more() {
        let o = world(100.0, 0.0);
        let model = stretched_p95(&o, 0, 1.0);
        let k = measure(&world(100.0, model), 0).unwrap();
        assert!((k - 1.0).abs() < 2e-3, "{k}");
        // Twice the response time on top of the round trip: k = 2.
        let k = measure(&world(100.0, 20.0 + 2.0 * (model - 20.0)), 0).unwrap();
        assert!((k - 2.0).abs() < 5e-3, "{k}");
    }

    #[test]
    fn steps_that_say_nothing_about_latency_teach_nothing() {
        assert_eq!(measure(&world(0.0, 50.0), 0), None, "no demand");
        assert_eq!(measure(&world(100.0, 0.0), 0), None, "nothing measured");
        let mut o = world(100.0, 80.0);
        o.services[0].dropped_rps = 5.0;
        assert_eq!(measure(&o, 0), None, "requests dropped");
        assert_eq!(measure(&world(100.0, 5000.0), 0), Some(MAX_FACTOR));
    }

    #[test]
    fn the_factor_is_smoothed_per_service() {
        let mut c = Calibration::default();
        assert_eq!(c.factor("web"), 1.0);
        let model = stretched_p95(&world(100.0, 0.0), 0, 1.0);
        let slow = world(100.0, 20.0 + 2.0 * (model - 20.0));
        for _ in 0..100 {
            c.observe(&slow);
        }
        assert!((c.factor("web") - 2.0).abs() < 0.01, "{}", c.factor("web"));
        c.observe(&world(100.0, model));
        assert!(c.factor("web") > 1.8, "one step moves it a tenth of the way (in log)");
        assert_eq!(c.factor("api"), 1.0);
    }
}
