//! The objects the backend reads and writes beyond the built-in types: `CapacityBuffer`
//! (autoscaling.x-k8s.io), OCM's `AddOnPlacementScore` and `metrics.k8s.io` pod usage; and
//! the labels and annotations it keys on.

use kube::api::{ApiResource, GroupVersionKind};
use serde::Deserialize;

/// Annotation holding an HPA's `minReplicas` from before Foresight first raised it.
pub const ORIGINAL_MIN_REPLICAS: &str = "foresight.io/original-min-replicas";
/// Deployment annotation: the service's p95 objective, ms.
pub const SLO_P95_MS: &str = "foresight.io/slo-p95-ms";
/// Deployment annotation: mean CPU time per request, ms (else estimated from CPU and demand).
pub const SERVICE_MS: &str = "foresight.io/service-ms";
/// Deployment annotation: seconds from scheduling to serving.
pub const STARTUP_S: &str = "foresight.io/startup-s";
/// The node label naming its instance type.
pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
/// Label on the objects Foresight owns.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "foresight");

/// `autoscaling.x-k8s.io/v1alpha1` `CapacityBuffer`: spare capacity Cluster Autoscaler or
/// Karpenter keep provisioned, as `replicas` copies of a PodTemplate.
pub fn capacity_buffer() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("autoscaling.x-k8s.io", "v1alpha1", "CapacityBuffer"),
        "capacitybuffers",
    )
}

/// `cluster.open-cluster-management.io/v1alpha1` `AddOnPlacementScore`: scores (−100..100)
/// OCM Placements can prioritise managed clusters by, in each cluster's namespace on the hub.
pub fn placement_score() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.open-cluster-management.io", "v1alpha1", "AddOnPlacementScore"),
        "addonplacementscores",
    )
}

/// `metrics.k8s.io/v1beta1` `PodMetrics`.
pub fn pod_metrics() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
        "pods",
    )
}

/// One pod's usage, as `metrics.k8s.io` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct PodUsage {
    /// Namespace and name.
    pub metadata: kube::api::ObjectMeta,
    /// Per container.
    #[serde(default)]
    pub containers: Vec<ContainerUsage>,
}

/// One container's usage.
#[derive(Debug, Clone, Deserialize)]
pub struct ContainerUsage {
    /// `cpu` and `memory` quantities.
    pub usage: std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
}

impl PodUsage {
    /// Cores the pod uses.
    pub fn cpu(&self) -> f64 {
        self.containers.iter().filter_map(|c| c.usage.get("cpu")).map(|q| cores(&q.0).unwrap_or(0.0)).sum()
    }
}

/// A CPU quantity (`250m`, `2`, `1500000n`) in cores.
pub fn cores(text: &str) -> Option<f64> {
    let (number, scale) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let n: f64 = number.parse().ok()?;
    let factor = match scale {
        "" => 1.0,
        "m" => 1e-3,
        "u" => 1e-6,
        "n" => 1e-9,
        "k" => 1e3,
        _ => return None,
    };
    Some(n * factor)
}

/// A memory quantity (`512Mi`, `2Gi`, `1e9`, `500M`) in GiB.
pub fn gib(text: &str) -> Option<f64> {
    let (number, scale) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic() && *c != 'e') {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let n: f64 = number.parse().ok()?;
    let bytes = match scale {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some(n * bytes / 1024f64.powi(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_every_suffix_kubernetes_writes() {
        assert_eq!(cores("250m"), Some(0.25));
        assert_eq!(cores("2"), Some(2.0));
        assert!((cores("1500000n").unwrap() - 0.0015).abs() < 1e-12);
        assert_eq!(cores("lots"), None);
        assert_eq!(gib("512Mi"), Some(0.5));
        assert_eq!(gib("2Gi"), Some(2.0));
        assert!((gib("1e9").unwrap() - 0.931).abs() < 1e-3);
        assert_eq!(gib("3Qi"), None);
    }

    #[test]
    fn usage_sums_containers() {
        let json = serde_json::json!({
            "metadata": {"name": "p", "namespace": "shop"},
            "timestamp": "2026-12-03T10:00:00Z", "window": "30s",
            "containers": [{"name": "a", "usage": {"cpu": "250m", "memory": "64Mi"}},
                           {"name": "b", "usage": {"cpu": "500000000n", "memory": "64Mi"}}]
        });
        let usage: PodUsage = serde_json::from_value(json).expect("PodMetrics JSON");
        assert!((usage.cpu() - 0.75).abs() < 1e-12);
    }
}
