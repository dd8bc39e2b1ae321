//! The Kubernetes Horizontal Pod Autoscaler, per service and cluster, as the Kubernetes
//! documentation and the controller's replica calculator describe it:
//!
//! * `desired = ceil(current × currentMetric / desiredMetric)` over CPU utilisation of the
//!   ready pods, skipped when the ratio is within the 0.1 tolerance;
//! * when scaling up, pods that are not ready yet (starting or pending) count as 0 % usage,
//!   and a recomputed ratio that changes direction or falls within the tolerance cancels;
//! * a scale-down stabilisation window of 300 s: the highest recommendation in the window wins;
//! * the default scale-up policies, the larger of 100 % and 4 pods per 15 s period, and
//!   scale-down by up to 100 % per period;
//! * min and max replicas.
//!
//! The controller runs every 15 s. The simulator's metrics change once per step (a minute), and
//! with the not-ready rule an evaluation on unchanged metrics recommends what the previous one
//! did, so one evaluation per step is what four 15 s evaluations would do.

use std::collections::{HashMap, VecDeque};

/// The HPA's documented defaults and the target a deployment sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpaSpec {
    /// `averageUtilization` target of CPU, as a fraction of the request.
    pub target_utilisation: f64,
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: f64,
    /// `behavior.scaleDown.stabilizationWindowSeconds`.
    pub scale_down_window_s: i64,
    /// `minReplicas`.
    pub min_replicas: u32,
    /// `maxReplicas`.
    pub max_replicas: u32,
}

impl Default for HpaSpec {
    fn default() -> Self {
        // 50 % is the target of the Kubernetes HPA walkthrough.
        Self {
            target_utilisation: 0.5,
            tolerance: 0.1,
            scale_down_window_s: 300,
            min_replicas: 1,
            max_replicas: 500,
        }
    }
}

/// What the HPA sees of one deployment at one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// `spec.replicas` of the deployment.
    pub current: u32,
    /// Pods ready and reporting metrics.
    pub ready: u32,
    /// Pods not ready yet: starting, or pending for lack of a node.
    pub unready: u32,
    /// Mean CPU utilisation of the ready pods, as a fraction of their request.
    pub utilisation: f64,
}

/// The replica calculator: the recommendation before stabilisation and rate limits.
pub fn recommend(m: Metrics, target: f64, tolerance: f64) -> u32 {
    if m.ready == 0 {
        // No metrics at all: the controller leaves the deployment alone.
        return m.current;
    }
    let ratio = m.utilisation / target;
    let scale_up_with_unready = m.unready > 0 && ratio > 1.0;
    if !scale_up_with_unready {
        if (1.0 - ratio).abs() <= tolerance {
            return m.current;
        }
        return (ratio * f64::from(m.ready)).ceil() as u32;
    }
    // Not-ready pods count as using nothing, which damps a scale-up while pods start.
    let pods = f64::from(m.ready + m.unready);
    let new_ratio = m.utilisation * f64::from(m.ready) / (target * pods);
    if (1.0 - new_ratio).abs() <= tolerance || new_ratio < 1.0 {
        return m.current;
    }
    let replicas = (new_ratio * pods).ceil() as u32;
    if replicas < m.current { m.current } else { replicas }
}

/// The default scale-up limit for one period: the larger of doubling and adding four pods.
pub fn scale_up_limit(current: u32) -> u32 {
    (current * 2).max(current + 4)
}

/// One HPA per (service, cluster), with the recommendation history its stabilisation needs.
#[derive(Debug, Default)]
pub struct Hpa {
    spec: HpaSpec,
    history: HashMap<(usize, usize), VecDeque<(i64, u32)>>,
}

impl Hpa {
    /// An HPA for every deployment, all with `spec`.
    pub fn new(spec: HpaSpec) -> Self {
        Self { spec, history: HashMap::new() }
    }

    /// The settings every deployment's HPA runs with.
    pub fn spec(&self) -> &HpaSpec {
        &self.spec
    }

