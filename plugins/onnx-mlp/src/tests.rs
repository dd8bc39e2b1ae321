//! The plugin natively, against a fake inference engine whose answers are easy to predict:
//! the median is the same hour yesterday when the features have it (else the last
//! observation), the band 0.1 below and 0.2 above, all in units of the history's scale.

use std::sync::Mutex;

use foresight_sdk::Series;

use super::*;
use foresight_sdk::testing::{
    daily_shape, forecast_one as run, hourly, refuses_series_with_nothing_observed, sale_and_launch,
};

const HOUR: u32 = 3600;

/// Features by position (see `features.rs`).
const LAST_VALUE: usize = 59;

/// Batch sizes the `counting` model was called with.
static COUNTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn fake_engine(model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, MlError> {
    let [x] = inputs else { return Err(MlError::InvalidInput(format!("{} inputs", inputs.len()))) };
    if x.shape.len() != 2 || x.shape[1] != FEATURES as u32 {
        return Err(MlError::InvalidInput(format!("shape {:?}", x.shape)));
    }
    let rows = x.shape[0];
    let width = match model {
        "demand-mlp" => 3,
        "counting" => {
            COUNTED.lock().unwrap().push(rows);
            3
        }
        "two-outputs" => 2,
        _ => return Err(MlError::NotFound(format!("no model named `{model}` is granted to plugin test"))),
    };
    let data = x
        .data
        .chunks(FEATURES)
        .flat_map(|f| {
            let median = if f[YESTERDAY_SEEN] > 0.0 { f[YESTERDAY] } else { f[LAST_VALUE] };
            [median - 0.1, median, median + 0.2].into_iter().take(width)
        })
        .collect();
    Ok(vec![Tensor { shape: vec![rows, width as u32], data }])
}

fn forecaster(config: &str) -> Result<OnnxMlp, PluginError> {
    ml::install_native(Box::new(fake_engine));
    OnnxMlp::new(&Config::parse(config, &OnnxMlp::describe_keys())?)
}

fn assert_close(a: f64, b: f64) {
    // The model sees f32 features.
    assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} != {b}");
}

#[test]
fn a_daily_pattern_comes_back_through_the_model_in_the_series_units() {
    let mut f = forecaster("").unwrap();
    let values: Vec<f64> = (0..3 * 24).map(|i| daily_shape(i % 24)).collect();
    let horizons: Vec<u32> = (1..=23).map(|h| h * HOUR).collect();
    let answer = run(&mut f, hourly(values.clone()), &horizons, &[0.5]);
    // The history ends at 23:00; h hours later is hour h − 1 of the next day.
    for (j, v) in answer.iter().enumerate() {
        assert_close(*v, daily_shape(j));
    }
}

#[test]
fn one_batched_inference_per_request() {
    let mut f = forecaster("model = \"counting\"").unwrap();
    let series: Vec<Series> = (0..3).map(|_| hourly(vec![5.0; 30])).collect();
    let request =
        ForecastRequest { series, horizons: vec![HOUR, 2 * HOUR, 6 * HOUR, 24 * HOUR], quantiles: vec![0.5] };
    f.forecast(&request).unwrap();
    // One probe when configured, then every series × horizon in a single call.
    assert_eq!(*COUNTED.lock().unwrap(), vec![1, 12]);
}

#[test]
fn past_events_are_divided_out_and_future_ones_applied() {
    let (series, leads, expected) = sale_and_launch(0, 10);
    let answer = run(&mut forecaster("").unwrap(), series, &leads, &[0.5]);
    for (v, want) in answer.iter().zip(expected) {
        assert_close(*v, want);
    }
}

#[test]
fn requested_levels_are_mapped_from_the_model_levels() {
    let mut f = forecaster("").unwrap();
    let answer = run(&mut f, hourly(vec![50.0; 48]), &[HOUR], &[0.05, 0.1, 0.5, 0.9, 0.95]);
    // Scale 50: the fake band is 45 / 50 / 60.
    assert_close(answer[1], 45.0);
    assert_close(answer[2], 50.0);
    assert_close(answer[3], 60.0);
    let z = |q: f64| normal_quantile(q) / normal_quantile(0.9);
    assert_close(answer[0], 50.0 + 5.0 * z(0.05));
    assert_close(answer[4], 50.0 + 10.0 * z(0.95));
}

