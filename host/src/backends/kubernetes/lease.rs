//! Leader election with a `coordination.k8s.io/v1` Lease: only the holder acts. Like
//! client-go, a Lease counts as expired when its resourceVersion has not changed for a whole
//! lease duration on *our* clock (never by comparing clocks across machines); every write
//! carries the resourceVersion read, so of two instances racing for it exactly one wins.

use std::time::{Duration, SystemTime};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;

use super::api::{Failure, Retry};

/// This instance's role after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// It holds the Lease.
    Leader,
    /// Another instance does (its identity; empty if unknown).
    Follower(String),
}

/// Competes for one Lease.
pub struct Elector {
    api: Api<DynamicObject>,
    name: String,
    identity: String,
    duration: Duration,
    retry: Retry,
    /// The resourceVersion last seen, and when (our clock).
    seen: Option<(String, SystemTime)>,
}

fn lease_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"), "leases")
}

fn micro(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

impl Elector {
    /// An elector for the Lease `namespace/name`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
        retry: Retry,
    ) -> Self {
        Self {
            api: Api::namespaced_with(client, namespace, &lease_resource()),
            name: name.into(),
            identity: identity.into(),
            duration,
            retry,
            seen: None,
        }
    }

    /// How long a Lease lasts without renewal.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Acquires, renews or observes the Lease at `now`.
    pub async fn step(&mut self, now: SystemTime) -> Result<Role, Failure> {
        let seconds = self.duration.as_secs().max(1);
        let current = self.retry.run("get lease", || self.api.get_opt(&self.name)).await?;
        let Some(current) = current else {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": { "name": self.name },
                "spec": { "holderIdentity": self.identity, "leaseDurationSeconds": seconds,
                          "acquireTime": micro(now), "renewTime": micro(now), "leaseTransitions": 0 },
            });
            let lease: DynamicObject =
                serde_json::from_value(lease).map_err(|e| Failure::Refused(e.to_string()))?;
            let post = PostParams::default();
            return match self.retry.run("create lease", || self.api.create(&post, &lease)).await {
                Ok(_) => Ok(Role::Leader),
                Err(Failure::Exists(_)) => Ok(Role::Follower(String::new())),
                Err(f) => Err(f),
            };
        };
        let spec = current.data["spec"].clone();
        let holder = spec["holderIdentity"].as_str().unwrap_or_default().to_owned();
        let rv = current.metadata.resource_version.clone().unwrap_or_default();
        let seen_at = match &self.seen {
            Some((v, at)) if *v == rv => *at,
            _ => now,
        };
        self.seen = Some((rv, seen_at));
        let lasts = spec["leaseDurationSeconds"].as_u64().map_or(self.duration, Duration::from_secs);
        let expired = holder.is_empty() || now.duration_since(seen_at).unwrap_or_default() >= lasts;
        let mine = holder == self.identity;
        if !mine && !expired {
            return Ok(Role::Follower(holder));
        }
        let mut next = current.clone();
        next.data["spec"]["holderIdentity"] = json!(self.identity);
        next.data["spec"]["leaseDurationSeconds"] = json!(seconds);
        next.data["spec"]["renewTime"] = json!(micro(now));
        if !mine {
            next.data["spec"]["acquireTime"] = json!(micro(now));
            let transitions = spec["leaseTransitions"].as_u64().unwrap_or(0);
            next.data["spec"]["leaseTransitions"] = json!(transitions + 1);
        }
        let post = PostParams::default();
        match self.retry.run("update lease", || self.api.replace(&self.name, &post, &next)).await {
            Ok(written) => {
                self.seen = written.metadata.resource_version.map(|v| (v, now));
                if !mine {
                    tracing::info!(lease = %self.name, previous = %holder, "acquired the leader Lease");
                }
                Ok(Role::Leader)
            }
            // Someone else wrote it first: they won this round.
            Err(Failure::Conflict(_)) => Ok(Role::Follower(holder)),
            Err(f) => Err(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::kubernetes::fake::{FakeApi, Fault, Key};

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_756_000 + s)
    }

    fn elector(client: &kube::Client, who: &str) -> Elector {
        let retry = Retry { attempts: 2, backoff: Duration::from_millis(1) };
        Elector::new(client.clone(), "foresight", "foresight-leader", who, Duration::from_secs(15), retry)
    }

    #[tokio::test]
    async fn the_lease_is_handed_over_only_after_it_expires() {
        let (api, client) = FakeApi::start("foresight");
        let (mut a, mut b) = (elector(&client, "pod-a"), elector(&client, "pod-b"));
        assert_eq!(a.step(at(0)).await, Ok(Role::Leader));
        assert_eq!(b.step(at(1)).await, Ok(Role::Follower("pod-a".into())));
        // a renews; b sees the Lease change and keeps waiting.
        assert_eq!(a.step(at(5)).await, Ok(Role::Leader));
        assert_eq!(b.step(at(10)).await, Ok(Role::Follower("pod-a".into())));
        assert_eq!(b.step(at(20)).await, Ok(Role::Follower("pod-a".into())), "unchanged for 10 s of 15");
        // a stops renewing: 15 s after b last saw it change, b takes over.
        assert_eq!(b.step(at(25)).await, Ok(Role::Leader));
        assert_eq!(a.step(at(26)).await, Ok(Role::Follower("pod-b".into())));
        let key = Key {
            prefix: "/apis/coordination.k8s.io/v1".into(),
            resource: "leases".into(),
            namespace: Some("foresight".into()),
            name: "foresight-leader".into(),
        };
        let lease = api.get(&key).expect("lease");
        assert_eq!(
            (lease["spec"]["holderIdentity"].clone(), lease["spec"]["leaseTransitions"].clone()),
            (json!("pod-b"), json!(1))
        );
    }

    #[tokio::test]
    async fn of_two_racing_for_an_expired_lease_one_wins() {
        let (api, client) = FakeApi::start("foresight");
        let (mut a, mut b, mut c) =
            (elector(&client, "pod-a"), elector(&client, "pod-b"), elector(&client, "pod-c"));
        assert_eq!(a.step(at(0)).await, Ok(Role::Leader));
        b.step(at(1)).await.expect("observes");
        c.step(at(1)).await.expect("observes");
        // Both see it expired; b's write meets 409 (another write landed first) and b stays
        // a follower; c's goes through.
        api.fail(http::Method::PUT, "leases/foresight-leader", Fault::Status(409), 1);
        assert_eq!(b.step(at(17)).await, Ok(Role::Follower("pod-a".into())));
        assert_eq!(c.step(at(17)).await, Ok(Role::Leader));
        assert_eq!(b.step(at(18)).await, Ok(Role::Follower("pod-c".into())));
    }
}
