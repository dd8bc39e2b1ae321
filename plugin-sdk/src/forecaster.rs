//! Demand forecasting: a batch of series in, quantile forecasts per horizon out.

use crate::{Config, Descriptor, PluginError};

/// A known event that changes demand (flash sale, launch, holiday).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Event {
    /// Operator's label.
    pub name: String,
    /// Start, Unix seconds (inclusive).
    pub start: i64,
    /// End, Unix seconds (exclusive).
    pub end: i64,
    /// Expected demand multiplier while it lasts.
    pub multiplier: f64,
}

impl Event {
    /// Whether the event is under way at Unix time `t`.
    pub fn covers(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }
}

/// One evenly spaced series. Gaps are NaN.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Series {
    /// Unix seconds of `values[0]`.
    pub start: i64,
    /// Seconds between values (≥ 1).
    pub step: u32,
    /// Observations, oldest first.
    pub values: Vec<f64>,
    /// Covariate names; empty when there are none.
    pub covariate_names: Vec<String>,
    /// Covariates, row-major, one row per step from `start` through the furthest horizon.
    pub covariates: Vec<f64>,
    /// Known events.
    pub events: Vec<Event>,
}

impl Series {
    /// Unix time of value `index` (which may lie beyond the observations).
    pub fn time_of(&self, index: usize) -> i64 {
        self.start + index as i64 * i64::from(self.step)
    }

    /// Unix time of the last observation.
    pub fn last_time(&self) -> i64 {
        self.time_of(self.values.len().saturating_sub(1))
    }

    /// Steps ahead of the last observation that a horizon in seconds reaches (at least 1).
    pub fn steps_ahead(&self, horizon_s: u32) -> usize {
        (horizon_s.div_ceil(self.step.max(1)) as usize).max(1)
    }

    /// The event multiplier in force at Unix time `t` (events compound).
    pub fn event_multiplier(&self, t: i64) -> f64 {
        self.events.iter().filter(|e| e.covers(t)).map(|e| e.multiplier).product()
    }

    /// The values with past events divided out (what demand would have been without them),
    /// and the index of the last value observed. A value under a multiplier of 0 says nothing
    /// about the base level and becomes a gap. A series with nothing left to forecast from (no
    /// values, or gaps only) is refused, as is a multiplier that is negative or not finite;
    /// `index` (the series' place in the request) names it in the error.
    pub fn base_demand(&self, index: usize) -> Result<(std::borrow::Cow<'_, [f64]>, usize), PluginError> {
        let refuse = |why: String| Err(PluginError::InvalidInput(format!("series {index}: {why}")));
        if self.values.is_empty() {
            return refuse("no observations to forecast from".into());
        }
        if let Some(e) = self.events.iter().find(|e| !(e.multiplier.is_finite() && e.multiplier >= 0.0)) {
            return refuse(format!(
                "event `{}` has multiplier {}; expected a finite number ≥ 0",
                e.name, e.multiplier
            ));
        }
        let values = if self.events.is_empty() {
            std::borrow::Cow::Borrowed(self.values.as_slice())
        } else {
            let base = self.values.iter().enumerate().map(|(i, &v)| {
                let multiplier = self.event_multiplier(self.time_of(i));
                if multiplier > 0.0 { v / multiplier } else { f64::NAN }
            });
            std::borrow::Cow::Owned(base.collect())
        };
        match values.iter().rposition(|v| !v.is_nan()) {
            Some(last) => Ok((values, last)),
            None => refuse("every observation is a gap (NaN) or falls in an event with multiplier 0".into()),
        }
    }
}

/// A batch forecasting question.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ForecastRequest {
    /// Series to forecast.
    pub series: Vec<Series>,
    /// Lead times in seconds after each series' last observation, ascending, each > 0.
    pub horizons: Vec<u32>,
    /// Quantile levels in (0, 1), strictly ascending.
    pub quantiles: Vec<f64>,
}

impl ForecastRequest {
    /// Checks the request's shape: what the host promises every forecaster.
    pub fn validate(&self) -> Result<(), PluginError> {
        let bad = |msg: String| Err(PluginError::InvalidInput(msg));
        if self.horizons.is_empty() || self.quantiles.is_empty() {
            return bad("a request needs at least one horizon and one quantile".into());
        }
        if self.horizons[0] == 0 || self.horizons.windows(2).any(|w| w[0] >= w[1]) {
            return bad(format!("horizons must be positive and strictly ascending: {:?}", self.horizons));
        }
        if self.quantiles.iter().any(|q| !(*q > 0.0 && *q < 1.0))
            || self.quantiles.windows(2).any(|w| w[0] >= w[1])
        {
            return bad(format!(
                "quantile levels must lie in (0, 1), strictly ascending: {:?}",
                self.quantiles
            ));
        }
        let max_horizon = *self.horizons.last().unwrap_or(&0);
        for (i, s) in self.series.iter().enumerate() {
            if s.step == 0 {
                return bad(format!("series {i}: step must be at least 1 second"));
            }
            if s.values.iter().any(|v| v.is_infinite()) {
                return bad(format!("series {i}: values must be finite (NaN marks a gap)"));
            }
            if !s.covariate_names.is_empty() {
                let rows = s.values.len() + s.steps_ahead(max_horizon);
                if s.covariates.len() != rows * s.covariate_names.len() {
                    return bad(format!(
                        "series {i}: {} covariate values for {} names over {rows} steps",
                        s.covariates.len(),
                        s.covariate_names.len()
                    ));
                }
            } else if !s.covariates.is_empty() {
                return bad(format!("series {i}: covariates given without names"));
            }
        }
        Ok(())
    }