#[test]
fn a_model_that_is_not_granted_or_does_not_fit_fails_at_start() {
    let err = forecaster("model = \"missing\"").unwrap_err();
    assert!(matches!(err, PluginError::InvalidConfig(_)), "{err:?}");
    assert!(
        err.to_string().contains("`model` = \"missing\"") && err.to_string().contains("granted"),
        "{err}"
    );
    let err = forecaster("model = \"two-outputs\"").unwrap_err().to_string();
    assert!(err.contains("[1, 2]") && err.contains("`levels` lists 3 levels"), "{err}");
    assert!(forecaster("model = \"two-outputs\"\nlevels = [0.25, 0.75]").is_ok());
    assert!(forecaster("levels = [0.5, 0.1]").unwrap_err().to_string().contains("`levels`"));
    assert!(forecaster("modell = \"x\"").unwrap_err().to_string().contains("unknown key `modell`"));
}

#[test]
fn empty_and_all_gap_series_are_refused_by_index() {
    refuses_series_with_nothing_observed(&mut forecaster("").unwrap());
}

#[test]
fn non_negative_history_gives_non_negative_quantiles() {
    let mut f = forecaster("").unwrap();
    let answer = run(&mut f, hourly(vec![0.0; 30]), &[HOUR, 5 * HOUR], &[0.01, 0.5, 0.99]);
    assert!(answer.iter().all(|v| *v >= 0.0), "{answer:?}");
    let answer = run(&mut f, hourly(vec![-1.0; 30]), &[HOUR], &[0.01]);
    assert!(answer[0] < -1.0, "a negative history is not clamped: {answer:?}");
}

#[test]
fn answers_have_the_contract_shape_and_repeat() {
    let mut f = forecaster("").unwrap();
    assert!(
        f.forecast(&ForecastRequest { series: vec![], horizons: vec![60], quantiles: vec![0.5] })
            .unwrap()
            .is_empty()
    );
    let minutes = Series {
        start: 1_700_000_000,
        step: 60,
        values: (0..10_080).map(|i| daily_shape(i / 60 % 24)).collect(),
        ..Default::default()
    };
    let request = ForecastRequest {
        series: vec![hourly(vec![3.0, f64::NAN, 4.0]), minutes],
        horizons: vec![60, 3600, 172_800, 604_800],
        quantiles: vec![0.1, 0.5, 0.9],
    };
    let answer = f.forecast(&request).unwrap();
    assert!(answer.iter().all(|a| a.len() == request.answer_len() && a.iter().all(|v| v.is_finite())));
    assert!(answer.iter().all(|a| a.chunks(3).all(|row| row[0] <= row[1] && row[1] <= row[2])));
    assert_eq!(answer, f.forecast(&request).unwrap());
    let bad = ForecastRequest { quantiles: vec![0.9, 0.1], ..request };
    assert!(f.forecast(&bad).is_err());
}

#[test]
fn leads_past_48_hours_are_described_as_48_hours() {
    let values: Vec<f64> = (0..200).map(|i| daily_shape(i % 24)).collect();
    let history = History::new(0, HOUR, &values).unwrap();
    let (mut two_days, mut three_days) = (Vec::new(), Vec::new());
    history.features(48, &mut two_days);
    history.features(72, &mut three_days);
    let lead = features::LEAD_FEATURE;
    assert_eq!(two_days[lead], 1.0);
    assert_eq!(three_days[lead], 1.0);
}

/// `train/train.py` writes `model/features.json`: histories and the features Python computed
/// for them. Training and serving must describe a forecast by the same numbers.
#[test]
fn features_match_the_training_code() {
    // Where cargo runs the test from, not where it was compiled: a shared target folder may hold
    // a binary built in another checkout.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let text = std::fs::read_to_string(std::path::Path::new(&dir).join("model/features.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for (c, case) in cases.iter().enumerate() {
        let values: Vec<f64> =
            case["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect();
        let step = case["step"].as_u64().unwrap() as u32;
        let history = History::new(case["start"].as_i64().unwrap(), step, &values).unwrap();
        for (h, horizon) in case["horizons"].as_array().unwrap().iter().enumerate() {
            let series = Series { step, ..Default::default() };
            let mut got = Vec::new();
            history.features(series.steps_ahead(horizon.as_u64().unwrap() as u32), &mut got);
            let want = case["features"][h].as_array().unwrap();
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let w = w.as_f64().unwrap();
                assert!(
                    (f64::from(*g) - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "case {c}, horizon {h}, feature {i}: {g} != {w}"
                );
            }
            let scale = case["scale"][h].as_f64().unwrap();
            assert!((history.scale() - scale).abs() <= 1e-9 * scale.abs().max(1.0), "case {c}: scale");
        }
    }
}
