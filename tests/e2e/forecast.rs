//! `foresight forecast` and `foresight forecast eval` on recorded series, through the real
//! sandboxed forecasters.

use std::path::Path;

use crate::fixtures::{self, foresight};

/// Ten days of hourly demand with a daily cycle (and a missing row), as `timestamp,value`.
fn write_series(path: &Path, days: usize, gap: Option<usize>) {
    let mut text = String::from("timestamp,value\n");
    for i in (0..days * 24).filter(|i| Some(*i) != gap) {
        let hour = i % 24;
        let value = 100.0 + 60.0 * ((hour as f64 - 6.0) / 24.0 * std::f64::consts::TAU).sin();
        text.push_str(&format!("2024-03-{:02}T{hour:02}:00:00Z,{value:.3}\n", 1 + i / 24));
    }
    std::fs::write(path, text).expect("write");
}

#[test]
fn one_series_gets_quantile_forecasts_for_every_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = fixtures::plugin_dir(dir.path());
    let input = dir.path().join("demand.csv");
    write_series(&input, 10, Some(100));
    let out = dir.path().join("forecast.csv");
    let run = foresight()
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .args(["forecast", "--horizon", "6h", "--plugin", "holt-winters", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = std::fs::read_to_string(&out).expect("output");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "timestamp,p10,p50,p90");
    assert_eq!(lines.len(), 7, "six hourly steps: {text}");
    assert!(lines[1].starts_with("2024-03-11T00:00:00Z,"), "{text}");
    for line in &lines[1..] {
        let v: Vec<f64> = line.split(',').skip(1).map(|x| x.parse().expect("number")).collect();
        assert!(v[0] <= v[1] && v[1] <= v[2], "{line}");
    }
    // A clean daily cycle: the 06:00 median is near the cycle's middle (100), noon near its top.
    let p50 = |row: usize| lines[row].split(',').nth(2).and_then(|x| x.parse::<f64>().ok()).expect("p50");
    assert!((p50(1) - 100.0 + 60.0).abs() < 15.0, "{text}");
    assert!(p50(6) > p50(1) + 30.0, "{text}");

    let unknown = foresight()
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .args(["forecast", "--plugin", "prophet", "--input"])
        .arg(&input)
        .output()
        .expect("runs");
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("no installed forecaster named `prophet`") && err.contains("holt-winters"), "{err}");

    // Installed but refused by its own configuration: the error says why, naming the key.
    let refused = foresight()
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .args([
            "forecast",
            "--plugin",
            "seasonal-naive",
            "--set",
            "plugins.forecaster.config={backtest-points=5}",
        ])
        .arg("--input")
        .arg(&input)
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("forecaster `seasonal-naive`")
            && err.contains("could not start")
            && err.contains("`backtest-points` (5)"),
        "{err}"
    );
}

