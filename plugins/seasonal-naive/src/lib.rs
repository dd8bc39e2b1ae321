//! # seasonal-naive — the reference forecaster
//!
//! Forecasts each series by repeating what it did a whole number of seasons earlier, blending
//! a daily and a weekly season, and sets the quantiles from the errors the same rule made on
//! the series' own history:
//!
//! ```text
//! y'ᵢ    = yᵢ / m(tᵢ)                              past events divided out (m: event multiplier)
//! kₛ(h)  = ⌈h / pₛ⌉                                whole seasons of pₛ steps that reach the history
//! ŷₛ(T)  = y'[T − (kₛ(h) + j)·pₛ]                  smallest j ≥ 0 that is not a gap
//! ŷ(T)   = Σₛ wₛ·ŷₛ(T) / Σₛ wₛ                     over seasons the history holds `min-cycles` of
//! rₜ(h)  = y'ₜ − ŷ(t)                              h-step residuals of the most recent observations
//! q_τ(h) = m(t_last + h) · (ŷ(n − 1 + h) + Q_τ(r(h)))    Q_τ: empirical quantile, interpolated
//! ```
//!
//! * **Seasons.** `seasons-s` are rounded to whole steps of each series. A season is used once
//!   the history holds `min-cycles` whole cycles of it, so a series with a week of history
//!   blends the daily and weekly lags (`weights`), one with a few days uses the daily lag
//!   alone, and one shorter than a day repeats its last observation (a season of one step).
//! * **Gaps.** A NaN is skipped by looking one more season back, at the same phase.
//! * **Events.** History observed during a known event is divided by its multiplier, so last
//!   week's sale does not repeat next week; the forecast is multiplied by the multiplier of the
//!   events covering the target time, quantiles included (a 3× sale is 3× as uncertain).
//!   History under a multiplier of 0 says nothing about the base level and counts as a gap.
//! * **Quantiles.** The residuals are those of the *same* blend at the *same* lead: forecasts
//!   made `h` steps before each of the latest `max-residuals` observations. Within one season
//!   every lead uses the same lag, so the band is flat there; it widens when the lead reaches
//!   a further season back (two days instead of one) by as much as the history says it should.
//!   A forecast made further ahead never knows more, so each horizon's spread about its median
//!   residual is kept at least as wide as the previous horizon's. With fewer than
//!   `min-residuals` residuals the band is normal with σ = √(π/2) × the history's mean absolute
//!   deviation (or 10 % of the forecast when the history never varies), not zero-width.
//! * **Limits.** Quantiles are clamped at 0 when the history is non-negative, and rows are
//!   uncrossed. A series with no observation that is not a gap is refused (`invalid-input`
//!   naming the series): there is nothing to repeat, and a made-up 0 would read as a forecast.
//!
//! Cost is linear: one look-back table per season and at most `max-residuals` residuals per
//! horizon, so a week of minutes costs the same whatever its length.
//!
//! ```
//! use foresight_sdk::{Config, ForecastRequest, Forecaster, Series};
//! use seasonal_naive::SeasonalNaive;
//!
//! let config = Config::parse("", &SeasonalNaive::describe_keys()).unwrap();
//! let mut forecaster = SeasonalNaive::new(&config).unwrap();
//! // Three days of hourly demand that repeats every day.
//! let day = [
//!     5.0, 4.0, 4.0, 5.0, 8.0, 12.0, 20.0, 30.0, 34.0, 35.0, 36.0, 36.0, //
//!     37.0, 36.0, 35.0, 34.0, 33.0, 33.0, 30.0, 25.0, 18.0, 12.0, 8.0, 6.0,
//! ];
//! let values: Vec<f64> = day.iter().cycle().take(72).copied().collect();
//! let request = ForecastRequest {
//!     series: vec![Series { start: 0, step: 3600, values, ..Default::default() }],
//!     horizons: vec![3600, 6 * 3600],
//!     quantiles: vec![0.1, 0.5, 0.9],
//! };
//! let answer = forecaster.forecast(&request).unwrap();
//! // The last observation is 23:00; one hour later repeats yesterday's 00:00, six hours later
//! // yesterday's 05:00. The history never deviates from the pattern, so the band is a point.
//! assert_eq!(answer[0], vec![5.0, 5.0, 5.0, 12.0, 12.0, 12.0]);
//! ```

