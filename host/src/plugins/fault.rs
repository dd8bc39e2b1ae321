//! What can go wrong with a plugin: loading it, and calling it.

use std::path::PathBuf;
use std::time::Duration;

use foresight_sdk::{PluginError, PluginKind};

/// The WIT contract version this host speaks.
pub const CONTRACT_VERSION: &str = foresight_sdk::CONTRACT_VERSION;

/// A plugin file that could not be turned into a usable plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error(
        "{path} is not a WebAssembly component (it does not start with the `\\0asm` magic); \
         build plugins with `foresight plugin build`"
    )]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are a core module, not a component.
    #[error(
        "{path} is a core WebAssembly module, not a component; build it for the `wasm32-wasip2` \
         target (`foresight plugin build` does)"
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// Compilation failed: truncated, corrupt or using unsupported features.
    #[error("{path} could not be compiled ({reason}); the file may be truncated or corrupt: rebuild it")]
    Compile {
        /// The file.
        path: PathBuf,
        /// Compiler message.
        reason: String,
    },
    /// The component exports none of the policy interfaces.
    #[error(
        "{path} exports no Foresight policy (its exports: {exports}); a plugin must target the \
         forecaster, scorer or cost-model world of foresight:policy@{CONTRACT_VERSION}"
    )]
    WrongWorld {
        /// The file.
        path: PathBuf,
        /// What it does export.
        exports: String,
    },
    /// The component was built against another contract version.
    #[error(
        "{path} targets foresight:policy@{found} but this host speaks @{CONTRACT_VERSION}; rebuild \
         it against foresight-sdk {CONTRACT_VERSION}"
    )]
    ContractVersion {
        /// The file.
        path: PathBuf,
        /// The version it exports.
        found: String,
    },
    /// The component exports more than one policy interface.
    #[error("{path} exports several policy kinds ({kinds}); a plugin implements exactly one")]
    Ambiguous {
        /// The file.
        path: PathBuf,
        /// Kinds found.
        kinds: String,
    },
    /// The component is a valid plugin of another kind than the role needs.
    #[error(
        "{path} is a {found} plugin but is used as a {expected}; point the {expected} role at a {expected} plugin"
    )]
    KindMismatch {
        /// The file.
        path: PathBuf,
        /// Its kind.
        found: PluginKind,
        /// The kind wanted.
        expected: PluginKind,
    },
    /// Instantiation, `describe` or `configure` failed.
    #[error("plugin {plugin} ({path}) could not start: {fault}")]
    Start {
        /// The file.
        path: PathBuf,
        /// Name from the file or descriptor.
        plugin: String,
        /// Why.
        #[source]
        fault: Fault,
    },
}

/// Why one call to a plugin produced no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    /// The call ran past its deadline and was interrupted.
    #[error("ran past its {0:?} deadline and was stopped")]
    Timeout(Duration),
    /// The plugin tried to grow its memory past the cap.
    #[error("tried to use more than its {0} MiB memory limit")]
    MemoryExhausted(u64),
    /// The plugin overflowed its stack (e.g. unbounded recursion).
    #[error("overflowed its stack")]
    StackOverflow,
    /// Any other trap: a panic, `unreachable`, an out-of-bounds access, a denied capability.
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin answered, but the answer broke the contract.
    #[error("returned a malformed answer: {0}")]
    Malformed(String),
    /// The plugin reported an error itself.
    #[error("reported an error: {0}")]
    Plugin(PluginError),
    /// The plugin could not be (re)instantiated or configured.
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    /// The plugin is quarantined after repeated faults and was not called.
    #[error("is quarantined after repeated faults")]
    Quarantined,
}

impl Fault {
    /// A short, stable label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::MemoryExhausted(_) => "memory",
            Self::StackOverflow => "stack_overflow",
            Self::Trap(_) => "trap",
            Self::Malformed(_) => "malformed",
            Self::Plugin(_) => "plugin_error",
            Self::Instantiate(_) => "instantiate",
            Self::Quarantined => "quarantined",
        }
    }
}

/// A fault attributed to a named plugin.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin {plugin} {fault}")]
pub struct PluginFault {
    /// `name@version` of the plugin.
    pub plugin: String,
    /// What happened.
    pub fault: Fault,
}
