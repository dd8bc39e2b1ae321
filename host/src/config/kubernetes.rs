//! `[backend.kubernetes]`: which clusters, what to watch, what to query, which actions to take.
//! A new install is in dry-run: it records and publishes what it would do and changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::observe::ClusterKind;

/// `[backend.kubernetes]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct KubernetesConfig {
    /// Record and publish actions without changing anything (the default for a new install).
    pub dry_run: bool,
    /// User regions, as the `region` label of the demand series names them.
    pub regions: Vec<String>,
    /// The clusters, one kube client each.
    pub clusters: Vec<ClusterConfig>,
    /// Deployments carrying this label are managed; its value names the service.
    pub service_label: String,
    /// Pods with this `schedulerName` are placed by Foresight.
    pub scheduler_name: String,
    /// Field manager and Event reporting component.
    pub field_manager: String,
    /// Namespace of Foresight's own objects: its Lease, CapacityBuffers and their PodTemplates.
    pub namespace: String,
    /// Oldest cluster or metrics data acted on; older data stops actions on what it describes.
    pub max_data_age: String,
    /// Which actions are taken.
    pub actions: ActionsConfig,
    /// The Prometheus server holding demand, CPU and latency history.
    pub prometheus: PrometheusConfig,
    /// Leader election.
    pub leader: LeaderConfig,
    /// Instance types, matched by the nodes' `node.kubernetes.io/instance-type` label.
    pub offerings: Vec<OfferingConfig>,
    /// OCM `AddOnPlacementScore` publication.
    pub placement_scores: ScoresConfig,
    /// How API calls that fail for a transient reason (5xx, 429, conflicts) are retried.
    pub retry: RetryConfig,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            dry_run: true,
            regions: Vec::new(),
            clusters: Vec::new(),
            service_label: "foresight.io/service".into(),
            scheduler_name: "foresight".into(),
            field_manager: "foresight".into(),
            namespace: "foresight".into(),
            max_data_age: "2m".into(),
            actions: ActionsConfig::default(),
            prometheus: PrometheusConfig::default(),
            leader: LeaderConfig::default(),
            offerings: Vec::new(),
            placement_scores: ScoresConfig::default(),
            retry: RetryConfig::default(),
        }
    }
}

/// `[[backend.kubernetes.clusters]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterConfig {
    /// Cluster name, as decisions and metrics name it.
    pub name: String,
    /// Kubeconfig context; omitted, the in-cluster configuration (or the current context).
    #[serde(default)]
    pub context: Option<String>,
    /// Edge or cloud.
    pub kind: ClusterKind,
    /// The cluster's own region.
    pub region: String,
    /// Round trip from each user region, ms (every region in `regions`).
    pub rtt_ms: BTreeMap<String, f64>,
    /// Namespaces watched; empty, all of them.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// `[backend.kubernetes.actions]`: each action on or off.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ActionsConfig {
    /// Raise an HPA's `minReplicas` ahead of forecast demand (and restore it); scale the
    /// Deployment where no HPA exists.
    pub floor: bool,
    /// Keep `CapacityBuffer` objects sized to the forecast's node headroom.
    pub headroom: bool,
    /// Bind pending Pods whose `schedulerName` is Foresight's.
    pub placement: bool,
    /// Set replicas in clusters other than a workload's first (cross-cluster placement).
    pub cross_cluster: bool,
    /// Publish OCM `AddOnPlacementScore` objects on the hub.
    pub placement_scores: bool,
    /// A Kubernetes Event on every action.
    pub events: bool,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            floor: true,
            headroom: true,
            placement: true,
            cross_cluster: true,
            placement_scores: false,
            events: true,
        }
    }
}

/// `[backend.kubernetes.prometheus]`. In each query `{service}` is the service's name; the
/// demand query returns one series per user region (its `region-label`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    pub url: String,
    /// Requests/s per user region.
    pub demand: String,
    /// Cores used by the service, all clusters together.
    pub cpu: String,
    /// p95 latency, ms.
    pub latency: String,
    /// The label naming a demand series' user region.
    pub region_label: String,
    /// Resolution of history queries (one tick's step).
    pub step: String,
    /// Per-request timeout.
    pub timeout: String,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            url: "http://prometheus.monitoring.svc:9090".into(),
            demand: "sum by (region) (rate(http_requests_total{service=\"{service}\"}[2m]))".into(),
            cpu: "sum(rate(container_cpu_usage_seconds_total{container=\"{service}\"}[2m]))".into(),
            latency: "1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service=\"{service}\"}[2m])))".into(),
            region_label: "region".into(),
            step: "1m".into(),
            timeout: "10s".into(),
        }
    }
}

