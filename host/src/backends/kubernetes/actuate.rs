//! Act on clusters: each action becomes absolute, idempotent API writes — a floor, a replica
//! count, a buffer size, a binding, a score — so that a retry after a failure whose effect is
//! unknown lands the same state, never twice the change. Every action taken (or, in dry-run,
//! that would have been) gets a Kubernetes Event carrying the decision's reason.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sha2::Digest;

use super::api::{Failure, Retry};
use super::resources::{self, MANAGED_BY, ORIGINAL_MIN_REPLICAS};
use super::snapshot::{ClusterSnapshot, PodRef, Snapshot, Workload};
use crate::act::{Action, Outcome};
use crate::config::kubernetes::ActionsConfig;
use crate::decide::Decision;

/// How the actuator behaves, from `[backend.kubernetes]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Record and publish, change nothing.
    pub dry_run: bool,
    /// Which actions are on.
    pub actions: ActionsConfig,
    /// Foresight's namespace (CapacityBuffers, PodTemplates).
    pub namespace: String,
    /// Field manager of every write; the Event reporting controller's name.
    pub field_manager: String,
    /// This instance, as Events name their reporter.
    pub identity: String,
    /// Retries of transient failures.
    pub retry: Retry,
    /// The cluster running the OCM hub.
    pub scores_hub: Option<String>,
    /// Name of the `AddOnPlacementScore` objects.
    pub scores_name: String,
    /// How long published scores stay valid.
    pub scores_valid_for: Duration,
}

/// Routing weights per service: region → (cluster, weight).
pub type RoutingTable = BTreeMap<String, BTreeMap<String, Vec<(String, f64)>>>;

/// A `set-routing` decision waiting for the scores to be published: its index, service,
/// region and weights.
type Route = (usize, String, String, Vec<(String, f64)>);

/// Whether this instance may act: `Err(leader)` when another instance leads.
pub type Leadership = Result<(), String>;

/// The object an action changes (what its Event is about).
#[derive(Debug, Clone)]
struct Regarding {
    api_version: &'static str,
    kind: &'static str,
    namespace: String,
    name: String,
}

/// What applying one action did: the outcome, and the object its Event regards.
struct Done {
    outcome: Outcome,
    /// What changed, and the object it changed (boxed: most outcomes carry none).
    regarding: Option<Box<(String, Regarding)>>,
    verb: &'static str,
}

impl Done {
    fn rejected(reason: String) -> Self {
        Self { outcome: Outcome::Rejected { reason }, regarding: None, verb: "" }
    }
}

/// Carries out decisions on the clusters.
pub struct Actuator {
    settings: Settings,
    clients: BTreeMap<String, Client>,
    /// Routing weights in force per service: region → (cluster, weight).
    routing: RoutingTable,
}

impl Actuator {
    /// An actuator writing through one client per cluster.
    pub fn new(settings: Settings, clients: BTreeMap<String, Client>) -> Self {
        Self { settings, clients, routing: BTreeMap::new() }
    }

    /// Routing weights in force for a service, region → (cluster, weight).
    pub fn routing(&self, service: &str) -> Option<&BTreeMap<String, Vec<(String, f64)>>> {
        self.routing.get(service)
    }

