//! # foresight-sdk
//!
//! Write a Foresight policy plugin as a plain Rust type. Implement one trait —
//! [`Forecaster`], [`Scorer`] or [`CostModel`] — and call the matching export macro. Built for
//! `wasm32-wasip2` the crate becomes a sandboxed WebAssembly component the Foresight daemon
//! loads and hot-swaps; built for the host it is an ordinary Rust library, so tests (and the
//! daemon's own benchmarks) call the same code directly.
//!
//! ```
//! use foresight_sdk::{Candidates, Config, ConfigKey, Descriptor, PluginError, PluginKind};
//! use foresight_sdk::{Scorer, Scores, Workload};
//!
//! /// Prefers the cheapest candidate.
//! pub struct Cheapest {
//!     weight: f64,
//! }
//!
//! impl Scorer for Cheapest {
//!     fn describe() -> Descriptor {
//!         Descriptor::new("cheapest", "0.1.0", PluginKind::Scorer, "Prefers the lowest price.")
//!             .key(ConfigKey::new("weight", "Score lost per unit of hourly price.", Some("1.0")))
//!     }
//!
//!     fn new(config: &Config) -> Result<Self, PluginError> {
//!         Ok(Self { weight: config.get("weight")? })
//!     }
//!
//!     fn score(&mut self, _: &Workload, candidates: &Candidates, _: bool) -> Result<Scores, PluginError> {
//!         let price = candidates.require_column("hourly-price")?;
//!         let values = candidates.rows().map(|row| -self.weight * row[price]).collect();
//!         Ok(Scores { values, contributions: Vec::new() })
//!     }
//! }
//!
//! foresight_sdk::export_scorer!(Cheapest);
//!
//! let config = Config::parse("weight = 2.0", &Cheapest::describe().config_keys).unwrap();
//! let mut scorer = Cheapest::new(&config).unwrap();
//! let candidates = Candidates::new(vec!["hourly-price".into()], vec![1.0, 3.0]).unwrap();
//! let scores = scorer.score(&Workload::default(), &candidates, false).unwrap();
//! assert_eq!(scores.values, vec![-2.0, -6.0]);
//! ```

extern crate self as foresight_sdk;

mod config;
pub mod cost_model;
mod descriptor;
pub mod forecaster;
pub mod log;
pub mod ml;
pub mod scorer;
pub mod stats;
pub mod testing;

#[cfg(target_family = "wasm")]
#[doc(hidden)]
pub mod __private;

pub use config::Config;
pub use cost_model::{CapacityStep, ClusterDemand, ClusterPlan, CostModel, Offering, PlanRequest};
pub use descriptor::{ConfigKey, Descriptor, PluginError, PluginKind};
pub use forecaster::{Event, ForecastRequest, Forecaster, Series};
pub use scorer::{Candidates, Scorer, Scores, Workload};

/// Version of the WIT package `foresight:policy` this SDK builds against.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Exports a [`Forecaster`] implementation as the component's `forecaster` world.
///
/// On targets other than WebAssembly this expands to nothing, so the same crate also builds
/// as a native library.
#[macro_export]
macro_rules! export_forecaster {
    ($plugin:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            type __ForesightForecaster = $crate::__private::ForecasterAdapter<$plugin>;
            $crate::__private::forecaster::export_forecaster_world!(
                __ForesightForecaster with_types_in $crate::__private::forecaster
            );
        };
    };
}

/// Exports a [`Scorer`] implementation as the component's `scorer` world.
///
/// On targets other than WebAssembly this expands to nothing.
#[macro_export]
macro_rules! export_scorer {
    ($plugin:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            type __ForesightScorer = $crate::__private::ScorerAdapter<$plugin>;
            $crate::__private::scorer::export_scorer_world!(
                __ForesightScorer with_types_in $crate::__private::scorer
            );
        };
    };
}

/// Exports a [`CostModel`] implementation as the component's `cost-model` world.
///
/// On targets other than WebAssembly this expands to nothing.
#[macro_export]
macro_rules! export_cost_model {
    ($plugin:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            type __ForesightCostModel = $crate::__private::CostModelAdapter<$plugin>;
            $crate::__private::cost_model::export_cost_model_world!(
                __ForesightCostModel with_types_in $crate::__private::cost_model
            );
        };
    };
}
