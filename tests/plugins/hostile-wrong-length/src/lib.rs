//! Returns one score too many.
use foresight_sdk::{Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The fixture.
pub struct Hostile;

impl Scorer for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new("hostile-wrong-length", "0.1.0", PluginKind::Scorer, "Returns one score too many.")
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
        Ok(Scores { values: vec![1.0; candidates.len() + 1], contributions: vec![] })
    }
}

foresight_sdk::export_scorer!(Hostile);
