//! `foresight federate` across processes on loopback: one aggregator and four agents, each
//! with a different cluster's trace, over mutual TLS; an agent whose certificate the
//! federation's CA did not sign is refused. Under `--secure` the aggregator holds only masked
//! updates and lands the model the plain federation does, and an agent that leaves costs one
//! restarted round, not the federation.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::fixtures::{foresight, workspace};

const AGENTS: [(&str, &str); 4] = [
    ("azure", "azure_2019_vm_total__cpu_usage_300s.csv"),
    ("google", "google_2019_cell__avg_mem_300s.csv"),
    ("amzn", "nab_tweets__Twitter_volume_AMZN.csv"),
    ("fb", "nab_tweets__Twitter_volume_FB.csv"),
];
/// Rounds of the plain federation: many short ones (two local epochs each), which keeps the
/// agents from drifting towards their own series between averages.
const ROUNDS: u32 = 64;
/// Samples each agent draws from its series, and the central model from each.
const SAMPLES: &str = "300";
/// Parameters of the shipped network.
const PARAMETERS: u64 = 9_411;
/// Longest any process of these tests may take: past it the test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(180);

fn certs(dir: &Path, names: &[&str]) {
    let mut cmd = foresight();
    cmd.args(["federate", "certs", "--out"]).arg(dir);
    for n in names {
        cmd.args(["--agent", n]);
    }
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn join(endpoint: &str, name: &str, tls: &Path, series: &str, extra: &[&str]) -> Child {
    foresight()
        .args(["federate", "join", "--aggregator", endpoint, "--name", name, "--tls"])
        .arg(tls)
        .arg("--series")
        .arg(workspace().join("config/scenarios/traces").join(series))
        .args(["--poll", "20ms"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

/// Reads a pipe to its end on a thread, so the child never blocks on a full pipe.
fn drain(pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = vec![];
        let mut pipe = pipe;
        pipe.read_to_end(&mut out).expect("reads the pipe");
        out
    })
}

/// Waits for `child` for at most `LIMIT`; kills it and fails past that.
fn finish(mut child: Child, what: &str) -> Output {
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    finish_draining(child, stdout, stderr, what)
}

fn finish_draining(
    mut child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
    what: &str,
) -> Output {
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kills");
            child.wait().expect("reaps");
            let log = stderr.join().expect("stderr");
            panic!("{what} did not finish within {LIMIT:?}:\n{}", String::from_utf8_lossy(&log));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") }
}

/// An aggregator process, once it has said where it listens.
struct Server {
    child: Child,
    endpoint: String,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Server {
    fn start(tls: &Path, model: &Path, args: &[&str]) -> Self {
        let mut child = foresight()
            .args(["federate", "serve", "--listen", "127.0.0.1:0", "--tls"])
            .arg(tls)
            .arg("--out")
            .arg(model)
            .arg("--template")
            .arg(workspace().join("plugins/onnx-mlp/model/demand-mlp.onnx"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        let stdout = drain(child.stdout.take().expect("stdout"));
        let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the whole log, so the server never blocks on a full pipe, and hands over the
        // address as soon as it is printed.
        let stderr = std::thread::spawn(move || {
            let mut log = vec![];
            for line in lines.map_while(Result::ok) {
                if let Some(endpoint) = line.strip_prefix("listening on ") {
                    tx.send(endpoint.to_owned()).ok();
                }
                log.push(line);
            }
            log.join("\n").into_bytes()
        });
        let Ok(endpoint) = rx.recv_timeout(LIMIT) else {
            child.kill().ok();
            let log = stderr.join().expect("log");
            panic!("the aggregator never said where it listens:\n{}", String::from_utf8_lossy(&log));
        };
        Self { child, endpoint, stdout, stderr }
    }

    /// The summary it prints, and its log.
    fn finish(self) -> (serde_json::Value, String) {
        let out = finish_draining(self.child, self.stdout, self.stderr, "the aggregator");
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{log}");
        (serde_json::from_slice(&out.stdout).expect("summary JSON"), log)
    }
}

/// Each agent's JSON report, once every one has finished.
fn reports(agents: Vec<(&str, Child)>) -> Vec<serde_json::Value> {
    agents
        .into_iter()
        .map(|(name, a)| {
            let out = finish(a, name);
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).expect("one JSON object")
        })
        .collect()
}

fn weights(model: &Path) -> Vec<f32> {
    let bytes = std::fs::read(model.join("weights.f32")).expect("the final weights are written");
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn assert_onnx_written(model: &Path) {
    let onnx = std::fs::metadata(model.join("federated.onnx")).expect("the federated model is written");
    let template =
        std::fs::metadata(workspace().join("plugins/onnx-mlp/model/demand-mlp.onnx")).expect("template");
    assert_eq!(onnx.len(), template.len());
}

fn participants(summary: &serde_json::Value) -> Vec<(u64, usize)> {
    summary["rounds"]
        .as_array()
        .expect("rounds")
        .iter()
        .map(|r| {
            let n = r["participants"].as_array().map_or(0, Vec::len);
            (r["round"].as_u64().expect("a round number"), n)
        })
        .collect()
}

/// Each cluster's held-out MASE under central training on the agents' own draws.
fn central_mase() -> std::collections::HashMap<String, f64> {
    let mut cmd = foresight();
    cmd.args(["federate", "central", "--samples", SAMPLES, "--history", "fb=2d"]);
    for (name, series) in AGENTS {
        let path = workspace().join("config/scenarios/traces").join(series);
        cmd.arg("--series").arg(format!("{name}={}", path.display()));
    }
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    report["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| (c["cluster"].as_str().expect("name").to_owned(), c["central_mase"].as_f64().expect("MASE")))
        .collect()
}

fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    certs(&tls, &AGENTS.map(|(n, _)| n));
    (dir, tls)
}

#[test]
fn four_agents_learn_one_model_over_mutual_tls_and_a_stranger_is_refused() {
    let (dir, tls) = tempdir();
    let stranger = dir.path().join("stranger");
    certs(&stranger, &["mallory"]);
    std::fs::copy(tls.join("ca.pem"), stranger.join("ca.pem")).expect("trusts the real CA");

    let model = dir.path().join("model");
    let server = Server::start(
        &tls,
        &model,
        &["--agents", "4", "--deadline", "120s", "--rounds", &ROUNDS.to_string(), "--epochs", "2"],
    );
    let plain = ["--samples", SAMPLES];

    let refused = finish(join(&server.endpoint, "mallory", &stranger, AGENTS[0].1, &plain), "mallory");
    assert!(!refused.status.success(), "a certificate from another CA was let in");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot reach the aggregator"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let agents = AGENTS
        .iter()
        .map(|(n, s)| {
            let cold = [&plain[..], &["--history", "2d"]].concat();
            (*n, join(&server.endpoint, n, &tls, s, if *n == "fb" { &cold } else { &plain }))
        })
        .collect();
    let results = reports(agents);
    let (summary, _) = server.finish();

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
    // The yardstick: one model trained on every agent's samples pooled, drawn the same way.
    let central = central_mase();
    for r in &results {
        let name = r["agent"].as_str().expect("a name");
        let (federated, pooled) = (r["federated_mase"].as_f64().expect("MASE"), central[name]);
        assert!(
            federated <= 1.10 * pooled,
            "{name}: federated MASE {federated:.3} is not within 10 % of central {pooled:.3}"
        );
    }
    let rounds = summary["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), ROUNDS as usize);
    assert!(rounds.iter().all(|r| r["participants"].as_array().map(Vec::len) == Some(4)), "{summary}");
    // Each round receives four updates of the model's 9,411 f32s, each with a few bytes of
    // name and round numbers, and nothing else.
    let per_round = |key: &str| -> Vec<u64> {
        summary[key].as_array().expect("bytes").iter().map(|b| b.as_u64().expect("a count")).collect()
    };
    let update = 4 * PARAMETERS;
    assert!(per_round("bytes_in").iter().all(|b| (4 * update..4 * (update + 64)).contains(b)), "{summary}");
    // The weights go out once to each agent a round, not with every poll.
    assert!(per_round("bytes_out").iter().all(|b| *b < 2 * 4 * update), "{summary}");
    assert_eq!(summary["secure"], false);
    assert_eq!(summary["plaintext_updates_held"].as_u64(), Some(4 * u64::from(ROUNDS)));
    assert_onnx_written(&model);
}

#[test]
fn under_secure_aggregation_the_aggregator_holds_no_update_and_lands_the_plain_model() {
    const SECURE_ROUNDS: u64 = 3;
    let (dir, tls) = tempdir();
    let three = &AGENTS[..3];
    let rounds = SECURE_ROUNDS.to_string();
    let server_args = ["--agents", "3", "--deadline", "120s", "--rounds", &rounds];
    let agent_args = ["--samples", "200", "--local-epochs", "1"];
    // Both federations at once: the same agents, seeds and series, one masked, one not.
    let plain_model = dir.path().join("plain");
    let plain = Server::start(&tls, &plain_model, &server_args);
    let secure_model = dir.path().join("secure");
    let secure = Server::start(&tls, &secure_model, &[&server_args[..], &["--secure"]].concat());
    let insist = [&agent_args[..], &["--secure"]].concat();
    let plain_agents =
        three.iter().map(|(n, s)| (*n, join(&plain.endpoint, n, &tls, s, &agent_args))).collect();
    let secure_agents =
        three.iter().map(|(n, s)| (*n, join(&secure.endpoint, n, &tls, s, &insist))).collect();
    let secure_results = reports(secure_agents);
    reports(plain_agents);
    let (summary, _) = secure.finish();
    let (plain_summary, _) = plain.finish();

    for r in &secure_results {
        assert_eq!(
            (r["rounds"].as_u64(), r["version"].as_u64()),
            (Some(SECURE_ROUNDS), Some(SECURE_ROUNDS)),
            "{r}"
        );
    }
    assert_eq!(participants(&summary), vec![(1, 3), (2, 3), (3, 3)], "{summary}");
    assert_eq!(summary["secure"], true);
    assert_eq!(summary["plaintext_updates_held"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["masked_updates_held"].as_u64(), Some(3 * SECURE_ROUNDS), "{summary}");
    assert_eq!(plain_summary["plaintext_updates_held"].as_u64(), Some(3 * SECURE_ROUNDS));
    assert_eq!(plain_summary["masked_updates_held"].as_u64(), Some(0));
    // Masked updates are one u32 word per parameter: as many bytes as the plain ones.
    assert_eq!(summary["bytes_in"], plain_summary["bytes_in"]);
    assert_onnx_written(&secure_model);

    // An agent's training is a function of the global weights, its samples (drawn with
    // --seed) and the round's seed, and FedAvg sums in a fixed order: the plain run is
    // reproducible, and the masked sum differs from it only by the fixed point's 2^-16 on
    // samples × delta.
    let (masked, clear) = (weights(&secure_model), weights(&plain_model));
    let initial = foresight::federate::model::Mlp::new(1).params;
    let max_abs = |v: &mut dyn Iterator<Item = f32>| v.fold(0.0f32, |m, x| m.max(x.abs()));
    let apart = max_abs(&mut masked.iter().zip(&clear).map(|(a, b)| a - b));
    let moved = max_abs(&mut clear.iter().zip(&initial).map(|(a, b)| a - b));
    let scale = max_abs(&mut clear.iter().copied());
    assert!(apart <= 1e-3 * scale, "the masked and plain models differ by {apart} (weights up to {scale})");
    assert!(apart * 100.0 < moved, "training moved the weights by {moved}, the runs differ by {apart}");
}

#[test]
fn a_secure_federation_restarts_without_an_agent_that_left_and_finishes() {
    const SECURE_ROUNDS: u64 = 3;
    let (dir, tls) = tempdir();
    let model = dir.path().join("model");
    let rounds = SECURE_ROUNDS.to_string();
    // The deadline is what a dropout costs: short, yet far above a round's training.
    let server = Server::start(
        &tls,
        &model,
        &["--agents", "4", "--quorum", "3", "--deadline", "5s", "--rounds", &rounds, "--secure"],
    );
    let agents = AGENTS
        .iter()
        .map(|(n, s)| {
            let mut args = vec!["--samples", "200", "--local-epochs", "1", "--secure"];
            if *n == "fb" {
                args.extend(["--leave-after", "1"]);
            }
            (*n, join(&server.endpoint, n, &tls, s, &args))
        })
        .collect();
    let results = reports(agents);
    let (summary, log) = server.finish();

    for r in &results {
        let want = if r["agent"] == "fb" { 1 } else { SECURE_ROUNDS };
        assert_eq!(r["rounds"].as_u64(), Some(want), "{r}");
    }
    // fb left after round 1, so round 2 never had its key: thrown away at the deadline and
    // run again as round 3 without fb, as was every round after.
    assert_eq!(
        summary["reopened"],
        serde_json::json!([{"round": 2, "next": 3, "dropped": ["fb"]}]),
        "{summary}"
    );
    assert_eq!(participants(&summary), vec![(1, 4), (3, 3), (4, 3)], "{summary}");
    assert!(
        log.lines().any(|l| l.contains("restarting without them") && l.contains("fb")),
        "the aggregator names the agent it dropped:\n{log}"
    );
    assert_eq!(summary["plaintext_updates_held"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["masked_updates_held"].as_u64(), Some(4 + 3 + 3), "{summary}");
    assert_onnx_written(&model);
}

/// Waits until a reload record satisfies `check`.
fn wait_reload(
    d: &crate::daemon::Daemon,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(r) = d.reload_records().into_iter().find(&check) {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", d.reload_records());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_daemon_hot_reloads_the_federated_model_its_agent_writes_and_refuses_a_broken_one() {
    if let Err(e) = foresight::ml::runtime::find() {
        assert!(std::env::var_os("CI").is_none(), "{e}");
        eprintln!("note: skipping a test that needs ONNX Runtime: {e}");
        return;
    }
    let (dir, tls) = tempdir();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    let granted = models.join("demand-mlp.onnx");
    std::fs::copy(workspace().join("plugins/onnx-mlp/model/demand-mlp.onnx"), &granted).expect("copy");

    // The cluster's daemon forecasts with the ONNX forecaster on the model file its agent writes.
    let mut d = crate::daemon::Daemon::start_with(|config| {
        let plugins = config.parent().expect("a folder").join("plugins");
        std::fs::create_dir_all(&plugins).expect("mkdir");
        std::fs::copy(crate::fixtures::component("onnx-mlp"), plugins.join("onnx-mlp.wasm")).expect("copy");
        let text = std::fs::read_to_string(config).expect("read");
        let text = text.replacen(
            "[plugins.forecaster]\nfile = \"seasonal-naive.wasm\"\n",
            &format!(
                "[plugins.forecaster]\nfile = \"onnx-mlp.wasm\"\nmodels = {{ demand-mlp = {:?} }}\n",
                granted.display().to_string()
            ),
            1,
        );
        assert!(text.contains("onnx-mlp.wasm"), "the shipped config's forecaster section moved");
        std::fs::write(config, text).expect("write");
    });
    d.wait_ready();
    assert_eq!(d.status()["plugins"]["forecaster"]["live"], "onnx-mlp@0.1.0");

    let out = dir.path().join("model");
    let server = Server::start(&tls, &out, &["--agents", "1", "--rounds", "2", "--epochs", "1"]);
    let model_out = granted.display().to_string();
    let agent =
        join(&server.endpoint, "azure", &tls, AGENTS[0].1, &["--samples", "100", "--model-out", &model_out]);
    let report = &reports(vec![("azure", agent)])[0];
    assert_eq!(report["version"], 2, "{report}");
    server.finish();
    // The agent's last write is the federation's final model.
    assert_eq!(
        std::fs::read(&granted).expect("model"),
        std::fs::read(out.join("federated.onnx")).expect("final")
    );

    let swapped = wait_reload(&d, "the federated model to be swapped in", |r| {
        r["accepted"] == true && r["detail"].as_str().is_some_and(|t| t.contains("model demand-mlp changed"))
    });
    assert!(
        swapped["detail"].as_str().is_some_and(|t| t.contains("forecaster is now onnx-mlp@")),
        "{swapped}"
    );

    // A model file that is not ONNX is refused, naming it; the forecaster keeps serving.
    d.replace(&granted, b"not a model");
    let refused = wait_reload(&d, "the broken model to be refused", |r| r["accepted"] == false);
    assert!(refused["detail"].as_str().is_some_and(|t| t.contains("demand-mlp")), "{refused}");
    assert_eq!(d.status()["plugins"]["forecaster"]["live"], "onnx-mlp@0.1.0");
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());
}
