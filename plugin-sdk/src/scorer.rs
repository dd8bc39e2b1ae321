//! Placement scoring: one workload and a batch of candidates in, one score each out.

use crate::{Config, Descriptor, PluginError};

/// Names of the standard features the host provides. Plugins must ignore names they do not know.
pub mod features {
    /// Prefix of the round-trip time from a user region, in ms: `rtt-ms:<region>`.
    pub const RTT_PREFIX: &str = "rtt-ms:";
    /// Utilisation of the candidate's serving capacity after placement, 0..1.
    pub const UTILISATION: &str = "utilisation";
    /// Serving replicas after placement.
    pub const REPLICAS: &str = "replicas";
    /// Forecast spare capacity, 0..1.
    pub const HEADROOM: &str = "headroom";
    /// Price per replica-hour.
    pub const HOURLY_PRICE: &str = "hourly-price";
    /// 1 for spot capacity, 0 otherwise.
    pub const SPOT: &str = "spot";
    /// Expected interruptions per hour.
    pub const INTERRUPTION_RATE: &str = "interruption-rate";

    /// The RTT feature name for a user region.
    pub fn rtt(region: &str) -> String {
        format!("{RTT_PREFIX}{region}")
    }
}

/// The workload being placed.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Workload {
    /// Service name.
    pub service: String,
    /// User regions the demand comes from.
    pub regions: Vec<String>,
    /// Forecast requests/s per region.
    pub demand: Vec<f64>,
    /// p95 latency objective, ms.
    pub slo_p95_ms: f64,
    /// Mean CPU time per request, ms.
    pub service_ms: f64,
    /// CPU per replica, cores.
    pub cpu_request: f64,
    /// Memory per replica, GiB.
    pub memory_request_gib: f64,
}

/// Candidate placements as a row-major feature matrix.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Candidates {
    /// Column names.
    pub feature_names: Vec<String>,
    /// One row per candidate, one column per name.
    pub features: Vec<f64>,
}

impl Candidates {
    /// Builds a matrix, checking that the values fill whole rows.
    pub fn new(feature_names: Vec<String>, features: Vec<f64>) -> Result<Self, PluginError> {
        Self::check_shape(&feature_names, &features)?;
        Ok(Self { feature_names, features })
    }

    /// Checks that `features` fills whole rows of `feature_names`.
    pub fn check_shape(feature_names: &[String], features: &[f64]) -> Result<(), PluginError> {
        if feature_names.is_empty() && !features.is_empty() {
            return Err(PluginError::InvalidInput("feature values given without feature names".into()));
        }
        if !feature_names.is_empty() && !features.len().is_multiple_of(feature_names.len()) {
            return Err(PluginError::InvalidInput(format!(
                "{} feature values do not fill rows of {} features",
                features.len(),
                feature_names.len()
            )));
        }
        Ok(())
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.features.len().checked_div(self.width()).unwrap_or(0)
    }

    /// Whether there are no candidates.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of features per candidate.
    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// Each candidate's feature row.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.features.chunks_exact(self.width().max(1))
    }

    /// Column index of a feature.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.feature_names.iter().position(|n| n == name)
    }

    /// Column index of a feature the plugin cannot work without.
    pub fn require_column(&self, name: &str) -> Result<usize, PluginError> {
        self.column(name).ok_or_else(|| {
            PluginError::InvalidInput(format!("feature `{name}` is required but was not provided"))
        })
    }
}

/// The answer: a score per candidate, higher is better.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Scores {
    /// One finite score per candidate.
    pub values: Vec<f64>,
    /// Optional per-feature contributions, same shape as the features; empty when absent.
    pub contributions: Vec<f64>,
}

/// A scorer plugin.
pub trait Scorer: Sized + 'static {
    /// Describes the plugin; must not depend on configuration.
    fn describe() -> Descriptor;

    /// Builds the plugin from its configuration.
    fn new(config: &Config) -> Result<Self, PluginError>;

    /// Scores every candidate. With `explain` set the host wants per-feature contributions too
    /// (it asks only for the candidates it acts on, so explaining may cost more than scoring).
    fn score(
        &mut self,
        workload: &Workload,
        candidates: &Candidates,
        explain: bool,
    ) -> Result<Scores, PluginError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_columns_follow_the_names() {
        let c = Candidates::new(vec!["a".into(), "b".into()], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.column("b"), Some(1));
        assert_eq!(c.rows().nth(2), Some(&[5.0, 6.0][..]));
        assert!(c.require_column("z").unwrap_err().to_string().contains("`z`"));
    }

    #[test]
    fn ragged_matrices_are_refused() {
        assert!(Candidates::new(vec!["a".into(), "b".into()], vec![1.0, 2.0, 3.0]).is_err());
        assert!(Candidates::new(vec![], vec![1.0]).is_err());
        assert!(Candidates::new(vec![], vec![]).unwrap().is_empty());
    }
}
