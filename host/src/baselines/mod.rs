//! What platform teams run today, as decide-stage policies the simulator can judge beside
//! Foresight's own: `hpa` (Horizontal Pod Autoscaler + cluster-autoscaler behind a
//! locality-aware load balancer that spills over), `karpenter` (the same HPA and balancer with
//! Karpenter's provisioning and consolidation), `kube-default` (`hpa` with kube-scheduler's
//! default node scoring) and `static-peak` (capacity fixed at the trace's peak). Each follows
//! its public documentation; the modules say which rules and defaults.

pub mod autoscaler;
pub mod hpa;
pub mod karpenter;
pub mod routing;
pub mod scheduler;
pub mod static_peak;

use crate::act::Action;
use crate::decide::{Decision, Plan, Reason, holdable, replicas_set};
use crate::observe::{ClusterKind, NodeView, Observation, Observer};
use autoscaler::{ClusterAutoscaler, PodRequest, SCAN_INTERVAL_S};
use hpa::{Hpa, HpaSpec, Metrics};
use karpenter::Karpenter;
use static_peak::StaticPeak;

/// Which baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HPA per service and cluster, cluster-autoscaler, the backend's first-fit placement.
    Hpa,
    /// `Hpa` with Karpenter's provisioning and consolidation instead of cluster-autoscaler.
    Karpenter,
    /// `Hpa` with kube-scheduler's LeastAllocated + BalancedAllocation placement.
    KubeDefault,
    /// Replicas and nodes fixed for the peak.
    StaticPeak,
}

/// A baseline policy with its controllers' state.
pub struct Baseline {
    kind: Kind,
    hpa: Hpa,
    autoscaler: ClusterAutoscaler,
    karpenter: Karpenter,
    static_peak: Option<StaticPeak>,
    /// Per service and cluster: whether the service has a deployment there (it started with
    /// replicas there), so an HPA looks after it and routing may send it requests.
    homes: Vec<Vec<bool>>,
}

impl Baseline {
    /// A baseline for a scenario whose services start with `replicas[s][c]`; `static-peak`
    /// also needs its plan.
    pub fn new(kind: Kind, replicas: &[Vec<u32>], static_peak: Option<StaticPeak>) -> Self {
        let homes = replicas.iter().map(|r| r.iter().map(|&n| n > 0).collect()).collect();
        Self {
            kind,
            hpa: Hpa::new(HpaSpec::default()),
            autoscaler: ClusterAutoscaler::default(),
            karpenter: Karpenter::default(),
            static_peak,
            homes,
        }
    }

