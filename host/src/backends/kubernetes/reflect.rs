//! Watching one cluster: a kube-rs reflector per kind (Nodes, Pods, Deployments, HPAs) keeps
//! an in-memory copy current from list + watch — never polling — and reports its health: whether
//! each initial list has completed and since when watching has been failing. A watch that
//! expires (410 Gone) is listed again; one that drops is resumed, after a backoff.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio::sync::watch;

use super::view::ClusterObjects;

/// The kinds reflected, in [`Health::synced`] order.
pub const KINDS: [&str; 4] = ["nodes", "pods", "deployments", "horizontalpodautoscalers"];

/// How a cluster's watches are doing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Whether each kind's initial list has completed.
    pub synced: [bool; 4],
    /// Since when watching has failed without an event in between (our clock).
    pub failing_since: Option<SystemTime>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Watch events applied.
    pub events: u64,
    /// Failures seen (410s, dropped connections, refusals).
    pub errors: u64,
    /// Initial lists and relists completed.
    pub lists: u64,
}

impl Health {
    /// Why this cluster's data may not be acted on at `now`, or `None` if it may.
    pub fn stale(&self, now: SystemTime, max_age: Duration) -> Option<String> {
        if let Some(i) = self.synced.iter().position(|s| !s) {
            return Some(format!(
                "the initial list of {} has not completed{}",
                KINDS[i],
                self.last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            ));
        }
        let since = self.failing_since?;
        let age = now.duration_since(since).unwrap_or_default();
        (age > max_age).then(|| {
            format!(
                "watches failing for {} s (limit {} s): {}",
                age.as_secs(),
                max_age.as_secs(),
                self.last_error.as_deref().unwrap_or("unknown error")
            )
        })
    }
}

/// The reflected objects of one cluster.
#[derive(Clone)]
pub struct Stores {
    nodes: Store<Node>,
    pods: Store<Pod>,
    deployments: Store<Deployment>,
    hpas: Store<HorizontalPodAutoscaler>,
}

impl Stores {
    /// Everything held now (usage is fetched separately).
    pub fn objects(&self) -> ClusterObjects {
        ClusterObjects {
            nodes: self.nodes.state(),
            pods: self.pods.state(),
            deployments: self.deployments.state(),
            hpas: self.hpas.state(),
            usage: None,
        }
    }
}

/// Starts the reflectors of a cluster on the current tokio runtime; `backoff` is the wait
/// after a failure before watching again.
pub fn start(client: kube::Client, backoff: Duration) -> (Stores, Arc<watch::Sender<Health>>) {
    let tx = Arc::new(watch::channel(Health::default()).0);
    let stores = Stores {
        nodes: spawn(Api::all(client.clone()), 0, tx.clone(), backoff),
        pods: spawn(Api::all(client.clone()), 1, tx.clone(), backoff),
        deployments: spawn(Api::all(client.clone()), 2, tx.clone(), backoff),
        hpas: spawn(Api::all(client), 3, tx.clone(), backoff),
    };
    (stores, tx)
}

fn spawn<K>(api: Api<K>, kind: usize, health: Arc<watch::Sender<Health>>, backoff: Duration) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, mut writer) = reflector::store();
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    health.send_modify(|h| {
                        h.events += 1;
                        h.failing_since = None;
                        if matches!(event, watcher::Event::InitDone) {
                            h.synced[kind] = true;
                            h.lists += 1;
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(kind = KINDS[kind], error = %e, "watch failed; resuming after a backoff");
                    health.send_modify(|h| {
                        h.errors += 1;
                        h.failing_since.get_or_insert_with(SystemTime::now);
                        h.last_error = Some(format!("{}: {e}", KINDS[kind]));
                    });
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    });
    reader
}

/// Marks a cluster reachable again after a successful probe: a quiet watch sends no events,
/// so a resumed one is only known healthy by asking the server something.
pub fn recovered(health: &watch::Sender<Health>) {
    health.send_modify(|h| h.failing_since = None);
}
