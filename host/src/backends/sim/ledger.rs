//! Accounting: what each tick cost and how well it served, and the running totals.

use serde::Serialize;

/// One tick's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TickReport {
    /// Start of the tick, Unix seconds.
    pub time: i64,
    /// Spend over the tick (node-hours × price).
    pub cost: f64,
    /// p95 latency per service, ms (infinite when nothing served it).
    pub p95_ms: Vec<f64>,
    /// Whether each service missed its SLO this tick.
    pub slo_violated: Vec<bool>,
    /// Requests per second offered, over all services.
    pub offered_rps: f64,
    /// Requests per second dropped (no serving replica, cluster down, or beyond capacity).
    pub dropped_rps: f64,
    /// Allocated / capacity cores per cluster (services and batch), 0 when it has no nodes.
    pub utilisation: Vec<f64>,
    /// Service pods waiting for a node at the end of the tick.
    pub pending_pods: u32,
    /// Spot nodes interrupted during the tick.
    pub interruptions: u32,
}

/// Totals over a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ledger {
    /// Ticks simulated.
    pub ticks: u64,
    /// Total spend.
    pub cost: f64,
    /// Minutes each service spent over its SLO.
    pub slo_violation_minutes: Vec<f64>,
    /// Requests offered.
    pub offered_requests: f64,
    /// Requests dropped.
    pub dropped_requests: f64,
    /// Spot interruptions.
    pub interruptions: u64,
    /// Pod-minutes spent pending.
    pub pending_pod_minutes: f64,
}

impl Ledger {
    /// An empty ledger for `services` services.
    pub fn new(services: usize) -> Self {
        Self { slo_violation_minutes: vec![0.0; services], ..Self::default() }
    }

    /// Adds one tick of `step_s` seconds.
    pub fn record(&mut self, tick: &TickReport, step_s: u32) {
        let minutes = f64::from(step_s) / 60.0;
        self.ticks += 1;
        self.cost += tick.cost;
        for (total, violated) in self.slo_violation_minutes.iter_mut().zip(&tick.slo_violated) {
            if *violated {
                *total += minutes;
            }
        }
        self.offered_requests += tick.offered_rps * f64::from(step_s);
        self.dropped_requests += tick.dropped_rps * f64::from(step_s);
        self.interruptions += u64::from(tick.interruptions);
        self.pending_pod_minutes += f64::from(tick.pending_pods) * minutes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_by_hand() {
        let mut ledger = Ledger::new(2);
        let tick = TickReport {
            time: 0,
            cost: 0.5,
            p95_ms: vec![100.0, 300.0],
            slo_violated: vec![false, true],
            offered_rps: 10.0,
            dropped_rps: 1.0,
            utilisation: vec![0.5],
            pending_pods: 3,
            interruptions: 1,
        };
        ledger.record(&tick, 60);
        ledger.record(&tick, 60);
        assert_eq!(ledger.ticks, 2);
        assert!((ledger.cost - 1.0).abs() < 1e-12);
        assert_eq!(ledger.slo_violation_minutes, vec![0.0, 2.0]);
        assert_eq!((ledger.offered_requests, ledger.dropped_requests), (1200.0, 120.0));
        assert_eq!((ledger.interruptions, ledger.pending_pod_minutes), (2, 6.0));
    }
}
