//! The backend against the fake API server: every action, each API fault, and the checks
//! that nothing is applied twice or lost.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use http::Method;
use serde_json::json;

use super::actuate::{Actuator, Settings};
use super::api::Retry;
use super::fake::{self, FakeApi, Fault, Key};
use super::snapshot::{ClusterSnapshot, PodRef, PoolSnapshot, Snapshot, Workload};
use crate::act::{Action, Outcome};
use crate::config::kubernetes::ActionsConfig;
use crate::decide::{Decision, Reason};

const APPS: &str = "/apis/apps/v1";
const HPA: &str = "/apis/autoscaling/v2";
const CORE: &str = "/api/v1";
const BUFFERS: &str = "/apis/autoscaling.x-k8s.io/v1alpha1";
const OCM: &str = "/apis/cluster.open-cluster-management.io/v1alpha1";

pub fn settings(dry_run: bool) -> Settings {
    Settings {
        dry_run,
        actions: ActionsConfig { placement_scores: true, ..ActionsConfig::default() },
        namespace: "foresight".into(),
        field_manager: "foresight".into(),
        identity: "foresight-0".into(),
        retry: Retry { attempts: 3, backoff: Duration::from_millis(1) },
        scores_hub: Some("eu".into()),
        scores_name: "foresight".into(),
        scores_valid_for: Duration::from_secs(300),
    }
}

fn key(prefix: &str, resource: &str, ns: Option<&str>, name: &str) -> Key {
    Key {
        prefix: prefix.into(),
        resource: resource.into(),
        namespace: ns.map(str::to_owned),
        name: name.into(),
    }
}

fn decision(action: Action) -> Decision {
    Decision {
        action,
        reason: Reason { summary: "forecast p90 120 req/s in 5 min".into(), ..Reason::default() },
    }
}

/// A cluster `eu` running `web` (with an HPA 2..20) and `api` (no HPA), one m5 node, two
/// pods of `web` waiting for Foresight.
fn world() -> (FakeApi, kube::Client, Snapshot) {
    let (api, client) = FakeApi::start("foresight");
    api.insert(CORE, "nodes", fake::node("n1", "m5.xlarge", "4", "16Gi"));
    api.insert(APPS, "deployments", fake::deployment("shop", "web", "web", 4, 2, "500m"));
    api.insert(APPS, "deployments", fake::deployment("shop", "api", "api", 2, 2, "250m"));
    api.insert(HPA, "horizontalpodautoscalers", fake::hpa("shop", "web", 2, 20));
    api.insert(CORE, "pods", fake::pod("shop", "web-a", "web", None, "foresight", "500m"));
    api.insert(CORE, "pods", fake::pod("shop", "web-b", "web", None, "foresight", "500m"));
    let workload = |name: &str, hpa: bool| Workload {
        namespace: "shop".into(),
        name: name.into(),
        hpa: hpa.then(|| name.to_owned()),
        replicas: 2,
    };
    let pod = |name: &str| PodRef { namespace: "shop".into(), name: name.into() };
    let snapshot = Snapshot {
        time: 1_764_756_000,
        regions: vec!["eu-west".into(), "us-east".into()],
        clusters: vec![ClusterSnapshot {
            name: "eu".into(),
            stale: None,
            workloads: [
                ("web".to_owned(), workload("web", true)),
                ("api".to_owned(), workload("api", false)),
            ]
            .into(),
            nodes: vec!["n1".into()],
            pending: [("web".to_owned(), vec![pod("web-a"), pod("web-b")])].into(),
            pools: [(
                "m5.xlarge".to_owned(),
                PoolSnapshot { nodes: 1, allocated: 2.5, vcpu: 4.0, memory_gib: 16.0 },
            )]
            .into(),
        }],
        demand: [("web".to_owned(), vec![90.0, 30.0])].into(),
    };
    (api, client, snapshot)
}

fn actuator(client: &kube::Client, dry_run: bool) -> Actuator {
    Actuator::new(settings(dry_run), BTreeMap::from([("eu".to_owned(), client.clone())]))
}

