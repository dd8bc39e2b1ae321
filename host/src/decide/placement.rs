//! The scorer role's part of a plan: it ranks the clusters each region's requests for a
//! service could go to (routing then fills them in that order, edge sites before cloud
//! regions), and the nodes each waiting pod could be placed on.

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
                        demand: vec![f.at(
                            s,
                            r,
                            super::lead_time::replica_lead_s(service.startup_s, o.step_s),
                            0.9,
                        )],
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

/// The node the scorer ranks first among those a pod fits on, for every pod that will wait for
/// one: pending now, or added by this plan's replica decisions. Pods are placed in rank order,
/// each node's free room taken as it fills; a node scored below zero is used only when nothing
/// else fits. When the scorer cannot answer, the backend places the pods itself.
pub fn place_pods(
    o: &Observation,
    world: &dyn crate::observe::Observer,
    replicas: &[super::Decision],
    scorer: &Guarded<dyn ScorePolicy>,
) -> Vec<super::Decision> {
    use crate::act::Action;
    const NAMES: [&str; 6] =
        ["utilisation", "headroom", "replicas", "hourly-price", "spot", "interruption-rate"];
    let mut decisions = Vec::new();
    for (c, cluster) in o.clusters.iter().enumerate() {
        if !cluster.up {
            continue;
        }
        let Some(mut nodes) = world.nodes(&cluster.name) else { continue };
        for service in &o.services {
            let p = &service.placements[c];
            let target = super::replicas_set(replicas, &service.name, &cluster.name).unwrap_or(p.total());
            let waiting = p.waiting_at(target);
            let (cpu, memory) = (service.cpu_per_replica, service.memory_gib_per_replica);
            let open: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].fits(cpu, memory)).collect();
            if waiting == 0 || open.is_empty() {
                continue;
            }
            let mut rows = Vec::with_capacity(open.len() * NAMES.len());
            for &i in &open {
                let n = &nodes[i];
                let offering = &cluster.pools[n.pool as usize].offering;
                rows.extend([
                    1.0 - n.cpu_free / n.cpu,
                    n.cpu_free / n.cpu,
                    f64::from(n.pods),
                    offering.hourly_price * cpu / n.cpu,
                    f64::from(u8::from(offering.spot)),
                    offering.interruption_rate,
                ]);
            }
            let Ok(candidates) = Candidates::new(NAMES.iter().map(|s| (*s).to_owned()).collect(), rows)
            else {
                continue;
            };
            let workload = Workload {
                service: service.name.clone(),
                regions: o.regions.clone(),
                demand: service.demand_rps.clone(),
                slo_p95_ms: service.slo_p95_ms,
                service_ms: service.service_ms,
                cpu_request: cpu,
                memory_request_gib: memory,
            };
            let Ok(served) =
                scorer.call(|s| s.score(&workload, &candidates, false), |a| validate::scores(&candidates, a))
            else {
                continue;
            };
            let scores = served.value.values;
            let mut order: Vec<usize> = (0..open.len()).collect();
            // Non-negative scores first, each group best first.
            order.sort_by(|&a, &b| {
                (scores[b] >= 0.0).cmp(&(scores[a] >= 0.0)).then(scores[b].total_cmp(&scores[a]))
            });
            for _ in 0..waiting {
                let Some(&k) = order.iter().find(|&&k| nodes[open[k]].fits(cpu, memory)) else { break };
                let node = open[k];
                nodes[node].take(cpu, memory);
                decisions.push(super::Decision {
                    action: Action::PlacePod {
                        service: service.name.clone(),
                        cluster: cluster.name.clone(),
                        node: node as u32,
                    },
                    reason: super::Reason {
                        summary: format!(
                            "place {} on node {node} of {}: ranked first of {} that fit (score {:.3})",
                            service.name,
                            cluster.name,
                            open.len(),
                            scores[k]
                        ),
                        plugins: vec![served.by.clone()],
                        ..super::Reason::default()
                    },
                });
            }
        }
    }
    decisions
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::act::Action;
    use crate::observe::{NodeView, ObserveError, Observer};
    use crate::plugins::{Native, QuarantineRule};

    /// A world whose only cluster has the given nodes.
    struct Nodes(Vec<NodeView>);

    impl Observer for Nodes {
        fn observe(&mut self) -> Result<Observation, ObserveError> {
            Err(ObserveError::Backend("not used".into()))
        }

        fn demand_history(&self, _: &str, _: &str, _: u32) -> Option<foresight_sdk::Series> {
            None
        }

        fn nodes(&self, _: &str) -> Option<Vec<NodeView>> {
            Some(self.0.clone())
        }
    }

    fn scorer(config: &str) -> Guarded<dyn ScorePolicy> {
        let native = Arc::new(Native::<latency_aware::LatencyAware>::scorer(config).expect("native scorer"));
        let rule = QuarantineRule { max_consecutive_faults: 3, duration: Duration::from_secs(60) };
        Guarded::new("scorer", native.clone() as Arc<dyn ScorePolicy>, native, rule)
    }

    #[test]
    fn waiting_pods_go_where_the_scorer_ranks_first_and_only_where_they_fit() {
        let mut o = crate::decide::routing::tests::observation();
        o.clusters.truncate(1);
        o.services[0].placements.truncate(1);
        o.clusters[0].pools = vec![crate::observe::PoolView {
            offering: foresight_sdk::Offering {
                name: "n".into(),
                vcpu: 4.0,
                memory_gib: 8.0,
                hourly_price: 0.4,
                max_nodes: 3,
                ..Default::default()
            },
            ready: 3,
            provisioning: 0,
        }];
        o.services[0].placements[0].pending = 1;
        let node = |free: f64| NodeView {
            pool: 0,
            cpu: 4.0,
            cpu_free: free,
            memory_gib: 8.0,
            memory_free_gib: 8.0,
            pods: 0,
            serving: Default::default(),
        };
        // Node 0 is full, node 1 busy, node 2 idle; one pod pending and two more asked for.
        let world = Nodes(vec![node(0.0), node(1.0), node(4.0)]);
        let more = [crate::decide::Decision {
            action: Action::SetReplicas { service: "web".into(), cluster: "edge-eu".into(), replicas: 3 },
            reason: Default::default(),
        }];
        let d = place_pods(&o, &world, &more, &scorer(""));
        let placed: Vec<u32> = d
            .iter()
            .map(|d| match d.action {
                Action::PlacePod { node, .. } => node,
                _ => panic!("{d:?}"),
            })
            .collect();
        assert_eq!(placed.len(), 3, "{d:?}");
        assert!(!placed.contains(&0), "a full node takes nothing: {placed:?}");
        // Node 1 has room for one pod only.
        assert!(placed.iter().filter(|&&n| n == 1).count() <= 1, "{placed:?}");
    }
}
