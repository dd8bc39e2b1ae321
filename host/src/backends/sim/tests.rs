//! The simulator's behaviour on small worlds whose figures can be worked out by hand.

use std::path::PathBuf;

use super::{Scenario, ScenarioError, Simulator};
use crate::act::{Action, Outcome};
use crate::observe::Observer;

/// A scenario folder (for this crate's tests) with a flat 2-day trace (`value` req/s at 5-minute steps).
pub(crate) struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new(value: f64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut csv = String::from("timestamp,value\n");
        for i in 0..(2 * 288) {
            let (d, m) = (i / 288, i % 288);
            csv.push_str(&format!("2024-01-{:02}T{:02}:{:02}:00Z,{value}\n", d + 1, m * 5 / 60, m * 5 % 60));
        }
        std::fs::write(dir.path().join("flat.csv"), csv).expect("write trace");
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("scenario.toml")
    }

    pub(crate) fn scenario(&self, extra: &str) -> Result<Scenario, ScenarioError> {
        std::fs::write(self.path(), format!("{BASE}{extra}")).expect("write scenario");
        Scenario::load(&self.path())
    }
}

const BASE: &str = r#"
[scenario]
name = "tiny"
start = "2024-01-01T00:00:00Z"
duration = "1h"
step = "1m"
seed = 7

[[regions]]
name = "eu"

[[regions]]
name = "us"
utc-offset-h = -6

[[offerings]]
name = "small"
vcpu = 4
memory-gib = 8
hourly-price = 0.5
lead-time-s = 180

[[offerings]]
name = "small-spot"
vcpu = 4
memory-gib = 8
hourly-price = 0.1
spot = true
interruption-rate = 0.0
lead-time-s = 120

[[clusters]]
name = "edge"
kind = "edge"
rtt-ms = { eu = 5, us = 90 }
pools = [{ offering = "small", nodes = 1 }]

[[clusters]]
name = "cloud"
kind = "cloud"
rtt-ms = { eu = 30, us = 40 }
pools = [{ offering = "small", nodes = 2, max-nodes = 4 }, { offering = "small-spot", nodes = 0, max-nodes = 10 }]

[[services]]
name = "web"
slo-p95-ms = 150
service-ms = 10
cpu-per-replica = 1
memory-gib-per-replica = 1
startup-s = 120
demand = { trace = "flat.csv", mean-rps = 100, shares = { eu = 1, us = 1 } }
replicas = { cloud = 4 }
"#;

fn sim(extra: &str) -> Simulator {
    Simulator::from_scenario(Fixture::new(100.0).scenario(extra).expect("valid scenario"))
}

#[test]
fn cost_is_node_hours_times_price() {
    let mut s = sim("");
    for _ in 0..60 {
        s.step();
    }
    // Edge: 1 node at 0.5/h; cloud: 2 nodes at 0.5/h; one hour.
    assert!((s.ledger().cost - 1.5).abs() < 1e-9, "{}", s.ledger().cost);
    assert!(s.finished());
}

#[test]
fn demand_is_served_where_routing_sends_it_and_latency_includes_the_rtt() {
    let mut s = sim("");
    let tick = s.step();
    // 100 req/s over two regions, all to `cloud` (the only staffed cluster): 4 replicas of 10 ms
    // at ρ = 0.25 queue very little, so p95 ≈ the larger RTT plus a few service times.
    assert_eq!(tick.dropped_rps, 0.0);
    assert!((tick.offered_rps - 100.0).abs() < 1e-9);
    assert!(tick.p95_ms[0] > 40.0 && tick.p95_ms[0] < 80.0, "{}", tick.p95_ms[0]);
    let o = s.observe().expect("observe");
    assert_eq!(o.services[0].placements[1].ready, 4);
    assert!((o.services[0].placements[1].utilisation - 0.25).abs() < 1e-9);
}

