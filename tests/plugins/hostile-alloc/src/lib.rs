//! Allocates memory until something stops it.
use foresight_sdk::{Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The fixture.
pub struct Hostile;

impl Scorer for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new(
            "hostile-alloc",
            "0.1.0",
            PluginKind::Scorer,
            "Allocates memory until something stops it.",
        )
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
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Touch every page so the memory is really committed.
            hoard.push(vec![candidates.len() as u8 | 1; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

foresight_sdk::export_scorer!(Hostile);