use foresight_sdk::stats::{empirical_quantile, normal_quantile};
use foresight_sdk::{
    Config, ConfigKey, Descriptor, ForecastRequest, Forecaster, PluginError, PluginKind, Series,
};

mod rules;

use rules::{Context, Lag};

/// √(π/2): a normal distribution's σ is √(π/2) times its mean absolute deviation.
const SIGMA_PER_MEAN_ABS_DEV: f64 = 1.253_314_137_315_500_3;

/// Fallback spread, as a fraction of the forecast, for a history that never varies: the data
/// says nothing about uncertainty, and a zero-width band would claim certainty.
const FLAT_HISTORY_SPREAD: f64 = 0.1;

/// The reference seasonal-naive forecaster.
#[derive(Debug, Clone)]
pub struct SeasonalNaive {
    /// Season length in seconds and its relative weight.
    seasons: Vec<(f64, f64)>,
    min_cycles: usize,
    max_residuals: usize,
    min_residuals: usize,
    /// Latest observations each rule is backtested on.
    backtest_points: usize,
    /// Seconds averaged for a level.
    level_window_s: f64,
}

impl SeasonalNaive {
    /// The configuration keys, for building a [`Config`] natively.
    pub fn describe_keys() -> Vec<ConfigKey> {
        Self::describe().config_keys
    }

    /// Forecasts one series: `horizons × quantiles` values, row-major.
    fn forecast_series(
        &self,
        index: usize,
        series: &Series,
        horizons: &[u32],
        quantiles: &[f64],
    ) -> Result<Vec<f64>, PluginError> {
        let (values, last) = series.base_demand(index)?;
        let observed = || values.iter().copied().filter(|v| !v.is_nan());
        let count = observed().count() as f64;
        let mean = observed().sum::<f64>() / count;
        let sigma = SIGMA_PER_MEAN_ABS_DEV * observed().map(|v| (v - mean).abs()).sum::<f64>() / count;
        let non_negative = observed().all(|v| v >= 0.0);

        let context = Context::new(&values, self.lags(&values, series.step));
        let rules = if self.backtest_points == 0 {
            vec![context.plain()]
        } else {
            context.rules(self.level_window(series.step))
        };
        let min_points = self.min_residuals.max(self.backtest_points / 4);
        let mut residuals = Vec::with_capacity(self.max_residuals.min(values.len()));
        // The rule and look-back the residuals were last collected for: leads that share them
        // (every lead within one season, for a plain season) reuse them.
        let mut residuals_key = None;
        let mut points = Vec::with_capacity(horizons.len());
        let mut bands = Vec::with_capacity(horizons.len());
        for &horizon in horizons {
            let h = series.steps_ahead(horizon) as u64;
            let target = (values.len() - 1) as u64 + h;
            let rule = if rules.len() == 1 {
                rules[0]
            } else {
                context.choose(&rules, h, self.backtest_points, min_points)
            };
            // A rule whose every source is a gap has nothing to say; the last observation
            // still does.
            let point = context.predict(&rule, target, h).unwrap_or(values[last]);
            let key = context.residuals_key(&rule, h);
            if residuals_key.as_ref() != Some(&key) {
                context.residuals(&rule, h, self.max_residuals, &mut residuals);
                residuals.sort_unstable_by(f64::total_cmp);
                residuals_key = Some(key);
            }
            bands.push(if residuals.len() >= self.min_residuals {
                Band::empirical(&residuals, quantiles)
            } else {
                let sigma = if sigma > 0.0 { sigma } else { FLAT_HISTORY_SPREAD * point.abs() };
                Band::normal(sigma, quantiles)
            });
            points.push(point);
        }
        widen_with_horizon(&mut bands, quantiles);

        let mut out = Vec::with_capacity(horizons.len() * quantiles.len());
        for ((&horizon, point), band) in horizons.iter().zip(points).zip(&bands) {
            let multiplier = series.event_multiplier(series.last_time() + i64::from(horizon));
            for spread in &band.spreads {
                let value = multiplier * (point + band.center + spread);
                out.push(if non_negative { value.max(0.0) } else { value });
            }
        }
        foresight_sdk::forecaster::finish(index, out, quantiles.len())
    }

