//! From what the reflectors hold to an [`Observation`] and the [`Snapshot`] actions are
//! carried out against. Pure functions over API objects, so they are tested on JSON alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod};

use super::resources::{self, PodUsage};
use super::snapshot::{ClusterSnapshot, PodRef, PoolSnapshot, Workload};
use crate::config::kubernetes::{ClusterConfig, KubernetesConfig};
use crate::observe::{ClusterView, NodeView, Placement, PoolView};

/// One cluster's objects, as the reflectors hold them now.
#[derive(Default, Clone)]
pub struct ClusterObjects {
    /// Nodes.
    pub nodes: Vec<Arc<Node>>,
    /// Pods.
    pub pods: Vec<Arc<Pod>>,
    /// Deployments.
    pub deployments: Vec<Arc<Deployment>>,
    /// HPAs.
    pub hpas: Vec<Arc<HorizontalPodAutoscaler>>,
    /// Live usage, when `metrics.k8s.io` answered.
    pub usage: Option<Vec<PodUsage>>,
}

/// What a service's Deployments say about it (taken from the first cluster running it).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Name (the service label's value).
    pub name: String,
    /// p95 objective, ms.
    pub slo_p95_ms: f64,
    /// CPU time per request, ms, if annotated.
    pub service_ms: Option<f64>,
    /// Seconds from scheduling to serving.
    pub startup_s: u32,
    /// Cores per replica.
    pub cpu_per_replica: f64,
    /// GiB per replica.
    pub memory_gib_per_replica: f64,
}

/// Requests per unit (cores, GiB) of a pod template's containers.
fn requests(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> (f64, f64) {
    let Some(spec) = spec else { return (0.0, 0.0) };
    spec.containers.iter().filter_map(|c| c.resources.as_ref().and_then(|r| r.requests.as_ref())).fold(
        (0.0, 0.0),
        |(cpu, mem), r| {
            (
                cpu + r.get("cpu").and_then(|q| resources::cores(&q.0)).unwrap_or(0.0),
                mem + r.get("memory").and_then(|q| resources::gib(&q.0)).unwrap_or(0.0),
            )
        },
    )
}

fn annotation<T: std::str::FromStr>(d: &Deployment, key: &str) -> Option<T> {
    d.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

fn service_of<'a>(d: &'a Deployment, config: &KubernetesConfig, cluster: &ClusterConfig) -> Option<&'a str> {
    let ns = d.metadata.namespace.as_deref().unwrap_or_default();
    if !cluster.namespaces.is_empty() && !cluster.namespaces.iter().any(|n| n == ns) {
        return None;
    }
    d.metadata.labels.as_ref()?.get(&config.service_label).map(String::as_str)
}

/// The services the clusters run, in name order.
pub fn services(config: &KubernetesConfig, objects: &[ClusterObjects]) -> Vec<ServiceSpec> {
    let mut found: BTreeMap<String, ServiceSpec> = BTreeMap::new();
    for (cluster, o) in config.clusters.iter().zip(objects) {
        for d in &o.deployments {
            let Some(name) = service_of(d, config, cluster) else { continue };
            if found.contains_key(name) {
                continue;
            }
            let (cpu, memory) = requests(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()));
            found.insert(
                name.to_owned(),
                ServiceSpec {
                    name: name.to_owned(),
                    slo_p95_ms: annotation(d, resources::SLO_P95_MS).unwrap_or(DEFAULT_SLO_MS),
                    service_ms: annotation(d, resources::SERVICE_MS),
                    startup_s: annotation(d, resources::STARTUP_S).unwrap_or(DEFAULT_STARTUP_S),
                    cpu_per_replica: cpu,
                    memory_gib_per_replica: memory,
                },
            );
        }
    }
    found.into_values().collect()
}

/// The objective assumed for a Deployment without the `foresight.io/slo-p95-ms` annotation.
pub const DEFAULT_SLO_MS: f64 = 300.0;
/// Startup assumed without `foresight.io/startup-s`.
pub const DEFAULT_STARTUP_S: u32 = 60;

