//! The model of one series on one scale: MSTL's seasons, each kept as far as its cycles agree,
//! and robust exponential smoothing of what they leave.

use crate::Mstl;
use crate::ets::{Fit, Smoothed, choose, unfitted};
use crate::stl::{Decomposition, mstl, seasonal_window};

/// Fewest observations worth fitting smoothing parameters to; fewer get [`unfitted`].
pub const MIN_FIT_OBSERVATIONS: usize = 10;

/// σ of a normal distribution per median absolute deviation.
const SIGMA_PER_MEDIAN_ABS_DEV: f64 = 1.482_602_218_505_602;

/// The fitted model of one series: its parts, and what forecasts from any origin.
pub struct Model {
    /// Season lengths in steps, ascending.
    periods: Vec<usize>,
    /// One seasonal component per period, as far as it is kept.
    seasons: Vec<Vec<f64>>,
    /// What the seasons leave (NaN at gaps).
    rest: Vec<f64>,
    /// The smoothing fitted to it.
    pub fit: Fit,
    /// Robust scale of its one-step errors, when the smoothing is robust.
    sigma: Option<f64>,
    /// Level and trend of what the seasons leave, after each step.
    pub smoothed: Smoothed,
}

impl Model {
    /// Decomposes `values` (NaN for gaps) into seasons of `periods` steps and fits the
    /// smoothing to what they leave, as `config` says; with `smoothing`, that smoothing's
    /// parameters are taken as they are instead.
    pub fn new(values: &[f64], periods: &[usize], config: &Mstl, smoothing: Option<&Fit>) -> Self {
        let reliability: Option<Vec<f64>> = values
            .iter()
            .any(|y| y.is_nan())
            .then(|| values.iter().map(|y| if y.is_nan() { 0.0 } else { 1.0 }).collect());
        let Decomposition { mut seasons, deseasonalised: mut rest, trend } = mstl(
            &fill_gaps(values),
            reliability.as_deref(),
            periods,
            config.iterations,
            config.robust_passes,
        );
        if config.shrink && !trend.is_empty() {
            let keep: Vec<f64> = periods
                .iter()
                .zip(&seasons)
                .enumerate()
                .map(|(k, (&m, season))| shrinkage(season, &rest, &trend, m, seasonal_window(k)))
                .collect();
            // What a season does not keep goes back to the rest: the smoothing then follows it
            // for as long as it lasts, instead of the forecast repeating it.
            for (season, lambda) in seasons.iter_mut().zip(keep) {
                for (s, r) in season.iter_mut().zip(rest.iter_mut()) {
                    *r += (1.0 - lambda) * *s;
                    *s *= lambda;
                }
            }
        }
        // What the seasons leave is only known where something was observed: the smoothing
        // must not learn from the interpolation.
        rest.iter_mut().zip(values).filter(|(_, y)| y.is_nan()).for_each(|(d, _)| *d = f64::NAN);
        let observed = rest.iter().filter(|v| !v.is_nan()).count();
        let fit = match smoothing {
            Some(fit) => fit.clone(),
            None if observed >= MIN_FIT_OBSERVATIONS => choose(&rest, config.evaluations),
            None => unfitted(&rest),
        };
        let mut smoothed = Smoothed::new(&rest, &fit, None);
        let sigma =
            if config.robust_smoothing { robust_scale(smoothed.errors(&rest, fit.start)) } else { None };
        if sigma.is_some() {
            smoothed = Smoothed::new(&rest, &fit, sigma);
        }
        Self { periods: periods.to_vec(), seasons, rest, fit, sigma, smoothed }
    }

    /// Number of steps the model covers.
    pub fn len(&self) -> usize {
        self.smoothed.len()
    }

    /// The forecast made after index `origin` for `h` steps later, given `damping = φ + … + φʰ`;
    /// `None` when a season's last cycle before the origin is not in the history.
    pub fn forecast(&self, origin: usize, h: usize, damping: f64) -> Option<f64> {
        let target = origin + h;
        let mut value = self.smoothed.forecast(origin, damping);
        for (&m, season) in self.periods.iter().zip(&self.seasons) {
            // The same phase in the latest whole cycle the origin has seen.
            value += season[target.checked_sub(m * h.div_ceil(m))?];
        }
        Some(value)
    }

    /// What the seasons add at index `target` (at or after the end of the history) as forecast
    /// from its end: the same phase in their last cycle.
    fn seasonal_from_end(&self, target: usize) -> f64 {
        let last = self.len() - 1;
        self.periods
            .iter()
            .zip(&self.seasons)
            .map(|(&m, s)| s[target - m * (target - last).div_ceil(m)])
            .sum()
    }

