//! Predict: demand forecasts per service and user region, from the forecaster role (a
//! sandboxed plugin with its fallbacks), as quantiles over a few horizons.

use foresight_sdk::ForecastRequest;
use serde::Serialize;

use crate::observe::{Observation, Observer};
use crate::plugins::{ForecastPolicy, Guarded, PluginFault, validate};

/// Lead times forecast each tick, seconds.
pub const HORIZONS: [u32; 4] = [60, 300, 900, 3600];
/// Quantile levels forecast each tick.
pub const QUANTILES: [f64; 2] = [0.5, 0.9];
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
    /// `name@version` of the forecaster that answered.
    pub by: String,
    /// Why the live forecaster did not, when a fallback answered.
    pub fallback_from: Option<String>,
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

/// Forecasts every (service, region) demand series of the observation in one batch call.
pub fn predict(
    observation: &Observation,
    observer: &dyn Observer,
    forecaster: &Guarded<dyn ForecastPolicy>,
) -> Result<Forecasts, Vec<PluginFault>> {
    let mut series = Vec::new();
    for service in &observation.services {
        for region in &observation.regions {
            let mut s = observer.demand_history(&service.name, region, HISTORY_S).unwrap_or_default();
            if s.step == 0 {
                s.step = observation.step_s;
            }
            if s.values.is_empty() {
                // Nothing seen yet: the current demand is the only evidence.
                let r = observation.regions.iter().position(|x| x == region).unwrap_or(0);
                s.values.push(service.demand_rps.get(r).copied().unwrap_or(0.0));
                s.start = observation.time - i64::from(observation.step_s);
            }
            s.events = observation
                .events
                .iter()
                .filter(|e| e.service.as_ref().is_none_or(|n| n == &service.name))
                .map(|e| foresight_sdk::Event {
                    name: e.name.clone(),
                    start: e.start,
                    end: e.end,
                    multiplier: e.multiplier,
                })
                .collect();
            series.push(s);
        }
    }
    let request = ForecastRequest { series, horizons: HORIZONS.to_vec(), quantiles: QUANTILES.to_vec() };
    let served = forecaster.call(|p| p.forecast(&request), |answer| validate::forecasts(&request, answer))?;
    let regions = observation.regions.len();
    let mut answers = served.value.into_iter();
    let demand = observation
        .services
        .iter()
        .map(|_| (0..regions).map(|_| answers.next().unwrap_or_default()).collect())
        .collect();
    Ok(Forecasts {
        horizons: request.horizons,
        quantiles: request.quantiles,
        demand,
        by: served.by,
        fallback_from: served.fallback_from.map(|f| f.to_string()),
    })
}