    /// The replicas the deployment of service `s` in cluster `c` should have at `now`.
    pub fn desired(&mut self, key: (usize, usize), now: i64, m: Metrics) -> u32 {
        let spec = self.spec;
        let raw =
            recommend(m, spec.target_utilisation, spec.tolerance).clamp(spec.min_replicas, spec.max_replicas);
        let history = self.history.entry(key).or_default();
        history.push_back((now, raw));
        while history.front().is_some_and(|&(t, _)| t <= now - spec.scale_down_window_s) {
            history.pop_front();
        }
        // Scale-up has no window (the latest recommendation); scale-down takes the window's
        // highest, so a dip must last the whole window before replicas go.
        let down = history.iter().map(|&(_, r)| r).max().unwrap_or(raw);
        let mut desired = m.current.max(raw).min(down);
        desired = desired.min(scale_up_limit(m.current));
        desired.clamp(spec.min_replicas, spec.max_replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(current: u32, ready: u32, unready: u32, utilisation: f64) -> Metrics {
        Metrics { current, ready, unready, utilisation }
    }

    #[test]
    fn the_ratio_formula_of_the_documentation() {
        // The documentation's example: 200m used against a 100m target doubles the replicas.
        assert_eq!(recommend(metrics(1, 1, 0, 1.0), 0.5, 0.1), 2);
        // 4 pods at 75 % against 50 %: ceil(4 × 1.5) = 6.
        assert_eq!(recommend(metrics(4, 4, 0, 0.75), 0.5, 0.1), 6);
        // 10 pods at 20 % against 50 %: ceil(10 × 0.4) = 4.
        assert_eq!(recommend(metrics(10, 10, 0, 0.2), 0.5, 0.1), 4);
    }

    #[test]
    fn within_the_tolerance_nothing_changes() {
        // Ratio 1.08 and 0.92: within 0.1 of 1.
        assert_eq!(recommend(metrics(10, 10, 0, 0.54), 0.5, 0.1), 10);
        assert_eq!(recommend(metrics(10, 10, 0, 0.46), 0.5, 0.1), 10);
        // Ratio 1.12 is not: ceil(10 × 1.12) = 12.
        assert_eq!(recommend(metrics(10, 10, 0, 0.56), 0.5, 0.1), 12);
    }

    #[test]
    fn unready_pods_count_as_idle_when_scaling_up() {
        // 4 ready at 90 % and 4 starting: (4 × 0.9) / (0.5 × 8) = 0.9, below 1: no change.
        assert_eq!(recommend(metrics(8, 4, 4, 0.9), 0.5, 0.1), 8);
        // 4 ready at 98 %, 2 starting: 3.92 / 3 = 1.31 → ceil(1.31 × 6) = 8.
        assert_eq!(recommend(metrics(6, 4, 2, 0.98), 0.5, 0.1), 8);
        // Scaling down ignores not-ready pods: ceil(4 × 0.4) = 2.
        assert_eq!(recommend(metrics(6, 4, 2, 0.2), 0.5, 0.1), 2);
    }

    #[test]
    fn scale_up_is_limited_to_double_or_four_pods_per_period() {
        assert_eq!(scale_up_limit(1), 5);
        assert_eq!(scale_up_limit(4), 8);
        assert_eq!(scale_up_limit(10), 20);
        let mut hpa = Hpa::new(HpaSpec::default());
        // 2 pods at 98 % against 10 %: the formula says 20; the limit allows 6.
        let spec = HpaSpec { target_utilisation: 0.1, ..HpaSpec::default() };
        hpa.spec = spec;
        assert_eq!(hpa.desired((0, 0), 0, metrics(2, 2, 0, 0.98)), 6);
    }

    #[test]
    fn scale_down_waits_out_the_stabilisation_window() {
        let mut hpa = Hpa::new(HpaSpec::default());
        let key = (0, 0);
        // At 0 s the load asks for 10; from 60 s on, for 4.
        assert_eq!(hpa.desired(key, 0, metrics(10, 10, 0, 0.5)), 10);
        for t in (60..300).step_by(60) {
            assert_eq!(
                hpa.desired(key, t, metrics(10, 10, 0, 0.2)),
                10,
                "at {t} s the window still holds 10"
            );
        }
        // At 300 s the recommendation of 0 s has left the window.
        assert_eq!(hpa.desired(key, 300, metrics(10, 10, 0, 0.2)), 4);
        // Scale-up is immediate.
        assert_eq!(hpa.desired(key, 360, metrics(4, 4, 0, 0.9)), 8);
    }

    #[test]
    fn min_and_max_replicas_bound_the_answer() {
        let mut hpa = Hpa::new(HpaSpec { min_replicas: 2, max_replicas: 5, ..HpaSpec::default() });
        assert_eq!(hpa.desired((0, 0), 0, metrics(4, 4, 0, 0.95)), 5);
        let mut hpa = Hpa::new(HpaSpec { min_replicas: 2, max_replicas: 5, ..HpaSpec::default() });
        assert_eq!(hpa.desired((0, 0), 0, metrics(3, 3, 0, 0.01)), 2);
    }
}
