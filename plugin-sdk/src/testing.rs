//! Helpers for testing a forecaster natively: a repeatable daily shape, deterministic noise and
//! a one-series request.
//!
//! ```
//! use foresight_sdk::testing::{Lcg, daily_shape};
//!
//! let mut noise = Lcg(7);
//! let day: Vec<f64> = (0..24).map(|h| daily_shape(h) + noise.next()).collect();
//! assert!(day.iter().all(|v| (59.0..141.0).contains(v)));
//! ```

use crate::{ForecastRequest, Forecaster, Series};

/// One hour, in seconds.
pub const HOUR: u32 = 3600;
/// One day, in seconds.
pub const DAY: u32 = 24 * HOUR;

/// A day of demand by hour: a sine around 100 with amplitude 40, lowest at 18:00.
pub fn daily_shape(hour: usize) -> f64 {
    100.0 + 40.0 * (hour as f64 / 24.0 * std::f64::consts::TAU).sin()
}

/// Deterministic noise in [-1, 1) from a 64-bit linear congruential generator (Knuth's MMIX
/// constants): the same seed gives the same sequence on every target.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value.
    // Not `Iterator::next`: the sequence never ends, so an `Option` would only add unwraps.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// Roughly normal with unit variance: the sum of three uniforms of variance ⅓ each.
    pub fn normal(&mut self) -> f64 {
        self.next() + self.next() + self.next()
    }
}

/// An hourly series starting at Unix time 0.
pub fn hourly(values: Vec<f64>) -> Series {
    Series { start: 0, step: HOUR, values, ..Default::default() }
}

/// Forecasts one series; panics when the forecaster refuses it.
pub fn forecast_one<F: Forecaster>(
    f: &mut F,
    series: Series,
    horizons: &[u32],
    quantiles: &[f64],
) -> Vec<f64> {
    let request =
        ForecastRequest { series: vec![series], horizons: horizons.to_vec(), quantiles: quantiles.to_vec() };
    f.forecast(&request).expect("the forecaster answers").remove(0)
}
