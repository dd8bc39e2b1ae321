//! Logging into the host's log. Inside the sandbox messages go through the host's `log`
//! import (tagged with the plugin's name, capped per call); in a native build they go to
//! `tracing`.

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine-grained detail.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something is off.
    Warn,
    /// The plugin could not do what was asked.
    Error,
}

/// Writes one message to the host's log.
pub fn log(level: Level, message: &str) {
    imp::log(level, message)
}

/// Writes an informational message.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Writes a warning.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

#[cfg(target_family = "wasm")]
mod imp {
    use super::Level;
    use crate::__private::forecaster::foresight::policy::log as host;

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::Level;

    pub fn log(level: Level, message: &str) {
        match level {
            Level::Trace => tracing::trace!(target: "plugin", "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", "{message}"),
            Level::Info => tracing::info!(target: "plugin", "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", "{message}"),
            Level::Error => tracing::error!(target: "plugin", "{message}"),
        }
    }
}