    /// Checks the request, then answers each series with `forecast(index, series)`: the loop
    /// every forecaster that treats its series one by one would otherwise write.
    pub fn answer_each(
        &self,
        mut forecast: impl FnMut(usize, &Series) -> Result<Vec<f64>, PluginError>,
    ) -> Result<Vec<Vec<f64>>, PluginError> {
        self.validate()?;
        self.series.iter().enumerate().map(|(i, s)| forecast(i, s)).collect()
    }

    /// Number of values each series' answer must hold.
    pub fn answer_len(&self) -> usize {
        self.horizons.len() * self.quantiles.len()
    }
}

/// A forecaster plugin.
pub trait Forecaster: Sized + 'static {
    /// Describes the plugin; must not depend on configuration.
    fn describe() -> Descriptor;

    /// Builds the plugin from its configuration.
    fn new(config: &Config) -> Result<Self, PluginError>;

    /// Forecasts every series: per series, `horizons × quantiles` values, row-major, each row
    /// non-decreasing.
    fn forecast(&mut self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, PluginError>;
}

/// Finishes one series' answer (`horizons × quantiles` values, row-major): refuses it, naming
/// the series, when a value is not finite, and uncrosses each row.
pub fn finish(index: usize, mut values: Vec<f64>, quantiles: usize) -> Result<Vec<f64>, PluginError> {
    if values.iter().any(|v| !v.is_finite()) {
        return Err(PluginError::InvalidInput(format!(
            "series {index}: the forecast overflowed; values or event multipliers are out of range"
        )));
    }
    uncross(&mut values, quantiles);
    Ok(values)
}

/// Sorts each horizon's row of quantiles so they do not cross, the usual repair for quantile
/// estimates made independently (Chernozhukov et al., "rearrangement").
pub fn uncross(values: &mut [f64], quantiles: usize) {
    for row in values.chunks_mut(quantiles.max(1)) {
        row.sort_by(f64::total_cmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ForecastRequest {
        ForecastRequest {
            series: vec![Series {
                start: 0,
                step: 60,
                values: vec![1.0, f64::NAN, 3.0],
                ..Default::default()
            }],
            horizons: vec![60, 3600],
            quantiles: vec![0.1, 0.5, 0.9],
        }
    }

    #[test]
    fn a_well_formed_request_passes() {
        request().validate().unwrap();
        assert_eq!(request().answer_len(), 6);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let mut r = request();
        r.quantiles = vec![0.5, 0.5];
        assert!(r.validate().is_err());
        let mut r = request();
        r.horizons = vec![0];
        assert!(r.validate().is_err());
        let mut r = request();
        r.series[0].values.push(f64::INFINITY);
        assert!(r.validate().is_err());
        let mut r = request();
        r.series[0].covariate_names = vec!["temp".into()];
        r.series[0].covariates = vec![0.0; 3];
        assert!(r.validate().unwrap_err().to_string().contains("covariate"));
        r.series[0].covariates = vec![0.0; 3 + 60];
        r.validate().unwrap();
    }

    #[test]
    fn horizons_round_up_to_whole_steps() {
        let s = Series { step: 300, ..Default::default() };
        assert_eq!(s.steps_ahead(60), 1);
        assert_eq!(s.steps_ahead(600), 2);
        assert_eq!(s.steps_ahead(601), 3);
    }

    #[test]
    fn events_compound_while_they_overlap() {
        let s = Series {
            events: vec![
                Event { name: "sale".into(), start: 10, end: 20, multiplier: 10.0 },
                Event { name: "holiday".into(), start: 15, end: 30, multiplier: 0.5 },
            ],
            ..Default::default()
        };
        assert_eq!(s.event_multiplier(5), 1.0);
        assert_eq!(s.event_multiplier(12), 10.0);
        assert_eq!(s.event_multiplier(16), 5.0);
        assert_eq!(s.event_multiplier(20), 0.5);
    }

    #[test]
    fn uncross_sorts_each_row() {
        let mut v = vec![3.0, 1.0, 2.0, 6.0, 5.0, 4.0];
        uncross(&mut v, 3);
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn base_demand_divides_past_events_out_and_finish_uncrosses() {
        let mut s = Series { start: 0, step: 60, values: vec![10.0, 30.0, 0.0, 10.0], ..Default::default() };
        s.events.push(Event { name: "sale".into(), start: 60, end: 120, multiplier: 3.0 });
        s.events.push(Event { name: "outage".into(), start: 120, end: 180, multiplier: 0.0 });
        let (base, last) = s.base_demand(0).unwrap();
        assert_eq!(&base[..2], &[10.0, 10.0]);
        assert!(base[2].is_nan(), "no demand under a multiplier of 0 is a gap");
        assert_eq!(last, 3);
        s.events[0].multiplier = f64::NAN;
        assert!(s.base_demand(4).unwrap_err().to_string().contains("series 4"));
        assert_eq!(finish(0, vec![2.0, 1.0, 3.0, 4.0], 2).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        assert!(finish(7, vec![f64::INFINITY], 1).unwrap_err().to_string().contains("series 7"));
    }
}
