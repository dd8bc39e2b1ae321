//! Spins forever once asked to score.
use foresight_sdk::{Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The fixture.
pub struct Hostile;

impl Scorer for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new("hostile-loop", "0.1.0", PluginKind::Scorer, "Spins forever once asked to score.")
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
        let mut spins = 0u64;
        loop {
            // black_box keeps the optimiser from proving the loop has no effect.
            spins = std::hint::black_box(spins.wrapping_add(candidates.len() as u64 + 1));
        }
    }
}

foresight_sdk::export_scorer!(Hostile);