fn ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && !node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false)
}

fn allocatable(node: &Node) -> (f64, f64) {
    let a = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let get =
        |k: &str, f: fn(&str) -> Option<f64>| a.and_then(|a| a.get(k)).and_then(|q| f(&q.0)).unwrap_or(0.0);
    (get("cpu", resources::cores), get("memory", resources::gib))
}

fn instance_type(node: &Node) -> String {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(resources::INSTANCE_TYPE))
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

fn running(pod: &Pod) -> bool {
    !matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
        && pod.metadata.deletion_timestamp.is_none()
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

fn waiting(pod: &Pod) -> bool {
    running(pod) && node_of(pod).is_none()
}

fn owned_by(pod: &Pod, d: &Deployment) -> bool {
    if pod.metadata.namespace != d.metadata.namespace {
        return false;
    }
    let want = d.spec.as_ref().and_then(|s| s.selector.match_labels.as_ref());
    let have = pod.metadata.labels.as_ref();
    match (want, have) {
        (Some(want), Some(have)) if !want.is_empty() => want.iter().all(|(k, v)| have.get(k) == Some(v)),
        _ => false,
    }
}

/// Ready nodes by name: the order `place-pod` numbers them in.
fn ready_nodes(o: &ClusterObjects) -> Vec<&Node> {
    let mut nodes: Vec<&Node> = o.nodes.iter().map(|n| n.as_ref()).filter(|n| ready(n)).collect();
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    nodes
}

/// The pools of a cluster: the configured offerings, then any other instance type seen.
fn offerings(config: &KubernetesConfig, o: &ClusterObjects) -> Vec<foresight_sdk::Offering> {
    let mut list: Vec<foresight_sdk::Offering> = config
        .offerings
        .iter()
        .map(|c| foresight_sdk::Offering {
            name: c.name.clone(),
            vcpu: c.vcpu,
            memory_gib: c.memory_gib,
            hourly_price: c.hourly_price,
            spot: c.spot,
            interruption_rate: c.interruption_rate,
            lead_time_s: humantime::parse_duration(&c.lead_time).map_or(0, |d| d.as_secs() as u32),
            max_nodes: c.max_nodes,
            current_nodes: 0,
        })
        .collect();
    for n in &o.nodes {
        let t = instance_type(n);
        if !list.iter().any(|x| x.name == t) {
            let (vcpu, memory_gib) = allocatable(n);
            let count = o.nodes.iter().filter(|m| instance_type(m) == t).count() as u32;
            // Not in the configuration: observed, never grown beyond what it is (no price is
            // known).
            list.push(foresight_sdk::Offering {
                name: t.clone(),
                vcpu,
                memory_gib,
                hourly_price: 0.0,
                spot: false,
                interruption_rate: 0.0,
                lead_time_s: 0,
                max_nodes: count,
                current_nodes: 0,
            });
        }
    }
    for offering in &mut list {
        offering.current_nodes = o.nodes.iter().filter(|n| instance_type(n) == offering.name).count() as u32;
    }
    list
}

fn requested_on(o: &ClusterObjects, node: &str) -> (f64, f64, u32) {
    o.pods.iter().filter(|p| running(p) && node_of(p) == Some(node)).fold((0.0, 0.0, 0), |(c, m, n), p| {
        let (pc, pm) = requests(p.spec.as_ref());
        (c + pc, m + pm, n + 1)
    })
}

/// A cluster as the loop sees it. `regions` orders the RTTs; `all` orders peer RTTs.
pub fn cluster_view(
    config: &KubernetesConfig,
    cluster: &ClusterConfig,
    all: &[ClusterConfig],
    o: &ClusterObjects,
    up: bool,
) -> ClusterView {
    let offerings = offerings(config, o);
    let ready_nodes = ready_nodes(o);
    let pools = offerings
        .iter()
        .map(|offering| {
            let of_type = |n: &&Arc<Node>| instance_type(n) == offering.name;
            let ready = o.nodes.iter().filter(of_type).filter(|n| ready(n)).count() as u32;
            let provisioning = o.nodes.iter().filter(of_type).count() as u32 - ready;
            PoolView { offering: offering.clone(), ready, provisioning }
        })
        .collect();
    let (mut capacity, mut allocated) = (0.0, 0.0);
    for n in &ready_nodes {
        capacity += allocatable(n).0;
        allocated += requested_on(o, n.metadata.name.as_deref().unwrap_or_default()).0;
    }
    let rtt = |to: &str| cluster.rtt_ms.get(to).copied();
    let farthest = cluster.rtt_ms.values().cloned().fold(0.0, f64::max);
    ClusterView {
        name: cluster.name.clone(),
        kind: cluster.kind,
        up,
        rtt_ms: config.regions.iter().map(|r| rtt(r).unwrap_or(farthest)).collect(),
        peer_rtt_ms: all
            .iter()
            .map(|peer| {
                if peer.name == cluster.name {
                    0.0
                } else {
                    rtt(&peer.region)
                        .or_else(|| peer.rtt_ms.get(&cluster.region).copied())
                        .unwrap_or(farthest)
                }
            })
            .collect(),
        pools,
        cpu_capacity: capacity,
        cpu_allocated: allocated,
        pending_pods: o.pods.iter().filter(|p| waiting(p)).count() as u32,
    }
}

/// Whether a pod passes its readiness checks, i.e. is sent requests.
fn pod_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Ready pods per service, per node name: what releasing a node would stop serving. A pod
/// counts once, for the first service Deployment that selects it.
fn serving_by_node<'a>(
    config: &KubernetesConfig,
    cluster: &ClusterConfig,
    o: &'a ClusterObjects,
) -> BTreeMap<&'a str, BTreeMap<String, u32>> {
    let mut by_node: BTreeMap<&str, BTreeMap<String, u32>> = BTreeMap::new();
    for pod in o.pods.iter().filter(|p| running(p) && pod_ready(p)) {
        let Some(node) = node_of(pod) else { continue };
        let service =
            o.deployments.iter().find_map(|d| service_of(d, config, cluster).filter(|_| owned_by(pod, d)));
        if let Some(service) = service {
            *by_node.entry(node).or_default().entry(service.to_owned()).or_default() += 1;
        }
    }
    by_node
}

