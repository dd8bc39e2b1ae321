//! The API permissions the backend uses, and nothing more. `deploy/kubernetes/rbac.yaml`
//! grants exactly these (a test compares them), the fake API server in the tests refuses
//! anything else with 403, and a refusal from a real server names the rule that is missing.

/// One RBAC rule: an API group, a resource (or `resource/subresource`) and its verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Resource, `pods` or `pods/binding`.
    pub resource: &'static str,
    /// Verbs allowed.
    pub verbs: &'static [&'static str],
}

/// Rules of the ClusterRole every member cluster grants.
pub const CLUSTER_RULES: &[Rule] = &[
    Rule { group: "", resource: "nodes", verbs: &["get", "list", "watch"] },
    Rule { group: "", resource: "pods", verbs: &["get", "list", "watch"] },
    Rule { group: "", resource: "pods/binding", verbs: &["create"] },
    Rule { group: "events.k8s.io", resource: "events", verbs: &["create"] },
    Rule { group: "apps", resource: "deployments", verbs: &["get", "list", "watch"] },
    Rule { group: "apps", resource: "deployments/scale", verbs: &["get", "patch"] },
    Rule {
        group: "autoscaling",
        resource: "horizontalpodautoscalers",
        verbs: &["get", "list", "watch", "patch"],
    },
    Rule { group: "metrics.k8s.io", resource: "pods", verbs: &["get", "list"] },
    Rule {
        group: "cluster.open-cluster-management.io",
        resource: "addonplacementscores",
        verbs: &["get", "create"],
    },
    Rule {
        group: "cluster.open-cluster-management.io",
        resource: "addonplacementscores/status",
        verbs: &["patch"],
    },
];

/// Rules of the Role in Foresight's own namespace (Lease, headroom objects).
pub const NAMESPACE_RULES: &[Rule] = &[
    Rule { group: "coordination.k8s.io", resource: "leases", verbs: &["get", "create", "update"] },
    Rule { group: "", resource: "podtemplates", verbs: &["get", "create", "patch"] },
    Rule { group: "autoscaling.x-k8s.io", resource: "capacitybuffers", verbs: &["get", "create", "patch"] },
];

/// Whether the rules allow `verb` on `group`/`resource`, in `namespace` (`None` for
/// cluster-scoped or all-namespace requests); `own` is Foresight's namespace.
pub fn allows(group: &str, resource: &str, verb: &str, namespace: Option<&str>, own: &str) -> bool {
    let matches = |r: &&Rule| r.group == group && r.resource == resource && r.verbs.contains(&verb);
    CLUSTER_RULES.iter().any(|r| matches(&r))
        || (namespace == Some(own) && NAMESPACE_RULES.iter().any(|r| matches(&r)))
}

/// The rule to add when a server refuses `verb` on `group`/`resource`, as an operator writes it.
pub fn missing(group: &str, resource: &str, verb: &str) -> String {
    let role = if NAMESPACE_RULES.iter().any(|r| r.group == group && r.resource == resource) {
        "Role foresight in Foresight's namespace"
    } else {
        "ClusterRole foresight"
    };
    format!(
        "the {role} must allow `{verb}` on `{resource}` in API group \"{group}\" (apply deploy/kubernetes/rbac.yaml)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules of one Role or ClusterRole in the shipped manifest, in file order.
    fn manifest_rules(kind: &str) -> Vec<(String, String, Vec<String>)> {
        let text = include_str!("../../../../deploy/kubernetes/rbac.yaml");
        let mut found = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let doc: serde_json::Value = serde::Deserialize::deserialize(doc).expect("rbac.yaml is YAML");
            if doc["kind"] != kind {
                continue;
            }
            for rule in doc["rules"].as_array().expect("rules") {
                let one = |k: &str| {
                    let list = rule[k].as_array().unwrap_or_else(|| panic!("{kind} rule without {k}"));
                    assert_eq!(list.len(), 1, "{kind}: one {k} per rule, so each has its own reason");
                    list[0].as_str().expect("string").to_owned()
                };
                let verbs = rule["verbs"].as_array().expect("verbs");
                found.push((
                    one("apiGroups"),
                    one("resources"),
                    verbs.iter().map(|v| v.as_str().expect("verb").to_owned()).collect(),
                ));
            }
        }
        found
    }

    fn table(rules: &[Rule]) -> Vec<(String, String, Vec<String>)> {
        rules
            .iter()
            .map(|r| (r.group.into(), r.resource.into(), r.verbs.iter().map(|v| (*v).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn the_shipped_manifest_grants_exactly_what_the_backend_uses() {
        assert_eq!(manifest_rules("ClusterRole"), table(CLUSTER_RULES));
        assert_eq!(manifest_rules("Role"), table(NAMESPACE_RULES));
    }

    #[test]
    fn namespaced_rules_hold_only_in_the_own_namespace() {
        assert!(allows("coordination.k8s.io", "leases", "update", Some("foresight"), "foresight"));
        assert!(!allows("coordination.k8s.io", "leases", "update", Some("default"), "foresight"));
        assert!(allows("", "pods", "watch", None, "foresight"));
        assert!(!allows("", "pods", "delete", Some("foresight"), "foresight"));
        assert!(missing("", "pods/binding", "create").contains("ClusterRole"));
        assert!(missing("autoscaling.x-k8s.io", "capacitybuffers", "patch").contains("Role foresight in"));
    }
}
