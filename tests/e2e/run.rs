//! `foresight run` ticks the loop on the simulator with the real reference plugins and writes
//! a decision log whose every line parses and carries a reason.

use crate::fixtures::{self, foresight};

#[test]
fn the_daemon_ticks_and_journals_decisions_with_reasons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = fixtures::plugin_dir(dir.path());
    let log = dir.path().join("decisions.jsonl");
    let out = foresight()
        .args(["run", "--ticks", "20", "--listen", "127.0.0.1:0", "--scenario"])
        .arg(fixtures::workspace().join("config/scenarios/flash-sale.toml"))
        .env("RUST_LOG", "info")
        .env("FORESIGHT_TICK__INTERVAL", "0s")
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .env("FORESIGHT_DECISIONS__LOG", &log)
        // The command-line options win over the environment.
        .env("FORESIGHT_SERVER__LISTEN", "nowhere")
        .env("FORESIGHT_BACKEND__SCENARIO", fixtures::workspace().join("config/scenarios/diurnal.toml"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("20 ticks: cost"), "{stdout}");
    assert!(
        stderr.contains("listening on http://127.0.0.1:") && stderr.contains("scenario=flash-sale"),
        "{stderr}"
    );

    let text = std::fs::read_to_string(&log).expect("decision log");
    let records: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("every line is whole JSON")).collect();
    let decisions: Vec<_> = records.iter().filter(|r| r["record"] == "decision").collect();
    let outcomes: Vec<_> = records.iter().filter(|r| r["record"] == "outcome").collect();
    assert!(!decisions.is_empty(), "twenty ticks of diurnal demand decided nothing");
    assert_eq!(decisions.len(), outcomes.len(), "every decision has its outcome");
    for d in &decisions {
        assert!(!d["reason"]["summary"].as_str().unwrap_or("").is_empty(), "{d}");
        // Placements are the scorer's; everything else starts from the forecast.
        let by = if d["action"]["kind"] == "place-pod" { "latency-aware@" } else { "seasonal-naive@" };
        assert!(d["reason"]["plugins"][0].as_str().is_some_and(|p| p.starts_with(by)), "{d}");
    }
}

#[test]
fn a_missing_plugin_says_how_to_build_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = foresight()
        .args(["run", "--ticks", "1"])
        .env("FORESIGHT_PLUGINS__DIR", dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("foresight plugin build"));
}
