//! Replicas from the latency model: the fewest whose M/M/c queue keeps the p95 response time
//! within what the SLO leaves after the network round trip.

use crate::latency::Queue;

/// Highest utilisation replicas are sized for, whatever the latency budget allows: above it a
/// small surprise in demand turns into a long queue.
pub const MAX_UTILISATION: f64 = 0.7;
/// Share of the SLO a plan aims at, leaving room for forecast error.
pub const SLO_MARGIN: f64 = 0.8;

/// The p95 of a request's response time with no queue at all (exponential service), ms.
pub fn unqueued_p95_ms(service_ms: f64) -> f64 {
    service_ms * 20f64.ln()
}

/// Whether a route with round trip `rtt_ms` can meet the SLO at all (with the margin), for
/// response times `stretch` times the model's.
pub fn feasible(rtt_ms: f64, slo_ms: f64, service_ms: f64, stretch: f64) -> bool {
    rtt_ms + stretch * unqueued_p95_ms(service_ms) <= SLO_MARGIN * slo_ms
}

/// A service's response-time stretch from the calibration (`stretch[s]`, 1 when not given).
pub fn stretch_of(stretch: &[f64], s: usize) -> f64 {
    stretch.get(s).copied().unwrap_or(1.0)
}

/// Fewest replicas of `servers_per_replica` servers each that serve `rps` with a p95 response
/// within `budget_ms`, never above [`MAX_UTILISATION`]. When even an idle replica cannot meet
/// the budget, the answer is sized at the utilisation cap alone.
pub fn replicas_for_slo(rps: f64, service_ms: f64, cpu_per_replica: f64, budget_ms: f64) -> u32 {
    if rps <= 0.0 || service_ms <= 0.0 {
        return 0;
    }
    let servers = cpu_per_replica.floor().max(1.0) as u32;
    let service_time_s = service_ms / 1000.0;
    let mut n = ((rps * service_time_s) / (f64::from(servers) * MAX_UTILISATION)).ceil().max(1.0) as u32;
    if budget_ms <= unqueued_p95_ms(service_ms) {
        return n;
    }
    // p95 falls quickly with every replica added, so a few steps from the floor suffice.
    for _ in 0..10_000 {
        let q = Queue { arrival_rate: rps, service_time_s, servers: n * servers };
        if q.response_quantile(0.95) * 1000.0 <= budget_ms {
            return n;
        }
        n += 1;
    }
    n
}

/// Most requests/s `replicas` serve within `budget_ms` at p95 (and the utilisation cap).
pub fn rps_within(replicas: u32, service_ms: f64, cpu_per_replica: f64) -> f64 {
    let servers = cpu_per_replica.floor().max(1.0);
    f64::from(replicas) * servers * MAX_UTILISATION * 1000.0 / service_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_by_hand() {
        // M/M/1 response time is exponential with rate μ − λ: p95 = ln 20 / (μ − λ). At 10 ms
        // service and 50 req/s, μ − λ = 50/s and p95 = 59.9 ms.
        assert_eq!(replicas_for_slo(50.0, 10.0, 1.0, 60.0), 1);
        // A 40 ms budget needs a second server, which brings the p95 near the bare service
        // time (ln 20 × 10 ms = 30 ms) plus a little queueing.
        assert_eq!(replicas_for_slo(50.0, 10.0, 1.0, 40.0), 2);
    }

    #[test]
    fn the_utilisation_cap_holds_when_the_budget_is_loose() {
        // 1000 req/s × 10 ms = 10 busy servers: at most 70 % busy means 15.
        assert_eq!(replicas_for_slo(1000.0, 10.0, 1.0, 10_000.0), 15);
        // Two-server replicas: 8.
        assert_eq!(replicas_for_slo(1000.0, 10.0, 2.0, 10_000.0), 8);
        assert_eq!(replicas_for_slo(0.0, 10.0, 1.0, 100.0), 0);
    }

    #[test]
    fn feasibility_leaves_the_margin() {
        // 20 ms service: unqueued p95 59.9 ms. SLO 150 ms × 0.8 = 120 ms leaves 60 ms of RTT.
        assert!(feasible(60.0, 150.0, 20.0, 1.0));
        assert!(!feasible(61.0, 150.0, 20.0, 1.0));
        // Twice the model's response time: 120 ms at the edge of the SLO leaves nothing for RTT.
        assert!(!feasible(1.0, 150.0, 20.0, 2.0));
    }
}
