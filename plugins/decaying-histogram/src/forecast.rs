//! One series, start to finish: events divided out, phase histograms filled, the recent level
//! measured, quantiles read at each target's phase.

use foresight_sdk::forecaster::finish;
use foresight_sdk::{PluginError, Series};

use crate::histogram::{Buckets, decay_weight};
use crate::level::Level;
use crate::phase::Phases;
use crate::profile::Profile;

/// Samples weighing less than this, relative to the newest, are left out: older than six
/// half-lives, all of them together would weigh under 2 % of the rest, and leaving them out
/// bounds the cost of a long history (measured: no change in accuracy against 1/256).
const MIN_WEIGHT: f64 = 1.0 / 64.0;

/// Validated settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub(crate) half_life_s: f64,
    /// `bucket-growth`: each bucket is `1 + widening` times as wide as the previous one.
    pub(crate) widening: f64,
    pub(crate) first_bucket_relative: f64,
    pub(crate) season_s: u32,
    pub(crate) phase_bins: u32,
    pub(crate) phase_window_s: u32,
    /// 0 turns the level correction off.
    pub(crate) level_window_s: u32,
    pub(crate) band_scale: f64,
}

/// Forecasts one series: `horizons × quantiles` values, row-major.
pub(crate) fn forecast_series(
    settings: &Settings,
    index: usize,
    series: &Series,
    horizons: &[u32],
    quantiles: &[f64],
) -> Result<Vec<f64>, PluginError> {
    let (values, last) = series.base_demand(index)?;
    let step_s = f64::from(series.step);
    let max_age = settings.half_life_s * libm::log2(1.0 / MIN_WEIGHT) / step_s;
    let first = last - (max_age.min(last as f64) as usize);
    let history = &values[first..=last];
    let non_negative = history.iter().all(|v| v.is_nan() || *v >= 0.0);

    let phases = Phases::new(settings.season_s, settings.phase_bins, series.step);
    let season_steps = (phases.season_s() / i64::from(series.step)).max(1) as usize;
    let phase_of = phases.sequence(series.time_of(first), series.step, history.len());
    let buckets =
        buckets_for(settings, history, season_steps, Profile::most_buckets_per_side(phases.count()));
    let mut profile = Profile::new(buckets, phases.count());
    let bin_s = phases.season_s() as f64 / phases.count() as f64;
    let radius = (f64::from(settings.phase_window_s) / 2.0 / bin_s) as usize;
    // Newest first: each weight is the next one's times a constant, which spares an
    // exponential per observation.
    let decay = decay_weight(step_s, settings.half_life_s);
    let mut weight = 1.0;
    for (value, &phase) in history.iter().zip(&phase_of).rev() {
        if !value.is_nan() {
            profile.add(phase, *value, weight);
        }
        weight *= decay;
    }

    let window = (settings.level_window_s as usize).div_ceil(series.step as usize);
    let level = (window > 0).then(|| {
        let medians = profile.window_medians(radius);
        Level::measure(history.iter().zip(&phase_of).map(|(v, &p)| v - medians[p]).collect(), window)
    });

    let end = values.len() - 1;
    let mut out = Vec::with_capacity(horizons.len() * quantiles.len());
    for &horizon in horizons {
        let target = end + series.steps_ahead(horizon);
        let histogram = profile.window(phases.of(series.time_of(target)), radius);
        let offset = level.as_ref().map_or(0.0, |level| level.correction(target - last));
        // A phase's window is empty only if every phase is; `last` is in one of them.
        let median = histogram.quantile(profile.buckets(), 0.5).unwrap_or(values[last]);
        let multiplier = series.event_multiplier(series.last_time() + i64::from(horizon));
        for &q in quantiles {
            let value = histogram.quantile(profile.buckets(), q).unwrap_or(values[last]);
            let value = multiplier * (median + settings.band_scale * (value - median) + offset);
            out.push(if non_negative { value.max(0.0) } else { value });
        }
    }
    finish(index, out, quantiles.len())
}

/// Buckets anchored at the median of the last season, the first one a fraction of the
/// series' typical step-to-step change wide, reaching its furthest value.
fn buckets_for(settings: &Settings, history: &[f64], season_steps: usize, most: usize) -> Buckets {
    let recent = &history[history.len().saturating_sub(season_steps)..];
    let mut observed: Vec<f64> = recent.iter().copied().filter(|v| !v.is_nan()).collect();
    let middle = observed.len() / 2;
    let anchor = *observed.select_nth_unstable_by(middle, f64::total_cmp).1;
    let (mut change, mut pairs) = (0.0, 0usize);
    let mut previous = f64::NAN;
    let mut reach: f64 = 0.0;
    for &v in history.iter().filter(|v| !v.is_nan()) {
        if !previous.is_nan() {
            change += (v - previous).abs();
            pairs += 1;
        }
        previous = v;
        reach = reach.max((v - anchor).abs());
    }
    // A series that never changes still needs buckets of some width.
    let scale = if change > 0.0 {
        change / pairs as f64
    } else if reach > 0.0 {
        reach
    } else {
        anchor.abs().max(1.0)
    };
    Buckets::new(anchor, settings.first_bucket_relative * scale, settings.widening, reach, most)
}

