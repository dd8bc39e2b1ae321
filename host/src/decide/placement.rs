//! The scorer role's part of a plan: it ranks the clusters each region's requests for a
//! service could go to. Routing then fills them in that order, edge sites before cloud regions.

use foresight_sdk::{Candidates, Workload};

use crate::observe::{ClusterView, Observation};
use crate::plugins::{Guarded, ScorePolicy, validate};
use crate::predict::Forecasts;

/// The cheapest offering per core of a cluster: what one more replica there would run on.
fn cheapest(cluster: &ClusterView) -> Option<&foresight_sdk::Offering> {
    cluster
        .pools
        .iter()
        .map(|p| &p.offering)
        .filter(|o| o.vcpu > 0.0)
        .min_by(|a, b| (a.hourly_price / a.vcpu).total_cmp(&(b.hourly_price / b.vcpu)))
}

/// Per service, region and cluster, a rank (lower is preferred): the scorer's score negated,
/// or the round trip when the scorer cannot answer.
pub fn cluster_ranks(
    o: &Observation,
    f: &Forecasts,
    scorer: &Guarded<dyn ScorePolicy>,
) -> Vec<Vec<Vec<f64>>> {
    o.services
        .iter()
        .enumerate()
        .map(|(s, service)| {
            (0..o.regions.len())
                .map(|r| {
                    let rtt: Vec<f64> = o.clusters.iter().map(|c| c.rtt_ms[r]).collect();
                    let workload = Workload {
                        service: service.name.clone(),
                        regions: vec![o.regions[r].clone()],
                        demand: vec![f.at(s, r, service.startup_s + o.step_s, 0.9)],
                        slo_p95_ms: service.slo_p95_ms,
                        service_ms: service.service_ms,
                        cpu_request: service.cpu_per_replica,
                        memory_request_gib: service.memory_gib_per_replica,
                    };
                    let names =
                        ["rtt-ms:", "utilisation", "replicas", "hourly-price", "spot", "interruption-rate"];
                    let names: Vec<String> = names
                        .iter()
                        .map(|n| {
                            if *n == "rtt-ms:" { format!("rtt-ms:{}", o.regions[r]) } else { (*n).to_owned() }
                        })
                        .collect();
                    let mut rows = Vec::with_capacity(o.clusters.len() * names.len());
                    for (c, cluster) in o.clusters.iter().enumerate() {
                        let p = &service.placements[c];
                        let offering = cheapest(cluster);
                        let price =
                            offering.map_or(0.0, |x| x.hourly_price / x.vcpu * service.cpu_per_replica);
                        rows.extend([
                            rtt[c],
                            p.utilisation,
                            f64::from(p.ready.max(1)),
                            price,
                            offering.map_or(0.0, |x| f64::from(u8::from(x.spot))),
                            offering.map_or(0.0, |x| x.interruption_rate),
                        ]);
                    }
                    let Ok(candidates) = Candidates::new(names, rows) else { return rtt };
                    match scorer.call(
                        |p| p.score(&workload, &candidates, false),
                        |a| validate::scores(&candidates, a),
                    ) {
                        Ok(served) => served.value.values.iter().map(|v| -v).collect(),
                        Err(_) => rtt,
                    }
                })
                .collect()
        })
        .collect()
}
