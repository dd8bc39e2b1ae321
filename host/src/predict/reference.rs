//! Reference demand for the planner beside real forecasts: what is observed now (the
//! `reactive` policy) and what will really happen (the `oracle`). Both fill every lead time
//! and quantile with one number, so the planner, routing, placement and cost model run
//! unchanged and only the knowledge of the future differs.

use super::{Forecasts, PLAN_HORIZONS, QUANTILES};
use crate::observe::Observation;

/// Label of the observed-now reference in decisions.
pub const OBSERVED: &str = "reference:observed-now";
/// Label of the perfect-foresight reference in decisions.
pub const ORACLE: &str = "reference:oracle";

/// Every lead time and quantile at the demand observed over the last step.
pub fn observed(o: &Observation) -> Forecasts {
    filled(o, OBSERVED, |s, r, _| o.services[s].demand_rps.get(r).copied().unwrap_or(0.0))
}

/// Every lead time and quantile at the demand that will arrive: `future(s, r, t)` is the
/// demand of service `s` from region `r` in the step starting at `t`. A forecast at lead `h`
/// is for the step starting `h` after the one the observation last reported, which is the
/// step starting at `o.time − step + h`.
pub fn oracle(o: &Observation, future: impl Fn(usize, usize, i64) -> f64) -> Forecasts {
    let last = o.time - i64::from(o.step_s);
    filled(o, ORACLE, |s, r, h| future(s, r, last + i64::from(h)))
}

fn filled(o: &Observation, label: &str, value: impl Fn(usize, usize, u32) -> f64) -> Forecasts {
    let demand = (0..o.services.len())
        .map(|s| {
            (0..o.regions.len())
                .map(|r| {
                    PLAN_HORIZONS
                        .iter()
                        .flat_map(|&h| std::iter::repeat_n(value(s, r, h).max(0.0), QUANTILES.len()))
                        .collect()
                })
                .collect()
        })
        .collect();
    Forecasts {
        horizons: PLAN_HORIZONS.to_vec(),
        quantiles: QUANTILES.to_vec(),
        demand,
        by: vec![label.to_owned()],
        fallback_from: None,
        refreshed: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planner's two-region fixture at `time`, with `demand` req/s from the first region.
    fn observation(time: i64, demand: f64) -> Observation {
        let mut o = crate::decide::routing::tests::observation();
        o.time = time;
        o.services[0].demand_rps[0] = demand;
        o
    }

    #[test]
    fn observed_repeats_the_last_step_at_every_lead_and_level() {
        let o = observation(600, 42.0);
        let f = observed(&o);
        for h in PLAN_HORIZONS {
            for q in QUANTILES {
                assert_eq!(f.at(0, 0, h, q), 42.0);
            }
        }
        assert_eq!(f.by, vec![OBSERVED.to_owned()]);
    }

    #[test]
    fn the_oracle_reads_the_step_each_lead_lands_on() {
        // The observation at 600 reported the step from 540; a 60 s lead is the step at 600.
        let o = observation(600, 1.0);
        let f = oracle(&o, |_, _, t| t as f64);
        assert_eq!(f.at(0, 0, 60, 0.9), 600.0);
        assert_eq!(f.at(0, 0, 3600, 0.1), 540.0 + 3600.0);
    }
}
