//! Quantile bands: where each horizon's quantiles sit around the point forecast, read off the
//! model's own in-sample errors at that lead.

use foresight_sdk::stats::{empirical_quantile, normal_quantile};

use crate::model::{History, Lead};

/// √(π/2): a normal distribution's σ is √(π/2) times its mean absolute deviation.
pub const SIGMA_PER_MEAN_ABS_DEV: f64 = 1.253_314_137_315_500_3;

/// Where one horizon's quantiles sit relative to its point forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Median residual: the model's bias at this lead.
    pub center: f64,
    /// Per requested level, its residual quantile minus the median.
    pub spreads: Vec<f64>,
}

impl Band {
    /// From sorted residuals.
    pub fn empirical(sorted: &[f64], quantiles: &[f64]) -> Self {
        let center = empirical_quantile(sorted, 0.5);
        Self { center, spreads: quantiles.iter().map(|&q| empirical_quantile(sorted, q) - center).collect() }
    }

    /// A centred normal band of standard deviation `sigma`.
    pub fn normal(sigma: f64, quantiles: &[f64]) -> Self {
        Self { center: 0.0, spreads: quantiles.iter().map(|&q| sigma * normal_quantile(q)).collect() }
    }
}

/// In-sample forecasts `lead.steps` ahead from the latest origins at or after `first_origin`
/// whose target is observed, at most `max` of them, latest first, as (actual, forecast) pairs
/// into `out`.
pub fn hindcasts(
    history: &History,
    values: &[f64],
    lead: &Lead,
    first_origin: usize,
    max: usize,
    out: &mut Vec<(f64, f64)>,
) {
    out.clear();
    let Some(last_origin) = values.len().checked_sub(lead.steps + 1) else { return };
    for origin in (first_origin..=last_origin).rev() {
        if out.len() >= max {
            break;
        }
        let actual = values[origin + lead.steps];
        if !actual.is_nan() {
            out.push((actual, history.forecast(origin, lead)));
        }
    }
}

/// Keeps every horizon's spread at least as wide as the previous horizon's, level by level:
/// a forecast made further ahead never knows more.
pub fn widen_with_horizon(bands: &mut [Band], quantiles: &[f64]) {
    for j in 1..bands.len() {
        let (earlier, later) = bands.split_at_mut(j);
        let previous = &earlier[j - 1].spreads;
        for ((spread, &before), &level) in later[0].spreads.iter_mut().zip(previous).zip(quantiles) {
            *spread = if level >= 0.5 { spread.max(before) } else { spread.min(before) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_widen_but_never_narrow_with_horizon() {
        let quantiles = [0.1, 0.5, 0.9];
        let mut bands = vec![
            Band { center: 0.0, spreads: vec![-2.0, 0.0, 3.0] },
            Band { center: 1.0, spreads: vec![-1.0, 0.0, 4.0] },
            Band { center: 0.0, spreads: vec![-5.0, 0.0, 2.0] },
        ];
        widen_with_horizon(&mut bands, &quantiles);
        assert_eq!(bands[1].spreads, vec![-2.0, 0.0, 4.0]);
        assert_eq!(bands[2].spreads, vec![-5.0, 0.0, 4.0]);
        assert_eq!(bands[1].center, 1.0, "the centre is the lead's own bias");
    }
}