    /// Per lead of `steps`, (actual, forecast) pairs for the values `future` that followed the
    /// history, forecast from the end of the history and from each origin within `future`
    /// with the seasons frozen at the end: forecasts the model could really have made.
    pub fn holdout(&self, future: &[f64], steps: &[usize]) -> Vec<Vec<(f64, f64)>> {
        let n = self.len();
        let mut rest = self.rest.clone();
        rest.extend(future.iter().enumerate().map(|(i, y)| y - self.seasonal_from_end(n + i)));
        let smoothed = Smoothed::new(&rest, &self.fit, self.sigma);
        steps
            .iter()
            .map(|&h| {
                let damping = smoothed.damping(h);
                (n - 1..rest.len().saturating_sub(h))
                    .filter(|origin| !future[origin + h - n].is_nan())
                    .map(|origin| {
                        let forecast =
                            smoothed.forecast(origin, damping) + self.seasonal_from_end(origin + h);
                        (future[origin + h - n], forecast)
                    })
                    .collect()
            })
            .collect()
    }
}

/// The share λ ∈ [0, 1] of a seasonal component worth keeping: 1 − N/P (at least 0), where P
/// is the mean square over phases of the component's input (the season plus the remainder)
/// averaged across its last cycles (at most `window`), and N the part of P that is noise, each
/// phase's variance across those cycles over their number. James and Stein's shrinkage of the
/// phase means toward no season: a season that the cycles repeat is kept whole, one made of a
/// few cycles' noise is dropped, since repeating it would only repeat the noise.
fn shrinkage(season: &[f64], rest: &[f64], trend: &[f64], m: usize, window: usize) -> f64 {
    let n = season.len();
    let cycles = (n / m).min(window);
    if cycles < 2 {
        return 1.0;
    }
    let from = n - cycles * m;
    let c = cycles as f64;
    let (mut power, mut noise) = (0.0, 0.0);
    for phase in 0..m {
        let (mut sum, mut squares) = (0.0, 0.0);
        for t in (from + phase..n).step_by(m) {
            let d = season[t] + rest[t] - trend[t];
            sum += d;
            squares += d * d;
        }
        let mean = sum / c;
        power += mean * mean;
        noise += (squares / c - mean * mean).max(0.0) / (c - 1.0);
    }
    if power > 0.0 { (1.0 - noise / power).max(0.0) } else { 0.0 }
}

/// A robust σ of one-step errors: 1.4826 × their median absolute value, or √(π/2) × their
/// mean absolute value when more than half are 0; `None` when all are. Taken about 0, not
/// about their median, because the clipping applies to the errors themselves: a model that
/// misses by the same amount every step has a large σ, not none.
fn robust_scale(errors: Vec<f64>) -> Option<f64> {
    let mut sizes: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
    if sizes.is_empty() {
        return None;
    }
    let middle = sizes.len() / 2;
    let median = *sizes.select_nth_unstable_by(middle, f64::total_cmp).1;
    let sigma = if median > 0.0 {
        SIGMA_PER_MEDIAN_ABS_DEV * median
    } else {
        crate::band::SIGMA_PER_MEAN_ABS_DEV * sizes.iter().sum::<f64>() / sizes.len() as f64
    };
    (sigma > 0.0).then_some(sigma)
}