    /// The seasons that apply to a series with this history and step (none for a series
    /// shorter than every season: it repeats its last observation).
    fn lags(&self, values: &[f64], step: u32) -> Vec<Lag> {
        let step = f64::from(step);
        self.seasons
            .iter()
            // A season shorter than the step cannot be resolved by this series.
            .filter(|(seconds, _)| *seconds >= step)
            .filter_map(|&(seconds, weight)| {
                let period = (seconds / step).round() as usize;
                (values.len() / period >= self.min_cycles).then(|| Lag::new(values, period, weight))
            })
            .collect()
    }

    /// Steps of a series averaged for its level when a rule follows the change in level.
    fn level_window(&self, step: u32) -> usize {
        ((self.level_window_s / f64::from(step.max(1))).round() as usize).max(1)
    }
}

/// Where one horizon's quantiles sit relative to its point forecast.
struct Band {
    /// Median residual: the rule's bias at this lead.
    center: f64,
    /// Per requested level, its residual quantile minus the median.
    spreads: Vec<f64>,
}

impl Band {
    /// From sorted residuals.
    fn empirical(sorted: &[f64], quantiles: &[f64]) -> Self {
        let center = empirical_quantile(sorted, 0.5);
        Self { center, spreads: quantiles.iter().map(|&q| empirical_quantile(sorted, q) - center).collect() }
    }

    /// A centred normal band of standard deviation `sigma`.
    fn normal(sigma: f64, quantiles: &[f64]) -> Self {
        Self { center: 0.0, spreads: quantiles.iter().map(|&q| sigma * normal_quantile(q)).collect() }
    }
}

/// Keeps every horizon's spread at least as wide as the previous horizon's, level by level.
fn widen_with_horizon(bands: &mut [Band], quantiles: &[f64]) {
    for j in 1..bands.len() {
        let (earlier, later) = bands.split_at_mut(j);
        let previous = &earlier[j - 1].spreads;
        for ((spread, &before), &level) in later[0].spreads.iter_mut().zip(previous).zip(quantiles) {
            *spread = if level >= 0.5 { spread.max(before) } else { spread.min(before) };
        }
    }
}

impl Forecaster for SeasonalNaive {
    fn describe() -> Descriptor {
        Descriptor::new(
            "seasonal-naive",
            env!("CARGO_PKG_VERSION"),
            PluginKind::Forecaster,
            "Repeats each series' daily and weekly pattern, adjusted for known events, with quantiles from its own past errors.",
        )
        .key(ConfigKey::new(
            "seasons-s",
            "Season lengths in seconds, rounded to whole steps of each series; seasons shorter than a series' step are ignored for it.",
            Some("[86400, 604800]"),
        ))
        .key(ConfigKey::new(
            "weights",
            "Relative weight of each season's forecast in the blend, one per entry of `seasons-s`.",
            Some("[1.0, 3.0]"),
        ))
        .key(ConfigKey::new(
            "min-cycles",
            "Whole cycles of a season the history must hold before that season is used.",
            Some("1"),
        ))
        .key(ConfigKey::new(
            "max-residuals",
            "Most recent in-sample residuals per horizon that set the quantiles.",
            Some("2000"),
        ))
        .key(ConfigKey::new(
            "min-residuals",
            "Fewest residuals the empirical quantiles need; below it the band is normal, scaled by the history's mean absolute deviation.",
            Some("10"),
        ))
        .key(ConfigKey::new(
            "backtest-points",
            "Backtest per lead: the latest observations on which each rule (each season, the blend, either shifted by the change in level since the season, the last value) is scored against the first season's plain repeat; a rule that clearly beats it forecasts that lead. 0: no backtest, the blend at every lead.",
            Some("0"),
        ))
        .key(ConfigKey::new(
            "level-window-s",
            "Seconds of the latest observations averaged for the level a shifted rule compares with the same time a season earlier (rounded to whole steps; one step is always tried too).",
            Some("3600"),
        ))
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let seasons: Vec<f64> = config.get("seasons-s")?;
        let weights: Vec<f64> = config.get("weights")?;
        let min_cycles: u32 = config.get("min-cycles")?;
        let max_residuals: u32 = config.get("max-residuals")?;
        let min_residuals: u32 = config.get("min-residuals")?;
        let backtest_points: u32 = config.get("backtest-points")?;
        let level_window_s: f64 = config.get("level-window-s")?;
        let invalid = |message: String| Err(PluginError::InvalidConfig(message));
        if seasons.is_empty() {
            return invalid("`seasons-s` must list at least one season length in seconds".into());
        }
        if let Some(s) = seasons.iter().find(|s| !(s.is_finite() && **s >= 1.0)) {
            return invalid(format!(
                "`seasons-s` entries must be season lengths of at least 1 second, found {s}"
            ));
        }
        if weights.len() != seasons.len() {
            return invalid(format!(
                "`weights` must hold one weight per entry of `seasons-s`: {} seasons, {} weights",
                seasons.len(),
                weights.len()
            ));
        }
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return invalid(format!("`weights` entries must be finite and positive, found {w}"));
        }
        if min_cycles == 0 {
            return invalid("`min-cycles` must be at least 1".into());
        }
        if min_residuals < 2 {
            return invalid("`min-residuals` must be at least 2: one residual has no spread".into());
        }
        if max_residuals < min_residuals {
            return invalid(format!(
                "`max-residuals` ({max_residuals}) must be at least `min-residuals` ({min_residuals})"
            ));
        }
        if backtest_points > 0 && backtest_points < min_residuals {
            return invalid(format!(
                "`backtest-points` ({backtest_points}) must be 0 (no backtest) or at least `min-residuals` ({min_residuals}): fewer errors say nothing about a rule; raise it (2000 is a good start) or lower `min-residuals`"
            ));
        }
        if !(level_window_s.is_finite() && level_window_s >= 1.0) {
            return invalid(format!("`level-window-s` must be at least 1 second, found {level_window_s}"));
        }
        Ok(Self {
            seasons: seasons.into_iter().zip(weights).collect(),
            min_cycles: min_cycles as usize,
            max_residuals: max_residuals as usize,
            min_residuals: min_residuals as usize,
            backtest_points: backtest_points as usize,
            level_window_s,
        })
    }

    fn forecast(&mut self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, PluginError> {
        request
            .answer_each(|i, series| self.forecast_series(i, series, &request.horizons, &request.quantiles))
    }
}

