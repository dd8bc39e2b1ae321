//! One series from request to answer: past events divided out, the scale chosen, the model
//! fitted, quantiles read off its own errors, future events multiplied in.

use foresight_sdk::{PluginError, Series};

use crate::band::{Band, SIGMA_PER_MEAN_ABS_DEV, hindcasts, widen_with_horizon};
use crate::fit::{Spec, fit};
use crate::model::{History, Params, Start};
use crate::{HoltWinters, Transform};

/// Fallback spread, as a fraction of the forecast, for a history that never varies: the data
/// says nothing about uncertainty, and a zero-width band would claim certainty.
const FLAT_HISTORY_SPREAD: f64 = 0.1;

/// Fewest observations worth fitting parameters to; fewer get [`Params::unfitted`].
pub const MIN_FIT_OBSERVATIONS: usize = 10;

/// The scale a series is modelled on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    /// The values as they are.
    Linear,
    /// ln(1 + y / mean): level changes become relative. Dividing by the history's mean makes
    /// the transform mean the same for bytes and for percentages.
    Log { mean: f64 },
}

impl Scale {
    fn forward(self, y: f64) -> f64 {
        match self {
            Self::Linear => y,
            Self::Log { mean } => libm::log1p(y / mean),
        }
    }

    fn back(self, v: f64) -> f64 {
        match self {
            Self::Linear => v,
            Self::Log { mean } => mean * libm::expm1(v),
        }
    }
}

/// The model of one series on one scale, and what it answers.
struct Candidate {
    scale: Scale,
    /// Per horizon: the point forecast and the sorted in-sample errors at its lead, on the
    /// model's scale.
    leads: Vec<(f64, Vec<f64>)>,
    /// Mean absolute in-sample error back on the original scale, summed over the horizons:
    /// what chooses between scales.
    score: f64,
}

impl HoltWinters {
    /// Forecasts one series: `horizons × quantiles` values, row-major.
    pub(crate) fn forecast_series(
        &self,
        index: usize,
        series: &Series,
        horizons: &[u32],
        quantiles: &[f64],
    ) -> Result<Vec<f64>, PluginError> {
        let (values, _) = series.base_demand(index)?;
        let observed = || values.iter().copied().filter(|v| !v.is_nan());
        let non_negative = observed().all(|v| v >= 0.0);
        let steps: Vec<usize> = horizons.iter().map(|&h| series.steps_ahead(h)).collect();
        let chosen = self.model(&values, series.step, &steps);

        let mut bands: Vec<Band> = chosen
            .leads
            .iter()
            .map(|(point, errors)| {
                if errors.len() >= self.min_residuals {
                    Band::empirical(errors, quantiles)
                } else {
                    Band::normal(fallback_sigma(&values, chosen.scale, *point), quantiles)
                }
            })
            .collect();
        widen_with_horizon(&mut bands, quantiles);

        let mut out = Vec::with_capacity(horizons.len() * quantiles.len());
        for ((&horizon, (point, _)), band) in horizons.iter().zip(&chosen.leads).zip(&bands) {
            let multiplier = series.event_multiplier(series.last_time() + i64::from(horizon));
            for spread in &band.spreads {
                let value = multiplier * chosen.scale.back(point + band.center + spread);
                out.push(if non_negative { value.max(0.0) } else { value });
            }
        }
        foresight_sdk::forecaster::finish(index, out, quantiles.len())
    }

    /// The model of `values` (no gap-only history) on the scale that suits it, forecasting
    /// `steps` ahead of the last value.
    fn model(&self, values: &[f64], step: u32, steps: &[usize]) -> Candidate {
        let observed = || values.iter().copied().filter(|v| !v.is_nan());
        let mean = observed().sum::<f64>() / observed().count() as f64;
        let log = Scale::Log { mean };
        let scales: &[Scale] = match self.transform {
            _ if !(observed().all(|v| v >= 0.0) && mean > 0.0) => &[Scale::Linear],
            Transform::None => &[Scale::Linear],
            Transform::Log => &[log],
            Transform::Auto => &[Scale::Linear, log],
        };
        let periods = self.periods(values.len(), step);
        let mut chosen = self.candidate(values, scales[0], &periods, steps);
        for &scale in &scales[1..] {
            let next = self.candidate(values, scale, &periods, steps);
            // Strictly better only: among equals the linear scale, which needs no transform.
            if next.score < chosen.score {
                chosen = next;
            }
        }
        chosen
    }