/// `[backend.kubernetes.leader]`: only the holder of the Lease acts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LeaderConfig {
    /// Elect a leader; off, this instance always acts (run only one).
    pub enabled: bool,
    /// The cluster holding the Lease (default: the first).
    pub cluster: Option<String>,
    /// Name of the Lease.
    pub name: String,
    /// How long a Lease lasts without renewal.
    pub lease_duration: String,
    /// This instance's identity (default: `$POD_NAME`, else the host name).
    pub identity: Option<String>,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cluster: None,
            name: "foresight-leader".into(),
            lease_duration: "15s".into(),
            identity: None,
        }
    }
}

/// `[[backend.kubernetes.offerings]]`: what a node of an instance type costs and holds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OfferingConfig {
    /// Instance type (the `node.kubernetes.io/instance-type` label).
    pub name: String,
    /// Allocatable cores per node.
    pub vcpu: f64,
    /// Allocatable GiB per node.
    pub memory_gib: f64,
    /// Price per node-hour.
    pub hourly_price: f64,
    /// Interruptible (spot) capacity.
    #[serde(default)]
    pub spot: bool,
    /// Interruptions per node-hour.
    #[serde(default)]
    pub interruption_rate: f64,
    /// From request to ready.
    #[serde(default = "default_lead_time")]
    pub lead_time: String,
    /// Most nodes allowed per cluster.
    #[serde(default = "default_max_nodes")]
    pub max_nodes: u32,
}

fn default_lead_time() -> String {
    "3m".into()
}

fn default_max_nodes() -> u32 {
    100
}

/// `[backend.kubernetes.placement-scores]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ScoresConfig {
    /// The cluster running the OCM hub (one of `clusters`).
    pub hub: Option<String>,
    /// Name of the `AddOnPlacementScore` in each managed cluster's namespace.
    pub name: String,
    /// How long a published score stays valid (`validUntil`).
    pub valid_for: String,
}

impl Default for ScoresConfig {
    fn default() -> Self {
        Self { hub: None, name: "foresight".into(), valid_for: "5m".into() }
    }
}

/// `[backend.kubernetes.retry]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RetryConfig {
    /// Attempts per API call, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each next one.
    pub backoff: String,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { attempts: 3, backoff: "200ms".into() }
    }
}

/// A duration option, or what is wrong with it.
pub fn duration(key: &str, text: &str) -> Result<Duration, (String, String)> {
    humantime::parse_duration(text).map_err(|e| {
        (key.to_owned(), format!("= \"{text}\" is not a duration ({e}); write it like \"30s\" or \"5m\""))
    })
}

