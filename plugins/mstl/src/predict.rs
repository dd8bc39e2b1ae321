//! One series from request to answer: past events divided out, the scale chosen, the model
//! fitted, quantiles read off its own errors, future events multiplied in.

use foresight_sdk::stats::empirical_quantile;
use foresight_sdk::{PluginError, Series};

use crate::band::{Band, SIGMA_PER_MEAN_ABS_DEV, widen_with_horizon};
use crate::model::{MIN_FIT_OBSERVATIONS, Model};
use crate::{Mstl, Transform};

/// Fallback spread, as a fraction of the forecast, for a history that never varies: the data
/// says nothing about uncertainty, and a zero-width band would claim certainty.
const FLAT_HISTORY_SPREAD: f64 = 0.1;

/// The latest days held out to measure how far the in-sample errors understate the real ones:
/// this many times the longest lead (or the shortest season, when longer), so that even the
/// longest lead is scored from as many origins as it is long.
const HOLDOUT_LEADS: usize = 2;

/// The scale a series is modelled on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    /// The values as they are.
    Linear,
    /// ln(1 + y / mean): seasons and changes become relative. Dividing by the history's mean
    /// makes the transform mean the same for bytes and for percentages.
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
    /// The values on that scale.
    scaled: Vec<f64>,
    /// The model fitted to them.
    model: Model,
    /// Per horizon: the point forecast and the sorted errors that set its band, on the
    /// model's scale.
    leads: Vec<(f64, Vec<f64>)>,
    /// Mean absolute in-sample error back on the original scale, summed over the horizons:
    /// what chooses between scales.
    score: f64,
}

