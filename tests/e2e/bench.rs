//! `foresight bench scorer --json` prints the figures operators compare, with the keys the
//! project promises. (Speed itself is judged from the printed figures, not here.)

use crate::fixtures::{self, foresight};

#[test]
fn scorer_bench_prints_every_promised_figure() {
    let output = foresight()
        .args([
            "bench",
            "scorer",
            "--json",
            "--rounds",
            "1",
            "--round-ms",
            "5",
            "--candidates",
            "200",
            "--plugin",
        ])
        .arg(fixtures::component("latency-aware"))
        .output()
        .expect("foresight runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    for key in [
        "wasm_native_ratio",
        "candidate_scores_per_sec",
        "calls_per_sec",
        "per_call_overhead_us",
        "compile_ms",
        "cached_load_ms",
    ] {
        let value = figures[key].as_f64().unwrap_or_else(|| panic!("`{key}` missing in {figures}"));
        assert!(value.is_finite() && value > 0.0, "`{key}` = {value}");
    }
    assert_eq!(figures["candidates"], 200);
    assert_eq!(figures["features"], 8);
}

#[test]
fn scorer_bench_without_a_built_plugin_says_how_to_build_one() {
    let output = foresight()
        .args(["bench", "scorer", "--plugin", "/nonexistent/latency-aware.wasm"])
        .output()
        .expect("foresight runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("foresight plugin build"));
}

#[test]
fn sim_bench_prints_every_promised_figure() {
    let output = foresight()
        .args([
            "bench",
            "sim",
            "--json",
            "--duration",
            "2h",
            "--clusters",
            "3",
            "--nodes",
            "12",
            "--services",
            "5",
        ])
        .output()
        .expect("foresight runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    for key in ["simulated_ticks_per_sec", "wall_seconds", "peak_rss_mb"] {
        let value = figures[key].as_f64().unwrap_or_else(|| panic!("`{key}` missing in {figures}"));
        assert!(value.is_finite() && value > 0.0, "`{key}` = {value}");
    }
    assert_eq!((figures["clusters"].as_u64(), figures["nodes"].as_u64()), (Some(3), Some(36)));
    assert_eq!(figures["simulated_ticks"], 120);
}

#[test]
fn loop_bench_prints_every_promised_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = fixtures::plugin_dir(dir.path());
    let output = foresight()
        .args([
            "bench",
            "loop",
            "--json",
            "--clusters",
            "3",
            "--nodes",
            "12",
            "--services",
            "4",
            "--warmup",
            "1h",
            "--ticks",
            "5",
        ])
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .output()
        .expect("foresight runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    for key in ["tick_p50_ms", "tick_p99_ms", "rss_mb"] {
        let value = figures[key].as_f64().unwrap_or_else(|| panic!("`{key}` missing in {figures}"));
        assert!(value.is_finite() && value > 0.0, "`{key}` = {value}");
    }
    assert_eq!(figures["ticks"], 5);
}

#[test]
fn reload_bench_prints_every_promised_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = fixtures::plugin_dir(dir.path());
    let output = foresight()
        .args(["bench", "reload", "--json", "--swaps", "6"])
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .output()
        .expect("foresight runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    for key in ["swap_p50_ms", "swap_p99_ms"] {
        let value = figures[key].as_f64().unwrap_or_else(|| panic!("`{key}` missing in {figures}"));
        assert!(value.is_finite() && value > 0.0, "`{key}` = {value}");
    }
    assert_eq!((figures["swaps"].as_u64(), figures["failed_ticks"].as_u64()), (Some(6), Some(0)));
    assert!(figures["missed_ticks"].is_u64());
}

#[test]
fn federate_bench_prints_round_time_and_bytes_for_both_modes() {
    let output = foresight()
        .args(["bench", "federate", "--json", "--agents", "3", "--rounds", "3", "--samples", "60"])
        .current_dir(fixtures::workspace())
        .output()
        .expect("foresight runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let update = 4 * figures["parameters"].as_u64().expect("parameters");
    for mode in ["plain", "secure"] {
        let m = &figures[mode];
        assert_eq!(m["rounds"], 3, "{figures}");
        for key in ["round_p50_ms", "round_p99_ms", "round_mean_ms", "bytes_per_agent_round"] {
            let value = m[key].as_f64().unwrap_or_else(|| panic!("`{mode}.{key}` missing in {figures}"));
            assert!(value.is_finite() && value > 0.0, "`{mode}.{key}` = {value}");
        }
        // Three agents' updates a round, each the model's f32s (or u32 words) and a little more.
        let bytes_in = m["bytes_in_per_round"].as_f64().expect("bytes in");
        assert!((3.0 * update as f64..3.0 * (update + 64) as f64).contains(&bytes_in), "{figures}");
    }
    assert!(figures["secure_plain_round_ratio"].as_f64().is_some_and(|r| r > 0.0), "{figures}");
    assert!(figures["train_ms"].as_f64().is_some_and(|t| t > 0.0), "{figures}");
}
