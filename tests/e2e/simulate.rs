//! `foresight simulate` runs every policy on one scenario and seed with the real plugins and
//! writes a report whose figures are there for each policy, the same on a second run.

use std::path::{Path, PathBuf};

use crate::fixtures::{self, foresight};

/// The diurnal scenario cut to a few hours, its traces found where the shipped one keeps them.
fn short_scenario(dir: &Path) -> PathBuf {
    let scenarios = fixtures::workspace().join("config/scenarios");
    let text = std::fs::read_to_string(scenarios.join("diurnal.toml")).expect("diurnal scenario");
    let text = text
        .replace("duration = \"7d\"", "duration = \"4h\"")
        .replace("trace = \"traces/", &format!("trace = \"{}/traces/", scenarios.display()));
    let path = dir.join("short.toml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn simulate(dir: &Path, scenario: &Path, out: &Path, policies: &[&str]) -> std::process::Output {
    simulate_with(dir, scenario, out, policies, &[])
}

fn simulate_with(
    dir: &Path,
    scenario: &Path,
    out: &Path,
    policies: &[&str],
    extra: &[&str],
) -> std::process::Output {
    foresight()
        .args(["simulate", "--seed", "3", "--quiet"])
        .args(extra)
        .arg("--scenario")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("--policy")
        .args(policies)
        .env("FORESIGHT_PLUGINS__DIR", fixtures::plugin_dir(dir))
        .output()
        .expect("runs")
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report.json"))
        .expect("JSON")
}

#[test]
fn every_policy_is_reported_side_by_side() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = short_scenario(dir.path());
    let out = dir.path().join("report");
    let run = simulate_with(
        dir.path(),
        &scenario,
        &out,
        &["predictive", "hpa", "kube-default", "static-peak"],
        &["--discount", "half=0.5"],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("predictive vs hpa:"), "{stdout}");

    let r = report(&out);
    assert_eq!((r["scenario"].as_str(), r["seed"].as_u64()), (Some("diurnal"), Some(3)));
    for name in ["predictive", "hpa", "kube-default", "static-peak"] {
        let p = &r["policies"][name];
        for key in [
            "slo_violation_minutes",
            "dropped_requests",
            "cost_usd",
            "mean_cpu_utilisation",
            "spot_interruptions",
            "control_cpu_seconds",
        ] {
            assert!(p[key].as_f64().is_some_and(|v| v >= 0.0), "{name}.{key}: {p}");
        }
        assert_eq!(p["ticks"].as_u64(), Some(240), "{name}");
        assert!(p["cost_usd"].as_f64().unwrap() > 0.0, "{name} ran nodes for free");
        assert!(p["p95_latency_ms"]["overall"].as_f64().is_some_and(|v| v > 0.0), "{name}: {p}");
        for service in ["checkout", "search", "feed", "api"] {
            assert!(p["p95_latency_ms"]["services"][service].as_f64().is_some(), "{name} {service}");
        }
        assert!(out.join(format!("timeline-{name}.csv")).is_file());
        assert!(out.join(format!("decisions-{name}.jsonl")).is_file());
    }
    // Foresight's own policy forecasts, so it is scored; the baselines do not.
    let ours = &r["policies"]["predictive"];
    assert!(ours["forecast_accuracy"]["1h"]["coverage"].as_f64().is_some(), "{ours}");
    assert!(ours["latency_prediction"]["checkout"]["steps"].as_u64().is_some_and(|n| n > 0), "{ours}");
    assert!(ours["commitment"][0]["committed_cores"].as_f64().is_some(), "{ours}");
    assert_eq!(
        (ours["commitment"][0]["offer"].as_str(), ours["commitment"][0]["discount"].as_f64()),
        (Some("half"), Some(0.5))
    );
    assert!(ours["control_cpu_seconds"].as_f64().unwrap() > 0.0);
    assert!(r["policies"]["hpa"]["forecast_accuracy"].is_null());
    assert!(r["comparison"]["hpa"]["cost_ratio"].as_f64().is_some());

    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(html.matches("<svg").count() >= 9, "demand, latency and cost plots");
    for name in ["predictive", "hpa", "kube-default", "static-peak", "Commitment advice"] {
        assert!(html.contains(name), "{name} missing from the page");
    }

    // Same scenario and seed, same outcome (the loop's own CPU time aside).
    let again = dir.path().join("again");
    let run = simulate(dir.path(), &scenario, &again, &["hpa", "static-peak"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let r2 = report(&again);
    for name in ["hpa", "static-peak"] {
        for key in ["slo_violation_minutes", "dropped_requests", "cost_usd", "spot_interruptions"] {
            assert_eq!(r["policies"][name][key], r2["policies"][name][key], "{name}.{key}");
        }
    }
}

#[test]
fn an_unknown_policy_or_scenario_is_refused_with_the_choices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report");
    let run = simulate(dir.path(), &short_scenario(dir.path()), &out, &["vpa"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("unknown policy `vpa`") && stderr.contains("kube-default"), "{stderr}");

    let run = simulate_with(dir.path(), &short_scenario(dir.path()), &out, &["hpa"], &["--discount", "half"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("NAME=DISCOUNT"));

    let run = simulate(dir.path(), &dir.path().join("missing.toml"), &out, &["hpa"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("missing.toml"), "{stderr}");
    assert!(!out.join("report.json").exists(), "nothing is written for a scenario that does not load");
}

#[test]
fn with_federate_each_cluster_is_an_agent_scored_beside_local_and_central_training() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report");
    let run = simulate_with(
        dir.path(),
        &short_scenario(dir.path()),
        &out,
        &["hpa"],
        &["--federate", "--federate-rounds", "16", "--federate-cold-start", "edge-ap"],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("federated") && stdout.contains("edge-ap"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("federated.json")).expect("federated.json"))
            .expect("JSON");
    let clusters = report["clusters"].as_array().expect("clusters");
    assert_eq!(clusters.len(), 5, "one agent per diurnal cluster: {report}");
    for c in clusters {
        for key in ["local_mase", "central_mase", "federated_mase"] {
            assert!(c[key].as_f64().is_some_and(|v| v.is_finite() && v > 0.0), "{key} in {c}");
        }
    }
    let ap = clusters.iter().find(|c| c["cluster"] == "edge-ap").expect("edge-ap");
    assert!(ap["federated_mase"].as_f64() < ap["local_mase"].as_f64(), "a new cluster gains: {ap}");

    let run = simulate_with(
        dir.path(),
        &short_scenario(dir.path()),
        &out,
        &["hpa"],
        &["--federate", "--federate-cold-start", "mars"],
    );
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("mars is not a cluster"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