#[cfg(test)]
mod tests {
    use foresight_sdk::{ForecastRequest, Forecaster};

    use super::*;
    use crate::DecayingHistogram;
    use foresight_sdk::testing::{
        DAY, HOUR, Lcg, daily_on_random_walk, daily_shape, forecast_one as run,
        forecasts_zero_under_an_outage, refuses_series_with_nothing_observed, sale_and_launch,
    };

    /// 2023-11-14 00:00:00 UTC: a midnight, so that index `i` of an hourly series is hour `i % 24`.
    const MIDNIGHT: i64 = 1_699_920_000;

    fn forecaster(config: &str) -> DecayingHistogram {
        foresight_sdk::testing::configured(config)
    }

    fn hourly(values: Vec<f64>) -> Series {
        Series { start: MIDNIGHT, step: HOUR, values, ..Default::default() }
    }

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn the_target_time_of_day_chooses_the_histogram() {
        // Five days of hourly values equal to the hour of day, starting 13 min 20 s past the
        // hour: phases follow the clock, not the series' start.
        let start = MIDNIGHT + 7 * i64::from(HOUR) + 800;
        let values: Vec<f64> = (0..5 * 24).map(|i| ((i + 7) % 24) as f64).collect();
        let series = Series { start, step: HOUR, values, ..Default::default() };
        let horizons: Vec<u32> = (1..=24).map(|h| h * HOUR).collect();
        let answer = run(&mut forecaster(""), series.clone(), &horizons, &[0.1, 0.5, 0.9]);
        let last = series.last_time();
        for (row, &h) in answer.chunks(3).zip(&horizons) {
            let hour = ((last + i64::from(h)).rem_euclid(i64::from(DAY)) / i64::from(HOUR)) as f64;
            row.iter().for_each(|v| assert_close(*v, hour));
        }
    }

    #[test]
    fn five_minute_steps_read_a_window_centred_on_the_target() {
        // Four days at 5-minute steps, flat within two-hour blocks: 0 from midnight to 02:00,
        // 10 from 02:00 to 04:00, and so on.
        let block = |i: usize| (i % 288 / 24) as f64 * 10.0;
        let values: Vec<f64> = (0..4 * 288).map(block).collect();
        let series = Series { start: MIDNIGHT, step: 300, values, ..Default::default() };
        // The last observation is 23:55. At 00:55 and 02:55 the hour-wide window lies within
        // one block. At 02:05 it is the 10-minute bins within half an hour of 02:00–02:10's,
        // 01:30–02:40: three bins of the earlier block, four of the later one.
        let answer = run(&mut forecaster(""), series, &[HOUR, 2 * HOUR + 600, 3 * HOUR], &[0.5]);
        assert_close(answer[0], 0.0);
        assert_close(answer[1], 10.0);
        assert_close(answer[2], 10.0);
    }

    #[test]
    fn recent_days_outweigh_older_ones_by_the_half_life() {
        // Eight days at 100, then two at 200. With a one-day half-life the last two days hold
        // three quarters of each phase's weight; with a month, a fifth.
        let values: Vec<f64> = (0..10 * 24).map(|i| if i < 8 * 24 { 100.0 } else { 200.0 }).collect();
        let fast = run(
            &mut forecaster("half-life-s = 86400\nlevel-window-s = 0"),
            hourly(values.clone()),
            &[HOUR],
            &[0.5],
        );
        let slow = run(
            &mut forecaster("half-life-s = 2592000\nlevel-window-s = 0"),
            hourly(values),
            &[HOUR],
            &[0.5],
        );
        assert_close(fast[0], 200.0);
        assert_close(slow[0], 100.0);
    }

    #[test]
    fn gaps_are_skipped() {
        let pattern: Vec<f64> = (0..5 * 24).map(|i| daily_shape(i % 24)).collect();
        let mut values = pattern.clone();
        // Yesterday's 02:00 and 03:00 are missing, and so are the last two observations.
        let n = values.len();
        for i in [n - 22, n - 21, n - 2, n - 1] {
            values[i] = f64::NAN;
        }
        let answer =
            run(&mut forecaster(""), hourly(values), &[HOUR, 3 * HOUR, 4 * HOUR, DAY], &[0.1, 0.5, 0.9]);
        for (row, hour) in answer.chunks(3).zip([0, 2, 3, 23]) {
            row.iter().for_each(|v| assert_close(*v, daily_shape(hour)));
        }
    }