#[test]
fn nodes_arrive_after_their_lead_time_and_replicas_after_startup() {
    let mut s = sim("");
    let outcome =
        s.apply(&[Action::RequestNodes { cluster: "cloud".into(), offering: "small".into(), count: 2 }]);
    assert_eq!(outcome, vec![Outcome::Applied]);
    for minute in 0..3 {
        let o = s.observe().expect("observe");
        assert_eq!(o.clusters[1].pools[0].ready, 2, "minute {minute}: nodes arrived early");
        s.step();
    }
    s.step();
    assert_eq!(s.observe().expect("observe").clusters[1].pools[0].ready, 4);
    // Replicas need room (12 cores needed, 8 on the first two nodes, 16 now) and 2 minutes.
    s.apply(&[Action::SetReplicas { service: "web".into(), cluster: "cloud".into(), replicas: 12 }]);
    s.step();
    let p = &s.observe().expect("observe").services[0].placements[1];
    assert_eq!((p.ready, p.starting, p.pending), (4, 8, 0));
    s.step();
    s.step();
    let p = &s.observe().expect("observe").services[0].placements[1];
    assert_eq!((p.ready, p.starting), (12, 0));
}

#[test]
fn nodes_report_the_replicas_they_serve_once_ready() {
    use crate::observe::Observer;
    let mut s = sim("");
    let serving = |s: &Simulator| -> u32 {
        s.nodes("cloud").expect("cloud").iter().filter_map(|n| n.serving.get("web")).sum()
    };
    assert_eq!(serving(&s), 4);
    s.apply(&[Action::SetReplicas { service: "web".into(), cluster: "cloud".into(), replicas: 6 }]);
    s.step();
    // Two more are placed and starting: they hold cores but serve nothing yet.
    let placed: u32 = s.nodes("cloud").expect("cloud").iter().map(|n| n.pods).sum();
    assert_eq!((placed, serving(&s)), (6, 4));
    s.step();
    s.step();
    assert_eq!(serving(&s), 6);
    // Each node reports its own: once all are ready, what it serves is what it holds.
    for n in s.nodes("cloud").expect("cloud") {
        assert_eq!(n.serving.values().sum::<u32>(), n.pods, "{n:?}");
    }
}

#[test]
fn requests_beyond_capacity_are_dropped_and_counted() {
    let mut s = sim("");
    s.apply(&[Action::SetReplicas { service: "web".into(), cluster: "cloud".into(), replicas: 1 }]);
    let tick = s.step();
    // One replica of 10 ms serves 100 req/s at most, cut at 98 %: 2 req/s dropped of 100.
    assert!((tick.dropped_rps - 2.0).abs() < 1e-6, "{}", tick.dropped_rps);
    assert!((s.ledger().dropped_requests - 120.0).abs() < 1e-3);
}

#[test]
fn every_kind_of_invalid_action_is_rejected_with_a_reason() {
    let mut s = sim("");
    let before = s.observe().expect("observe");
    let cases = [
        (
            Action::SetReplicas { service: "nope".into(), cluster: "cloud".into(), replicas: 1 },
            "unknown service",
        ),
        (
            Action::SetReplicas { service: "web".into(), cluster: "mars".into(), replicas: 1 },
            "unknown cluster",
        ),
        (
            Action::SetReplicas { service: "web".into(), cluster: "edge".into(), replicas: 5 },
            "can never hold",
        ),
        (
            Action::SetRouting {
                service: "web".into(),
                region: "eu".into(),
                weights: vec![("cloud".into(), -1.0)],
            },
            "non-negative",
        ),
        (
            Action::SetRouting {
                service: "web".into(),
                region: "eu".into(),
                weights: vec![("cloud".into(), 0.0)],
            },
            "sum to zero",
        ),
        (
            Action::SetRouting { service: "web".into(), region: "mars".into(), weights: vec![] },
            "unknown region",
        ),
        (
            Action::RequestNodes { cluster: "cloud".into(), offering: "small".into(), count: 3 },
            "over capacity",
        ),
        (Action::RequestNodes { cluster: "edge".into(), offering: "small".into(), count: 1 }, "edge site"),
        (
            Action::RequestNodes { cluster: "cloud".into(), offering: "huge".into(), count: 1 },
            "no pool of offering",
        ),
        (
            Action::ReleaseNodes { cluster: "cloud".into(), offering: "small".into(), count: 3 },
            "cannot release",
        ),
        (Action::PlacePod { service: "web".into(), cluster: "cloud".into(), node: 9 }, "has no node 9"),
        (Action::PlacePod { service: "web".into(), cluster: "cloud".into(), node: 0 }, "no pending replica"),
    ];
    for (action, reason) in cases {
        match &s.apply(std::slice::from_ref(&action))[0] {
            Outcome::Rejected { reason: r } => assert!(r.contains(reason), "{action:?}: {r}"),
            other => panic!("{action:?} was {other:?}"),
        }
    }
    assert_eq!(s.observe().expect("observe"), before, "a rejected action changed the world");
}

