//! # holt-winters — double seasonal exponential smoothing
//!
//! Forecasts each series with additive Holt–Winters exponential smoothing carrying one
//! seasonal component per season (daily and weekly by default: Taylor 2003, "Short-term
//! electricity demand forecasting using double seasonal exponential smoothing"), a damped
//! trend and a first-order autocorrelation of the errors, all fitted to the series:
//!
//! ```text
//! y'ₜ  = g(yₜ / m(tₜ))                      past events divided out; g: identity or log scale
//! ŷₜ₊ₕ = ℓₜ + (φ + … + φʰ)·bₜ + Σₖ sₖ(t + h) + λʰ·εₜ      the recursions are in `model`
//! α, β, φ, γₖ, λ = argmin Σₜ (y'ₜ − ŷₜ)²      one-step errors, Nelder–Mead, bounded budget
//! rₜ(h) = y'ₜ − ŷₜ(h)                        h-step in-sample errors of the latest origins
//! q_τ(h) = m(t_last + h) · g⁻¹(ŷₙ₊ₕ + Q_τ(r(h)))           Q_τ: empirical quantile
//! ```
//!
//! * **Seasons.** `seasons-s` (at most three) are rounded to whole steps of each series. A
//!   season shorter than two steps, or whose `min-cycles` whole cycles the history does not
//!   hold, is dropped for that series; with none left the model is plain damped Holt.
//! * **Start.** The trend starts as the change between the means of the first two cycles of
//!   the shortest season, the level as the first cycle's mean taken back to the start along
//!   that trend, and the shortest season as the mean, phase by phase, of what level and trend
//!   leave over its first cycles (up to a week of days, at most half the history). Longer
//!   seasons start at zero and are learned: one cycle of them is one noisy sample per phase,
//!   and copying it forward cost accuracy (mean MASE 1.18 against 0.97 from zero on the
//!   shared series). The cycles the start was read from do not count toward the fit.
//! * **Fit.** α, β ≤ α, φ ∈ [0.8, 0.98] (with `damped`), γₖ ≤ 1 − α and λ (with
//!   `autocorrelation`) minimise the mean squared one-step error over the latest `fit-steps`
//!   steps, searched by Nelder–Mead over a unit box that maps onto exactly those constraints,
//!   from a fixed start, in at most `fit-evaluations` passes. No randomness: the same history
//!   always gets the same parameters. The model then runs over the whole history.
//! * **Gaps.** A NaN updates nothing: the level follows the damped trend, seasons keep their
//!   values, and the last error's carry-over decays as it would have. It is never read as 0.
//! * **Events.** As in `seasonal-naive`: history observed during a known event is divided by
//!   its multiplier (a multiplier of 0 makes it a gap), and the forecast, quantiles included,
//!   is multiplied by the multiplier of the events covering the target time.
//! * **Scale.** A non-negative series may be modelled as ln(1 + y / ȳ) (ȳ: its mean), where
//!   seasons and errors scale with the level and spikes weigh less. With `transform = "auto"`
//!   both scales are fitted and the one whose in-sample forecasts at the requested leads
//!   missed by less (on the original scale) answers. Quantiles map back exactly: a monotone
//!   transform preserves them.
//! * **Quantiles.** From the model's own forecasts at the same lead made from each of the
//!   latest `max-residuals` origins: the median error corrects the bias, the other levels set
//!   the spread, and each horizon's spread is kept at least as wide as the previous one's.
//!   With fewer than `min-residuals` errors the band is normal with σ = √(π/2) × the history's
//!   mean absolute deviation (or 10 % of the forecast when the history never varies).
//!   Quantiles are clamped at 0 when the history is non-negative, and rows are uncrossed. A
//!   series with no observation that is not a gap is refused (`invalid-input` naming it).
//!
//! Cost: each fit evaluation is one pass over at most `fit-steps` steps, the forecast one pass
//! over the history, and each horizon's quantiles at most `max-residuals` O(1) forecasts from
//! the stored states. With `transform = "auto"` both scales are fitted; `"none"` or `"log"`
//! halves the cost. `foresight forecast eval` prints the time per series it measured.
//!
//! The defaults were chosen by rolling-origin accuracy on the shared real series, as
//! `foresight forecast eval --data ../shared/data/series` measures it (which also compares the
//! model with `seasonal-naive`).
//!
//! ```
//! use foresight_sdk::{Config, ForecastRequest, Forecaster, Series};
//! use holt_winters::HoltWinters;
//!
//! let config = Config::parse("", &HoltWinters::describe_keys()).unwrap();
//! let mut forecaster = HoltWinters::new(&config).unwrap();
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
//! // The last observation is 23:00: one hour later is 00:00 (5), six hours later 05:00 (12).
//! // The model explains the history exactly, so the band is a point.
//! let expected = [5.0, 5.0, 5.0, 12.0, 12.0, 12.0];
//! assert!(answer[0].iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "{answer:?}");
//! ```

mod band;
mod fit;
mod model;
mod predict;

use foresight_sdk::{Config, ConfigKey, Descriptor, ForecastRequest, Forecaster, PluginError, PluginKind};

use model::MAX_SEASONS;
use predict::MIN_FIT_OBSERVATIONS;

/// Which scale a non-negative series is modelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    /// The values as they are.
    None,
    /// ln(1 + y / mean of the history).
    Log,
    /// Both, keeping the one whose in-sample forecasts at the requested leads missed by less.
    Auto,
}

