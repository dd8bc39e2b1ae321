//! The decide-stage policies a daemon or a simulation can run, by name.

use std::fmt;
use std::str::FromStr;

use crate::baselines::Kind;

/// A policy by the name operators and `foresight simulate --policy` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyName {
    /// Foresight's own: forecasts, the planner and the plugins the configuration loads.
    Predictive,
    /// Foresight's planner, routing, placement and cost model fed only what is observed now:
    /// what prediction is worth is the difference to `Predictive`.
    Reactive,
    /// Foresight's planner fed the true future demand: the limit for this planner.
    Oracle,
    /// The Kubernetes HPA with cluster-autoscaler, behind a locality-aware load balancer
    /// that spills over to the next-nearest cluster.
    Hpa,
    /// `hpa` with Karpenter's provisioning and consolidation instead of cluster-autoscaler.
    Karpenter,
    /// `hpa` with kube-scheduler's default node scoring.
    KubeDefault,
    /// Capacity fixed at the trace's peak.
    StaticPeak,
}

/// Where the planner's demand comes from, for the policies that run Foresight's planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandSource {
    /// The forecaster role (plugins, ensemble, accuracy tracking).
    Forecast,
    /// What the observation shows now, at every lead time and quantile.
    Observed,
    /// What will happen (the simulator's own demand), at every lead time and quantile.
    Oracle,
}

impl PolicyName {
    /// Every policy, in report order.
    pub const ALL: [Self; 7] = [
        Self::Predictive,
        Self::Reactive,
        Self::Oracle,
        Self::Hpa,
        Self::Karpenter,
        Self::KubeDefault,
        Self::StaticPeak,
    ];

    /// What `foresight simulate` runs when no `--policy` is given: Foresight, its two
    /// references (no forecast, a perfect one) and the baselines a platform team runs.
    pub const DEFAULT: [Self; 6] =
        [Self::Predictive, Self::Reactive, Self::Oracle, Self::Hpa, Self::Karpenter, Self::StaticPeak];

    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Predictive => "predictive",
            Self::Reactive => "reactive",
            Self::Oracle => "oracle",
            Self::Hpa => "hpa",
            Self::Karpenter => "karpenter",
            Self::KubeDefault => "kube-default",
            Self::StaticPeak => "static-peak",
        }
    }

    /// The baseline behind the name, `None` for the policies that run Foresight's planner.
    pub fn baseline(self) -> Option<Kind> {
        match self {
            Self::Predictive | Self::Reactive | Self::Oracle => None,
            Self::Hpa => Some(Kind::Hpa),
            Self::Karpenter => Some(Kind::Karpenter),
            Self::KubeDefault => Some(Kind::KubeDefault),
            Self::StaticPeak => Some(Kind::StaticPeak),
        }
    }

    /// Where Foresight's planner gets its demand under this policy; `None` for baselines.
    pub fn demand_source(self) -> Option<DemandSource> {
        match self {
            Self::Predictive => Some(DemandSource::Forecast),
            Self::Reactive => Some(DemandSource::Observed),
            Self::Oracle => Some(DemandSource::Oracle),
            _ => None,
        }
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown policy name, with the ones there are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown policy `{0}`; choose from predictive, reactive, oracle, hpa, karpenter, kube-default, static-peak"
)]
pub struct UnknownPolicy(pub String);

impl FromStr for PolicyName {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_list_the_choices() {
        for p in PolicyName::ALL {
            assert_eq!(p.as_str().parse::<PolicyName>(), Ok(p));
        }
        let e = "vpa".parse::<PolicyName>().unwrap_err().to_string();
        for p in PolicyName::ALL {
            assert!(e.contains(p.as_str()), "{e}");
        }
    }

    #[test]
    fn the_references_run_foresights_planner_and_the_baselines_do_not() {
        for p in PolicyName::ALL {
            assert_eq!(p.demand_source().is_some(), p.baseline().is_none(), "{p}");
        }
        assert_eq!(PolicyName::Oracle.demand_source(), Some(DemandSource::Oracle));
    }
}
