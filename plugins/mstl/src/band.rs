//! Quantile bands: where each horizon's quantiles sit around the point forecast, read off the
//! model's own in-sample errors at that lead.

use foresight_sdk::stats::{empirical_quantile, normal_quantile};

/// √(π/2): a normal distribution's σ is √(π/2) times its mean absolute deviation.
pub const SIGMA_PER_MEAN_ABS_DEV: f64 = 1.253_314_137_315_500_3;

/// Where one horizon's quantiles sit relative to its point forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Median error: the model's bias at this lead.
    pub center: f64,
    /// Per requested level, its error quantile minus the median.
    pub spreads: Vec<f64>,
}

impl Band {
    /// From sorted errors.
    pub fn empirical(sorted: &[f64], quantiles: &[f64]) -> Self {
        let center = empirical_quantile(sorted, 0.5);
        Self { center, spreads: quantiles.iter().map(|&q| empirical_quantile(sorted, q) - center).collect() }
    }

    /// A centred normal band of standard deviation `sigma`.
    pub fn normal(sigma: f64, quantiles: &[f64]) -> Self {
        Self { center: 0.0, spreads: quantiles.iter().map(|&q| sigma * normal_quantile(q)).collect() }
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
    fn an_empirical_band_centres_on_the_median_error() {
        let band = Band::empirical(&[-3.0, -1.0, 0.0, 2.0, 10.0], &[0.25, 0.5, 0.75]);
        assert_eq!(band.center, 0.0);
        assert_eq!(band.spreads, vec![-1.0, 0.0, 2.0]);
        let normal = Band::normal(2.0, &[0.5, 0.9]);
        assert_eq!(normal.spreads[0], 0.0);
        assert!((normal.spreads[1] - 2.0 * 1.281_551_566).abs() < 1e-6);
    }

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
