//! The plugin runtime: loads policy components, runs them in a sandbox with deadlines and a
//! memory cap, validates every answer and falls back when a plugin misbehaves.
//!
//! ```no_run
//! use foresight::plugins::{Limits, Runtime, ScorePolicy};
//! use foresight_sdk::{Candidates, PluginKind, Workload};
//!
//! let runtime = Runtime::new(None)?;
//! let scorer = runtime.start_file(
//!     "latency-aware.wasm".as_ref(),
//!     Some(PluginKind::Scorer),
//!     &Limits::default(),
//!     "weight-price = 5.0",
//! )?;
//! let candidates = Candidates::new(vec!["rtt-ms:eu".into()], vec![12.0, 80.0])?;
//! let scores = scorer.score(&Workload::default(), &candidates, false)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bindings;
mod cache;
pub mod conformance;
mod convert;
mod fault;
mod guard;
mod instance;
mod limits;
mod policy;
mod runtime;
pub mod samples;
mod sandbox;
pub mod validate;

pub use cache::Origin;
pub use fault::{CONTRACT_VERSION, Fault, LoadError, PluginFault};
pub use guard::{Guarded, QuarantineRule, Served, StatsSnapshot};
pub use instance::WasmPlugin;
pub use limits::{Capability, Limits};
pub use policy::{ForecastPolicy, Native, PlanPolicy, Policy, ScorePolicy};
pub use runtime::{EPOCH_TICK, Loaded, Runtime};
