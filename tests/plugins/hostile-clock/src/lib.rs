//! Reads the wall clock, a capability the host grants only on request.
use foresight_sdk::{Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The fixture.
pub struct Hostile;

impl Scorer for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new("hostile-clock", "0.1.0", PluginKind::Scorer, "Scores by the time of day.")
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| PluginError::Failed(e.to_string()))?;
        Ok(Scores { values: vec![(now.as_secs() % 86_400) as f64; candidates.len()], contributions: vec![] })
    }
}

foresight_sdk::export_scorer!(Hostile);
