//! Predict: demand forecasts per service and user region, from the forecaster role (a
//! sandboxed plugin with its fallbacks), as quantiles over a few horizons; each forecast is
//! scored once the demand it forecast has been observed.

mod accuracy;
pub mod anchor;
pub mod ensemble;
pub mod evaluate;
pub mod history;
mod predictor;
pub mod reference;

use serde::Serialize;

pub use accuracy::{Accuracy, HorizonAccuracy};
pub use predictor::Predictor;

/// Lead times forecasts are asked for, scored at and reported by, seconds.
pub const HORIZONS: [u32; 4] = [60, 300, 900, 3600];
/// Lead times the planner reads, seconds: dense over the first minutes, where replica
/// startups and node lead times fall, so a decision reads the step it acts on rather than
/// the next scored horizon. Forecasts are interpolated onto it.
pub const PLAN_HORIZONS: [u32; 10] = [60, 120, 180, 240, 300, 420, 600, 900, 1800, 3600];
/// Quantile levels forecast each tick.
pub const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
/// History handed to the forecaster: a week, enough for weekly seasonality.
pub const HISTORY_S: u32 = 7 * 86_400;

/// Forecasts for one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecasts {
    /// Lead times, seconds.
    pub horizons: Vec<u32>,
    /// Quantile levels.
    pub quantiles: Vec<f64>,
    /// Per service, per region: `horizons × quantiles` values (req/s), row-major.
    pub demand: Vec<Vec<Vec<f64>>>,
    /// `name@version` of every forecaster whose forecasts are in use (one, unless a fallback
    /// answered for some series or a swap is being caught up with).
    pub by: Vec<String>,
    /// Why the live forecaster did not answer this tick's refresh, when a fallback did.
    pub fallback_from: Option<String>,
    /// Series refreshed this tick (the others are kept forecasts, aged).
    pub refreshed: usize,
}

impl Forecasts {
    /// Demand of a service from a region `lead_s` ahead, at quantile `q` (the nearest level
    /// forecast): linear between the horizons that bracket the lead, the nearest beyond them.
    pub fn at(&self, service: usize, region: usize, lead_s: u32, q: f64) -> f64 {
        let k = self
            .quantiles
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - q).abs().total_cmp(&(b.1 - q).abs()))
            .map_or(0, |(k, _)| k);
        let row = &self.demand[service][region];
        let width = self.quantiles.len();
        let hi = self.horizons.partition_point(|&h| h < lead_s).min(self.horizons.len() - 1);
        let lo = hi.saturating_sub(1);
        let (h0, h1) = (f64::from(self.horizons[lo]), f64::from(self.horizons[hi]));
        let w = if h1 > h0 { ((f64::from(lead_s) - h0) / (h1 - h0)).clamp(0.0, 1.0) } else { 1.0 };
        (1.0 - w) * row[lo * width + k] + w * row[hi * width + k]
    }

    /// The highest demand forecast at quantile `q` over leads from `from_s` to `to_s`
    /// (every horizon between them and both ends).
    pub fn peak(&self, service: usize, region: usize, from_s: u32, to_s: u32, q: f64) -> f64 {
        self.horizons
            .iter()
            .copied()
            .filter(|&h| h > from_s && h < to_s)
            .chain([from_s, to_s])
            .map(|h| self.at(service, region, h, q))
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One series whose value is its lead in seconds at every level.
    fn leads() -> Forecasts {
        Forecasts {
            horizons: vec![60, 300, 900],
            quantiles: vec![0.1, 0.5, 0.9],
            demand: vec![vec![[60.0, 300.0, 900.0].iter().flat_map(|&h| [h; 3]).collect()]],
            by: vec![],
            fallback_from: None,
            refreshed: 0,
        }
    }

    #[test]
    fn leads_between_horizons_are_interpolated_and_beyond_them_held() {
        let f = leads();
        assert_eq!(f.at(0, 0, 60, 0.5), 60.0);
        assert_eq!(f.at(0, 0, 120, 0.9), 120.0);
        assert_eq!(f.at(0, 0, 600, 0.1), 600.0);
        assert_eq!((f.at(0, 0, 30, 0.5), f.at(0, 0, 3600, 0.5)), (60.0, 900.0));
        assert_eq!(f.peak(0, 0, 120, 600, 0.5), 600.0);
    }
}
