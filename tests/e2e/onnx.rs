//! The ONNX forecaster end to end: the `onnx-mlp` component in its sandbox, calling the shipped
//! model through the host's `ml` interface and ONNX Runtime — in `plugin check`, through the
//! runtime API, and serving the forecaster role of a running daemon.
//!
//! ONNX Runtime comes from `ORT_DYLIB_PATH` or a `pip install onnxruntime==1.31.1`; `.ci/run`
//! provides it. Where it cannot be found the tests that need it fail in CI and, elsewhere,
//! print how to get it and pass.

use std::collections::BTreeMap;
use std::path::PathBuf;

use foresight::plugins::{ForecastPolicy, Limits, Runtime, validate};
use foresight_sdk::{ForecastRequest, PluginKind, Series};

use crate::fixtures::{self, foresight};

fn shipped_model() -> PathBuf {
    fixtures::workspace().join("plugins/onnx-mlp/model/demand-mlp.onnx")
}

/// Whether ONNX Runtime can be found; in CI it must be.
fn runtime_available() -> bool {
    match foresight::ml::runtime::find() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{e}"),
        Err(e) => {
            eprintln!("note: skipping a test that needs ONNX Runtime: {e}");
            false
        }
    }
}

fn granted() -> Limits {
    Limits { models: BTreeMap::from([("demand-mlp".into(), shipped_model())]), ..Limits::default() }
}

/// Demand with a clean daily cycle between 40 and 160, peaking at noon UTC.
fn diurnal(t: i64) -> f64 {
    let day = (t.rem_euclid(86_400)) as f64 / 86_400.0;
    100.0 + 60.0 * (std::f64::consts::TAU * (day - 0.25)).sin()
}

#[test]
fn plugin_check_passes_with_the_shipped_model_granted() {
    if !runtime_available() {
        return;
    }
    let grant = format!("demand-mlp={}", shipped_model().display());
    let out = foresight()
        .args(["plugin", "check"])
        .arg(fixtures::component("onnx-mlp"))
        .args(["--model", &grant])
        .output()
        .expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok    model demand-mlp: features[?×78] → quantiles[?×3]"), "{text}");
    assert!(text.contains("cases passed") && !text.contains("FAIL"), "{text}");
}

#[test]
fn a_forecast_through_the_sandbox_and_onnx_runtime_follows_the_daily_cycle() {
    if !runtime_available() {
        return;
    }
    let runtime = Runtime::new(Some(fixtures::cache_dir())).expect("runtime");
    let plugin = runtime
        .start_file(&fixtures::component("onnx-mlp"), Some(PluginKind::Forecaster), &granted(), "")
        .expect("starts with the model granted");
    let start = 1_700_006_400; // a midnight, UTC
    let mut noise = 0x2545_f491_4f6c_dd1d_u64;
    let values: Vec<f64> = (0..7 * 288)
        .map(|i| {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            diurnal(start + 300 * i) * (1.0 + 0.04 * ((noise % 1000) as f64 / 500.0 - 1.0))
        })
        .collect();
    let series = Series { start, step: 300, values, ..Default::default() };
    let last = series.last_time();
    let horizons: Vec<u32> = (1..=48).map(|h| h * 3600).collect();
    let request = ForecastRequest {
        series: vec![series],
        horizons: horizons.clone(),
        quantiles: vec![0.05, 0.1, 0.5, 0.9, 0.95],
    };
    let answer = plugin.forecast(&request).expect("forecasts");
    validate::forecasts(&request, &answer).expect("a valid answer");

    let rows: Vec<&[f64]> = answer[0].chunks(5).collect();
    let mut abs_pct = 0.0;
    for (row, &h) in rows.iter().zip(&horizons) {
        let truth = diurnal(last + i64::from(h));
        assert!(row[0] < row[2] && row[2] < row[4], "a band, not a point: {row:?}");
        abs_pct += (row[2] - truth).abs() / truth;
    }
    let mape = abs_pct / horizons.len() as f64;
    // Trained on real traces, whose cycles are far less regular, the model damps a clean one
    // towards its mean; it must still follow it.
    assert!(mape < 0.25, "the median misses a clean daily cycle by {:.0} % on average", mape * 100.0);
    let (trough, peak) = (rows[23][2], rows[11][2]);
    assert!(peak > 2.0 * trough, "peak {peak} vs trough {trough}: {rows:?}");
}

