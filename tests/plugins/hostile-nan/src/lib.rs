//! Returns NaN scores.
use foresight_sdk::{Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The fixture.
pub struct Hostile;

impl Scorer for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new("hostile-nan", "0.1.0", PluginKind::Scorer, "Returns NaN scores.")
    }

    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Hostile)
    }
    fn score(
        &mut self,
        _workload: &Workload,
        candidates: &Candidates,
        _explain: bool,
    ) -> Result<Scores, PluginError> {
        Ok(Scores { values: vec![f64::NAN; candidates.len()], contributions: vec![] })
    }
}

foresight_sdk::export_scorer!(Hostile);