#[test]
fn a_pod_can_be_placed_on_a_chosen_node() {
    let mut s = sim("");
    s.apply(&[Action::RequestNodes { cluster: "cloud".into(), offering: "small".into(), count: 1 }]);
    for _ in 0..4 {
        s.step();
    }
    // Fill the first two nodes so the next replica pends, then place it on the new node.
    s.apply(&[Action::SetReplicas { service: "web".into(), cluster: "cloud".into(), replicas: 8 }]);
    s.step();
    s.apply(&[Action::SetReplicas { service: "web".into(), cluster: "cloud".into(), replicas: 9 }]);
    let outcome = s.apply(&[Action::PlacePod { service: "web".into(), cluster: "cloud".into(), node: 2 }]);
    assert_eq!(outcome, vec![Outcome::Applied]);
}

#[test]
fn spot_interruptions_follow_the_seed_and_are_replaced() {
    let storm = r#"
[[disruptions]]
kind = "spot-storm"
at = "0m"
duration = "1h"
multiplier = 1000
clusters = ["cloud"]
"#;
    let mut scenario = Fixture::new(100.0).scenario(storm).expect("valid");
    scenario.offerings[1].interruption_rate = 0.1;
    let run = |scenario: Scenario| {
        let mut s = Simulator::from_scenario(scenario);
        s.apply(&[Action::RequestNodes {
            cluster: "cloud".into(),
            offering: "small-spot".into(),
            count: 10,
        }]);
        let reports: Vec<_> = (0..60).map(|_| s.step()).collect();
        (reports, s.ledger().clone())
    };
    let (a, ledger) = run(scenario.clone());
    let (b, _) = run(scenario);
    assert_eq!(a, b, "the same seed must give the same run");
    assert!(ledger.interruptions > 5, "{} interruptions", ledger.interruptions);
}

