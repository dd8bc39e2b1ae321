//! `foresight federate` across processes on loopback: one aggregator and four agents, each
//! with a different cluster's trace, over mutual TLS; an agent whose certificate the
//! federation's CA did not sign is refused.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::fixtures::{foresight, workspace};

const AGENTS: [(&str, &str); 4] = [
    ("azure", "azure_2019_vm_total__cpu_usage_300s.csv"),
    ("google", "google_2019_cell__avg_mem_300s.csv"),
    ("amzn", "nab_tweets__Twitter_volume_AMZN.csv"),
    ("fb", "nab_tweets__Twitter_volume_FB.csv"),
];
const ROUNDS: u32 = 8;

fn certs(dir: &std::path::Path, names: &[&str]) {
    let mut cmd = foresight();
    cmd.args(["federate", "certs", "--out"]).arg(dir);
    for n in names {
        cmd.args(["--agent", n]);
    }
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn join(endpoint: &str, name: &str, tls: &std::path::Path, series: &str, cold: bool) -> Child {
    let mut cmd = foresight();
    cmd.args(["federate", "join", "--aggregator", endpoint, "--name", name, "--tls"])
        .arg(tls)
        .arg("--series")
        .arg(workspace().join("config/scenarios/traces").join(series))
        .args(["--samples", "300", "--local-epochs", "6", "--poll", "20ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if cold {
        cmd.args(["--history", "2d"]);
    }
    cmd.spawn().expect("starts")
}

#[test]
fn four_agents_learn_one_model_over_mutual_tls_and_a_stranger_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    let names: Vec<&str> = AGENTS.iter().map(|(n, _)| *n).collect();
    certs(&tls, &names);
    let stranger = dir.path().join("stranger");
    certs(&stranger, &["mallory"]);
    std::fs::copy(tls.join("ca.pem"), stranger.join("ca.pem")).expect("trusts the real CA");

    let model = dir.path().join("model");
    let mut server = foresight()
        .args(["federate", "serve", "--listen", "127.0.0.1:0", "--agents", "4", "--deadline", "120s"])
        .args(["--rounds", &ROUNDS.to_string(), "--tls"])
        .arg(&tls)
        .arg("--out")
        .arg(&model)
        .arg("--template")
        .arg(workspace().join("plugins/onnx-mlp/model/demand-mlp.onnx"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(server.stderr.take().expect("stderr")).lines();
    let endpoint = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
        .expect("the aggregator says where it listens");
    // Keep draining the log so the server never blocks on a full pipe.
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));

    let refused = join(&endpoint, "mallory", &stranger, AGENTS[0].1, false).wait_with_output().expect("runs");
    assert!(!refused.status.success(), "a certificate from another CA was let in");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot reach the aggregator"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let agents: Vec<Child> = AGENTS.iter().map(|(n, s)| join(&endpoint, n, &tls, s, *n == "fb")).collect();
    let results: Vec<serde_json::Value> = agents
        .into_iter()
        .map(|a| {
            let out = a.wait_with_output().expect("runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).expect("one JSON object")
        })
        .collect();
    let out = server.wait_with_output().expect("runs");
    let log = log.join().expect("log");
    assert!(out.status.success(), "{log}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON");

    for r in &results {
        assert_eq!(
            (r["rounds"].as_u64(), r["version"].as_u64()),
            (Some(u64::from(ROUNDS)), Some(u64::from(ROUNDS))),
            "{r}"
        );
        assert!(r["federated_mase"].as_f64().is_some_and(f64::is_finite), "{r}");
    }
    let fb = results.iter().find(|r| r["agent"] == "fb").expect("fb");
    assert!(
        fb["federated_mase"].as_f64() < fb["local_mase"].as_f64(),
        "the cold-start agent should forecast better with the federation: {fb}"
    );
    let rounds = summary["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), ROUNDS as usize);
    assert!(rounds.iter().all(|r| r["participants"].as_array().map(Vec::len) == Some(4)), "{summary}");
    // Each round receives four updates of the model's 9,411 f32s, and nothing else.
    assert!(
        summary["bytes_in"].as_array().expect("bytes").iter().all(|b| b.as_u64() == Some(4 * 4 * 9_411)),
        "{summary}"
    );
    let onnx = std::fs::metadata(model.join("federated.onnx")).expect("the federated model is written");
    let template =
        std::fs::metadata(workspace().join("plugins/onnx-mlp/model/demand-mlp.onnx")).expect("template");
    assert_eq!(onnx.len(), template.len());
}