    /// Applies decisions made on `snapshot`, in order; one outcome each.
    pub async fn apply(
        &mut self,
        snapshot: &Snapshot,
        decisions: &[Decision],
        leadership: &Leadership,
    ) -> Vec<Outcome> {
        let mut pools: BTreeMap<(String, String), super::snapshot::PoolSnapshot> = BTreeMap::new();
        let mut next_pending: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut outcomes = Vec::with_capacity(decisions.len());
        let mut routes = Vec::new();
        for (index, d) in decisions.iter().enumerate() {
            let span = tracing::info_span!("act", kind = d.action.kind(), index);
            let _entered = span.enter();
            let done = match self.gate(snapshot, &d.action, leadership) {
                Err(done) => done,
                Ok(cluster) if self.settings.dry_run && !matches!(d.action, Action::SetRouting { .. }) => {
                    let next = match &d.action {
                        Action::PlacePod { service, .. } => {
                            let n = next_pending.entry((cluster.name.clone(), service.clone())).or_default();
                            *n += 1;
                            *n - 1
                        }
                        _ => 0,
                    };
                    let would = would(snapshot, &d.action);
                    let regarding = regarding(cluster, &d.action, next, &self.settings.namespace);
                    Done {
                        outcome: Outcome::DryRun { would: would.clone() },
                        regarding: regarding.map(|r| Box::new((would, r))),
                        verb: "DryRun",
                    }
                }
                Ok(cluster) => match &d.action {
                    Action::SetReplicas { service, replicas, .. } => {
                        self.set_replicas(cluster, service, *replicas).await
                    }
                    Action::RequestNodes { offering, count, .. }
                    | Action::ReleaseNodes { offering, count, .. } => {
                        let pool = pools
                            .entry((cluster.name.clone(), offering.clone()))
                            .or_insert_with(|| cluster.pools.get(offering).copied().unwrap_or_default());
                        let add = matches!(d.action, Action::RequestNodes { .. });
                        self.headroom(cluster, offering, pool, *count, add).await
                    }
                    Action::PlacePod { service, node, .. } => {
                        let next = next_pending.entry((cluster.name.clone(), service.clone())).or_default();
                        self.place(cluster, service, *node, next).await
                    }
                    Action::SetRouting { service, region, weights } => {
                        routes.push((index, service.clone(), region.clone(), weights.clone()));
                        outcomes.push(Outcome::Applied);
                        continue;
                    }
                },
            };
            self.record(snapshot, index, d, &done).await;
            outcomes.push(done.outcome);
        }
        if !routes.is_empty() {
            self.route(snapshot, decisions, &routes, leadership, &mut outcomes).await;
        }
        outcomes
    }