fn replicas(service: &str, n: u32) -> Decision {
    decision(Action::SetReplicas { service: service.into(), cluster: "eu".into(), replicas: n })
}

#[tokio::test]
async fn the_floor_is_raised_ahead_of_demand_and_restored_after() {
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, false);
    let hpa = key(HPA, "horizontalpodautoscalers", Some("shop"), "web");

    assert_eq!(act.apply(&snapshot, &[replicas("web", 8)], &Ok(())).await, vec![Outcome::Applied]);
    let h = api.get(&hpa).expect("hpa");
    assert_eq!(h["spec"]["minReplicas"], 8);
    assert_eq!(h["metadata"]["annotations"]["foresight.io/original-min-replicas"], "2");
    // Converged: the same plan writes nothing.
    act.apply(&snapshot, &[replicas("web", 8)], &Ok(())).await;
    assert_eq!(api.writes(&hpa), 1);
    // Higher again keeps the HPA's own minimum, not our floor.
    act.apply(&snapshot, &[replicas("web", 12)], &Ok(())).await;
    assert_eq!(
        api.get(&hpa).expect("hpa")["metadata"]["annotations"]["foresight.io/original-min-replicas"],
        "2"
    );
    // Back below the HPA's own minimum: restored, annotation gone; HPA is the safety net again.
    assert_eq!(act.apply(&snapshot, &[replicas("web", 1)], &Ok(())).await, vec![Outcome::Applied]);
    let h = api.get(&hpa).expect("hpa");
    assert_eq!(h["spec"]["minReplicas"], 2);
    assert!(h["metadata"]["annotations"].get("foresight.io/original-min-replicas").is_none(), "{h}");
    // Above maxReplicas is refused whole, not clamped.
    match &act.apply(&snapshot, &[replicas("web", 21)], &Ok(())).await[0] {
        Outcome::Rejected { reason } => {
            assert!(reason.contains("at most 20") && reason.contains("maxReplicas"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(api.get(&hpa).expect("hpa")["spec"]["minReplicas"], 2);
}

#[tokio::test]
async fn a_conflict_is_read_again_and_a_lost_answer_is_not_applied_twice() {
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, false);
    let hpa = key(HPA, "horizontalpodautoscalers", Some("shop"), "web");
    // Another controller changes the HPA between our read and our write.
    api.fail(Method::PATCH, "horizontalpodautoscalers/web", Fault::Status(409), 1);
    assert_eq!(act.apply(&snapshot, &[replicas("web", 6)], &Ok(())).await, vec![Outcome::Applied]);
    assert_eq!((api.get(&hpa).expect("hpa")["spec"]["minReplicas"].clone(), api.writes(&hpa)), (json!(6), 1));
    // The write lands but its answer is a 500: the retry finds it done (409 on the stale
    // resourceVersion, read again, converged) and nothing is written twice.
    api.fail(Method::PATCH, "horizontalpodautoscalers/web", Fault::ApplyThenStatus(500), 1);
    assert_eq!(act.apply(&snapshot, &[replicas("web", 9)], &Ok(())).await, vec![Outcome::Applied]);
    assert_eq!((api.get(&hpa).expect("hpa")["spec"]["minReplicas"].clone(), api.writes(&hpa)), (json!(9), 2));
    // A server failing every time: rejected with the reason, nothing lost silently.
    api.fail(Method::GET, "horizontalpodautoscalers/web", Fault::Status(503), 3);
    match &act.apply(&snapshot, &[replicas("web", 4)], &Ok(())).await[0] {
        Outcome::Rejected { reason } => {
            assert!(reason.contains("503") && reason.contains("3 attempt"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(api.writes(&hpa), 2);
}

#[tokio::test]
async fn without_an_hpa_the_deployment_is_scaled() {
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, false);
    let deploy = key(APPS, "deployments", Some("shop"), "api");
    api.fail(Method::PATCH, "deployments/api/scale", Fault::ApplyThenStatus(502), 1);
    assert_eq!(act.apply(&snapshot, &[replicas("api", 5)], &Ok(())).await, vec![Outcome::Applied]);
    assert_eq!(api.get(&deploy).expect("deployment")["spec"]["replicas"], 5);
    assert_eq!(api.writes(&deploy), 1, "the retried scale is absolute, so it changes nothing more");
    match &act.apply(&snapshot, &[replicas("cart", 5)], &Ok(())).await[0] {
        Outcome::Rejected { reason } => assert!(reason.contains("foresight.io/service=cart"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn headroom_is_a_capacity_buffer_sized_to_the_nodes_the_plan_wants() {
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, false);
    let request =
        |count| decision(Action::RequestNodes { cluster: "eu".into(), offering: "m5.xlarge".into(), count });
    let buffer = key(BUFFERS, "capacitybuffers", Some("foresight"), "foresight-headroom-m5.xlarge");
    api.fail(Method::POST, "capacitybuffers", Fault::ApplyThenStatus(500), 1);
    assert_eq!(act.apply(&snapshot, &[request(2)], &Ok(())).await, vec![Outcome::Applied]);
    // 3 nodes × 4 cores − 2.5 allocated: 9 free one-core slots.
    let b = api.get(&buffer).expect("buffer");
    assert_eq!(
        (b["spec"]["replicas"].clone(), b["spec"]["podTemplateRef"]["name"].clone()),
        (json!(9), json!("foresight-headroom-m5.xlarge"))
    );
    let template = api
        .get(&key(CORE, "podtemplates", Some("foresight"), "foresight-headroom-m5.xlarge"))
        .expect("template");
    assert_eq!(template["template"]["spec"]["nodeSelector"]["node.kubernetes.io/instance-type"], "m5.xlarge");
    assert_eq!(api.writes(&buffer), 1, "the create whose answer was lost is not repeated");
    // The same request on the same observation is the same target: nothing more is asked.
    act.apply(&snapshot, &[request(2)], &Ok(())).await;
    assert_eq!(api.writes(&buffer), 1);
    let release =
        decision(Action::ReleaseNodes { cluster: "eu".into(), offering: "m5.xlarge".into(), count: 1 });
    act.apply(&snapshot, &[release], &Ok(())).await;
    assert_eq!(
        api.get(&buffer).expect("buffer")["spec"]["replicas"],
        0,
        "no node wanted beyond the one held"
    );
    // Without the CRD the action is refused, saying what to install or switch off.
    api.uninstall(BUFFERS, "capacitybuffers");
    match &act.apply(&snapshot, &[request(1)], &Ok(())).await[0] {
        Outcome::Rejected { reason } => {
            assert!(reason.contains("install its CRD") && reason.contains("actions"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pending_pods_are_bound_once_even_when_the_answer_is_lost() {
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, false);
    let place = decision(Action::PlacePod { service: "web".into(), cluster: "eu".into(), node: 0 });
    api.fail(Method::POST, "pods/web-a/binding", Fault::ApplyThenStatus(500), 1);
    let out = act.apply(&snapshot, &[place.clone(), place.clone(), place.clone()], &Ok(())).await;
    assert_eq!(out[..2], [Outcome::Applied, Outcome::Applied]);
    assert!(
        matches!(&out[2], Outcome::Rejected { reason } if reason.contains("no pod of `web` waits")),
        "{out:?}"
    );
    for name in ["web-a", "web-b"] {
        let pod = key(CORE, "pods", Some("shop"), name);
        assert_eq!(api.get(&pod).expect("pod")["spec"]["nodeName"], "n1");
        assert_eq!(api.writes(&pod), 1, "{name} bound once");
    }
    // A pod someone else bound meanwhile is not claimed as ours.
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, false);
    api.update(&key(CORE, "pods", Some("shop"), "web-a"), json!({"spec": {"nodeName": "n9"}}));
    let out = act.apply(&snapshot, std::slice::from_ref(&place), &Ok(())).await;
    assert!(matches!(&out[0], Outcome::Rejected { reason } if reason.contains("by someone else")), "{out:?}");
    let node = decision(Action::PlacePod { service: "web".into(), cluster: "eu".into(), node: 4 });
    let out = act.apply(&snapshot, &[node], &Ok(())).await;
    assert!(matches!(&out[0], Outcome::Rejected { reason } if reason.contains("1 ready nodes")), "{out:?}");
}

#[tokio::test]
async fn a_forbidden_call_names_the_rbac_rule_to_add() {
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, false);
    api.fail(Method::POST, "binding", Fault::Status(403), 1);
    let place = decision(Action::PlacePod { service: "web".into(), cluster: "eu".into(), node: 0 });
    match &act.apply(&snapshot, &[place], &Ok(())).await[0] {
        Outcome::Rejected { reason } => {
            assert!(reason.contains("`create` on `pods/binding`") && reason.contains("rbac.yaml"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(api.writes(&key(CORE, "pods", Some("shop"), "web-a")), 0);
}

#[tokio::test]
async fn every_action_gets_one_event_with_its_reason() {
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, false);
    let plan = [
        replicas("web", 6),
        decision(Action::PlacePod { service: "web".into(), cluster: "eu".into(), node: 0 }),
    ];
    api.fail(Method::POST, "events", Fault::ApplyThenStatus(500), 1);
    act.apply(&snapshot, &plan, &Ok(())).await;
    let events = api.all("events");
    assert_eq!(events.len(), 2, "{events:?}");
    let on = |kind: &str| events.iter().find(|e| e["regarding"]["kind"] == kind).expect("an event").clone();
    let hpa = on("HorizontalPodAutoscaler");
    assert_eq!(
        (hpa["action"].clone(), hpa["reason"].clone(), hpa["type"].clone()),
        (json!("RaiseFloor"), json!("PredictedDemand"), json!("Normal"))
    );
    assert!(hpa["note"].as_str().expect("note").contains("forecast p90 120 req/s"), "{hpa}");
    assert_eq!(hpa["reportingController"], "foresight.io/foresight");
    assert_eq!(on("Pod")["regarding"]["name"], "web-a");
    // The same tick applied again (a restart mid-tick) records no second Event.
    act.apply(&snapshot, &plan, &Ok(())).await;
    assert_eq!(api.all("events").len(), 2);
}

#[tokio::test]
async fn dry_run_records_and_publishes_and_changes_nothing() {
    let (api, client, snapshot) = world();
    let mut act = actuator(&client, true);
    let plan = [
        replicas("web", 6),
        decision(Action::RequestNodes { cluster: "eu".into(), offering: "m5.xlarge".into(), count: 1 }),
        decision(Action::PlacePod { service: "web".into(), cluster: "eu".into(), node: 0 }),
        decision(Action::SetRouting {
            service: "web".into(),
            region: "eu-west".into(),
            weights: vec![("eu".into(), 1.0)],
        }),
    ];
    let out = act.apply(&snapshot, &plan, &Ok(())).await;
    for o in &out {
        assert!(matches!(o, Outcome::DryRun { .. }), "{out:?}");
    }
    assert!(
        matches!(&out[0], Outcome::DryRun { would } if would.contains("HPA shop/web minReplicas to 6")),
        "{out:?}"
    );
    let changed: Vec<String> =
        api.log().into_iter().filter(|l| !l.starts_with("GET") && !l.contains("/events")).collect();
    assert!(changed.is_empty(), "dry-run wrote {changed:?}");
    let events = api.all("events");
    assert_eq!(events.len(), 3, "one Event per action it would take: {events:?}");
    assert!(events.iter().all(|e| e["reason"] == "DryRun"));
}

#[tokio::test]
async fn a_standby_instance_and_stale_data_change_nothing() {
    let (api, client, mut snapshot) = world();
    let mut act = actuator(&client, false);
    let out = act.apply(&snapshot, &[replicas("web", 6)], &Err("foresight-1".into())).await;
    assert_eq!(out, vec![Outcome::Standby { leader: "foresight-1".into() }]);
    snapshot.clusters[0].stale = Some("watch failing for 180 s".into());
    let out = act.apply(&snapshot, &[replicas("web", 6)], &Ok(())).await;
    assert!(
        matches!(&out[0], Outcome::Rejected { reason } if reason.contains("stale (watch failing")),
        "{out:?}"
    );
    assert!(api.log().iter().all(|l| l.starts_with("GET")), "{:?}", api.log());
    let mut off = settings(false);
    off.actions.floor = false;
    let mut act = Actuator::new(off, BTreeMap::from([("eu".to_owned(), client.clone())]));
    snapshot.clusters[0].stale = None;
    let out = act.apply(&snapshot, &[replicas("web", 6)], &Ok(())).await;
    assert!(
        matches!(&out[0], Outcome::Rejected { reason } if reason.contains("actions.floor is off")),
        "{out:?}"
    );
    // Without cross-cluster, a workload is scaled only in its home cluster.
    let mut home = settings(false);
    home.actions.cross_cluster = false;
    let mut act =
        Actuator::new(home, BTreeMap::from([("eu".to_owned(), client.clone()), ("us".to_owned(), client)]));
    let mut us = snapshot.clusters[0].clone();
    us.name = "us".into();
    snapshot.clusters.push(us);
    let away = decision(Action::SetReplicas { service: "web".into(), cluster: "us".into(), replicas: 3 });
    let out = act.apply(&snapshot, &[away], &Ok(())).await;
    assert!(
        matches!(&out[0], Outcome::Rejected { reason } if reason.contains("lives in cluster `eu`")),
        "{out:?}"
    );
    assert_eq!(act.apply(&snapshot, &[replicas("web", 3)], &Ok(())).await, vec![Outcome::Applied]);
}

#[tokio::test]
async fn routing_is_published_as_ocm_placement_scores() {
    let (api, client, mut snapshot) = world();
    let mut second = snapshot.clusters[0].clone();
    second.name = "us".into();
    snapshot.clusters.push(second);
    let mut act = Actuator::new(
        settings(false),
        BTreeMap::from([("eu".to_owned(), client.clone()), ("us".to_owned(), client.clone())]),
    );
    let route = |region: &str, weights: Vec<(String, f64)>| {
        decision(Action::SetRouting { service: "web".into(), region: region.into(), weights })
    };
    let plan = [route("eu-west", vec![("eu".into(), 1.0)]), route("us-east", vec![("us".into(), 1.0)])];
    api.fail(Method::PATCH, "addonplacementscores/foresight/status", Fault::ApplyThenStatus(500), 1);
    assert_eq!(act.apply(&snapshot, &plan, &Ok(())).await, vec![Outcome::Applied, Outcome::Applied]);
    let score = |ns: &str| api.get(&key(OCM, "addonplacementscores", Some(ns), "foresight")).expect("score");
    // 90 req/s from eu-west go to eu, 30 from us-east to us: eu 100, us −100 + 200 × 30/90.
    assert_eq!(score("eu")["status"]["scores"], json!([{"name": "web", "value": 100}]));
    assert_eq!(score("us")["status"]["scores"], json!([{"name": "web", "value": -33}]));
    assert_eq!(score("eu")["status"]["validUntil"], "2025-12-03T10:05:00Z");
    assert_eq!(act.routing("web").map(|r| r.len()), Some(2));
}

/// A stand-in Prometheus on loopback: the demand query answers one series per region with
/// `rps` per region, the others one series; samples are `lag_s` old.
fn prometheus(rps: [f64; 2], lag_s: Arc<AtomicI64>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let param = |k: &str| {
                line.split(['?', '&', ' '])
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .unwrap_or("0")
                    .to_owned()
            };
            let (start, end, step): (i64, i64, i64) = (
                param("start").parse().unwrap_or(0),
                param("end").parse().unwrap_or(0),
                param("step").parse().unwrap_or(60),
            );
            let lag = lag_s.load(Ordering::Relaxed);
            let values = |v: f64| {
                (start..=end - lag)
                    .step_by(step as usize)
                    .map(|t| json!([t, v.to_string()]))
                    .collect::<Vec<_>>()
            };
            let result = if line.contains("http_requests_total") {
                json!([{"metric": {"region": "eu-west"}, "values": values(rps[0])},
                       {"metric": {"region": "us-east"}, "values": values(rps[1])}])
            } else if line.contains("duration") {
                json!([{"metric": {}, "values": values(140.0)}])
            } else {
                json!([{"metric": {}, "values": values(1.2)}])
            };
            let body =
                json!({"status": "success", "data": {"resultType": "matrix", "result": result}}).to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn backend_config(url: &str) -> crate::config::KubernetesConfig {
    use crate::config::kubernetes::{ClusterConfig, OfferingConfig};
    let mut c = crate::config::KubernetesConfig {
        dry_run: false,
        regions: vec!["eu-west".into(), "us-east".into()],
        clusters: vec![ClusterConfig {
            name: "eu".into(),
            context: None,
            kind: crate::observe::ClusterKind::Cloud,
            region: "eu-west".into(),
            rtt_ms: [("eu-west".to_owned(), 8.0), ("us-east".to_owned(), 85.0)].into(),
            namespaces: vec![],
        }],
        offerings: vec![OfferingConfig {
            name: "m5.xlarge".into(),
            vcpu: 4.0,
            memory_gib: 16.0,
            hourly_price: 0.19,
            spot: false,
            interruption_rate: 0.0,
            lead_time: "3m".into(),
            max_nodes: 10,
        }],
        ..crate::config::KubernetesConfig::default()
    };
    c.prometheus.url = url.into();
    c.leader.enabled = false;
    c.retry.backoff = "1ms".into();
    c
}

/// Waits (bounded) until the cluster's health satisfies `until`.
fn wait(
    rt: &tokio::runtime::Runtime,
    backend: &super::KubeBackend,
    until: impl Fn(&super::reflect::Health) -> bool,
) {
    let mut rx = backend.watch_health("eu").expect("cluster eu");
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|h| until(h))).await })
        .expect("the reflectors got there in time")
        .expect("health channel open");
}

#[test]
fn the_backend_observes_through_watches_and_recovers_from_expired_and_dropped_ones() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let (api, client, _) = {
        let _entered = rt.enter();
        world()
    };
    let lag = Arc::new(AtomicI64::new(0));
    let config = backend_config(&prometheus([90.0, 30.0], lag.clone()));
    let mut backend =
        super::KubeBackend::with_clients(&config, 60, vec![("eu".into(), client)], rt.handle().clone())
            .expect("backend");
    wait(&rt, &backend, |h| h.synced.iter().all(|s| *s));
    let o = crate::observe::Observer::observe(&mut backend).expect("observes");
    let names: Vec<&str> = o.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api", "web"]);
    let web = &o.services[1];
    assert_eq!(web.demand_rps, vec![90.0, 30.0]);
    assert_eq!((web.slo_p95_ms, web.service_ms, web.startup_s, web.cpu_per_replica), (200.0, 20.0, 30, 0.5));
    assert_eq!((web.placements[0].ready, web.placements[0].pending, web.placements[0].starting), (2, 2, 0));
    assert_eq!(web.p95_ms, 140.0);
    let eu = &o.clusters[0];
    assert_eq!((eu.up, eu.cpu_capacity, eu.pools[0].ready, eu.pending_pods), (true, 4.0, 1, 2));
    assert_eq!(crate::observe::Observer::nodes(&backend, "eu").map(|n| n.len()), Some(1));
    let history =
        crate::observe::Observer::demand_history(&backend, "web", "us-east", 3600).expect("history");
    assert_eq!((history.step, history.values.last().copied()), (60, Some(30.0)));

    // Act; the change comes back through the watch.
    let events = backend.watch_health("eu").expect("eu").borrow().events;
    let place = decision(Action::PlacePod { service: "web".into(), cluster: "eu".into(), node: 0 });
    assert_eq!(backend.apply_decisions(&[place]), vec![Outcome::Applied]);
    wait(&rt, &backend, |h| h.events > events);
    let o = crate::observe::Observer::observe(&mut backend).expect("observes");
    assert_eq!(o.services[1].placements[0].pending, 1);

    // History expires: the reflectors list again and see what changed meanwhile.
    let lists = backend.watch_health("eu").expect("eu").borrow().lists;
    api.expire_watches();
    wait(&rt, &backend, |h| h.lists >= lists + 4);
    let events = backend.watch_health("eu").expect("eu").borrow().events;
    api.update(&key(APPS, "deployments", Some("shop"), "web"), json!({"status": {"readyReplicas": 3}}));
    wait(&rt, &backend, |h| h.events > events);
    let o = crate::observe::Observer::observe(&mut backend).expect("observes");
    assert_eq!(o.services[1].placements[0].ready, 3);

    // Connections drop: the watches resume from where they were, nothing is missed.
    let errors = backend.watch_health("eu").expect("eu").borrow().errors;
    api.drop_watches();
    wait(&rt, &backend, |h| h.errors > errors);
    api.delete(&key(CORE, "pods", Some("shop"), "web-b"));
    wait(&rt, &backend, |h| h.failing_since.is_none());
    let o = crate::observe::Observer::observe(&mut backend).expect("observes");
    assert_eq!(o.services[1].placements[0].pending, 0, "the pod deleted while the watch was down is gone");
    assert!(o.clusters[0].up);

    // Prometheus lagging beyond the limit: nothing is acted on.
    lag.store(600, Ordering::Relaxed);
    match crate::observe::Observer::observe(&mut backend) {
        Err(crate::observe::ObserveError::Stale { age_s, limit_s }) => {
            assert!(age_s >= 600 && limit_s == 120)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cluster_whose_watches_keep_failing_is_stale() {
    use super::reflect::Health;
    let t0 = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let max = Duration::from_secs(120);
    let mut h = Health::default();
    assert!(h.stale(t0, max).expect("not synced").contains("initial list of nodes"));
    h.synced = [true; 4];
    assert_eq!(h.stale(t0, max), None);
    h.failing_since = Some(t0);
    h.last_error = Some("pods: connection reset".into());
    assert_eq!(h.stale(t0 + Duration::from_secs(60), max), None, "a short outage is ridden out");
    let why = h.stale(t0 + Duration::from_secs(180), max).expect("stale");
    assert!(why.contains("failing for 180 s") && why.contains("connection reset"), "{why}");
}

#[test]
fn a_node_reports_the_pods_it_serves_per_service() {
    let config = backend_config("http://127.0.0.1:9");
    fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
        Arc::new(serde_json::from_value(v).expect("object"))
    }
    let mut starting = fake::pod("shop", "web-c", "web", Some("n1"), "foresight", "500m");
    starting["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    // A second Deployment of `web` whose selector also matches the first one's pods.
    let mut canary = fake::deployment("shop", "web-canary", "web", 1, 0, "500m");
    canary["spec"]["selector"]["matchLabels"]["app"] = json!("web");
    let objects = super::view::ClusterObjects {
        nodes: vec![parse(fake::node("n1", "m5.xlarge", "4", "16Gi"))],
        pods: vec![
            parse(fake::pod("shop", "web-a", "web", Some("n1"), "foresight", "500m")),
            parse(fake::pod("shop", "web-b", "web", Some("n1"), "foresight", "500m")),
            parse(starting),
            parse(fake::pod("shop", "api-a", "api", Some("n1"), "foresight", "250m")),
            parse(fake::pod("shop", "web-d", "web", None, "foresight", "500m")),
        ],
        deployments: vec![
            parse(fake::deployment("shop", "web", "web", 4, 2, "500m")),
            parse(fake::deployment("shop", "api", "api", 1, 1, "250m")),
            parse(canary),
        ],
        hpas: vec![],
        usage: None,
    };
    let nodes = super::view::nodes(&config, &config.clusters[0], &objects);
    // Releasing n1 would stop two serving pods of web (each counted once) and one of api; the
    // one still starting and the one waiting for a node serve nothing.
    let want: BTreeMap<String, u32> = [("api".into(), 1), ("web".into(), 2)].into();
    assert_eq!((nodes.len(), nodes[0].pods, &nodes[0].serving), (1, 4, &want));
}