/// The last 20 % of each shared trace was held out of training (`plugins/onnx-mlp/model/`);
/// forecasts made there are the model's real test.
#[test]
fn on_held_out_real_demand_the_median_beats_repeating_the_last_value() {
    if !runtime_available() {
        return;
    }
    let trace = fixtures::workspace().join("config/scenarios/traces/azure_2019_vm_total__cpu_usage_300s.csv");
    let text = std::fs::read_to_string(&trace).expect("trace");
    let mut lines = text.lines().skip(1);
    assert!(lines.next().is_some_and(|l| l.starts_with("1970-01-01T00:00:00Z,")), "5-minute steps from 0");
    let values: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).and_then(|v| v.parse().ok()).expect("a value"))
        .collect();
    let n = values.len();
    let held_out = n - n * 2 / 10;
    let origins: Vec<usize> = (0..8).map(|i| held_out + 20 + i * 190).collect();
    let horizons = [300, 3600, 6 * 3600, 12 * 3600];
    let request = ForecastRequest {
        series: origins
            .iter()
            .map(|&o| Series { start: 0, step: 300, values: values[..=o].to_vec(), ..Default::default() })
            .collect(),
        horizons: horizons.to_vec(),
        quantiles: vec![0.1, 0.5, 0.9],
    };
    let runtime = Runtime::new(Some(fixtures::cache_dir())).expect("runtime");
    let plugin = runtime
        .start_file(&fixtures::component("onnx-mlp"), Some(PluginKind::Forecaster), &granted(), "")
        .expect("starts");
    let answer = plugin.forecast(&request).expect("forecasts");
    validate::forecasts(&request, &answer).expect("a valid answer");

    let (mut model, mut naive, mut total, mut covered) = (0.0, 0.0, 0.0, 0);
    for (&o, rows) in origins.iter().zip(&answer) {
        for (&h, row) in horizons.iter().zip(rows.chunks(3)) {
            let truth = values[o + h as usize / 300];
            model += (row[1] - truth).abs();
            naive += (values[o] - truth).abs();
            total += truth.abs();
            covered += usize::from(row[0] <= truth && truth <= row[2]);
        }
    }
    let cases = origins.len() * horizons.len();
    assert!(model < naive, "median WAPE {:.3} vs the last value's {:.3}", model / total, naive / total);
    assert!(covered * 10 >= cases * 5, "the p10–p90 band holds {covered} of {cases} outcomes");
}

#[test]
fn without_a_grant_the_plugin_refuses_to_start_naming_the_model() {
    let runtime = Runtime::new(Some(fixtures::cache_dir())).expect("runtime");
    let err = runtime
        .start_file(&fixtures::component("onnx-mlp"), Some(PluginKind::Forecaster), &Limits::default(), "")
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("`model` = \"demand-mlp\"") && err.contains("granted: none"), "{err}");
    assert!(err.contains("models = { demand-mlp = "), "says how to grant it: {err}");
}

#[test]
fn a_runtime_that_cannot_be_loaded_is_reported_with_both_ways_to_provide_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_library = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&not_a_library, "not a shared library").expect("write");
    let grant = format!("demand-mlp={}", shipped_model().display());
    for (dylib, expected) in [
        (dir.path().join("absent.so"), "which is not a file"),
        (not_a_library, "cannot start ONNX Runtime from"),
    ] {
        let out = foresight()
            .args(["plugin", "check"])
            .arg(fixtures::component("onnx-mlp"))
            .args(["--model", &grant])
            .env("ORT_DYLIB_PATH", &dylib)
            .output()
            .expect("runs");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{text}");
        assert!(!text.contains("panicked"), "{text}");
        assert!(text.contains("FAIL  model demand-mlp") && text.contains(expected), "{text}");
        assert!(
            text.contains("pip install onnxruntime==1.31.1") && text.contains("ORT_DYLIB_PATH"),
            "{text}"
        );
    }
}

#[test]
fn the_daemon_serves_the_forecaster_role_with_the_model_granted_in_its_config() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = fixtures::plugin_dir(dir.path());
    std::fs::copy(fixtures::component("onnx-mlp"), plugins.join("onnx-mlp.wasm")).expect("copy");
    let config = dir.path().join("foresight.toml");
    let text = format!(
        "[plugins]\ndir = \"plugins\"\n\n[plugins.forecaster]\nfile = \"onnx-mlp.wasm\"\nmodels = {{ demand-mlp = {:?} }}\n\n\
         [backend]\nscenario = {:?}\n\n[decisions]\nlog = \"decisions.jsonl\"\n",
        shipped_model().display().to_string(),
        fixtures::workspace().join("config/scenarios/diurnal.toml").display().to_string(),
    );
    std::fs::write(&config, text).expect("write config");
    let out = foresight()
        .args(["run", "--ticks", "20", "--config"])
        .arg(&config)
        .env("FORESIGHT_TICK__INTERVAL", "0s")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).expect("decision log");
    let decisions: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON"))
        .filter(|r: &serde_json::Value| r["record"] == "decision")
        .collect();
    assert!(!decisions.is_empty(), "{stdout}");
    // Placements are the scorer's; every other decision starts from the forecast.
    for d in decisions.iter().filter(|d| d["action"]["kind"] != "place-pod") {
        let by = d["reason"]["plugins"][0].as_str().unwrap_or("");
        assert!(by.starts_with("onnx-mlp@"), "decided with {by}, not the ONNX forecaster: {d}");
    }
}