    /// What stops an action before any write: an unknown or stale cluster, its switch off,
    /// standby, dry-run. `Ok` with the cluster when it may go ahead.
    fn gate<'s>(
        &self,
        snapshot: &'s Snapshot,
        action: &Action,
        leadership: &Leadership,
    ) -> Result<&'s ClusterSnapshot, Done> {
        let a = &self.settings.actions;
        let (cluster, switch, key) = match action {
            Action::SetReplicas { cluster, .. } => (cluster, a.floor, "floor"),
            Action::RequestNodes { cluster, .. } | Action::ReleaseNodes { cluster, .. } => {
                (cluster, a.headroom, "headroom")
            }
            Action::PlacePod { cluster, .. } => (cluster, a.placement, "placement"),
            Action::SetRouting { .. } => {
                // Routing is checked when the scores are published; it names no one cluster.
                return snapshot
                    .clusters
                    .first()
                    .ok_or_else(|| Done::rejected("no clusters are observed".into()));
            }
        };
        let Some(c) = snapshot.cluster(cluster) else {
            return Err(Done::rejected(format!(
                "unknown cluster `{cluster}`; it is not in backend.kubernetes.clusters"
            )));
        };
        if let Some(why) = &c.stale {
            return Err(Done::rejected(format!(
                "cluster `{cluster}`'s data is stale ({why}); not acting on it"
            )));
        }
        if !switch {
            return Err(Done::rejected(format!("backend.kubernetes.actions.{key} is off")));
        }
        if let Action::SetReplicas { service, .. } = action {
            // A workload's home is the first cluster (in configuration order) running it.
            let home =
                snapshot.clusters.iter().find(|c| c.workloads.contains_key(service)).map(|c| c.name.as_str());
            if !a.cross_cluster && home.is_some_and(|h| h != cluster) {
                return Err(Done::rejected(format!(
                    "`{service}` lives in cluster `{}`; replicas elsewhere need backend.kubernetes.actions.cross-cluster",
                    home.unwrap_or_default()
                )));
            }
        }
        if let Err(leader) = leadership {
            return Err(Done {
                outcome: Outcome::Standby { leader: leader.clone() },
                regarding: None,
                verb: "",
            });
        }
        Ok(c)
    }

    fn client(&self, cluster: &str) -> Result<Client, Done> {
        self.clients
            .get(cluster)
            .cloned()
            .ok_or_else(|| Done::rejected(format!("no client for cluster `{cluster}`")))
    }

    /// Why a call failed, for an operator: RBAC refusals name the rule to add.
    fn explain(&self, cluster: &str, failure: Failure, group: &str, resource: &str, verb: &str) -> String {
        match &failure {
            Failure::Forbidden(m) => {
                format!("cluster `{cluster}` refused: {m}; {}", super::rbac::missing(group, resource, verb))
            }
            Failure::NotFound(m)
                if group.contains("x-k8s.io") || group.contains("open-cluster-management") =>
            {
                format!(
                    "cluster `{cluster}` does not serve {resource} ({group}): {m}; install its CRD (Cluster Autoscaler or Karpenter with CapacityBuffer support; OCM on the hub) or turn the action off in backend.kubernetes.actions"
                )
            }
            other => format!("cluster `{cluster}`: {verb} {resource} failed: {}", other.message()),
        }
    }

    fn params(&self) -> PatchParams {
        PatchParams { field_manager: Some(self.settings.field_manager.clone()), ..PatchParams::default() }
    }

    /// The predictive floor: an HPA's `minReplicas` raised to the plan (its own minimum kept in
    /// an annotation and restored once the plan falls back to it), or, without an HPA, the
    /// Deployment's replicas.
    async fn set_replicas(&self, cluster: &ClusterSnapshot, service: &str, replicas: u32) -> Done {
        let Some(w) = cluster.workloads.get(service) else {
            return Done::rejected(format!(
                "service `{service}` has no Deployment labelled foresight.io/service={service} in cluster `{}`; deploy it there first",
                cluster.name
            ));
        };
        let client = match self.client(&cluster.name) {
            Ok(c) => c,
            Err(done) => return done,
        };
        match &w.hpa {
            Some(hpa) => self.floor(client, cluster, w, hpa, replicas).await,
            None => self.scale(client, cluster, w, replicas).await,
        }
    }

    async fn floor(
        &self,
        client: Client,
        cluster: &ClusterSnapshot,
        w: &Workload,
        hpa: &str,
        replicas: u32,
    ) -> Done {
        let regarding = Regarding {
            api_version: "autoscaling/v2",
            kind: "HorizontalPodAutoscaler",
            namespace: w.namespace.clone(),
            name: hpa.to_owned(),
        };
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, &w.namespace);
        let retry = self.settings.retry;
        let fail = |f: Failure, verb: &str| {
            Done::rejected(self.explain(&cluster.name, f, "autoscaling", "horizontalpodautoscalers", verb))
        };
        // A conflict means someone changed the HPA between our read and write: read again.
        for _ in 0..retry.attempts.max(1) {
            let current = match retry.run("get hpa", || api.get(hpa)).await {
                Ok(h) => h,
                Err(f) => return fail(f, "get"),
            };
            let spec = current.spec.clone();
            let min = spec.min_replicas.unwrap_or(1).max(0) as u32;
            let max = spec.max_replicas.max(0) as u32;
            let annotations = current.metadata.annotations.clone().unwrap_or_default();
            let saved = annotations.get(ORIGINAL_MIN_REPLICAS).and_then(|v| v.parse::<u32>().ok());
            let original = saved.unwrap_or(min);
            if replicas > max {
                return Done::rejected(format!(
                    "HPA {}/{hpa} in cluster `{}` allows at most {max} replicas and the plan asks for {replicas}; raise its maxReplicas or lower Foresight's guardrails",
                    w.namespace, cluster.name
                ));
            }
            let (target, keep) =
                if replicas > original { (replicas, Some(original)) } else { (original, None) };
            let verb = if keep.is_some() { "raised minReplicas to" } else { "restored minReplicas to" };
            let done = |what: String| Done {
                outcome: Outcome::Applied,
                regarding: Some(Box::new((what, regarding.clone()))),
                verb: if keep.is_some() { "RaiseFloor" } else { "RestoreFloor" },
            };
            if min == target && saved == keep {
                return done(format!("{verb} {target} (already so)"));
            }
            let patch = json!({
                "metadata": {
                    "resourceVersion": current.metadata.resource_version,
                    "annotations": { ORIGINAL_MIN_REPLICAS: keep.map(|o| o.to_string()) },
                },
                "spec": { "minReplicas": target },
            });
            let (params, patch) = (self.params(), Patch::Merge(patch));
            match retry.run("patch hpa", || api.patch(hpa, &params, &patch)).await {
                Ok(_) => {
                    return done(format!(
                        "{verb} {target} (HPA {}/{hpa}, its own minimum {original})",
                        w.namespace
                    ));
                }
                Err(Failure::Conflict(m)) => {
                    tracing::debug!(hpa, conflict = %m, "HPA changed under us; reading it again")
                }
                Err(f) => return fail(f, "patch"),
            }
        }
        Done::rejected(format!(
            "HPA {}/{hpa} in cluster `{}` kept changing between read and write ({} attempts); will try again next tick",
            w.namespace, cluster.name, retry.attempts
        ))
    }

    async fn scale(&self, client: Client, cluster: &ClusterSnapshot, w: &Workload, replicas: u32) -> Done {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, &w.namespace);
        let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
        let params = self.params();
        match self.settings.retry.run("patch scale", || api.patch_scale(&w.name, &params, &patch)).await {
            Ok(_) => Done {
                outcome: Outcome::Applied,
                regarding: Some(Box::new((
                    format!(
                        "scaled Deployment {}/{} to {replicas} replicas (it has no HPA)",
                        w.namespace, w.name
                    ),
                    Regarding {
                        api_version: "apps/v1",
                        kind: "Deployment",
                        namespace: w.namespace.clone(),
                        name: w.name.clone(),
                    },
                ))),
                verb: "Scale",
            },
            Err(f) => Done::rejected(self.explain(&cluster.name, f, "apps", "deployments/scale", "patch")),
        }
    }

    /// Node headroom: a CapacityBuffer per offering holding, in one-core pods, the cores the
    /// pool should have free once it has the nodes the plan wants — so Cluster Autoscaler or
    /// Karpenter provision them before the pods that need them exist.
    async fn headroom(
        &self,
        cluster: &ClusterSnapshot,
        offering: &str,
        pool: &mut super::snapshot::PoolSnapshot,
        count: u32,
        add: bool,
    ) -> Done {
        if pool.vcpu <= 0.0 {
            return Done::rejected(format!(
                "offering `{offering}` is not in backend.kubernetes.offerings and cluster `{}` has no node of it; add it with its vcpu and memory-gib",
                cluster.name
            ));
        }
        let nodes = if add { pool.nodes + count } else { pool.nodes.saturating_sub(count) };
        let free = (f64::from(nodes) * pool.vcpu - pool.allocated).max(0.0);
        let replicas = free.floor() as u32;
        pool.nodes = nodes;
        let client = match self.client(&cluster.name) {
            Ok(c) => c,
            Err(done) => return done,
        };
        let name = format!("foresight-headroom-{}", offering.to_ascii_lowercase());
        let ns = &self.settings.namespace;
        let retry = self.settings.retry;
        let fail = |f: Failure, resource: &str, verb: &str| {
            let group = if resource == "podtemplates" { "" } else { "autoscaling.x-k8s.io" };
            Done::rejected(self.explain(&cluster.name, f, group, resource, verb))
        };
        let per_core_gib = pool.memory_gib / pool.vcpu;
        let template = json!({
            "apiVersion": "v1", "kind": "PodTemplate",
            "metadata": { "name": name, "namespace": ns, "labels": { MANAGED_BY.0: MANAGED_BY.1 } },
            "template": {
                "metadata": { "labels": { MANAGED_BY.0: MANAGED_BY.1 } },
                "spec": {
                    "nodeSelector": { resources::INSTANCE_TYPE: offering },
                    "containers": [{
                        "name": "headroom", "image": "registry.k8s.io/pause:3.10",
                        "resources": { "requests": { "cpu": "1", "memory": format!("{}Mi", (per_core_gib * 1024.0 * 0.9).floor()) } },
                    }],
                },
            },
        });
        let templates: Api<k8s_openapi::api::core::v1::PodTemplate> = Api::namespaced(client.clone(), ns);
        if let Err(f) = ensure(&retry, &templates, &name, &template).await {
            return fail(f, "podtemplates", "create");
        }
        let buffers: Api<DynamicObject> = Api::namespaced_with(client, ns, &resources::capacity_buffer());
        let buffer = json!({
            "apiVersion": "autoscaling.x-k8s.io/v1alpha1", "kind": "CapacityBuffer",
            "metadata": { "name": name, "namespace": ns, "labels": { MANAGED_BY.0: MANAGED_BY.1 } },
            "spec": { "podTemplateRef": { "name": name }, "replicas": replicas },
        });
        let current = match ensure(&retry, &buffers, &name, &buffer).await {
            Ok(c) => c,
            Err(f) => return fail(f, "capacitybuffers", "create"),
        };
        if current["spec"]["replicas"].as_u64() != Some(u64::from(replicas)) {
            let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
            let params = self.params();
            if let Err(f) = retry.run("patch buffer", || buffers.patch(&name, &params, &patch)).await {
                return fail(f, "capacitybuffers", "patch");
            }
        }
        Done {
            outcome: Outcome::Applied,
            regarding: Some(Box::new((
                format!(
                    "CapacityBuffer {ns}/{name} holds {replicas} free core(s): room for {nodes} {offering} node(s)"
                ),
                Regarding {
                    api_version: "autoscaling.x-k8s.io/v1alpha1",
                    kind: "CapacityBuffer",
                    namespace: ns.clone(),
                    name,
                },
            ))),
            verb: "SetHeadroom",
        }
    }

    /// Secondary scheduler: binds the oldest pod of the service waiting for Foresight to the
    /// node, through the Binding subresource.
    async fn place(&self, cluster: &ClusterSnapshot, service: &str, node: u32, next: &mut usize) -> Done {
        let Some(node_name) = cluster.nodes.get(node as usize) else {
            return Done::rejected(format!(
                "node {node} does not exist in cluster `{}` ({} ready nodes were observed)",
                cluster.name,
                cluster.nodes.len()
            ));
        };
        let Some(PodRef { namespace, name }) = cluster.pending.get(service).and_then(|p| p.get(*next)) else {
            return Done::rejected(format!(
                "no pod of `{service}` waits for Foresight's scheduler in cluster `{}`",
                cluster.name
            ));
        };
        *next += 1;
        let client = match self.client(&cluster.name) {
            Ok(c) => c,
            Err(done) => return done,
        };
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": { "name": name, "namespace": namespace },
            "target": { "apiVersion": "v1", "kind": "Node", "name": node_name },
        });
        let post = PostParams::default();
        let done = || Done {
            outcome: Outcome::Applied,
            regarding: Some(Box::new((
                format!("bound pod {namespace}/{name} to node {node_name}"),
                Regarding {
                    api_version: "v1",
                    kind: "Pod",
                    namespace: namespace.clone(),
                    name: name.clone(),
                },
            ))),
            verb: "Bind",
        };
        let retry = self.settings.retry;
        match retry
            .run("bind", || pods.create_subresource::<Value, Value>("binding", name, &post, &binding))
            .await
        {
            Ok(_) => done(),
            // An attempt whose answer was lost may have bound it already: look.
            Err(Failure::Conflict(m)) => match retry.run("get pod", || pods.get(name)).await {
                Ok(p) if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name.as_str()) => {
                    done()
                }
                Ok(p) => Done::rejected(format!(
                    "pod {namespace}/{name} was bound to {} by someone else ({m})",
                    p.spec.and_then(|s| s.node_name).unwrap_or_default()
                )),
                Err(f) => Done::rejected(self.explain(&cluster.name, f, "", "pods", "get")),
            },
            Err(f) => Done::rejected(self.explain(&cluster.name, f, "", "pods/binding", "create")),
        }
    }

    /// Routing, as OCM placement scores: every managed cluster's score for a service is its
    /// planned share of the service's demand, scaled to −100..100 (the largest share 100).
    async fn route(
        &mut self,
        snapshot: &Snapshot,
        decisions: &[Decision],
        routes: &[Route],
        leadership: &Leadership,
        outcomes: &mut [Outcome],
    ) {
        let set = |outcomes: &mut [Outcome], o: Outcome| {
            for (i, ..) in routes {
                outcomes[*i] = o.clone();
            }
        };
        if !self.settings.actions.placement_scores {
            return set(
                outcomes,
                Outcome::Rejected {
                    reason: "routing is carried out on Kubernetes as OCM AddOnPlacementScores, and backend.kubernetes.actions.placement-scores is off".into(),
                },
            );
        }
        if let Err(leader) = leadership {
            return set(outcomes, Outcome::Standby { leader: leader.clone() });
        }
        let Some(hub) = self.settings.scores_hub.clone() else {
            return set(
                outcomes,
                Outcome::Rejected { reason: "backend.kubernetes.placement-scores.hub is not set".into() },
            );
        };
        if let Some(why) = snapshot.cluster(&hub).and_then(|c| c.stale.as_ref()) {
            return set(
                outcomes,
                Outcome::Rejected { reason: format!("the hub cluster `{hub}`'s data is stale ({why})") },
            );
        }
        let mut table = self.routing.clone();
        for (_, service, region, weights) in routes {
            table.entry(service.clone()).or_default().insert(region.clone(), weights.clone());
        }
        let scores = scores(snapshot, &table);
        let valid_until = SystemTime::UNIX_EPOCH
            + Duration::from_secs(snapshot.time.max(0) as u64)
            + self.settings.scores_valid_for;
        let valid_until = humantime::format_rfc3339_seconds(valid_until).to_string();
        let summary: Vec<String> = scores
            .iter()
            .map(|(c, s)| {
                format!("{c}: {}", s.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" "))
            })
            .collect();
        if self.settings.dry_run {
            let would =
                format!("would publish placement scores {} (valid until {valid_until})", summary.join("; "));
            return set(outcomes, Outcome::DryRun { would });
        }
        let client = match self.client(&hub) {
            Ok(c) => c,
            Err(done) => return set(outcomes, done.outcome),
        };
        for (cluster, list) in &scores {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), cluster, &resources::placement_score());
            let name = &self.settings.scores_name;
            let object = json!({
                "apiVersion": "cluster.open-cluster-management.io/v1alpha1", "kind": "AddOnPlacementScore",
                "metadata": { "name": name, "namespace": cluster, "labels": { MANAGED_BY.0: MANAGED_BY.1 } },
            });
            let retry = self.settings.retry;
            let fail = |f: Failure, resource: &str, verb: &str| Outcome::Rejected {
                reason: self.explain(&hub, f, "cluster.open-cluster-management.io", resource, verb),
            };
            if let Err(f) = ensure(&retry, &api, name, &object).await {
                return set(outcomes, fail(f, "addonplacementscores", "create"));
            }
            let status = json!({ "status": {
                "scores": list.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect::<Vec<_>>(),
                "validUntil": valid_until,
            }});
            let (params, status) = (self.params(), Patch::Merge(status));
            if let Err(f) = retry.run("patch scores", || api.patch_status(name, &params, &status)).await {
                return set(outcomes, fail(f, "addonplacementscores/status", "patch"));
            }
        }
        self.routing = table;
        set(outcomes, Outcome::Applied);
        let (index, ..) = routes[0];
        let regarding = Regarding {
            api_version: "cluster.open-cluster-management.io/v1alpha1",
            kind: "AddOnPlacementScore",
            namespace: hub_namespace(snapshot),
            name: self.settings.scores_name.clone(),
        };
        let done = Done {
            outcome: Outcome::Applied,
            regarding: Some(Box::new((
                format!("published placement scores {}", summary.join("; ")),
                regarding,
            ))),
            verb: "PublishScores",
        };
        self.record_on(&hub, snapshot, index, &decisions[index], &done).await;
    }

    /// The Event for an action that changed (or in dry-run would change) an object.
    async fn record(&self, snapshot: &Snapshot, index: usize, decision: &Decision, done: &Done) {
        let cluster = match &decision.action {
            Action::SetReplicas { cluster, .. }
            | Action::RequestNodes { cluster, .. }
            | Action::ReleaseNodes { cluster, .. }
            | Action::PlacePod { cluster, .. } => cluster,
            Action::SetRouting { .. } => return,
        };
        self.record_on(cluster, snapshot, index, decision, done).await;
    }

    async fn record_on(
        &self,
        cluster: &str,
        snapshot: &Snapshot,
        index: usize,
        decision: &Decision,
        done: &Done,
    ) {
        let (Some(changed), true) = (&done.regarding, self.settings.actions.events) else { return };
        let (what, regarding) = changed.as_ref();
        let Ok(client) = self.client(cluster) else { return };
        let (reason, note) = if self.settings.dry_run {
            ("DryRun", format!("dry-run, {what}: {}", decision.reason.summary))
        } else {
            ("PredictedDemand", format!("{what}: {}", decision.reason.summary))
        };
        let digest = sha2::Sha256::digest(
            format!(
                "{}/{index}/{}",
                snapshot.time,
                serde_json::to_string(&decision.action).unwrap_or_default()
            )
            .as_bytes(),
        );
        let prefix: String = regarding.name.chars().take(200).collect();
        let name = format!("{prefix}.{}", &hex::encode(digest)[..16]);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(snapshot.time.max(0) as u64);
        let event = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": { "name": name, "namespace": regarding.namespace },
            "eventTime": humantime::format_rfc3339_micros(at).to_string(),
            "reportingController": format!("foresight.io/{}", self.settings.field_manager),
            "reportingInstance": self.settings.identity,
            "action": done.verb,
            "reason": reason,
            "type": "Normal",
            "note": note.chars().take(1000).collect::<String>(),
            "regarding": {
                "apiVersion": regarding.api_version, "kind": regarding.kind,
                "namespace": regarding.namespace, "name": regarding.name,
            },
        });
        let events: Api<DynamicObject> = Api::namespaced_with(
            client,
            &regarding.namespace,
            &kube::api::ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk("events.k8s.io", "v1", "Event"),
                "events",
            ),
        );
        let object: DynamicObject = match serde_json::from_value(event) {
            Ok(o) => o,
            Err(e) => return tracing::warn!(error = %e, "cannot build the Event"),
        };
        // The name is the action's: a retried create that finds it exists is done.
        let post = PostParams::default();
        match self.settings.retry.run("create event", || events.create(&post, &object)).await {
            Ok(_) | Err(Failure::Exists(_)) => {}
            Err(f) => {
                tracing::warn!(cluster, error = %self.explain(cluster, f, "events.k8s.io", "events", "create"), "cannot record the Event for an action")
            }
        }
    }
}