impl KubernetesConfig {
    /// Checks the section; `in_use` when `backend.kind = "kubernetes"` (clusters are required).
    pub fn validate(&self, in_use: bool) -> Result<(), (String, String)> {
        let key = |k: &str| format!("backend.kubernetes.{k}");
        duration(&key("max-data-age"), &self.max_data_age)?;
        duration(&key("prometheus.step"), &self.prometheus.step)?;
        duration(&key("prometheus.timeout"), &self.prometheus.timeout)?;
        duration(&key("leader.lease-duration"), &self.leader.lease_duration)?;
        duration(&key("placement-scores.valid-for"), &self.placement_scores.valid_for)?;
        duration(&key("retry.backoff"), &self.retry.backoff)?;
        if self.retry.attempts == 0 {
            return Err((key("retry.attempts"), "is 0; write at least 1 (one attempt, no retries)".into()));
        }
        if !in_use {
            return Ok(());
        }
        if self.clusters.is_empty() {
            return Err((
                key("clusters"),
                "is empty; add a [[backend.kubernetes.clusters]] table per cluster (name, kind, region, rtt-ms)".into(),
            ));
        }
        if self.regions.is_empty() {
            return Err((key("regions"), "is empty; list the user regions demand comes from".into()));
        }
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let at = |k: &str| key(&format!("clusters[{i}].{k}"));
            if !names.insert(c.name.as_str()) {
                return Err((
                    at("name"),
                    format!("`{}` is used by two clusters; names must be unique", c.name),
                ));
            }
            for region in &self.regions {
                if !c.rtt_ms.contains_key(region) {
                    return Err((
                        at("rtt-ms"),
                        format!("has no round trip from region `{region}`; add `{region} = <ms>`"),
                    ));
                }
            }
            if let Some((r, _)) = c.rtt_ms.iter().find(|(r, _)| !self.regions.contains(r)) {
                return Err((
                    at("rtt-ms"),
                    format!("names region `{r}`, which is not in backend.kubernetes.regions"),
                ));
            }
            if let Some((r, ms)) = c.rtt_ms.iter().find(|(_, ms)| !ms.is_finite() || **ms < 0.0) {
                return Err((
                    at("rtt-ms"),
                    format!("{r} = {ms} is not a round trip; write milliseconds ≥ 0"),
                ));
            }
        }
        let known = |name: &Option<String>, k: &str| match name {
            Some(n) if !names.contains(n.as_str()) => {
                Err((key(k), format!("names cluster `{n}`, which is not one of backend.kubernetes.clusters")))
            }
            _ => Ok(()),
        };
        known(&self.leader.cluster, "leader.cluster")?;
        known(&self.placement_scores.hub, "placement-scores.hub")?;
        if self.actions.placement_scores && self.placement_scores.hub.is_none() {
            return Err((
                key("placement-scores.hub"),
                "is not set but actions.placement-scores is on; name the cluster running the OCM hub".into(),
            ));
        }
        let p = &self.prometheus;
        if !p.url.starts_with("http://") && !p.url.starts_with("https://") {
            return Err((key("prometheus.url"), format!("= \"{}\" is not an http(s) URL", p.url)));
        }
        for (k, q) in [("demand", &p.demand), ("cpu", &p.cpu), ("latency", &p.latency)] {
            if !q.contains("{service}") {
                return Err((
                    key(&format!("prometheus.{k}")),
                    "has no `{service}` placeholder; the query must select one service".into(),
                ));
            }
        }
        for (i, o) in self.offerings.iter().enumerate() {
            let at = |k: &str| key(&format!("offerings[{i}].{k}"));
            duration(&at("lead-time"), &o.lead_time)?;
            for (k, v) in [("vcpu", o.vcpu), ("memory-gib", o.memory_gib)] {
                if !(v.is_finite() && v > 0.0) {
                    return Err((
                        at(k),
                        format!("= {v} is not a size; write the allocatable amount per node, > 0"),
                    ));
                }
            }
            if !(o.hourly_price.is_finite() && o.hourly_price >= 0.0) {
                return Err((
                    at("hourly-price"),
                    format!("= {} is not a price; write a number ≥ 0", o.hourly_price),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> KubernetesConfig {
        KubernetesConfig {
            regions: vec!["eu".into()],
            clusters: vec![ClusterConfig {
                name: "a".into(),
                context: None,
                kind: ClusterKind::Cloud,
                region: "eu".into(),
                rtt_ms: [("eu".to_owned(), 5.0)].into(),
                namespaces: vec![],
            }],
            ..KubernetesConfig::default()
        }
    }

    #[test]
    fn a_new_install_is_dry_run_and_the_unused_section_needs_no_clusters() {
        let c = KubernetesConfig::default();
        assert!(c.dry_run);
        assert!(c.validate(false).is_ok());
        let (key, message) = c.validate(true).unwrap_err();
        assert_eq!(key, "backend.kubernetes.clusters");
        assert!(message.contains("[[backend.kubernetes.clusters]]"), "{message}");
        assert!(valid().validate(true).is_ok());
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut c = valid();
        c.clusters[0].rtt_ms.clear();
        assert_eq!(c.validate(true).unwrap_err().0, "backend.kubernetes.clusters[0].rtt-ms");
        let mut c = valid();
        c.prometheus.demand = "sum(rate(x[1m]))".into();
        assert_eq!(c.validate(true).unwrap_err().0, "backend.kubernetes.prometheus.demand");
        let mut c = valid();
        c.actions.placement_scores = true;
        assert_eq!(c.validate(true).unwrap_err().0, "backend.kubernetes.placement-scores.hub");
        c.placement_scores.hub = Some("b".into());
        assert!(c.validate(true).unwrap_err().1.contains("`b`"));
        let mut c = valid();
        c.max_data_age = "soon".into();
        assert_eq!(c.validate(false).unwrap_err().0, "backend.kubernetes.max-data-age");
    }
}
