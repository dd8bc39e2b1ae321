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

use crate::{Config, Event, ForecastRequest, Forecaster, PluginError, Series};

/// One hour, in seconds.
pub const HOUR: u32 = 3600;
/// One day, in seconds.
pub const DAY: u32 = 24 * HOUR;

/// A day of demand by hour: a sine around 100 with amplitude 40, lowest at 18:00.
pub fn daily_shape(hour: usize) -> f64 {
    100.0 + 40.0 * (hour as f64 / 24.0 * std::f64::consts::TAU).sin()
}

/// `hours` of hourly demand: [`daily_shape`] riding on a level that starts at `start` and moves
/// each hour by a random walk step of up to ±`step` (from [`Lcg`] seeded with `seed`) — a
/// series whose level wanders, which a plain seasonal repeat lags.
pub fn daily_on_random_walk(hours: usize, seed: u64, start: f64, step: f64) -> Vec<f64> {
    let mut noise = Lcg(seed);
    let mut level = start;
    (0..hours)
        .map(|i| {
            level += step * noise.next();
            daily_shape(i % 24) + level
        })
        .collect()
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

/// A forecaster built from TOML configuration text; panics when the text is refused.
pub fn configured<F: Forecaster>(config: &str) -> F {
    let keys = F::describe().config_keys;
    Config::parse(config, &keys).and_then(|c| F::new(&c)).unwrap_or_else(|e| panic!("`{config}`: {e}"))
}

/// Why a forecaster refuses TOML configuration text; panics when it accepts it.
pub fn config_error<F: Forecaster>(config: &str) -> String {
    match Config::parse(config, &F::describe().config_keys).and_then(|c| F::new(&c)) {
        Ok(_) => panic!("`{config}` was accepted"),
        Err(e) => {
            assert!(matches!(e, PluginError::InvalidConfig(_)), "`{config}`: {e:?}");
            e.to_string()
        }
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

/// The event scenario every forecaster should handle: `days` of the daily shape, hourly from
/// `start` (a midnight); yesterday 10:00–14:00 a sale tripled demand, tomorrow 14:00–15:00 a
/// launch is expected to double it. Forecasting leads of 11, 15 and 16 hours should give the
/// usual 10:00 (the sale does not repeat), twice the usual 14:00, and the usual 15:00; those
/// expected values come back alongside.
pub fn sale_and_launch(start: i64, days: usize) -> (Series, [u32; 3], [f64; 3]) {
    let mut series = Series { start, ..hourly((0..days * 24).map(|i| daily_shape(i % 24)).collect()) };
    let yesterday = (days - 1) * 24;
    for v in &mut series.values[yesterday + 10..yesterday + 14] {
        *v *= 3.0;
    }
    let at = |i: usize| start + i64::from(HOUR) * i as i64;
    let tomorrow = days * 24;
    series.events = vec![
        Event { name: "sale".into(), start: at(yesterday + 10), end: at(yesterday + 14), multiplier: 3.0 },
        Event { name: "launch".into(), start: at(tomorrow + 14), end: at(tomorrow + 15), multiplier: 2.0 },
    ];
    (series, [11 * HOUR, 15 * HOUR, 16 * HOUR], [daily_shape(10), 2.0 * daily_shape(14), daily_shape(15)])
}

/// Checks that a forecaster refuses, naming it by index, a series with no observations, one
/// of gaps only, and one whose every value falls under an event with multiplier 0.
pub fn refuses_series_with_nothing_observed<F: Forecaster>(f: &mut F) {
    let mut gap_by_event = hourly(vec![1.0; 5]);
    gap_by_event.events.push(Event { name: "outage".into(), start: 0, end: 5 * 3600, multiplier: 0.0 });
    for bad in [hourly(vec![]), hourly(vec![f64::NAN; 5]), gap_by_event] {
        let request = ForecastRequest {
            series: vec![hourly(vec![1.0, 2.0]), bad],
            horizons: vec![HOUR],
            quantiles: vec![0.5],
        };
        let err = f.forecast(&request).expect_err("a series with nothing observed is refused");
        assert!(matches!(err, PluginError::InvalidInput(_)) && err.to_string().contains("series 1"), "{err}");
    }
}

/// Checks a forecaster's outage handling on three days of the daily shape hourly from `start`
/// (a midnight): under an upcoming event with multiplier 0 (the first two hours after the
/// history) every quantile is 0, after it demand is back; a multiplier that is negative or not
/// a number is refused naming the series and the event. Returns the scenario's series.
pub fn forecasts_zero_under_an_outage<F: Forecaster>(f: &mut F, start: i64) -> Series {
    let mut series = Series { start, ..hourly((0..3 * 24).map(|i| daily_shape(i % 24)).collect()) };
    let outage = start + i64::from(3 * DAY);
    series.events.push(Event { name: "outage".into(), start: outage, end: outage + 7200, multiplier: 0.0 });
    let answer = forecast_one(f, series.clone(), &[HOUR, 3 * HOUR], &[0.1, 0.9]);
    assert_eq!(&answer[..2], &[0.0, 0.0], "{answer:?}");
    assert!(answer[3] > 0.0, "{answer:?}");
    for bad in [-1.0, f64::NAN] {
        let mut broken = series.clone();
        broken.events[0].multiplier = bad;
        let request = ForecastRequest { series: vec![broken], horizons: vec![HOUR], quantiles: vec![0.5] };
        let err = f.forecast(&request).expect_err("a bad multiplier is refused").to_string();
        assert!(err.contains("series 0") && err.contains("`outage`"), "{err}");
    }
    series
}