/// The ready nodes of a cluster, in `place-pod` order.
pub fn nodes(config: &KubernetesConfig, cluster: &ClusterConfig, o: &ClusterObjects) -> Vec<NodeView> {
    let offerings = offerings(config, o);
    let mut serving = serving_by_node(config, cluster, o);
    ready_nodes(o)
        .into_iter()
        .map(|n| {
            let (cpu, memory) = allocatable(n);
            let name = n.metadata.name.as_deref().unwrap_or_default();
            let (used_cpu, used_mem, pods) = requested_on(o, name);
            let t = instance_type(n);
            NodeView {
                pool: offerings.iter().position(|x| x.name == t).unwrap_or(0) as u32,
                cpu,
                cpu_free: (cpu - used_cpu).max(0.0),
                memory_gib: memory,
                memory_free_gib: (memory - used_mem).max(0.0),
                pods,
                serving: serving.remove(name).unwrap_or_default(),
            }
        })
        .collect()
}

/// A service's Deployment in a cluster, if it runs there.
fn deployment_of<'a>(
    config: &KubernetesConfig,
    cluster: &ClusterConfig,
    o: &'a ClusterObjects,
    service: &str,
) -> Option<&'a Deployment> {
    o.deployments.iter().map(|d| d.as_ref()).find(|d| service_of(d, config, cluster) == Some(service))
}