/// The object an action would change, for a dry-run's Event.
fn regarding(cluster: &ClusterSnapshot, action: &Action, next: usize, own: &str) -> Option<Regarding> {
    match action {
        Action::SetReplicas { service, .. } => cluster.workloads.get(service).map(|w| match &w.hpa {
            Some(h) => Regarding {
                api_version: "autoscaling/v2",
                kind: "HorizontalPodAutoscaler",
                namespace: w.namespace.clone(),
                name: h.clone(),
            },
            None => Regarding {
                api_version: "apps/v1",
                kind: "Deployment",
                namespace: w.namespace.clone(),
                name: w.name.clone(),
            },
        }),
        Action::RequestNodes { offering, .. } | Action::ReleaseNodes { offering, .. } => Some(Regarding {
            api_version: "autoscaling.x-k8s.io/v1alpha1",
            kind: "CapacityBuffer",
            namespace: own.to_owned(),
            name: format!("foresight-headroom-{}", offering.to_ascii_lowercase()),
        }),
        Action::PlacePod { service, .. } => cluster.pending.get(service).and_then(|p| p.get(next)).map(|p| {
            Regarding { api_version: "v1", kind: "Pod", namespace: p.namespace.clone(), name: p.name.clone() }
        }),
        Action::SetRouting { .. } => None,
    }
}

