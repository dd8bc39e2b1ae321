//! A valid scorer that prefers the cheapest candidate, for hot-swap tests.
use foresight_sdk::scorer::features;
use foresight_sdk::{Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The fixture.
pub struct Cheapest;

impl Scorer for Cheapest {
    fn describe() -> Descriptor {
        Descriptor::new("cheapest-scorer", "0.1.0", PluginKind::Scorer, "Prefers the lowest price.")
    }

    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Cheapest)
    }

    fn score(&mut self, _: &Workload, candidates: &Candidates, _: bool) -> Result<Scores, PluginError> {
        let price = candidates.column(features::HOURLY_PRICE);
        let values = candidates.rows().map(|row| price.map_or(0.0, |c| -row[c])).collect();
        Ok(Scores { values, contributions: Vec::new() })
    }
}

foresight_sdk::export_scorer!(Cheapest);