#[test]
fn an_outage_drops_what_is_routed_to_the_cluster() {
    let mut s = sim(r#"
[[disruptions]]
kind = "outage"
at = "10m"
duration = "20m"
cluster = "cloud"
"#);
    let reports: Vec<_> = (0..60).map(|_| s.step()).collect();
    assert_eq!(reports[5].dropped_rps, 0.0);
    assert!((reports[15].dropped_rps - 100.0).abs() < 1e-9);
    assert!(reports[15].slo_violated[0]);
    assert_eq!(reports[45].dropped_rps, 0.0);
    assert_eq!(s.ledger().slo_violation_minutes[0], 20.0);
}

#[test]
fn events_multiply_demand_and_announced_ones_are_observed() {
    let mut s = sim(r#"
[[events]]
name = "sale"
service = "web"
at = "30m"
duration = "10m"
multiplier = 3
"#);
    assert_eq!(s.observe().expect("observe").events.len(), 1);
    let reports: Vec<_> = (0..60).map(|_| s.step()).collect();
    assert!((reports[35].offered_rps - 300.0).abs() < 1e-9);
    assert!((reports[45].offered_rps - 100.0).abs() < 1e-9);
    assert!(s.observe().expect("observe").events.is_empty(), "a past event is no longer announced");
}

#[test]
fn prefilled_history_is_the_traces_before_the_start_in_order() {
    let mut s = sim("");
    s.prefill_history(600);
    let start = s.now();
    let h = s.demand_history("web", "eu", 3600).expect("history");
    assert_eq!(h.values.len(), 10);
    assert_eq!(h.start, start - 600);
    let trace = s.scenario().services[0].demand[0].clone();
    for (k, v) in h.values.iter().enumerate() {
        assert_eq!(*v, trace.at(start - 600 + 60 * k as i64).max(0.0), "value {k}");
    }
    s.step();
    let h = s.demand_history("web", "eu", 3600).expect("history");
    assert_eq!((h.values.len(), h.values[10]), (11, trace.at(start).max(0.0)));
}

#[test]
fn demand_history_covers_the_steps_simulated() {
    let mut s = sim("");
    for _ in 0..10 {
        s.step();
    }
    let h = s.demand_history("web", "eu", 3600).expect("history");
    assert_eq!(h.values.len(), 10);
    assert_eq!(h.step, 60);
    assert!(h.values.iter().all(|v| (v - 50.0).abs() < 1e-9));
    assert!(s.demand_history("web", "mars", 60).is_none());
}

#[test]
fn scenario_mistakes_name_the_file_line_key_and_fix() {
    let f = Fixture::new(100.0);
    let cases = [
        ("rtt-ms = { eu = 30, us = 40 }", "rtt-ms = { eu = 30, mars = 40 }", "unknown region `mars`"),
        ("replicas = { cloud = 4 }", "replicas = { clod = 4 }", "unknown cluster `clod`"),
        ("hourly-price = 0.5", "hourly-price = -0.5", "hourly-price"),
        ("trace = \"flat.csv\"", "trace = \"missing.csv\"", "demand.trace"),
        (
            "rtt-ms = { eu = 5, us = 90 }",
            "rtt-ms = { eu = 5, us = 90 }\npeer-rtt-ms = { clod = 12 }",
            "unknown cluster `clod`",
        ),
    ];
    for (from, to, expected) in cases {
        std::fs::write(f.path(), BASE.replacen(from, to, 1)).expect("write");
        let err = Scenario::load(&f.path()).expect_err(to).to_string();
        assert!(err.contains("scenario.toml:") && err.contains(expected), "{to}: {err}");
        assert!(err.contains(';'), "no fix offered: {err}");
        let line: usize = err.split(':').nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0);
        let text = BASE.replacen(from, to, 1);
        assert!(line > 0 && text.lines().nth(line - 1).is_some(), "{err}");
    }
    std::fs::write(f.path(), format!("{BASE}\nsurprise = 1\n")).expect("write");
    let err = Scenario::load(&f.path()).expect_err("unknown key").to_string();
    assert!(err.contains("unknown field `surprise`"), "{err}");
}

#[test]
fn cluster_to_cluster_rtts_are_taken_as_given_or_bounded_through_a_region() {
    let s = Fixture::new(1.0)
        .scenario("")
        .map(|s| s.clusters.iter().map(|c| c.peer_rtt_ms.clone()).collect::<Vec<_>>())
        .expect("valid");
    // edge–cloud: min over regions of 5 + 30 (eu) and 90 + 40 (us).
    assert_eq!(s, vec![vec![0.0, 35.0], vec![35.0, 0.0]]);
    let f = Fixture::new(1.0);
    let text = BASE.replacen(
        "rtt-ms = { eu = 5, us = 90 }",
        "rtt-ms = { eu = 5, us = 90 }\npeer-rtt-ms = { cloud = 12 }",
        1,
    );
    std::fs::write(f.path(), text).expect("write");
    let given = Scenario::load(&f.path()).expect("valid");
    assert_eq!(given.clusters[1].peer_rtt_ms, vec![12.0, 0.0]);
}

#[test]
fn every_shipped_scenario_is_valid() {
    let dir = crate::manifest_dir().join("../config/scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(scenario.ticks() >= 7 * 1440, "{}: shorter than a week", path.display());
            count += 1;
        }
    }
    assert_eq!(count, 10);
}
