//! Predict: demand forecasts per service and user region, from the forecaster role (a
//! sandboxed plugin with its fallbacks), as quantiles over a few horizons; each forecast is
//! scored once the demand it forecast has been observed.

mod accuracy;
pub mod ensemble;
pub mod evaluate;
pub mod history;
mod predictor;
pub mod reference;

use serde::Serialize;

pub use accuracy::{Accuracy, HorizonAccuracy};
pub use predictor::Predictor;

/// Lead times forecast each tick, seconds.
pub const HORIZONS: [u32; 4] = [60, 300, 900, 3600];
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
    /// Demand of a service from a region at the first horizon ≥ `lead_s`, at quantile `q`
    /// (the nearest level forecast).
    pub fn at(&self, service: usize, region: usize, lead_s: u32, q: f64) -> f64 {
        let h = self.horizons.iter().position(|&h| h >= lead_s).unwrap_or(self.horizons.len() - 1);
        let k = self
            .quantiles
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - q).abs().total_cmp(&(b.1 - q).abs()))
            .map_or(0, |(k, _)| k);
        self.demand[service][region][h * self.quantiles.len() + k]
    }
}
