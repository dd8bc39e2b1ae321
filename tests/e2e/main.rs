//! End-to-end tests: the real `foresight` binary and runtime against real components — the
//! reference plugins and the deliberately hostile ones under `tests/plugins/`, compiled to
//! `wasm32-wasip2` once per run by [`fixtures`].

mod bench;
mod config_check;
mod containment;
mod daemon;
mod deploy;
mod docs;
mod federate;
mod fixtures;
mod forecast;
mod kubernetes;
mod onnx;
mod plugin_check;
mod plugin_new;
mod prometheus;
mod run;
mod simulate;
mod status_page;
