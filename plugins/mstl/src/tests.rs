//! The forecaster as the host sees it: requests in, quantile rows out.

use super::*;
use foresight_sdk::Series;
use foresight_sdk::testing::{
    DAY, HOUR, Lcg, daily_shape, forecast_one as run, forecasts_zero_under_an_outage, hourly,
    refuses_series_with_nothing_observed, sale_and_launch,
};

fn forecaster(config: &str) -> Mstl {
    foresight_sdk::testing::configured(config)
}

fn config_error(config: &str) -> String {
    foresight_sdk::testing::config_error::<Mstl>(config)
}

fn assert_close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

#[test]
fn a_pure_daily_pattern_repeats_exactly() {
    for config in ["", "transform = \"log\"", "transform = \"none\"\niterations = 1"] {
        let mut f = forecaster(config);
        let values: Vec<f64> = (0..10 * 24).map(|i| daily_shape(i % 24)).collect();
        let horizons: Vec<u32> = (1..=48).map(|h| h * HOUR).collect();
        let answer = run(&mut f, hourly(values), &horizons, &[0.1, 0.5, 0.9]);
        for (j, row) in answer.chunks(3).enumerate() {
            for v in row {
                assert_close(*v, daily_shape((10 * 24 + j) % 24));
            }
        }
    }
}

#[test]
fn the_weekly_season_sees_weekends_the_daily_one_misses() {
    // Three weeks, hourly: weekdays at 100, weekends at 40, the same shape every day.
    let mut noise = Lcg(1);
    let value = |i: usize| if (i / 24) % 7 >= 5 { 40.0 } else { 100.0 } + daily_shape(i % 24) - 100.0;
    let values: Vec<f64> = (0..21 * 24).map(|i| value(i) + noise.next()).collect();
    let n = values.len();
    // The history ends on a Sunday; the next day is a Monday.
    let horizons: Vec<u32> = (1..=24).map(|h| h * HOUR).collect();
    let error = |config: &str| {
        let answer = run(&mut forecaster(config), hourly(values.clone()), &horizons, &[0.5]);
        answer.iter().enumerate().map(|(j, v)| (v - value(n + j)).abs()).sum::<f64>() / 24.0
    };
    let daily = error("seasons-s = [86400]");
    let both = error("");
    assert!(daily > 20.0, "daily only {daily}");
    assert!(both < 5.0, "daily and weekly {both}");
}

#[test]
fn noise_around_a_season_is_smoothed_not_copied() {
    // Seasonal naive repeats yesterday's noise; the seasonal smooth averages it away.
    let mut noise = Lcg(3);
    let values: Vec<f64> = (0..20 * 24).map(|i| daily_shape(i % 24) + 10.0 * noise.next()).collect();
    let horizons: Vec<u32> = (1..=24).map(|h| h * HOUR).collect();
    let answer = run(&mut forecaster(""), hourly(values), &horizons, &[0.5]);
    let error = answer.iter().enumerate().map(|(j, v)| (v - daily_shape(j)).abs()).sum::<f64>() / 24.0;
    // Uniform noise of ±10 has a mean absolute value of 5: a copy of one day would err by that.
    assert!(error < 3.0, "mean error {error}");
}

#[test]
fn a_trend_under_the_season_is_followed() {
    // Ten days of the daily shape on a rising line: the forecast keeps rising, damped.
    let values: Vec<f64> = (0..10 * 24).map(|i| daily_shape(i % 24) + 0.5 * i as f64).collect();
    let answer = run(&mut forecaster("transform = \"none\""), hourly(values), &[HOUR, 6 * HOUR], &[0.5]);
    for (v, h) in answer.iter().zip([1, 6]) {
        let truth = daily_shape((240 + h - 1) % 24) + 0.5 * (239 + h) as f64;
        assert!((v - truth).abs() < 2.0, "{h}: {v} vs {truth}");
    }
}

#[test]
fn history_shorter_than_two_cycles_is_smoothing_with_a_band() {
    let mut f = forecaster("");
    let answer = run(&mut f, hourly(vec![10.0, 14.0, 12.0, f64::NAN]), &[HOUR, 6 * HOUR], &[0.1, 0.5, 0.9]);
    assert!(answer.iter().all(|v| v.is_finite()));
    assert!(answer[0] < answer[1] && answer[1] < answer[2], "{answer:?}");
    assert!((10.0..=14.0).contains(&answer[1]), "{answer:?}");
    // A history that never varies still gets a band, not a point.
    let flat = run(&mut f, hourly(vec![50.0; 3]), &[HOUR], &[0.1, 0.9]);
    assert!(flat[0] < 50.0 && flat[1] > 50.0, "{flat:?}");
    // One observation is enough to answer.
    let one = run(&mut f, hourly(vec![7.0]), &[HOUR], &[0.5]);
    assert_close(one[0], 7.0);
}

