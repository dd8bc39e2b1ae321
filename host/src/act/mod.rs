//! Act: the changes a plan asks of a backend, and what became of each.

use serde::Serialize;

/// One change to the world.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Run `replicas` replicas of a service in a cluster.
    SetReplicas {
        /// Service.
        service: String,
        /// Cluster.
        cluster: String,
        /// Desired replicas.
        replicas: u32,
    },
    /// Send a region's requests for a service to clusters in these proportions.
    SetRouting {
        /// Service.
        service: String,
        /// User region.
        region: String,
        /// (cluster, weight) pairs; weights are normalised.
        weights: Vec<(String, f64)>,
    },
    /// Ask for more nodes of an offering; they arrive after its lead time.
    RequestNodes {
        /// Cluster.
        cluster: String,
        /// Offering name.
        offering: String,
        /// Nodes to add.
        count: u32,
    },
    /// Give nodes of an offering back (empty ones first; pods on removed nodes are rescheduled).
    ReleaseNodes {
        /// Cluster.
        cluster: String,
        /// Offering name.
        offering: String,
        /// Nodes to remove.
        count: u32,
    },
    /// Place one pending replica of a service on a specific node.
    PlacePod {
        /// Service.
        service: String,
        /// Cluster.
        cluster: String,
        /// Node index within the cluster (as observed).
        node: u32,
    },
}

impl Action {
    /// The action's kind as serialised (`set-replicas`, `request-nodes`, …), for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SetReplicas { .. } => "set-replicas",
            Self::SetRouting { .. } => "set-routing",
            Self::RequestNodes { .. } => "request-nodes",
            Self::ReleaseNodes { .. } => "release-nodes",
            Self::PlacePod { .. } => "place-pod",
        }
    }
}

/// What happened to an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// Applied as asked.
    Applied,
    /// Refused, with the reason; nothing was changed.
    Rejected {
        /// Why, naming what was wrong.
        reason: String,
    },
    /// Recorded and published, not applied: the backend is in dry-run.
    DryRun {
        /// What applying it would have changed.
        would: String,
    },
    /// Not applied: this instance is on standby while another holds the leader Lease.
    Standby {
        /// The leader, as its Lease names it.
        leader: String,
    },
}

impl Outcome {
    /// The outcome's status as serialised (`applied`, `dry-run`, …), for metrics.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Rejected { .. } => "rejected",
            Self::DryRun { .. } => "dry-run",
            Self::Standby { .. } => "standby",
        }
    }
}

/// A backend that carries out actions.
pub trait Actuator {
    /// Applies actions in order; each gets an outcome. An invalid action is rejected with a
    /// reason and never clamped into something else.
    fn apply(&mut self, actions: &[Action]) -> Vec<Outcome>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_serialised_tag() {
        let actions = [
            Action::SetReplicas { service: "s".into(), cluster: "c".into(), replicas: 1 },
            Action::SetRouting { service: "s".into(), region: "r".into(), weights: vec![] },
            Action::RequestNodes { cluster: "c".into(), offering: "o".into(), count: 1 },
            Action::ReleaseNodes { cluster: "c".into(), offering: "o".into(), count: 1 },
            Action::PlacePod { service: "s".into(), cluster: "c".into(), node: 0 },
        ];
        for a in actions {
            let tag = serde_json::to_value(&a).expect("serialises")["kind"].as_str().map(str::to_owned);
            assert_eq!(tag.as_deref(), Some(a.kind()));
        }
        let outcomes = [
            Outcome::Applied,
            Outcome::Rejected { reason: "r".into() },
            Outcome::DryRun { would: "w".into() },
            Outcome::Standby { leader: "l".into() },
        ];
        for o in outcomes {
            let tag = serde_json::to_value(&o).expect("serialises")["status"].as_str().map(str::to_owned);
            assert_eq!(tag.as_deref(), Some(o.status()));
        }
    }
}
