//! Panics on every call.
use foresight_sdk::{Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The fixture.
pub struct Hostile;

impl Scorer for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new("hostile-panic", "0.1.0", PluginKind::Scorer, "Panics on every call.")
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
        panic!("scorer exploded on purpose while scoring {} candidates", candidates.len())
    }
}

foresight_sdk::export_scorer!(Hostile);