#[test]
fn gaps_are_not_read_as_zero() {
    let mut values: Vec<f64> = (0..6 * 24).map(|i| daily_shape(i % 24)).collect();
    let n = values.len();
    // Most of yesterday is missing, and so is the last observation.
    values[n - 24..n - 4].iter_mut().for_each(|v| *v = f64::NAN);
    values[n - 1] = f64::NAN;
    let answer = run(&mut forecaster(""), hourly(values), &[HOUR, 2 * HOUR, 24 * HOUR], &[0.1, 0.5, 0.9]);
    for (row, j) in answer.chunks(3).zip([n, n + 1, n + 23]) {
        assert!((row[1] - daily_shape(j % 24)).abs() < 3.0, "{j}: {row:?}");
    }
}

#[test]
fn a_spike_in_the_last_value_barely_moves_the_forecast() {
    // Three weeks of a noisy daily pattern, and then one value ten times too high.
    let mut noise = Lcg(12);
    let mut values: Vec<f64> = (0..21 * 24).map(|i| daily_shape(i % 24) + 2.0 * noise.next()).collect();
    let n = values.len();
    values[n - 1] = 1000.0;
    let answer = run(&mut forecaster(""), hourly(values), &[HOUR, 2 * HOUR], &[0.5]);
    for (v, j) in answer.iter().zip([n, n + 1]) {
        assert!((v - daily_shape(j % 24)).abs() < 10.0, "{j}: {v}");
    }
}

#[test]
fn past_events_are_divided_out_and_future_ones_applied() {
    let (series, leads, expected) = sale_and_launch(0, 10);
    let answer = run(&mut forecaster(""), series, &leads, &[0.1, 0.5, 0.9]);
    for (row, want) in answer.chunks(3).zip(expected) {
        row.iter().for_each(|v| assert_close(*v, want));
    }
}

#[test]
fn a_zero_multiplier_event_forecasts_zero_and_bad_multipliers_are_refused() {
    forecasts_zero_under_an_outage(&mut forecaster(""), 0);
}

/// Five weeks of a daily pattern riding on a random-walk level.
fn drifting(seed: u64) -> Vec<f64> {
    let mut noise = Lcg(seed);
    let mut level = 0.0;
    (0..35 * 24)
        .map(|i| {
            level += noise.next();
            daily_shape(i % 24) + level + 2.0 * noise.next()
        })
        .collect()
}

#[test]
fn quantiles_are_ordered_and_widen_with_horizon() {
    let horizons = [HOUR, 6 * HOUR, DAY, 2 * DAY];
    let quantiles = [0.05, 0.25, 0.5, 0.75, 0.95];
    let answer = run(&mut forecaster(""), hourly(drifting(7)), &horizons, &quantiles);
    let rows: Vec<&[f64]> = answer.chunks(quantiles.len()).collect();
    for row in &rows {
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "crossed: {row:?}");
    }
    let widths: Vec<f64> = rows.iter().map(|r| r[4] - r[0]).collect();
    assert!(widths[0] > 0.0);
    assert!(widths.windows(2).all(|w| w[0] <= w[1] + 1e-9), "{widths:?}");
    // A random walk's uncertainty grows with the lead: two days out is much wider than one hour.
    assert!(widths[3] > 2.0 * widths[0], "{widths:?}");
}

#[test]
fn non_negative_history_gives_non_negative_quantiles() {
    let mut noise = Lcg(3);
    let counts: Vec<f64> =
        (0..5 * 24).map(|i| if i % 24 < 8 { 0.0 } else { 3.0 } + noise.next().abs()).collect();
    for config in ["", "transform = \"log\""] {
        let mut f = forecaster(config);
        let answer = run(&mut f, hourly(counts.clone()), &[HOUR, 12 * HOUR], &[0.01, 0.5, 0.99]);
        assert!(answer.iter().all(|v| *v >= 0.0), "{answer:?}");
        // A history that goes negative is neither clamped nor log-transformed.
        let shifted: Vec<f64> = counts.iter().map(|v| v - 5.0).collect();
        let answer = run(&mut f, hourly(shifted), &[HOUR], &[0.01]);
        assert!(answer[0] < 0.0);
    }
}

#[test]
fn empty_and_all_gap_series_are_refused_by_index() {
    refuses_series_with_nothing_observed(&mut forecaster(""));
}

