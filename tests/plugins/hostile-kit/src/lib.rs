//! Declares a scorer whose `score` misbehaves, so each hostile fixture is only its behaviour.
//!
//! ```ignore
//! hostile_kit::hostile_scorer!("hostile-nan", "Returns NaN scores.", |candidates| {
//!     Ok(Scores { values: vec![f64::NAN; candidates.len()], contributions: vec![] })
//! });
//! ```

pub use foresight_sdk;

/// Defines `Hostile`, a scorer named `$name` whose `score` runs `$body` with the candidates
/// bound to `$candidates`, and exports it as the component's scorer.
#[macro_export]
macro_rules! hostile_scorer {
    ($name:literal, $summary:literal, |$candidates:ident| $body:block) => {
        use $crate::foresight_sdk::{
            Candidates, Config, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload,
        };

        /// The fixture.
        pub struct Hostile;

        impl Scorer for Hostile {
            fn describe() -> Descriptor {
                Descriptor::new($name, "0.1.0", PluginKind::Scorer, $summary)
            }

            fn new(_: &Config) -> Result<Self, PluginError> {
                Ok(Hostile)
            }

            fn score(
                &mut self,
                _: &Workload,
                $candidates: &Candidates,
                _: bool,
            ) -> Result<Scores, PluginError> {
                $body
            }
        }

        $crate::foresight_sdk::export_scorer!(Hostile);
    };
}
