//! What a plugin may use: its time and memory budget, its fault tolerance and the capabilities
//! and models the operator grants it. Plugins get nothing that is not listed here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A capability beyond pure computation. Without a grant the matching WASI imports trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Wall and monotonic clocks.
    Clock,
    /// Secure and insecure random numbers.
    Random,
}

/// Budgets and grants for one plugin.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Limits {
    /// Longest a single call may run before it is interrupted, in milliseconds.
    pub deadline_ms: u64,
    /// Most linear memory one instance may hold, in MiB.
    pub memory_mib: u64,
    /// Consecutive faults after which the plugin is quarantined.
    pub max_consecutive_faults: u32,
    /// How long a quarantine lasts before the plugin is tried again, in seconds.
    pub quarantine_s: u64,
    /// Capabilities granted beyond computation.
    pub capabilities: Vec<Capability>,
    /// ONNX models the plugin may run through the host's `ml` interface: name → file. Set from
    /// the role's `models` table (not written under `limits`), with paths already resolved, so
    /// everything that starts a plugin from its limits passes the grants along.
    #[serde(skip)]
    pub models: BTreeMap<String, PathBuf>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline_ms: 250,
            memory_mib: 64,
            max_consecutive_faults: 3,
            quarantine_s: 60,
            capabilities: Vec::new(),
            models: BTreeMap::new(),
        }
    }
}

impl Limits {
    /// The per-call deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// How long a quarantine lasts.
    pub fn quarantine(&self) -> Duration {
        Duration::from_secs(self.quarantine_s)
    }

    /// Whether a capability is granted.
    pub fn grants(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// Checks that the numbers make sense, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.deadline_ms == 0 || self.deadline_ms > 60_000 {
            return Err(format!("deadline-ms = {} must be between 1 and 60000", self.deadline_ms));
        }
        if self.memory_mib == 0 || self.memory_mib > 4096 {
            return Err(format!("memory-mib = {} must be between 1 and 4096", self.memory_mib));
        }
        if self.max_consecutive_faults == 0 {
            return Err("max-consecutive-faults must be at least 1".into());
        }
        Ok(())
    }
}