    /// The policy's label in decisions and reports.
    pub fn label(&self) -> &'static str {
        match self.kind {
            Kind::Hpa => "baseline:hpa",
            Kind::Karpenter => "baseline:karpenter",
            Kind::KubeDefault => "baseline:kube-default",
            Kind::StaticPeak => "baseline:static-peak",
        }
    }

    /// One tick's plan.
    pub fn plan(&mut self, o: &Observation, world: &dyn Observer) -> Plan {
        let mut decisions = match &self.static_peak {
            Some(plan) => plan.routing(o),
            None => routing::balance(o, &self.homes, routing::fill_for(self.hpa.spec()), self.label()),
        };
        let replicas = match &mut self.static_peak {
            Some(plan) => plan.replicas(o),
            None => self.scale(o),
        };
        let observed: Vec<Vec<NodeView>> =
            o.clusters.iter().map(|c| world.nodes(&c.name).unwrap_or_default()).collect();
        // Scheduling fills a copy; the cluster-autoscaler judges the nodes as they are, Karpenter
        // (which consolidates into free room) the nodes as this tick's pods leave them.
        let mut scheduled = observed.clone();
        let (unschedulable, placements) = self.schedule(o, &replicas, &mut scheduled);
        decisions.extend(replicas);
        decisions.extend(placements);
        if let Some(plan) = &mut self.static_peak {
            decisions.extend(plan.nodes(o));
        } else {
            let scans = (o.step_s / SCAN_INTERVAL_S).max(1);
            for (c, cluster) in o.clusters.iter().enumerate() {
                decisions.extend(match self.kind {
                    Kind::Karpenter => self.karpenter.plan(c, cluster, &scheduled[c], &unschedulable[c]),
                    _ => self.autoscaler.plan(o.time, c, cluster, &observed[c], &unschedulable[c], scans),
                });
            }
        }
        Plan { decisions }
    }

    /// HPA recommendations for every deployment.
    fn scale(&mut self, o: &Observation) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (s, service) in o.services.iter().enumerate() {
            for (c, cluster) in o.clusters.iter().enumerate() {
                if !self.homes[s][c] || !cluster.up {
                    continue;
                }
                let p = &service.placements[c];
                let current = p.total();
                let metrics = Metrics {
                    current,
                    ready: p.ready,
                    unready: p.starting + p.pending,
                    utilisation: p.utilisation,
                };
                // maxReplicas of each cluster's HPA: what the cluster could ever hold.
                let desired =
                    self.hpa.desired((s, c), o.time, metrics).min(holdable(cluster, service.cpu_per_replica));
                if desired == current {
                    continue;
                }
                decisions.push(Decision {
                    action: Action::SetReplicas {
                        service: service.name.clone(),
                        cluster: cluster.name.clone(),
                        replicas: desired,
                    },
                    reason: Reason {
                        summary: format!(
                            "hpa: {} in {}: {current} → {desired} at {:.0} % CPU of {} ready pods against a {:.0} % target",
                            service.name,
                            cluster.name,
                            p.utilisation * 100.0,
                            p.ready,
                            self.hpa.spec().target_utilisation * 100.0
                        ),
                        plugins: vec![self.label().into()],
                        observed: Some(p.arrival_rps),
                        ..Reason::default()
                    },
                });
            }
        }
        decisions
    }

    /// Per cluster, the pods the scheduler will not place: those pending now and the new
    /// ones the replica decisions add beyond the free room of the nodes. With `kube-default`
    /// the placeable ones get a `place-pod` decision each, in the scheduler's order; the node
    /// views are consumed as pods are placed.
    fn schedule(
        &self,
        o: &Observation,
        replicas: &[Decision],
        nodes: &mut [Vec<NodeView>],
    ) -> (Vec<Vec<PodRequest>>, Vec<Decision>) {
        let mut placements = Vec::new();
        let mut left = vec![Vec::new(); o.clusters.len()];
        for service in &o.services {
            let pod = PodRequest { cpu: service.cpu_per_replica, memory_gib: service.memory_gib_per_replica };
            for (c, cluster) in o.clusters.iter().enumerate() {
                let p = &service.placements[c];
                let wanted = replicas_set(replicas, &service.name, &cluster.name).unwrap_or(p.total());
                for _ in 0..p.waiting_at(wanted) {
                    match place(&mut nodes[c], pod, self.kind) {
                        Some(node) if self.kind == Kind::KubeDefault => placements.push(Decision {
                            action: Action::PlacePod {
                                service: service.name.clone(),
                                cluster: cluster.name.clone(),
                                node: node as u32,
                            },
                            reason: Reason {
                                summary: format!(
                                    "kube-scheduler: {} on node {node} of {} (LeastAllocated + BalancedAllocation)",
                                    service.name, cluster.name
                                ),
                                plugins: vec![self.label().into()],
                                ..Reason::default()
                            },
                        }),
                        Some(_) => {}
                        None if cluster.kind == ClusterKind::Cloud => left[c].push(pod),
                        None => {}
                    }
                }
            }
        }
        (left, placements)
    }
}

/// Where the scheduler puts a pod: kube-scheduler's choice, or the backend's first fit.
fn place(nodes: &mut [NodeView], pod: PodRequest, kind: Kind) -> Option<usize> {
    let node = match kind {
        Kind::KubeDefault => scheduler::select(nodes, pod)?,
        _ => nodes.iter().position(|n| n.fits(pod.cpu, pod.memory_gib))?,
    };
    nodes[node].take(pod.cpu, pod.memory_gib);
    Some(node)
}
