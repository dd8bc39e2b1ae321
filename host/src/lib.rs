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