/// The double seasonal Holt–Winters forecaster.
#[derive(Debug, Clone)]
pub struct HoltWinters {
    /// Season lengths in seconds.
    seasons: Vec<f64>,
    min_cycles: usize,
    damped: bool,
    autocorrelation: bool,
    transform: Transform,
    evaluations: usize,
    fit_steps: usize,
    max_residuals: usize,
    min_residuals: usize,
}

impl HoltWinters {
    /// The configuration keys, for building a [`Config`] natively.
    pub fn describe_keys() -> Vec<ConfigKey> {
        Self::describe().config_keys
    }

    /// The seasons, in whole steps and ascending, that apply to a history of `len` steps.
    fn periods(&self, len: usize, step: u32) -> Vec<usize> {
        let mut periods: Vec<usize> = self
            .seasons
            .iter()
            .map(|seconds| libm::round(seconds / f64::from(step)) as usize)
            // One step is no season; the level already follows it.
            .filter(|&m| m >= 2 && len / m >= self.min_cycles)
            .collect();
        periods.sort_unstable();
        periods.dedup();
        periods
    }
}

impl Forecaster for HoltWinters {
    fn describe() -> Descriptor {
        Descriptor::new(
            "holt-winters",
            env!("CARGO_PKG_VERSION"),
            PluginKind::Forecaster,
            "Double seasonal exponential smoothing (daily and weekly), fitted per series, adjusted for known events, with quantiles from its own past errors.",
        )
        .key(ConfigKey::new(
            "seasons-s",
            "Season lengths in seconds, rounded to whole steps of each series; a season shorter than two steps is ignored for it.",
            Some("[86400, 604800]"),
        ))
        .key(ConfigKey::new(
            "min-cycles",
            "Whole cycles of a season the history must hold before that season is modelled.",
            Some("2"),
        ))
        .key(ConfigKey::new(
            "damped",
            "Damp the trend (φ fitted in [0.8, 0.98]); false extrapolates it undamped.",
            Some("true"),
        ))
        .key(ConfigKey::new(
            "autocorrelation",
            "Carry a fitted share of the last one-step error into the forecast, decaying with the lead.",
            Some("true"),
        ))
        .key(ConfigKey::new(
            "transform",
            "Scale a non-negative series is modelled on: \"none\", \"log\" (ln(1 + y / mean), so seasons and errors scale with the level) or \"auto\" (fits both and keeps the one whose in-sample forecasts erred less; twice the cost).",
            Some("\"auto\""),
        ))
        .key(ConfigKey::new(
            "fit-evaluations",
            "Most passes over a history the parameter search may spend.",
            Some("100"),
        ))
        .key(ConfigKey::new(
            "fit-steps",
            "Most recent steps the parameters are fitted to (at least two cycles of the longest season); the forecast still runs over the whole history.",
            Some("4032"),
        ))
        .key(ConfigKey::new(
            "max-residuals",
            "Most recent in-sample errors per horizon that set the quantiles.",
            Some("2000"),
        ))
        .key(ConfigKey::new(
            "min-residuals",
            "Fewest errors the empirical quantiles need; below it the band is normal, scaled by the history's mean absolute deviation.",
            Some("10"),
        ))
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let seasons: Vec<f64> = config.get("seasons-s")?;
        let min_cycles: u32 = config.get("min-cycles")?;
        let evaluations: u32 = config.get("fit-evaluations")?;
        let max_residuals: u32 = config.get("max-residuals")?;
        let min_residuals: u32 = config.get("min-residuals")?;
        let fit_steps: u32 = config.get("fit-steps")?;
        let invalid = |message: String| Err(PluginError::InvalidConfig(message));
        let transform = match config.get::<String>("transform")?.as_str() {
            "none" => Transform::None,
            "log" => Transform::Log,
            "auto" => Transform::Auto,
            other => {
                return invalid(format!(
                    "`transform` must be \"none\", \"log\" or \"auto\", found \"{other}\""
                ));
            }
        };
        if let Some(s) = seasons.iter().find(|s| !(s.is_finite() && **s >= 1.0)) {
            return invalid(format!(
                "`seasons-s` entries must be season lengths of at least 1 second, found {s}"
            ));
        }
        if seasons.len() > MAX_SEASONS {
            return invalid(format!(
                "`seasons-s` may list at most {MAX_SEASONS} seasons, found {}",
                seasons.len()
            ));
        }
        if min_cycles == 0 {
            return invalid("`min-cycles` must be at least 1".into());
        }
        if evaluations < 10 {
            return invalid(format!(
                "`fit-evaluations` must be at least 10 to move the search at all, found {evaluations}"
            ));
        }
        if (fit_steps as usize) < MIN_FIT_OBSERVATIONS {
            return invalid(format!(
                "`fit-steps` must be at least {MIN_FIT_OBSERVATIONS}, found {fit_steps}"
            ));
        }
        if min_residuals < 2 {
            return invalid("`min-residuals` must be at least 2: one residual has no spread".into());
        }
        if max_residuals < min_residuals {
            return invalid(format!(
                "`max-residuals` ({max_residuals}) must be at least `min-residuals` ({min_residuals})"
            ));
        }
        Ok(Self {
            seasons,
            min_cycles: min_cycles as usize,
            damped: config.get("damped")?,
            autocorrelation: config.get("autocorrelation")?,
            transform,
            evaluations: evaluations as usize,
            fit_steps: fit_steps as usize,
            max_residuals: max_residuals as usize,
            min_residuals: min_residuals as usize,
        })
    }

    fn forecast(&mut self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, PluginError> {
        request
            .answer_each(|i, series| self.forecast_series(i, series, &request.horizons, &request.quantiles))
    }
}

foresight_sdk::export_forecaster!(HoltWinters);

#[cfg(test)]
mod tests;