foresight_sdk::export_forecaster!(SeasonalNaive);

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_sdk::testing::{
        DAY, HOUR, Lcg, daily_on_random_walk, daily_shape, forecast_one as run,
        forecasts_zero_under_an_outage, hourly, refuses_series_with_nothing_observed, sale_and_launch,
    };

    /// Rules chosen per lead by a backtest of the latest 400 observations.
    const BACKTEST: &str = "backtest-points = 400";

    fn forecaster(config: &str) -> SeasonalNaive {
        foresight_sdk::testing::configured(config)
    }

    fn config_error(config: &str) -> String {
        foresight_sdk::testing::config_error::<SeasonalNaive>(config)
    }

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn a_pure_daily_pattern_repeats_exactly() {
        let mut f = forecaster("");
        // Three days (daily season only) and ten days (daily and weekly blended).
        for days in [3, 10] {
            let values: Vec<f64> = (0..days * 24).map(|i| daily_shape(i % 24)).collect();
            let n = values.len();
            let horizons: Vec<u32> = (1..=30).map(|h| h * HOUR).collect();
            let answer = run(&mut f, hourly(values.clone()), &horizons, &[0.1, 0.5, 0.9]);
            for (j, row) in answer.chunks(3).enumerate() {
                let h = j + 1;
                let day_back = if h <= 24 { n - 1 + h - 24 } else { n - 1 + h - 48 };
                for v in row {
                    assert_close(*v, values[day_back]);
                }
            }
        }
    }

    #[test]
    fn the_weekly_season_sees_weekends_the_daily_one_misses() {
        // Three weeks, hourly: weekdays at 100, weekends at 40, the same shape every day.
        let value = |i: usize| if (i / 24) % 7 >= 5 { 40.0 } else { 100.0 } + daily_shape(i % 24) - 100.0;
        let values: Vec<f64> = (0..21 * 24).map(value).collect();
        let n = values.len();
        // The history ends on a Sunday; the next day is a Monday.
        let horizons: Vec<u32> = (1..=24).map(|h| h * HOUR).collect();
        let error = |config: &str| {
            let answer = run(&mut forecaster(config), hourly(values.clone()), &horizons, &[0.5]);
            answer.iter().enumerate().map(|(j, v)| (v - value(n + j)).abs()).sum::<f64>() / 24.0
        };
        let daily = error("seasons-s = [86400]\nweights = [1]");
        let weekly = error("seasons-s = [604800]\nweights = [1]");
        let blended = error("");
        assert_close(daily, 60.0);
        assert_close(weekly, 0.0);
        assert!(blended < daily / 2.0, "blend error {blended} vs daily {daily}");
    }

    #[test]
    fn a_level_that_wanders_is_followed_where_the_series_says_so() {
        // Three weeks of a daily shape on a level that moves by a random walk: an hour ahead,
        // carrying today's level beats repeating yesterday.
        let wander = daily_on_random_walk(21 * 24, 11, 50.0, 3.0);
        let (history, future) = wander.split_at(20 * 24);
        let mut errors = [0.0, 0.0];
        for origin in (0..24).step_by(3) {
            let mut seen = history.to_vec();
            seen.extend_from_slice(&future[..origin]);
            let actual = future[origin];
            let answer = run(&mut forecaster(BACKTEST), hourly(seen.clone()), &[HOUR], &[0.5]);
            errors[0] += (answer[0] - actual).abs();
            // The plain one-day seasonal naive: the value a day before the target.
            errors[1] += (seen[seen.len() - 24] - actual).abs();
        }
        assert!(errors[0] < 0.7 * errors[1], "backtested {} vs one-day {}", errors[0], errors[1]);
    }

    #[test]
    fn history_shorter_than_a_day_repeats_the_last_observation_with_a_band() {
        let mut f = forecaster("");
        let answer =
            run(&mut f, hourly(vec![10.0, 14.0, 12.0, f64::NAN]), &[HOUR, 6 * HOUR], &[0.1, 0.5, 0.9]);
        assert_close(answer[1], 12.0);
        assert_close(answer[4], 12.0);
        // Too few residuals for empirical quantiles: a normal band from the history's spread.
        assert!(answer[0] < 12.0 && answer[2] > 12.0, "{answer:?}");
        // A history that never varies still gets a band (10 % of the level), not a point.
        let flat = run(&mut f, hourly(vec![50.0; 3]), &[HOUR], &[0.1, 0.9]);
        assert!(flat[0] < 50.0 && flat[1] > 50.0, "{flat:?}");
    }

    #[test]
    fn gaps_are_skipped_by_looking_a_further_season_back() {
        let mut f = forecaster("");
        let mut values: Vec<f64> = (0..4 * 24).map(|i| daily_shape(i % 24)).collect();
        let n = values.len();
        // Yesterday's 02:00 and 03:00 are missing, and so is the last observation.
        values[n - 22] = f64::NAN;
        values[n - 21] = f64::NAN;
        values[n - 1] = f64::NAN;
        let answer = run(&mut f, hourly(values), &[3 * HOUR, 4 * HOUR, 24 * HOUR], &[0.5]);
        assert_close(answer[0], daily_shape(2));
        assert_close(answer[1], daily_shape(3));
        assert_close(answer[2], daily_shape(23));
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

    #[test]
    fn quantiles_are_ordered_and_widen_with_horizon() {
        // Five weeks of a daily pattern riding on a random-walk level: the further back the
        // lag, the more the level has drifted.
        let values = daily_on_random_walk(35 * 24, 7, 0.0, 1.0);
        let horizons = [HOUR, 6 * HOUR, 3 * DAY, 10 * DAY];
        let quantiles = [0.05, 0.25, 0.5, 0.75, 0.95];
        // The plain blend: the same lags within a day give the same band. Ten days out the lags
        // reach ten days and two weeks back; for a random walk the spread then grows by about
        // √(294 / 105) ≈ 1.7, less on any one path.
        let widths = ordered_band_widths(&mut forecaster(""), &values, &horizons, &quantiles);
        assert!(widths[0] > 0.0);
        assert!((widths[0] - widths[1]).abs() < 1e-9, "{widths:?}");
        assert!(widths[3] > 1.2 * widths[0], "{widths:?}");
        // Backtested: the rules that carry today's level over win at every lead, and their
        // errors grow with it, an hour ahead far narrower than the day-old season's.
        let widths = ordered_band_widths(&mut forecaster(BACKTEST), &values, &horizons, &quantiles);
        assert!(widths[1] > widths[0] && widths[3] > 2.0 * widths[0], "{widths:?}");
    }

    /// The p-lowest to p-highest width of each horizon's band, after checking that every row is
    /// ordered and the widths never shrink with the horizon.
    fn ordered_band_widths(
        f: &mut SeasonalNaive,
        values: &[f64],
        horizons: &[u32],
        quantiles: &[f64],
    ) -> Vec<f64> {
        let answer = run(f, hourly(values.to_vec()), horizons, quantiles);
        let rows: Vec<&[f64]> = answer.chunks(quantiles.len()).collect();
        for row in &rows {
            assert!(row.windows(2).all(|w| w[0] <= w[1]), "crossed: {row:?}");
        }
        let widths: Vec<f64> = rows.iter().map(|r| r[r.len() - 1] - r[0]).collect();
        assert!(widths.windows(2).all(|w| w[0] <= w[1] + 1e-9), "{widths:?}");
        widths
    }

    #[test]
    fn non_negative_history_gives_non_negative_quantiles() {
        let mut noise = Lcg(3);
        let counts: Vec<f64> =
            (0..5 * 24).map(|i| if i % 24 < 8 { 0.0 } else { 3.0 } + noise.next().abs()).collect();
        let mut f = forecaster("");
        let answer = run(&mut f, hourly(counts.clone()), &[HOUR, 12 * HOUR], &[0.01, 0.5, 0.99]);
        assert!(answer.iter().all(|v| *v >= 0.0), "{answer:?}");
        assert_eq!(answer[0], 0.0, "the lowest quantile at night is clamped at zero");
        // Idle but for bursts of 10 every fifth hour: the errors reach −10, the quantile stops at 0.
        let bursts: Vec<f64> = (0..5 * 24).map(|i| if i % 5 == 0 { 10.0 } else { 0.0 }).collect();
        let answer = run(&mut forecaster(BACKTEST), hourly(bursts), &[HOUR], &[0.01]);
        assert_eq!(answer[0], 0.0, "the lowest quantile is clamped at zero");
        // A history that goes negative is not clamped.
        let shifted: Vec<f64> = counts.iter().map(|v| v - 1.0).collect();
        let answer = run(&mut f, hourly(shifted), &[HOUR], &[0.01]);
        assert!(answer[0] < 0.0);
    }

    #[test]
    fn empty_and_all_gap_series_are_refused_by_index() {
        refuses_series_with_nothing_observed(&mut forecaster(""));
    }

    #[test]
    fn answers_have_the_contract_shape() {
        let mut f = forecaster("");
        let empty = ForecastRequest { series: vec![], horizons: vec![60], quantiles: vec![0.5] };
        assert!(f.forecast(&empty).unwrap().is_empty());
        let request = ForecastRequest {
            series: vec![
                hourly(vec![1.0; 30]),
                Series { step: 60, values: vec![2.0; 3000], ..Default::default() },
            ],
            horizons: vec![60, 3600, 90_000],
            quantiles: vec![0.1, 0.5, 0.9],
        };
        let answer = f.forecast(&request).unwrap();
        assert_eq!(answer.len(), 2);
        assert!(answer.iter().all(|a| a.len() == request.answer_len() && a.iter().all(|v| v.is_finite())));
        assert_eq!(answer, f.forecast(&request).unwrap(), "deterministic");
        // Malformed requests are refused before any work.
        let bad = ForecastRequest { quantiles: vec![0.9, 0.1], ..request };
        assert!(f.forecast(&bad).is_err());
    }

    #[test]
    fn bad_config_is_refused_by_key_name() {
        assert!(config_error("seasons-s = [0, 604800]").contains("`seasons-s`"));
        assert!(config_error("seasons-s = [-86400, 604800]").contains("`seasons-s`"));
        assert!(config_error("seasons-s = []\nweights = []").contains("`seasons-s`"));
        assert!(config_error("seasons-s = [86400]").contains("`weights`"));
        assert!(config_error("weights = [1, 0]").contains("`weights`"));
        assert!(config_error("min-cycles = 0").contains("`min-cycles`"));
        assert!(config_error("min-residuals = 1").contains("`min-residuals`"));
        assert!(config_error("max-residuals = 5").contains("`max-residuals`"));
        assert!(config_error("backtest-points = 5").contains("`backtest-points`"));
        assert!(config_error("level-window-s = 0").contains("`level-window-s`"));
        assert!(config_error("season = 86400").contains("unknown key `season`"));
        assert!(config_error("seasons-s = \"daily\"").contains("`seasons-s` must be an array"));
    }
}
