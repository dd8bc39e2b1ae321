//! The decide-stage policies a daemon or a simulation can run, by name.

use std::fmt;
use std::str::FromStr;

use crate::baselines::Kind;

/// A policy by the name operators and `foresight simulate --policy` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyName {
    /// Foresight's own: forecasts, the planner and the plugins the configuration loads.
    Predictive,
    /// The Kubernetes HPA with cluster-autoscaler and nearest-cluster routing.
    Hpa,
    /// `hpa` with kube-scheduler's default node scoring.
    KubeDefault,
    /// Capacity fixed at the trace's peak.
    StaticPeak,
}

impl PolicyName {
    /// Every policy, in report order.
    pub const ALL: [Self; 4] = [Self::Predictive, Self::Hpa, Self::KubeDefault, Self::StaticPeak];

    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Predictive => "predictive",
            Self::Hpa => "hpa",
            Self::KubeDefault => "kube-default",
            Self::StaticPeak => "static-peak",
        }
    }

    /// The baseline behind the name, `None` for Foresight's own policy.
    pub fn baseline(self) -> Option<Kind> {
        match self {
            Self::Predictive => None,
            Self::Hpa => Some(Kind::Hpa),
            Self::KubeDefault => Some(Kind::KubeDefault),
            Self::StaticPeak => Some(Kind::StaticPeak),
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
#[error("unknown policy `{0}`; choose from predictive, hpa, kube-default, static-peak")]
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
        assert!(e.contains("`vpa`") && e.contains("static-peak"), "{e}");
    }
}
