//! What one policy's run looked like step by step: the series the report's figures and plots
//! are made from.

use crate::backends::sim::{Scenario, TickReport};
use crate::decide::replicas_at;
use crate::observe::{ClusterKind, Observation};
use crate::predict::Forecasts;

/// Lead of the forecast band drawn over demand, seconds.
pub const BAND_LEAD_S: u32 = 900;
/// Lead of the forecast floor commitment advice reads, seconds.
pub const FLOOR_LEAD_S: u32 = 3600;

/// One service's series.
#[derive(Debug, Clone, Default)]
pub struct ServiceSeries {
    /// Requests/s offered over the step.
    pub demand: Vec<f64>,
    /// Requests/s the serving replicas could take before dropping.
    pub capacity: Vec<f64>,
    /// Measured p95 latency, ms (infinite when nothing served it).
    pub p95_ms: Vec<f64>,
    /// Requests/s dropped.
    pub dropped: Vec<f64>,
    /// Whether the SLO was missed.
    pub violated: Vec<bool>,
    /// p10, p50, p90 of total demand forecast for `BAND_LEAD_S` after the step (NaN without
    /// forecasts).
    pub band: Vec<[f64; 3]>,
    /// p95 the plan was predicted to give for the step (NaN without a prediction).
    pub predicted_p95_ms: Vec<f64>,
}

/// Every series of a run, one value per step.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Step start, Unix seconds.
    pub time: Vec<i64>,
    /// Per service.
    pub services: Vec<ServiceSeries>,
    /// Spend over the step.
    pub cost: Vec<f64>,
    /// Cores busy serving requests.
    pub busy_cores: Vec<f64>,
    /// Cores on ready nodes.
    pub capacity_cores: Vec<f64>,
    /// Cores on ready cloud nodes.
    pub cloud_cores: Vec<f64>,
    /// Cores the services need in the cloud at the p10 forecast an hour ahead (NaN without
    /// forecasts): the floor commitments are sized from.
    pub floor_cores: Vec<f64>,
    /// Spot interruptions.
    pub interruptions: Vec<u32>,
}

impl Timeline {
    /// An empty timeline for a scenario's services.
    pub fn new(scenario: &Scenario) -> Self {
        Self { services: vec![ServiceSeries::default(); scenario.services.len()], ..Self::default() }
    }

    /// Records one step: the observation before it, the one after it, what it measured, and
    /// the forecasts and latency prediction the policy acted on.
    pub fn record(
        &mut self,
        before: &Observation,
        after: &Observation,
        step: &TickReport,
        forecasts: Option<&Forecasts>,
        predicted: Option<&[f64]>,
    ) {
        self.time.push(before.time);
        self.cost.push(step.cost);
        self.interruptions.push(step.interruptions);
        let mut busy = 0.0;
        let mut floor = 0.0;
        for (s, service) in after.services.iter().enumerate() {
            let series = &mut self.services[s];
            let servers = service.cpu_per_replica.floor().max(1.0);
            let demand: f64 = service.demand_rps.iter().sum();
            let ready: u32 = service
                .placements
                .iter()
                .zip(&after.clusters)
                .filter(|(_, c)| c.up)
                .map(|(p, _)| p.ready)
                .sum();
            busy +=
                service.placements.iter().map(|p| p.utilisation * f64::from(p.ready) * servers).sum::<f64>();
            series.demand.push(demand);
            series.dropped.push(service.dropped_rps);
            series.capacity.push(
                f64::from(ready) * servers * crate::latency::MAX_UTILISATION * 1000.0 / service.service_ms,
            );
            series.p95_ms.push(step.p95_ms[s]);
            series.violated.push(step.slo_violated[s]);
            series.predicted_p95_ms.push(predicted.map_or(f64::NAN, |p| p[s]));
            let band = match forecasts {
                Some(f) => {
                    let at = |q| (0..before.regions.len()).map(|r| f.at(s, r, BAND_LEAD_S, q)).sum::<f64>();
                    let cloud_share: f64 = {
                        // The share of the service's demand routed to the cloud now.
                        let total: f64 = service.demand_rps.iter().sum();
                        if total > 0.0 {
                            service
                                .routing
                                .iter()
                                .zip(&service.demand_rps)
                                .map(|(row, d)| {
                                    d * row
                                        .iter()
                                        .zip(&after.clusters)
                                        .filter(|(_, c)| c.kind == ClusterKind::Cloud)
                                        .map(|(w, _)| w)
                                        .sum::<f64>()
                                })
                                .sum::<f64>()
                                / total
                        } else {
                            1.0
                        }
                    };
                    let low: f64 = (0..before.regions.len()).map(|r| f.at(s, r, FLOOR_LEAD_S, 0.1)).sum();
                    // Sized as the planner sizes replicas, so the floor compares with the nodes held.
                    floor += f64::from(replicas_at(
                        low * cloud_share,
                        service.service_ms,
                        service.cpu_per_replica,
                        crate::decide::sizing::MAX_UTILISATION,
                    )) * service.cpu_per_replica;
                    [at(0.1), at(0.5), at(0.9)]
                }
                None => [f64::NAN; 3],
            };
            series.band.push(band);
        }
        self.busy_cores.push(busy);
        self.capacity_cores.push(after.clusters.iter().filter(|c| c.up).map(|c| c.cpu_capacity).sum());
        self.cloud_cores.push(
            after
                .clusters
                .iter()
                .filter(|c| c.up && c.kind == ClusterKind::Cloud)
                .map(|c| c.cpu_capacity)
                .sum(),
        );
        self.floor_cores.push(if forecasts.is_some() { floor } else { f64::NAN });
    }

    /// The series as CSV: one row per step, per service its demand, capacity, drops, p95 and
    /// whether the SLO was missed, then cost and cores.
    pub fn to_csv(&self, names: &[String]) -> String {
        let mut out = String::from("time");
        for n in names {
            out.push_str(&format!(
                ",{n}_demand_rps,{n}_capacity_rps,{n}_dropped_rps,{n}_p95_ms,{n}_violated"
            ));
        }
        out.push_str(",cost_usd,busy_cores,capacity_cores\n");
        for (i, t) in self.time.iter().enumerate() {
            out.push_str(&t.to_string());
            for s in &self.services {
                out.push_str(&format!(
                    ",{:.3},{:.3},{:.3},{:.3},{}",
                    s.demand[i],
                    s.capacity[i],
                    s.dropped[i],
                    s.p95_ms[i],
                    u8::from(s.violated[i])
                ));
            }
            out.push_str(&format!(
                ",{:.5},{:.3},{:.3}\n",
                self.cost[i], self.busy_cores[i], self.capacity_cores[i]
            ));
        }
        out
    }
}