/// What a dry-run would have done, in words.
pub fn would(snapshot: &Snapshot, action: &Action) -> String {
    let workload = |cluster: &str, service: &str| {
        snapshot.cluster(cluster).and_then(|c| c.workloads.get(service)).map(|w| match &w.hpa {
            Some(h) => format!("HPA {}/{h} minReplicas", w.namespace),
            None => format!("Deployment {}/{} replicas", w.namespace, w.name),
        })
    };
    match action {
        Action::SetReplicas { service, cluster, replicas } => format!(
            "would set {} to {replicas} in cluster `{cluster}`",
            workload(cluster, service).unwrap_or_else(|| format!("`{service}`"))
        ),
        Action::RequestNodes { cluster, offering, count } => {
            format!(
                "would grow CapacityBuffer foresight-headroom-{offering} in cluster `{cluster}` by {count} node(s)"
            )
        }
        Action::ReleaseNodes { cluster, offering, count } => {
            format!(
                "would shrink CapacityBuffer foresight-headroom-{offering} in cluster `{cluster}` by {count} node(s)"
            )
        }
        Action::PlacePod { service, cluster, node } => {
            let node = snapshot
                .cluster(cluster)
                .and_then(|c| c.nodes.get(*node as usize))
                .cloned()
                .unwrap_or_default();
            format!("would bind a pending pod of `{service}` in cluster `{cluster}` to node {node}")
        }
        Action::SetRouting { service, region, weights } => {
            format!("would route `{service}` from {region} as {weights:?}")
        }
    }
}