    /// Fits the model to `values` on `scale` and forecasts `steps` ahead of the last one.
    fn candidate(&self, values: &[f64], scale: Scale, periods: &[usize], steps: &[usize]) -> Candidate {
        let scaled: Vec<f64> = values.iter().map(|&v| scale.forward(v)).collect();
        // The search fits the latest stretch only, which bounds its cost; the longest season
        // needs two cycles there, one to start from and one to be fitted on.
        let longest = periods.last().copied().unwrap_or(0);
        let recent = &scaled[scaled.len().saturating_sub(self.fit_steps.max(2 * longest))..];
        let params = if recent.iter().filter(|v| !v.is_nan()).count() >= MIN_FIT_OBSERVATIONS {
            let spec = Spec {
                seasons: periods.len(),
                damped: self.damped,
                autocorrelation: self.autocorrelation,
                evaluations: self.evaluations,
            };
            fit(recent, &Start::new(recent, periods), &spec)
        } else {
            Params::unfitted(periods.len())
        };
        let start = Start::new(&scaled, periods);
        let history = History::new(&scaled, periods, &params, &start);
        let last = history.len() - 1;

        let mut score = 0.0;
        let mut pairs = Vec::with_capacity(self.max_residuals.min(scaled.len()));
        let leads: Vec<(f64, Vec<f64>)> = steps
            .iter()
            .map(|&h| {
                let lead = history.lead(h);
                hindcasts(&history, &scaled, &lead, start.warmup, self.max_residuals, &mut pairs);
                if !pairs.is_empty() {
                    let missed: f64 = pairs.iter().map(|&(a, f)| (scale.back(a) - scale.back(f)).abs()).sum();
                    score += missed / pairs.len() as f64;
                }
                let mut errors: Vec<f64> = pairs.iter().map(|(a, f)| a - f).collect();
                errors.sort_unstable_by(f64::total_cmp);
                (history.forecast(last, &lead), errors)
            })
            .collect();
        // A forecast that cannot be mapped back is no candidate (a log-scale trend can
        // overflow); the linear scale always can.
        if leads.iter().any(|(point, _)| !scale.back(*point).is_finite()) {
            score = f64::INFINITY;
        }
        Candidate { scale, leads, score }
    }
}

/// σ of the normal band for a history too short for empirical quantiles, on `scale`.
fn fallback_sigma(values: &[f64], scale: Scale, point: f64) -> f64 {
    let observed = || values.iter().map(|&v| scale.forward(v)).filter(|v| !v.is_nan());
    let count = observed().count() as f64;
    let mean = observed().sum::<f64>() / count;
    let sigma = SIGMA_PER_MEAN_ABS_DEV * observed().map(|v| (v - mean).abs()).sum::<f64>() / count;
    match (sigma > 0.0, scale) {
        (true, _) => sigma,
        // On the log scale a relative spread is a constant one.
        (false, Scale::Log { .. }) => libm::log1p(FLAT_HISTORY_SPREAD),
        (false, Scale::Linear) => FLAT_HISTORY_SPREAD * point.abs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forecaster(config: &str) -> HoltWinters {
        foresight_sdk::testing::configured(config)
    }

    /// Deterministic noise in [0, 1).
    fn noise(i: usize) -> f64 {
        (i as u64).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407) as f64
            / u64::MAX as f64
    }

    #[test]
    fn auto_picks_the_log_scale_for_spikes_and_the_linear_one_for_a_steady_pattern() {
        let f = forecaster("");
        let daily = |i: usize| 100.0 + 40.0 * (i as f64 / 24.0 * std::f64::consts::TAU).sin();
        // Mostly ten, with a burst two orders of magnitude higher every 37 hours.
        let bursty: Vec<f64> =
            (0..14 * 24).map(|i| if i % 37 == 0 { 1000.0 } else { 10.0 + noise(i) }).collect();
        assert!(matches!(f.model(&bursty, 3600, &[1, 6, 24]).scale, Scale::Log { .. }));
        // A daily swing of ±40 whatever the level: after the level triples, a log scale would
        // have to learn the season anew.
        let steady: Vec<f64> =
            (0..14 * 24).map(|i| daily(i) + if i >= 10 * 24 { 200.0 } else { 0.0 } + noise(i)).collect();
        assert_eq!(f.model(&steady, 3600, &[1, 6, 24]).scale, Scale::Linear);
        // Fixed scales are kept, and a series that dips below zero is never log-scaled.
        assert!(matches!(
            forecaster("transform = \"log\"").model(&steady, 3600, &[1]).scale,
            Scale::Log { .. }
        ));
        let negative: Vec<f64> = steady.iter().map(|v| v - 150.0).collect();
        assert_eq!(forecaster("transform = \"log\"").model(&negative, 3600, &[1]).scale, Scale::Linear);
    }

    #[test]
    fn the_log_scale_maps_back_exactly() {
        let scale = Scale::Log { mean: 250.0 };
        for y in [0.0, 0.5, 10.0, 1e6] {
            assert!((scale.back(scale.forward(y)) - y).abs() <= 1e-9 * y.max(1.0));
        }
        assert!(scale.forward(f64::NAN).is_nan(), "a gap stays a gap");
    }
}