impl Mstl {
    /// Forecasts one series: `horizons × quantiles` values, row-major.
    pub(crate) fn forecast_series(
        &self,
        index: usize,
        series: &Series,
        horizons: &[u32],
        quantiles: &[f64],
    ) -> Result<Vec<f64>, PluginError> {
        let (values, _) = series.base_demand(index)?;
        let non_negative = values.iter().filter(|v| !v.is_nan()).all(|&v| v >= 0.0);
        let steps: Vec<usize> = horizons.iter().map(|&h| series.steps_ahead(h)).collect();
        let periods = self.periods(values.len(), series.step);
        // The latest stretch only, which bounds the cost; every season keeps its cycles.
        let longest = periods.last().copied().unwrap_or(0);
        let recent = &values[values.len().saturating_sub(self.fit_steps.max(self.min_cycles * longest))..];
        let chosen = self.model(recent, &periods, &steps);

        let mut bands: Vec<Band> = chosen
            .leads
            .iter()
            .map(|(point, errors)| {
                if errors.len() >= self.min_residuals {
                    Band::empirical(errors, quantiles)
                } else {
                    Band::normal(fallback_sigma(recent, chosen.scale, *point), quantiles)
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

    /// The model of `values` (not all gaps) on the scale that suits it, forecasting `steps`
    /// ahead of the last value.
    fn model(&self, values: &[f64], periods: &[usize], steps: &[usize]) -> Candidate {
        let observed = || values.iter().copied().filter(|v| !v.is_nan());
        let mean = observed().sum::<f64>() / observed().count().max(1) as f64;
        let log = Scale::Log { mean };
        let scales: &[Scale] = match self.transform {
            _ if !(observed().all(|v| v >= 0.0) && mean > 0.0) => &[Scale::Linear],
            Transform::None => &[Scale::Linear],
            Transform::Log => &[log],
            Transform::Auto => &[Scale::Linear, log],
        };
        let mut chosen = self.candidate(values, scales[0], periods, steps);
        for &scale in &scales[1..] {
            let next = self.candidate(values, scale, periods, steps);
            // Strictly better only: among equals the linear scale, which needs no transform.
            if next.score < chosen.score {
                chosen = next;
            }
        }
        // Only the answer's bands are widened, which spares the other scale its holdout.
        let widening = self.widening(&chosen.scaled, periods, steps, &chosen.model);
        for ((_, errors), widen) in chosen.leads.iter_mut().zip(widening) {
            if widen > 1.0 && !errors.is_empty() {
                let center = empirical_quantile(errors, 0.5);
                errors.iter_mut().for_each(|e| *e = center + (*e - center) * widen);
            }
        }
        chosen
    }

    /// Fits the model to `values` on `scale` and forecasts `steps` ahead of the last one.
    fn candidate(&self, values: &[f64], scale: Scale, periods: &[usize], steps: &[usize]) -> Candidate {
        let scaled: Vec<f64> = values.iter().map(|&v| scale.forward(v)).collect();
        let model = Model::new(&scaled, periods, self, None);
        let last = model.len() - 1;
        let mut score = 0.0;
        let mut leads = Vec::with_capacity(steps.len());
        for &h in steps {
            let damping = model.smoothed.damping(h);
            let mut missed = 0.0;
            let mut errors = Vec::with_capacity(self.max_residuals.min(scaled.len()));
            for (actual, forecast) in in_sample(&model, &scaled, h, self.max_residuals) {
                errors.push(actual - forecast);
                missed += (scale.back(actual) - scale.back(forecast)).abs();
            }
            if !errors.is_empty() {
                score += missed / errors.len() as f64;
            }
            errors.sort_unstable_by(f64::total_cmp);
            // The last cycle before the last value is always in the history.
            leads.push((model.forecast(last, h, damping).unwrap_or(f64::NAN), errors));
        }
        // A forecast that cannot be mapped back is no candidate (a log-scale trend can
        // overflow); the linear scale always can.
        if leads.iter().any(|(point, _)| !scale.back(*point).is_finite()) {
            score = f64::INFINITY;
        }
        Candidate { scale, scaled, model, leads, score }
    }

    /// Per lead of `steps`, how many times wider the errors really are than in sample (at
    /// least 1): the in-sample errors come from seasons fitted to the very values forecast, so
    /// they understate. The model of all but the latest days forecasts those days; its mean
    /// absolute error over the in-sample one at the same targets is the factor. 1 when the
    /// history is too short to spare the days.
    fn widening(&self, scaled: &[f64], periods: &[usize], steps: &[usize], model: &Model) -> Vec<f64> {
        let longest_lead = steps.iter().copied().max().unwrap_or(1);
        let held = HOLDOUT_LEADS * longest_lead.max(periods.first().copied().unwrap_or(1));
        let n = scaled.len();
        if n < held + MIN_FIT_OBSERVATIONS {
            return vec![1.0; steps.len()];
        }
        let (past, future) = scaled.split_at(n - held);
        // A model with fewer seasons would measure another model's errors.
        if periods.iter().any(|&m| past.len() / m < self.min_cycles) {
            return vec![1.0; steps.len()];
        }
        // The smoothing's three parameters are kept: refitting them would double the cost, and
        // the days held out hardly move them.
        let holdout = Model::new(past, periods, self, Some(&model.fit)).holdout(future, steps);
        let mean_abs = |pairs: &mut dyn Iterator<Item = (f64, f64)>| {
            let (sum, count) = pairs.fold((0.0, 0usize), |(s, c), (a, f)| (s + (a - f).abs(), c + 1));
            (count > 0).then(|| sum / count as f64)
        };
        steps
            .iter()
            .zip(&holdout)
            .map(|(&h, pairs)| {
                if pairs.len() < self.min_residuals {
                    return 1.0;
                }
                let outside = mean_abs(&mut pairs.iter().copied());
                let inside = mean_abs(&mut in_sample(model, scaled, h, pairs.len()));
                match (outside, inside) {
                    (Some(o), Some(i)) if i > 0.0 => (o / i).max(1.0),
                    _ => 1.0,
                }
            })
            .collect()
    }
}

/// (actual, forecast) of the model's in-sample forecasts `h` steps ahead from the latest
/// origins whose target was observed, latest first, at most `max` of them.
fn in_sample<'a>(
    model: &'a Model,
    scaled: &'a [f64],
    h: usize,
    max: usize,
) -> impl Iterator<Item = (f64, f64)> + 'a {
    let damping = model.smoothed.damping(h);
    (0..scaled.len().saturating_sub(h))
        .rev()
        .map_while(move |origin| Some((scaled[origin + h], model.forecast(origin, h, damping)?)))
        .filter(|(actual, _)| !actual.is_nan())
        .take(max)
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

    use foresight_sdk::testing::{Lcg, daily_shape};

    #[test]
    fn bands_widen_by_what_held_out_days_missed_beyond_the_in_sample_errors() {
        let f: Mstl = foresight_sdk::testing::configured("transform = \"none\"");
        // Three weeks of a daily shape on a random-walk level: the in-sample seasons absorb
        // some of the walk, so out of sample the model misses by more.
        let mut noise = Lcg(21);
        let mut level = 0.0;
        let values: Vec<f64> = (0..21 * 24)
            .map(|i| {
                level += 2.0 * noise.next();
                daily_shape(i % 24) + level + noise.next()
            })
            .collect();
        let steps = [1, 6, 24];
        let model = Model::new(&values, &[24, 168], &f, None);
        let widening = f.widening(&values, &[24, 168], &steps, &model);
        assert!(widening.iter().all(|w| w.is_finite() && *w >= 1.0), "{widening:?}");
        assert!(widening.iter().any(|w| *w > 1.0), "{widening:?}");
        // Too short to spare two days and keep both seasons' cycles: no widening.
        let short = &values[..2 * 168 + 10];
        let model = Model::new(short, &[24, 168], &f, None);
        assert_eq!(f.widening(short, &[24, 168], &steps, &model), vec![1.0; 3]);
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
