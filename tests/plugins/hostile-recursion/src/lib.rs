//! Recurses until the stack runs out.
use foresight_sdk::{Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The fixture.
pub struct Hostile;

/// Recursion that never ends for real inputs; the frame-local buffer keeps it from being
/// turned into a loop.
fn depth(n: u64) -> u64 {
    let frame = [n; 32];
    std::hint::black_box(&frame);
    if n == u64::MAX { 0 } else { depth(std::hint::black_box(n + 1)) + frame[(n % 32) as usize] }
}

impl Scorer for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new(
            "hostile-recursion",
            "0.1.0",
            PluginKind::Scorer,
            "Recurses until the stack runs out.",
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
        Ok(Scores {
            values: vec![depth(candidates.len() as u64) as f64; candidates.len()],
            contributions: vec![],
        })
    }
}

foresight_sdk::export_scorer!(Hostile);