/// A service's replicas in a cluster; `arrival_rps` is what routing sends there.
pub fn placement(
    config: &KubernetesConfig,
    cluster: &ClusterConfig,
    o: &ClusterObjects,
    service: &ServiceSpec,
    arrival_rps: f64,
    service_ms: f64,
) -> Placement {
    let Some(d) = deployment_of(config, cluster, o, &service.name) else {
        return Placement { ready: 0, starting: 0, pending: 0, arrival_rps, utilisation: 0.0 };
    };
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u32;
    let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32;
    let pods: Vec<&Pod> =
        o.pods.iter().map(|p| p.as_ref()).filter(|p| owned_by(p, d) && running(p)).collect();
    let pending = pods.iter().filter(|p| waiting(p)).count() as u32;
    let starting = wanted.saturating_sub(ready + pending);
    let capacity = f64::from(ready) * service.cpu_per_replica;
    let used = match &o.usage {
        Some(usage) => usage
            .iter()
            .filter(|u| {
                pods.iter().any(|p| {
                    p.metadata.name == u.metadata.name && p.metadata.namespace == u.metadata.namespace
                })
            })
            .map(PodUsage::cpu)
            .sum(),
        // Without live usage: the load routing sends, at the service's cost per request.
        None => arrival_rps * service_ms / 1e3,
    };
    let utilisation = if capacity > 0.0 {
        (used / capacity).clamp(0.0, 1.0)
    } else if arrival_rps > 0.0 {
        1.0
    } else {
        0.0
    };
    Placement { ready, starting, pending, arrival_rps, utilisation }
}

/// What actions address in a cluster.
pub fn cluster_snapshot(
    config: &KubernetesConfig,
    cluster: &ClusterConfig,
    o: &ClusterObjects,
    services: &[ServiceSpec],
    stale: Option<String>,
) -> ClusterSnapshot {
    let mut workloads = BTreeMap::new();
    let mut pending = BTreeMap::new();
    for s in services {
        let Some(d) = deployment_of(config, cluster, o, &s.name) else { continue };
        let namespace = d.metadata.namespace.clone().unwrap_or_default();
        let name = d.metadata.name.clone().unwrap_or_default();
        let hpa = o
            .hpas
            .iter()
            .find(|h| {
                h.metadata.namespace.as_deref() == Some(namespace.as_str())
                    && h.spec.scale_target_ref.kind == "Deployment"
                    && h.spec.scale_target_ref.name == name
            })
            .and_then(|h| h.metadata.name.clone());
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u32;
        workloads.insert(s.name.clone(), Workload { namespace: namespace.clone(), name, hpa, replicas });
        let mut mine: Vec<&Pod> = o
            .pods
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| owned_by(p, d) && waiting(p))
            .filter(|p| {
                p.spec.as_ref().and_then(|s| s.scheduler_name.as_deref())
                    == Some(config.scheduler_name.as_str())
            })
            .collect();
        mine.sort_by(|a, b| {
            (a.metadata.creation_timestamp.as_ref().map(|t| t.0), &a.metadata.name)
                .cmp(&(b.metadata.creation_timestamp.as_ref().map(|t| t.0), &b.metadata.name))
        });
        let refs: Vec<PodRef> = mine
            .iter()
            .map(|p| PodRef {
                namespace: namespace.clone(),
                name: p.metadata.name.clone().unwrap_or_default(),
            })
            .collect();
        if !refs.is_empty() {
            pending.insert(s.name.clone(), refs);
        }
    }
    let mut pools = BTreeMap::new();
    for offering in offerings(config, o) {
        let of_type: Vec<&Arc<Node>> = o.nodes.iter().filter(|n| instance_type(n) == offering.name).collect();
        let allocated = of_type
            .iter()
            .filter(|n| ready(n))
            .map(|n| requested_on(o, n.metadata.name.as_deref().unwrap_or_default()).0)
            .sum();
        let (vcpu, memory_gib) =
            of_type.first().map_or((offering.vcpu, offering.memory_gib), |n| allocatable(n));
        pools.insert(
            offering.name.clone(),
            PoolSnapshot { nodes: of_type.len() as u32, allocated, vcpu, memory_gib },
        );
    }
    ClusterSnapshot {
        name: cluster.name.clone(),
        stale,
        workloads,
        nodes: ready_nodes(o).iter().map(|n| n.metadata.name.clone().unwrap_or_default()).collect(),
        pending,
        pools,
    }
}