#[test]
fn answers_have_the_contract_shape_and_are_deterministic() {
    let mut f = forecaster("");
    let empty = ForecastRequest { series: vec![], horizons: vec![60], quantiles: vec![0.5] };
    assert!(f.forecast(&empty).unwrap().is_empty());
    let request = ForecastRequest {
        series: vec![
            hourly(drifting(5)),
            Series { step: 300, values: drifting(6).repeat(3), ..Default::default() },
            Series { step: 86_400, values: drifting(8)[..400].to_vec(), ..Default::default() },
        ],
        horizons: vec![300, 3600, 6 * 3600, 48 * 3600],
        quantiles: vec![0.1, 0.5, 0.9],
    };
    let answer = f.forecast(&request).unwrap();
    assert_eq!(answer.len(), 3);
    assert!(answer.iter().all(|a| a.len() == request.answer_len() && a.iter().all(|v| v.is_finite())));
    assert_eq!(answer, forecaster("").forecast(&request).unwrap(), "deterministic");
    // Malformed requests are refused before any work.
    let bad = ForecastRequest { quantiles: vec![0.9, 0.1], ..request };
    assert!(f.forecast(&bad).is_err());
}

#[test]
fn a_long_history_is_read_only_as_far_back_as_fit_steps() {
    // Old history that contradicts the recent one changes nothing once out of reach.
    let recent: Vec<f64> = drifting(11);
    let mut long = vec![1e6; 5000];
    long.extend_from_slice(&recent);
    let config = format!("fit-steps = {}", recent.len());
    let horizons = [HOUR, DAY];
    let a = run(&mut forecaster(&config), hourly(long), &horizons, &[0.1, 0.5, 0.9]);
    let b = run(&mut forecaster(&config), hourly(recent), &horizons, &[0.1, 0.5, 0.9]);
    a.iter().zip(&b).for_each(|(x, y)| assert_close(*x, *y));
}

#[test]
fn seasons_are_rounded_to_steps_and_dropped_when_too_short_or_long() {
    let f = forecaster("seasons-s = [86400, 604800, 86000]");
    // Five minutes: 86 000 s rounds to 287 steps, a season of its own.
    assert_eq!(f.periods(30 * 288, 300), vec![287, 288, 2016]);
    // Two weeks of five-minute steps hold two weekly cycles; a step less does not.
    assert_eq!(f.periods(2 * 2016, 300), vec![287, 288, 2016]);
    assert_eq!(f.periods(2 * 2016 - 1, 300), vec![287, 288]);
    // Hourly steps: a day is 24 steps; daily steps: a day is one step (no season), a week 7.
    let f = forecaster("");
    assert_eq!(f.periods(100, 3600), vec![24]);
    assert_eq!(f.periods(100, 86_400), vec![7]);
    assert_eq!(f.periods(47, 3600), Vec::<usize>::new());
    // Ten minutes is two five-minute steps, the shortest season there is; one step is none.
    assert_eq!(forecaster("seasons-s = [600, 300]").periods(100, 300), vec![2]);
    // Equal after rounding: one season.
    assert_eq!(forecaster("seasons-s = [86400, 86401]").periods(1000, 3600), vec![24]);
}

#[test]
fn bad_config_is_refused_by_key_name() {
    assert!(config_error("seasons-s = [0, 604800]").contains("`seasons-s`"));
    assert!(config_error("seasons-s = [-86400]").contains("`seasons-s`"));
    assert!(config_error("seasons-s = \"daily\"").contains("`seasons-s` must be an array"));
    assert!(config_error("min-cycles = 1").contains("`min-cycles`"));
    assert!(config_error("iterations = 0").contains("`iterations`"));
    assert!(config_error("robust-passes = 16").contains("`robust-passes`"));
    assert!(config_error("robust-passes = -1").contains("`robust-passes`"));
    assert!(config_error("shrink-seasons = 1").contains("`shrink-seasons` must be true or false"));
    assert!(config_error("robust-smoothing = \"yes\"").contains("`robust-smoothing`"));
    assert!(config_error("fit-steps = 5").contains("`fit-steps`"));
    assert!(config_error("transform = \"sqrt\"").contains("`transform`"));
    assert!(config_error("fit-evaluations = 3").contains("`fit-evaluations`"));
    assert!(config_error("min-residuals = 1").contains("`min-residuals`"));
    assert!(config_error("max-residuals = 5").contains("`max-residuals`"));
    assert!(config_error("season = 86400").contains("unknown key `season`"));
    // No season at all is allowed: smoothing alone.
    forecaster("seasons-s = []");
}
