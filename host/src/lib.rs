//! # Foresight
//!
//! A control plane that keeps latency-sensitive services within their SLOs at the lowest cost
//! across many Kubernetes clusters by predicting demand. The daemon runs
//! observe → predict → decide → act; every strategy in it is a sandboxed WebAssembly plugin.
//!
//! This crate is the daemon and its command line. [`plugins`] is the sandboxed runtime; [`ml`]
//! runs the ONNX models the operator grants plugins.

pub mod act;
pub mod backends;
pub mod baselines;
pub mod cli;
pub mod config;
pub mod control;
pub mod decide;
pub mod federate;
pub mod latency;
pub mod ml;
pub mod observe;
pub mod plugins;
pub mod predict;
pub mod server;
pub mod simulate;

/// The host crate's folder as cargo runs its tests, not as they were compiled: a target folder
/// shared between checkouts may hold a test binary built in another one.
#[cfg(test)]
pub(crate) fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
