//! What the status page shows of one tick: each cluster's capacity, and each service's demand
//! beside the band the forecaster gave for the next step, its objective and its latency. Made
//! from the tick's own observation and forecasts, so the page shows what the loop decided on.

use serde::Serialize;

use crate::observe::Observation;
use crate::predict::Forecasts;

/// One tick, for the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TickView {
    /// Tick number.
    pub tick: u64,
    /// Observed time, Unix seconds.
    pub time: i64,
    /// Clusters, in observation order.
    pub clusters: Vec<ClusterPoint>,
    /// Services, in observation order.
    pub services: Vec<ServicePoint>,
}

/// A cluster's capacity at a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterPoint {
    /// Name.
    pub name: String,
    /// `edge` or `cloud`.
    pub kind: String,
    /// Reachable.
    pub up: bool,
    /// Ready nodes.
    pub nodes: u32,
    /// Nodes being provisioned.
    pub provisioning: u32,
    /// Cores on ready nodes.
    pub cpu_capacity: f64,
    /// Cores requested by pods.
    pub cpu_allocated: f64,
    /// Pods waiting for a node.
    pub pending_pods: u32,
}

/// A service at a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePoint {
    /// Name.
    pub name: String,
    /// p95 objective, ms.
    pub slo_p95_ms: f64,
    /// Requests/s over the last step, all regions.
    pub demand_rps: f64,
    /// Measured p95, ms (`None` while requests are dropped for want of any replica).
    pub p95_ms: Option<f64>,
    /// p95 the loop predicted for its plan, ms.
    pub predicted_p95_ms: Option<f64>,
    /// Replicas in every cluster, whatever their state.
    pub replicas: u32,
    /// The forecast for the first lead time (`None` when no forecaster answered).
    pub forecast: Option<Band>,
}

/// A forecast band for one service, all regions: each quantile summed over regions, which is
/// the band of the total when regions move together (as diurnal demand does) and wider than it
/// otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    /// Time it is for, Unix seconds.
    pub at: i64,
    /// 10th percentile, requests/s.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl TickView {
    /// The view of a tick.
    pub fn new(
        tick: u64,
        o: &Observation,
        forecasts: Option<&Forecasts>,
        predicted_p95: Option<&[f64]>,
    ) -> Self {
        let clusters = o
            .clusters
            .iter()
            .map(|c| ClusterPoint {
                name: c.name.clone(),
                kind: format!("{:?}", c.kind).to_lowercase(),
                up: c.up,
                nodes: c.pools.iter().map(|p| p.ready).sum(),
                provisioning: c.pools.iter().map(|p| p.provisioning).sum(),
                cpu_capacity: c.cpu_capacity,
                cpu_allocated: c.cpu_allocated,
                pending_pods: c.pending_pods,
            })
            .collect();
        let services = o
            .services
            .iter()
            .enumerate()
            .map(|(s, v)| ServicePoint {
                name: v.name.clone(),
                slo_p95_ms: v.slo_p95_ms,
                demand_rps: v.demand_rps.iter().sum(),
                p95_ms: v.p95_ms.is_finite().then_some(v.p95_ms),
                predicted_p95_ms: predicted_p95.and_then(|p| p.get(s)).copied().filter(|p| p.is_finite()),
                replicas: v.placements.iter().map(|p| p.total()).sum(),
                forecast: forecasts.filter(|f| !f.horizons.is_empty() && s < f.demand.len()).map(|f| {
                    let lead = f.horizons[0];
                    let sum = |q: f64| (0..o.regions.len()).map(|r| f.at(s, r, lead, q)).sum::<f64>();
                    Band { at: o.time + i64::from(lead), p10: sum(0.1), p50: sum(0.5), p90: sum(0.9) }
                }),
            })
            .collect();
        Self { tick, time: o.time, clusters, services }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forecasts() -> Forecasts {
        // One service, two regions; per region the horizons × quantiles, row-major.
        let region = |base: f64| {
            [60.0, 300.0]
                .iter()
                .flat_map(|lead| [0.5, 1.0, 1.5].map(|k| base * k + lead))
                .collect::<Vec<f64>>()
        };
        Forecasts {
            horizons: vec![60, 300],
            quantiles: vec![0.1, 0.5, 0.9],
            demand: vec![vec![region(100.0), region(20.0)]],
            by: vec!["test@0".into()],
            fallback_from: None,
            refreshed: 1,
        }
    }

    #[test]
    fn a_service_shows_its_next_step_band_summed_over_regions() {
        let mut o = crate::decide::routing::tests::observation();
        o.time = 1_000;
        o.services[0].demand_rps = vec![90.0, 25.0];
        o.services[0].p95_ms = 80.0;
        let view = TickView::new(7, &o, Some(&forecasts()), Some(&[95.0]));
        let s = &view.services[0];
        assert_eq!(
            (view.tick, s.demand_rps, s.p95_ms, s.predicted_p95_ms),
            (7, 115.0, Some(80.0), Some(95.0))
        );
        // The first lead (60 s): 100·k + 60 in eu and 20·k + 60 in ap.
        assert_eq!(s.forecast, Some(Band { at: 1_060, p10: 180.0, p50: 240.0, p90: 300.0 }));
        assert_eq!(
            view.clusters.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(),
            ["edge", "edge", "cloud"]
        );
    }

    #[test]
    fn without_forecasts_or_with_requests_dropped_the_figures_are_absent_not_made_up() {
        let mut o = crate::decide::routing::tests::observation();
        o.services[0].p95_ms = f64::INFINITY;
        let view = TickView::new(0, &o, None, None);
        let s = &view.services[0];
        assert_eq!((s.forecast.as_ref(), s.p95_ms, s.predicted_p95_ms), (None, None, None));
    }
}
