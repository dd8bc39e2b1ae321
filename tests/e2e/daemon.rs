//! The daemon as an operator runs it: it serves its endpoints while ticking, shuts down cleanly
//! on SIGTERM, and leaves a decision log that parses completely even after SIGKILL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{self, foresight};

/// A running daemon on an ephemeral port, with its plugins and log in a scratch folder.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    addr: String,
    log: std::path::PathBuf,
    pub(crate) dir: tempfile::TempDir,
}

impl Daemon {
    pub(crate) fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts with a config file of its own in the scratch folder, edited by `edit` first.
    pub(crate) fn start_with(edit: impl FnOnce(&std::path::Path)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("foresight.toml");
        std::fs::copy(fixtures::workspace().join("config/foresight.toml"), &config).expect("config");
        edit(&config);
        let plugins = fixtures::plugin_dir(dir.path());
        let log = dir.path().join("decisions.jsonl");
        let mut child = foresight()
            .arg("run")
            .arg("--config")
            .arg(&config)
            // The command line overrides the file, now and after every reload.
            .args(["--set", "tick.interval=20ms", "--set", "tick.forecast-refresh=2m"])
            .env("RUST_LOG", "info")
            .env("FORESIGHT_PLUGINS__DIR", &plugins)
            .env("FORESIGHT_DECISIONS__LOG", &log)
            .env("FORESIGHT_BACKEND__SCENARIO", fixtures::workspace().join("config/scenarios/diurnal.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        // The daemon announces its address before it starts the plugins.
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines.next().expect("the daemon exited before announcing its address").expect("utf-8");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.trim().to_owned();
            }
        };
        // Keep draining stderr so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr, log, dir }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    /// Polls `/readyz` until the first tick is done (bounded: plugins may need compiling).
    pub(crate) fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.get("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "the daemon never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls until the metrics report at least `n` ticks.
    pub(crate) fn wait_ticks(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = self.get("/metrics").1;
            let ticks = body
                .lines()
                .find_map(|l| l.strip_prefix("foresight_ticks_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            if ticks >= n as f64 {
                return;
            }
            assert!(Instant::now() < deadline, "fewer than {n} ticks in a minute");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/api/v1/status").1).expect("status JSON")
    }

    pub(crate) fn ticks(&self) -> u64 {
        self.status()["tick"].as_u64().unwrap_or(0)
    }

    /// Polls the status until `check` holds (bounded).
    pub(crate) fn wait_for(
        &self,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let status = self.status();
            if check(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replaces a file the way a build or deploy does: write aside, then rename over.
    pub(crate) fn replace(&self, target: &std::path::Path, bytes: &[u8]) {
        let tmp = self.dir.path().join("incoming.tmp");
        std::fs::write(&tmp, bytes).expect("write");
        std::fs::rename(&tmp, target).expect("rename");
    }

    /// Every record of the decision log so far; each line must parse.
    pub(crate) fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    pub(crate) fn reload_records(&self) -> Vec<serde_json::Value> {
        self.records().into_iter().filter(|r| r["record"] == "reload").collect()
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

#[test]
fn it_serves_metrics_status_and_decisions_while_ticking_and_stops_on_sigterm() {
    let mut d = Daemon::start();
    d.wait_ready();
    d.wait_ticks(30);
    assert_eq!(d.get("/healthz"), (200, "ok".into()));
    let metrics = d.get("/metrics").1;
    for name in [
        "foresight_tick_stage_seconds_bucket",
        "foresight_plugin_calls_total",
        "foresight_plugin_call_seconds_total",
        "foresight_cost_total",
        "foresight_control_cpu_seconds_total",
        "foresight_predicted_p95_ms{service=\"checkout\"}",
        "foresight_decisions_total",
        "foresight_forecast_scored_total{plugin=\"seasonal-naive@0.1.0\",horizon_s=\"60\"}",
        "foresight_forecast_mape{plugin=\"seasonal-naive@0.1.0\",horizon_s=\"300\"}",
        "foresight_forecast_mase{plugin=\"seasonal-naive@0.1.0\",horizon_s=\"60\"}",
        "foresight_forecast_band_coverage{plugin=\"seasonal-naive@0.1.0\",horizon_s=\"60\"}",
        "foresight_forecast_coverage{plugin=\"seasonal-naive@0.1.0\",horizon_s=\"60\",quantile=\"0.9\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let decisions: serde_json::Value =
        serde_json::from_str(&d.get("/api/v1/decisions?limit=20").1).expect("JSON");
    let with_reason =
        decisions.as_array().expect("array").iter().filter(|r| r["reason"]["summary"].is_string()).count();
    assert!(with_reason > 0, "no decision with a reason in {decisions}");
    let status: serde_json::Value = serde_json::from_str(&d.get("/api/v1/status").1).expect("JSON");
    assert_eq!(status["plugins"]["scorer"]["live"], "latency-aware@0.1.0");
    let accuracy = status["forecast_accuracy"].as_array().expect("accuracy per horizon");
    assert_eq!(accuracy[0]["horizon_s"], 60);
    assert_eq!(accuracy[0]["plugin"], "seasonal-naive@0.1.0");
    assert!(accuracy[0]["scored"].as_u64().unwrap_or(0) > 0, "{accuracy:?}");
    assert!(accuracy[0]["mape"].as_f64().is_some_and(|m| m.is_finite() && m >= 0.0), "{accuracy:?}");
    let detail: serde_json::Value = serde_json::from_str(&d.get("/api/v1/accuracy").1).expect("JSON");
    let by_series = detail["by_series"].as_array().expect("per series");
    assert!(
        by_series.iter().any(|a| a["series"] == "checkout/eu" && a["scored"].as_u64() > Some(0)),
        "{detail}"
    );

    d.signal("-TERM");
    let exit = d.child.wait().expect("wait");
    assert!(exit.success(), "SIGTERM did not shut down cleanly: {exit}");
    let mut out = String::new();
    d.child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read");
    assert!(out.contains("ticks: cost"), "{out}");
}

#[test]
fn after_sigkill_the_decision_log_parses_completely() {
    let mut d = Daemon::start();
    d.wait_ready();
    d.wait_ticks(40);
    d.signal("-KILL");
    d.child.wait().expect("wait");
    let text = std::fs::read_to_string(&d.log).expect("log");
    assert!(text.ends_with('\n'), "the last line is cut");
    let lines = text.lines().count();
    assert!(lines > 0);
    for (i, line) in text.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
    }
}

#[test]
fn plugins_are_swapped_live_and_broken_ones_refused_without_a_missed_tick() {
    // The candidates take no configuration: drop the reference scorer's table.
    let mut d = Daemon::start_with(|config| {
        let text = std::fs::read_to_string(config).expect("read");
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("config = { weight-latency")).collect();
        std::fs::write(config, kept.join("\n")).expect("write");
    });
    d.wait_ready();
    let scorer = d.dir.path().join("plugins/latency-aware.wasm");

    // A broken candidate (NaN scores) fails its conformance check; the old plugin keeps serving.
    let before = d.ticks();
    d.replace(&scorer, &std::fs::read(fixtures::component("hostile-nan")).expect("read"));
    let deadline = Instant::now() + Duration::from_secs(90);
    while !d.reload_records().iter().any(|r| r["accepted"] == false) {
        assert!(Instant::now() < deadline, "the broken plugin was never refused");
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = d.reload_records().into_iter().find(|r| r["accepted"] == false).expect("refusal");
    assert!(refused["detail"].as_str().unwrap_or("").contains("conformance"), "{refused}");
    assert_eq!(d.status()["plugins"]["scorer"]["live"], "latency-aware@0.1.0");

    // A good candidate is swapped in between ticks.
    d.replace(&scorer, &std::fs::read(fixtures::component("cheapest-scorer")).expect("read"));
    let status = d.wait_for("the new scorer", |s| s["plugins"]["scorer"]["live"] == "cheapest-scorer@0.1.0");
    let after = status["tick"].as_u64().unwrap_or(0);
    assert!(after > before, "ticking stopped during the swaps");
    let skipped = d
        .get("/metrics")
        .1
        .lines()
        .find_map(|l| l.strip_prefix("foresight_ticks_skipped_acting_total ").map(str::to_owned));
    assert_eq!(skipped.as_deref().map(str::trim), Some("0"), "a tick skipped acting");
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());
}

#[test]
fn a_changed_config_is_applied_and_a_broken_one_refused() {
    let mut d = Daemon::start_with(|_| {});
    d.wait_ready();
    let config = d.dir.path().join("foresight.toml");
    let text = std::fs::read_to_string(&config).expect("read");
    d.replace(&config, text.replace("max-replica-change = 20", "max-replica-change = 2").as_bytes());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.reload_records().iter().any(|r| r["what"] == "configuration" && r["accepted"] == true) {
        assert!(Instant::now() < deadline, "the changed configuration was never applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.status()["tick_interval"], "20ms", "the command-line flag was lost on reload");
    d.replace(&config, format!("{text}\n[guardrails.oops]\n").as_bytes());
    while !d.reload_records().iter().any(|r| r["accepted"] == false) {
        assert!(Instant::now() < deadline, "the broken configuration was never refused");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ticks = d.ticks();
    d.wait_for("more ticks", |s| s["tick"].as_u64().unwrap_or(0) > ticks + 5);
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());
}

#[test]
fn an_ensemble_combines_its_members_and_scores_each() {
    let mut d = Daemon::start_with(|config| {
        let text = std::fs::read_to_string(config).expect("read");
        assert!(text.contains("\nensemble = []\n"), "the shipped config lists no ensemble members");
        let text = text.replacen("\nensemble = []\n", "\nensemble = [\"holt-winters.wasm\"]\n", 1);
        std::fs::write(config, text).expect("write");
    });
    d.wait_ready();
    let ensemble = "ensemble[seasonal-naive@0.1.0, holt-winters@0.1.0]";
    d.wait_for("every side scored", |s| {
        let scored = |plugin: &str| {
            s["forecast_accuracy"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["plugin"] == plugin && x["scored"].as_u64() > Some(0)))
        };
        scored(ensemble) && scored("seasonal-naive@0.1.0") && scored("holt-winters@0.1.0")
    });
    let decisions: serde_json::Value =
        serde_json::from_str(&d.get("/api/v1/decisions?limit=50").1).expect("JSON");
    let by_ensemble = decisions
        .as_array()
        .expect("array")
        .iter()
        .any(|r| r["reason"]["plugins"].as_array().is_some_and(|p| p.iter().any(|x| x == ensemble)));
    assert!(by_ensemble, "no decision names the ensemble: {decisions}");
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());
}

#[test]
fn a_challenger_that_beats_the_champion_over_its_window_is_promoted() {
    let mut d = Daemon::start_with(|config| {
        let mut text = std::fs::read_to_string(config).expect("read");
        text.push_str(
            "\n[[experiments]]\nname = \"hw-challenger\"\nrole = \"forecaster\"\nfile = \"holt-winters.wasm\"\nmode = \"shadow\"\npromote-after = \"2h\"\npromote-margin = 0.05\n",
        );
        std::fs::write(config, text).expect("write");
    });
    d.wait_ready();
    let status = d.wait_for("the challenger promoted", |s| {
        s["plugins"]["forecaster"]["live"].as_str().is_some_and(|l| l.starts_with("holt-winters@"))
    });
    assert!(status["experiments"].as_array().is_some_and(Vec::is_empty), "the experiment ends: {status}");
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());
    let promotion = d
        .reload_records()
        .into_iter()
        .find(|r| r["what"] == "experiment hw-challenger")
        .expect("the promotion is journaled");
    let detail = promotion["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("promoted holt-winters@") && detail.contains("over seasonal-naive@"), "{detail}");
}

#[test]
fn a_shadow_experiment_records_decisions_and_applies_none() {
    let mut d = Daemon::start_with(|config| {
        let mut text = std::fs::read_to_string(config).expect("read");
        text.push_str(
            "\n[[experiments]]\nname = \"daily-only\"\nrole = \"forecaster\"\nfile = \"seasonal-naive.wasm\"\nconfig = { seasons-s = [86400], weights = [1.0] }\nmode = \"shadow\"\n",
        );
        std::fs::write(config, text).expect("write");
    });
    d.wait_ready();
    let status = d.wait_for("scored shadow decisions", |s| {
        let e = &s["experiments"][0];
        e["decisions"].as_u64().unwrap_or(0) > 0
            && e["candidate_mape"].is_number()
            && e["live_mape"].is_number()
    });
    assert_eq!(status["experiments"][0]["candidate"], "seasonal-naive@0.1.0");
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());

    let records = d.records();
    let shadow: Vec<_> = records.iter().filter(|r| r["source"] == "daily-only").collect();
    assert!(!shadow.is_empty(), "no shadow decision journaled");
    for s in shadow {
        let applied = records
            .iter()
            .any(|r| r["record"] == "outcome" && r["tick"] == s["tick"] && r["index"] == s["index"]);
        assert!(!applied, "a shadow decision was applied: {s}");
    }
}

#[test]
fn a_shadow_scorer_plans_placements_and_applies_none() {
    let mut d = Daemon::start_with(|config| {
        let mut text = std::fs::read_to_string(config).expect("read");
        text.push_str(
            "\n[[experiments]]\nname = \"price-first\"\nrole = \"scorer\"\nfile = \"latency-aware.wasm\"\nconfig = { weight-price = 100.0 }\nmode = \"shadow\"\n",
        );
        std::fs::write(config, text).expect("write");
    });
    d.wait_ready();
    d.wait_for("shadow scorer decisions", |s| s["experiments"][0]["decisions"].as_u64().unwrap_or(0) > 0);
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());
    let records = d.records();
    let shadow: Vec<_> = records.iter().filter(|r| r["source"] == "price-first").collect();
    assert!(!shadow.is_empty(), "no shadow decision journaled");
    assert!(
        shadow.iter().any(|r| r["action"]["kind"] == "set-replicas" || r["action"]["kind"] == "place-pod")
    );
    for s in shadow {
        let applied = records
            .iter()
            .any(|r| r["record"] == "outcome" && r["tick"] == s["tick"] && r["index"] == s["index"]);
        assert!(!applied, "a shadow decision was applied: {s}");
    }
}

#[test]
fn a_canary_experiment_applies_its_decisions_for_its_share_only() {
    let mut d = Daemon::start_with(|config| {
        let mut text = std::fs::read_to_string(config).expect("read");
        text.push_str(
            "\n[[experiments]]\nname = \"all-in\"\nrole = \"forecaster\"\nfile = \"seasonal-naive.wasm\"\nconfig = { seasons-s = [86400], weights = [1.0] }\nmode = \"canary\"\nshare = 1.0\n",
        );
        std::fs::write(config, text).expect("write");
    });
    d.wait_ready();
    d.wait_for("canary decisions", |s| s["experiments"][0]["decisions"].as_u64().unwrap_or(0) > 0);
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());
    let records = d.records();
    // With a share of 1 every replica decision is the canary's, and it is applied.
    let replicas: Vec<_> = records
        .iter()
        .filter(|r| r["record"] == "decision" && r["action"]["kind"] == "set-replicas")
        .collect();
    assert!(!replicas.is_empty());
    for r in &replicas {
        assert_eq!(r["source"], "all-in", "{r}");
        let applied = records
            .iter()
            .any(|o| o["record"] == "outcome" && o["tick"] == r["tick"] && o["index"] == r["index"]);
        assert!(applied, "a canary decision was not applied: {r}");
    }
}