    #[test]
    fn past_events_are_divided_out_and_future_ones_applied() {
        let (series, leads, expected) = sale_and_launch(MIDNIGHT, 5);
        let answer = run(&mut forecaster(""), series, &leads, &[0.1, 0.5, 0.9]);
        for (row, want) in answer.chunks(3).zip(expected) {
            row.iter().for_each(|v| assert_close(*v, want));
        }
    }

    #[test]
    fn a_zero_multiplier_event_forecasts_zero_and_bad_multipliers_are_refused() {
        let mut f = forecaster("");
        let series = forecasts_zero_under_an_outage(&mut f, MIDNIGHT);
        // History under a multiplier of 0 is a gap, not a zero.
        let mut past = series.clone();
        past.events[0].start = MIDNIGHT;
        past.events[0].end = MIDNIGHT + 2 * i64::from(DAY);
        let answer = run(&mut f, past, &[HOUR], &[0.5]);
        assert_close(answer[0], daily_shape(0));
    }

    #[test]
    fn quantiles_are_ordered_and_clamped_at_zero_for_non_negative_history() {
        let mut noise = Lcg(3);
        let counts: Vec<f64> =
            (0..10 * 24).map(|i| if i % 24 < 8 { 0.0 } else { 3.0 } + 2.0 * noise.next().abs()).collect();
        let mut f = forecaster("");
        let quantiles = [0.01, 0.1, 0.5, 0.9, 0.99];
        let answer = run(&mut f, hourly(counts.clone()), &[HOUR, 6 * HOUR, 12 * HOUR, 30 * HOUR], &quantiles);
        for row in answer.chunks(quantiles.len()) {
            assert!(row.windows(2).all(|w| w[0] <= w[1]), "crossed: {row:?}");
        }
        assert!(answer.iter().all(|v| *v >= 0.0), "{answer:?}");
        let day_row = &answer[2 * quantiles.len()..3 * quantiles.len()];
        assert!(day_row[4] > day_row[0], "a noisy phase has a band: {day_row:?}");
        // A history that goes negative is not clamped.
        let shifted: Vec<f64> = counts.iter().map(|v| v - 2.0).collect();
        let answer = run(&mut f, hourly(shifted), &[HOUR], &[0.01]);
        assert!(answer[0] < 0.0, "{answer:?}");
    }

    #[test]
    fn a_level_that_wanders_is_followed_at_short_leads() {
        // A month of the daily pattern riding on a random walk: the histograms lag the level,
        // the correction does not.
        let values = daily_on_random_walk(30 * 24, 7, 0.0, 3.0);
        let error = |config: &str| {
            let mut f = forecaster(config);
            let origins = (20 * 24..30 * 24).step_by(7);
            let total: f64 = origins
                .clone()
                .map(|o| (run(&mut f, hourly(values[..o].to_vec()), &[HOUR], &[0.5])[0] - values[o]).abs())
                .sum();
            total / origins.count() as f64
        };
        let corrected = error("");
        let uncorrected = error("level-window-s = 0");
        assert!(corrected < 0.7 * uncorrected, "{corrected} vs {uncorrected}");
    }

    #[test]
    fn empty_and_all_gap_series_are_refused_by_index() {
        refuses_series_with_nothing_observed(&mut forecaster(""));
    }

    #[test]
    fn answers_have_the_contract_shape_for_every_step_and_are_deterministic() {
        let mut f = forecaster("");
        let empty = ForecastRequest { series: vec![], horizons: vec![60], quantiles: vec![0.5] };
        assert!(f.forecast(&empty).unwrap().is_empty());
        let mut noise = Lcg(5);
        let mut series = |step: u32, n: usize| Series {
            start: MIDNIGHT + 123,
            step,
            values: (0..n).map(|i| daily_shape(i * step as usize / 3600 % 24) + noise.next()).collect(),
            ..Default::default()
        };
        let request = ForecastRequest {
            series: vec![
                series(300, 20_000),
                series(600, 3000),
                series(3600, 500),
                series(86_400, 400),
                series(60, 3),
            ],
            horizons: vec![300, 3600, 6 * 3600, 86_400, 2 * 86_400],
            quantiles: vec![0.1, 0.5, 0.9],
        };
        let answer = f.forecast(&request).unwrap();
        assert_eq!(answer.len(), 5);
        assert!(answer.iter().all(|a| a.len() == request.answer_len() && a.iter().all(|v| v.is_finite())));
        assert_eq!(answer, f.forecast(&request).unwrap(), "deterministic");
        assert_eq!(answer, forecaster("").forecast(&request).unwrap(), "no state between calls");
        // Malformed requests are refused before any work.
        let bad = ForecastRequest { quantiles: vec![0.9, 0.1], ..request };
        assert!(f.forecast(&bad).is_err());
    }
}
