//! Whether the demand a plan sized for covered what came while its replicas could not change,
//! and the factor that makes it do so as often as the sizing quantile says.
//!
//! A plan sizes replicas for the p90 of demand up to the step new replicas would first serve.
//! What matters is not that each lead's forecast is calibrated but that the *peak* of what
//! comes in that window stays within what was planned nine times in ten. Per service, each
//! plan is scored when its window has passed, and a log factor on planned demand follows the
//! misses by adaptive conformal inference:
//!
//! ```text
//! c ← c + γ · (1{peak > planned} − (1 − q))
//! ```
//!
//! so in the long run the share of windows whose peak exceeds the plan is at most `1 − q`,
//! whatever the forecast's own errors; the factor never goes below 1 (I. Gibbs and E. Candès
//! (2021), "Adaptive conformal inference under distribution shift", *NeurIPS*). A forecaster
//! whose errors were upward gave the plan headroom by accident; one that is right on average
//! gets it here, by measurement.

use std::collections::{HashMap, VecDeque};

/// Step of the log factor per scored window.
const RATE: f64 = 0.02;
/// Bounds of the log factor: a plan is never cut (a forecast that covers too often costs
/// money, one cut too far costs the SLO) nor raised beyond three times.
const LOWEST: f64 = 0.0;
const HIGHEST: f64 = 1.1;

/// One plan waiting for its window to pass.
#[derive(Debug)]
struct Pending {
    /// When it was made: the demand it is scored against comes after.
    made: i64,
    /// The end of its window.
    until: i64,
    planned: f64,
    /// The highest demand seen in its window so far.
    peak: f64,
}

#[derive(Debug, Default)]
struct Track {
    /// Oldest first.
    pending: VecDeque<Pending>,
    offset: f64,
}

/// Per service, the factor on planned demand that keeps the window's peak covered.
#[derive(Debug, Default)]
pub struct Coverage {
    services: HashMap<String, Track>,
}

impl Coverage {
    /// Scores the plans of `service` against the demand of the step that ended at `time`.
    pub fn observe(&mut self, service: &str, time: i64, demand: f64, quantile: f64) {
        let Some(track) = self.services.get_mut(service) else { return };
        for plan in track.pending.iter_mut().filter(|p| p.made < time) {
            plan.peak = plan.peak.max(demand);
        }
        while let Some(plan) = track.pending.pop_front_if(|p| p.until <= time) {
            let missed = f64::from(u8::from(plan.peak > plan.planned));
            track.offset = (track.offset + RATE * (missed - (1.0 - quantile))).clamp(LOWEST, HIGHEST);
        }
    }

    /// Remembers that `planned` req/s of `service` was sized for at `time`, for the steps up to
    /// `time + lead_s`.
    pub fn planned(&mut self, service: &str, time: i64, lead_s: u32, planned: f64) {
        let track = self.services.entry(service.to_owned()).or_default();
        track.pending.push_back(Pending { made: time, until: time + i64::from(lead_s), planned, peak: 0.0 });
    }

    /// The factor on `service`'s planned demand (1 until a window has been scored).
    pub fn factor(&self, service: &str) -> f64 {
        self.services.get(service).map_or(1.0, |t| t.offset.exp())
    }

    /// Every service planned for and its factor, by name.
    pub fn factors(&self) -> std::collections::BTreeMap<String, f64> {
        self.services.iter().map(|(name, t)| (name.clone(), t.offset.exp())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_raise_the_factor_until_one_window_in_ten_is_missed() {
        let mut c = Coverage::default();
        // Demand alternates 100 and 130 each minute; the plan is the forecast of 100 times the
        // factor, over a two-minute window.
        let mut misses = 0;
        for t in 0..3000 {
            let time = t * 60;
            let demand = if t % 2 == 0 { 100.0 } else { 130.0 };
            c.observe("web", time, demand, 0.9);
            c.planned("web", time, 120, 100.0 * c.factor("web"));
            if t >= 2000 && 100.0 * c.factor("web") < 130.0 {
                misses += 1;
            }
        }
        // Every window holds a 130, so the factor settles at about 1.3, missing about a tenth.
        assert!((c.factor("web") - 1.3).abs() < 0.05, "{}", c.factor("web"));
        assert!(misses < 300, "{misses}");
        assert_eq!(c.factor("api"), 1.0);
    }

    #[test]
    fn a_plan_that_always_covers_is_left_as_it_is() {
        let mut c = Coverage::default();
        for t in 0..2000 {
            c.observe("web", t * 60, 100.0, 0.9);
            c.planned("web", t * 60, 120, 200.0 * c.factor("web"));
        }
        // Cutting a generous plan would trade the SLO for cost on the forecast's word alone.
        assert_eq!(c.factor("web"), 1.0);
    }
}