/// Placement scores per managed cluster: (score name = service, value −100..100).
fn scores(snapshot: &Snapshot, table: &RoutingTable) -> Vec<(String, Vec<(String, i64)>)> {
    let mut out: Vec<(String, Vec<(String, i64)>)> =
        snapshot.clusters.iter().map(|c| (c.name.clone(), Vec::new())).collect();
    for (service, rows) in table {
        let demand = snapshot.demand.get(service);
        let share: Vec<f64> = snapshot
            .clusters
            .iter()
            .map(|c| {
                rows.iter()
                    .map(|(region, weights)| {
                        let r = snapshot.regions.iter().position(|x| x == region);
                        let d = r.and_then(|r| demand.and_then(|d| d.get(r))).copied().unwrap_or(1.0);
                        let total: f64 = weights.iter().map(|(_, w)| w).sum();
                        let w = weights.iter().find(|(n, _)| *n == c.name).map_or(0.0, |(_, w)| *w);
                        if total > 0.0 { d * w / total } else { 0.0 }
                    })
                    .sum()
            })
            .collect();
        let top = share.iter().cloned().fold(0.0, f64::max);
        for (i, s) in share.iter().enumerate() {
            let value = if top > 0.0 { (-100.0 + 200.0 * s / top).round() as i64 } else { 0 };
            out[i].1.push((service.clone(), value));
        }
    }
    out
}

fn hub_namespace(snapshot: &Snapshot) -> String {
    snapshot.clusters.first().map(|c| c.name.clone()).unwrap_or_default()
}

/// Gets an object, creating it as `wanted` when it does not exist; its JSON either way.
async fn ensure<K>(retry: &Retry, api: &Api<K>, name: &str, wanted: &Value) -> Result<Value, Failure>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match retry.run("get", || api.get_opt(name)).await? {
        Some(existing) => Ok(serde_json::to_value(existing).unwrap_or_default()),
        None => {
            let object: K = serde_json::from_value(wanted.clone())
                .map_err(|e| Failure::Refused(format!("cannot build {name}: {e}")))?;
            let post = PostParams::default();
            match retry.run("create", || api.create(&post, &object)).await {
                Ok(created) => Ok(serde_json::to_value(created).unwrap_or_default()),
                // Created by an attempt whose answer was lost, or by a peer: read it.
                Err(Failure::Exists(_)) => match retry.run("get", || api.get(name)).await {
                    Ok(o) => Ok(serde_json::to_value(o).unwrap_or_default()),
                    Err(f) => Err(f),
                },
                Err(f) => Err(f),
            }
        }
    }
}