/// The values with every gap filled by linear interpolation between its observed neighbours,
/// or the nearest observation at either end: what the decomposition, which needs every step,
/// reads.
pub(crate) fn fill_gaps(values: &[f64]) -> Vec<f64> {
    let mut filled = values.to_vec();
    let mut previous: Option<usize> = None;
    for i in 0..filled.len() {
        if filled[i].is_nan() {
            continue;
        }
        match previous {
            Some(p) if i > p + 1 => {
                let (a, b) = (filled[p], filled[i]);
                for (j, v) in filled[p + 1..i].iter_mut().enumerate() {
                    *v = a + (b - a) * (j + 1) as f64 / (i - p) as f64;
                }
            }
            None => {
                let first = filled[i];
                filled[..i].iter_mut().for_each(|v| *v = first);
            }
            _ => {}
        }
        previous = Some(i);
    }
    match previous {
        Some(p) => {
            let last = filled[p];
            filled[p + 1..].iter_mut().for_each(|v| *v = last);
        }
        None => filled.iter_mut().for_each(|v| *v = 0.0),
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Mstl {
        foresight_sdk::testing::configured(text)
    }

    #[test]
    fn gaps_are_filled_along_a_line_and_ends_by_the_nearest_observation() {
        let nan = f64::NAN;
        let filled = fill_gaps(&[nan, 2.0, nan, nan, 8.0, 9.0, nan]);
        assert_eq!(filled, vec![2.0, 2.0, 4.0, 6.0, 8.0, 9.0, 9.0]);
        assert_eq!(fill_gaps(&[nan, nan]), vec![0.0, 0.0]);
    }

    #[test]
    fn a_season_the_cycles_repeat_is_kept_and_one_made_of_noise_dropped() {
        // Period 8 over 12 cycles, a flat trend. Repeating exactly: the phase means are all
        // signal (λ = 1). Pure noise: each phase mean is one noisy draw averaged over the
        // cycles, about as large as its own standard error, so next to nothing is kept.
        let m = 8;
        let pattern = |t: usize| [3.0, 1.0, -2.0, -4.0, 0.5, 1.5, 2.0, -2.0][t % m];
        let n = 12 * m;
        let trend = vec![0.0; n];
        let season: Vec<f64> = (0..n).map(pattern).collect();
        assert!((shrinkage(&season, &trend, &trend, m, 11) - 1.0).abs() < 1e-12);
        let mut noise = foresight_sdk::testing::Lcg(5);
        let rest: Vec<f64> = (0..n).map(|_| noise.normal()).collect();
        let zero = vec![0.0; n];
        assert!(shrinkage(&zero, &rest, &trend, m, 11) < 0.3);
        // A season twice the noise's size is mostly kept.
        let lambda = shrinkage(&season, &rest, &trend, m, 11);
        assert!(lambda > 0.8 && lambda < 1.0, "{lambda}");
    }

    #[test]
    fn a_model_keeps_no_more_of_a_season_than_its_cycles_agree_on() {
        // Three cycles of noise around 50 with a period-16 "season": the season is dropped and
        // what the model forecasts is the level.
        let mut noise = foresight_sdk::testing::Lcg(8);
        let values: Vec<f64> = (0..48).map(|_| 50.0 + noise.normal()).collect();
        let model = Model::new(&values, &[16], &config(""), None);
        for h in [1, 5, 16] {
            let forecast = model.forecast(47, h, model.smoothed.damping(h)).unwrap();
            assert!((forecast - 50.0).abs() < 1.0, "{h}: {forecast}");
        }
        // Plain MSTL repeats the noise of the last cycles.
        let plain = Model::new(&values, &[16], &config("shrink-seasons = false"), None);
        let spread = |model: &Model| {
            let f: Vec<f64> =
                (1..=16).map(|h| model.forecast(47, h, model.smoothed.damping(h)).unwrap()).collect();
            f.iter().fold(f64::MIN, |a, b| a.max(*b)) - f.iter().fold(f64::MAX, |a, b| a.min(*b))
        };
        assert!(spread(&model) < 0.5 * spread(&plain), "{} {}", spread(&model), spread(&plain));
    }

    #[test]
    fn the_robust_scale_is_taken_about_zero() {
        // Median |e| = 2 → σ = 2.9652; a constant miss is a scale, not none.
        let sigma = robust_scale(vec![1.0, -2.0, 3.0, 2.0, -5.0]).unwrap();
        assert!((sigma - 2.0 * SIGMA_PER_MEDIAN_ABS_DEV).abs() < 1e-12);
        assert!((robust_scale(vec![4.0; 5]).unwrap() - 4.0 * SIGMA_PER_MEDIAN_ABS_DEV).abs() < 1e-12);
        // Mostly zero: the mean absolute error, √(π/2) × 6 / 5.
        let mostly_zero = robust_scale(vec![0.0, 0.0, 0.0, 6.0, 0.0]).unwrap();
        assert!((mostly_zero - 1.253_314_137_315_500_3 * 1.2).abs() < 1e-12);
        assert_eq!(robust_scale(vec![0.0; 3]), None);
        assert_eq!(robust_scale(vec![]), None);
    }

    #[test]
    fn held_out_values_are_forecast_with_the_seasons_frozen() {
        // An exact period-4 pattern: the model of the first 40 values forecasts the next 8
        // exactly, from the end and from every origin within them.
        let day = [4.0, -2.0, 1.0, -3.0];
        let values: Vec<f64> = (0..48).map(|t| 20.0 + day[t % 4]).collect();
        let model = Model::new(&values[..40], &[4], &config(""), None);
        let pairs = model.holdout(&values[40..], &[1, 3]);
        assert_eq!(pairs[0].len(), 8);
        assert_eq!(pairs[1].len(), 6);
        for (actual, forecast) in pairs.iter().flatten() {
            assert!((actual - forecast).abs() < 1e-6, "{actual} {forecast}");
        }
    }

    #[test]
    fn a_gap_is_interpolated_for_the_seasons_and_skipped_by_the_smoothing() {
        // Period 4 around 20; a whole cycle missing in the middle and the last value missing.
        let day = [4.0, -2.0, 1.0, -3.0];
        let mut values: Vec<f64> = (0..80).map(|t| 20.0 + day[t % 4]).collect();
        values[40..44].iter_mut().for_each(|v| *v = f64::NAN);
        values[79] = f64::NAN;
        let model = Model::new(&values, &[4], &config(""), None);
        for h in 1..=8 {
            let forecast = model.forecast(79, h, model.smoothed.damping(h)).unwrap();
            assert!((forecast - (20.0 + day[(79 + h) % 4])).abs() < 0.5, "{h}: {forecast}");
        }
        // Read as zeros, the gaps would have dragged the level far down.
        assert!((model.smoothed.forecast(43, 0.0) - 20.0).abs() < 0.5);
    }
}