#[test]
fn eval_scores_every_installed_forecaster_the_ensemble_and_the_default_by_rolling_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = fixtures::plugin_dir(dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    write_series(&data.join("a.csv"), 15, None);
    write_series(&data.join("b.csv"), 12, Some(250));
    std::fs::write(data.join("wide.csv"), "timestamp,cpu,mem\n2024-01-01T00:00:00Z,1,2\n").expect("write");
    let out = dir.path().join("eval.json");
    let run = foresight()
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .args(["forecast", "eval", "--horizons", "1h,6h,90m", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        stdout.contains("accuracy") && stdout.contains("MASE") && stdout.contains("coverage"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("json")).expect("JSON");
    for plugin in ["seasonal-naive", "holt-winters", "mstl", "decaying-histogram", "ensemble"] {
        let one_hour = &report["plugins"][plugin]["1h"];
        for key in ["mape", "mase", "coverage", "below_p10", "above_p90", "seconds", "series"] {
            assert!(!one_hour[key].is_null(), "{plugin} 1h lacks {key}: {report}");
        }
        assert_eq!(one_hour["series"], 2);
        assert!(one_hour["mase"].as_f64().is_some_and(|m| (0.0..1.0).contains(&m)), "{plugin}: {one_hour}");
        assert!(report["plugins"][plugin]["90m"].is_null(), "90 min is not a whole number of hourly steps");
    }
    // The configuration serves seasonal-naive alone: `default` is its row, and says so.
    assert_eq!(report["default"], serde_json::json!({"forecaster": "seasonal-naive", "ensemble": []}));
    for horizon in ["1h", "6h"] {
        assert_eq!(
            report["plugins"]["default"][horizon]["mase"],
            report["plugins"]["seasonal-naive"][horizon]["mase"]
        );
    }
    let rows = report["rows"].as_array().expect("rows");
    assert!(
        rows.iter().any(|r| r["series"] == "b.csv" && r["plugin"] == "holt-winters" && r["horizon"] == "6h")
    );

    // Served with an ensemble, `default` is the combination, and only what was asked for runs.
    let noisy = dir.path().join("noisy");
    std::fs::create_dir(&noisy).expect("mkdir");
    let mut text = String::from("timestamp,value\n");
    let mut seed = 7_u64;
    for i in 0..15 * 24 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let noise = (seed >> 33) as f64 / f64::from(1_u32 << 31) * 30.0;
        let value = 100.0 + 60.0 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin() + noise;
        text.push_str(&format!("2024-03-{:02}T{:02}:00:00Z,{value:.3}\n", 1 + i / 24, i % 24));
    }
    std::fs::write(noisy.join("n.csv"), text).expect("write");
    let combined = dir.path().join("default.json");
    let run = foresight()
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .args(["forecast", "eval", "--horizons", "1h", "--quiet", "--plugin", "default", "seasonal-naive"])
        .args(["--set", r#"plugins.ensemble=["holt-winters.wasm"]"#, "--data"])
        .arg(&noisy)
        .arg("--out")
        .arg(&combined)
        .output()
        .expect("runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let combined: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&combined).expect("json")).expect("JSON");
    let names: Vec<&String> = combined["plugins"].as_object().expect("plugins").keys().collect();
    assert_eq!(names, ["default", "seasonal-naive"]);
    assert_eq!(combined["default"]["ensemble"], serde_json::json!(["holt-winters"]));
    let mase = |p: &str| combined["plugins"][p]["1h"]["mase"].as_f64().expect("mase");
    assert!(mase("default").is_finite() && mase("default") != mase("seasonal-naive"), "{combined}");

    // A horizon given twice, and a folder where nothing can be scored, are errors.
    let refused = |args: &[&str], data: &Path| {
        let run = foresight()
            .env("FORESIGHT_PLUGINS__DIR", &plugins)
            .args(["forecast", "eval", "--plugin", "default", "--quiet"])
            .args(args)
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(dir.path().join("refused.json"))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(!run.status.success(), "{args:?}: {err}");
        err
    };
    let err = refused(&["--horizons", "1h,60m"], &noisy);
    assert!(err.contains("`1h` and `60m` are the same horizon"), "{err}");
    let short = dir.path().join("short");
    std::fs::create_dir(&short).expect("mkdir");
    // Seven-minute steps: no horizon asked for is a whole number of them.
    let rows: String = (0..200)
        .map(|k| format!("2024-03-01T{:02}:{:02}:00Z,{}\n", k * 7 / 60, k * 7 % 60, 10 + k % 5))
        .collect();
    std::fs::write(short.join("odd-steps.csv"), format!("timestamp,value\n{rows}")).expect("write");
    let err = refused(&[], &short);
    assert!(err.contains("skipping odd-steps.csv") && err.contains("could be scored"), "{err}");

    // A member the configuration names but nobody built is named, with the key.
    let run = foresight()
        .env("FORESIGHT_PLUGINS__DIR", &plugins)
        .args(["forecast", "eval", "--plugin", "default", "--quiet"])
        .args(["--set", r#"plugins.ensemble=["nope.wasm"]"#, "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("nope.json"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success() && err.contains("[plugins] ensemble[0]") && err.contains("nope.wasm"),
        "{err}"
    );

    // A member named without its extension is pointed at the component it meant.
    let err = refused(&["--set", r#"plugins.ensemble=["holt-winters"]"#], &noisy);
    assert!(err.contains("did you mean") && err.contains("holt-winters.wasm"), "{err}");
    let skipped = report["skipped"].as_array().expect("skipped");
    assert!(skipped.iter().any(|s| s["file"] == "wide.csv"), "{skipped:?}");
}
