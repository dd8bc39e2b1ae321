//! The decision journal: the recent decisions in memory for the API, and every decision in an
//! append-only JSON-lines log.
//!
//! Write-ahead: a tick's decisions are written (one `write` of whole lines) before any is
//! applied, and their outcomes after. A killed process leaves whole lines, since the kernel
//! completes a `write` it has started; at most a tick's outcomes are missing, which a reader
//! sees as decisions without outcome. `fsync` follows [`FsyncPolicy`]: after every tick by
//! default, so a power failure loses at most one tick.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::act::Outcome;
use crate::config::FsyncPolicy;
use crate::decide::Decision;

/// One line of the decision log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    /// A decision, written before it is applied.
    Decision {
        /// Tick number.
        tick: u64,
        /// Simulated or wall time, Unix seconds.
        time: i64,
        /// Index within the tick.
        index: usize,
        /// `live`, or the experiment's name for a shadow decision.
        source: String,
        /// The decision and its reason.
        #[serde(flatten)]
        decision: Box<Decision>,
    },
    /// A configuration or plugin change, taken or refused.
    Reload {
        /// The tick it was applied before.
        tick: u64,
        /// The file.
        what: String,
        /// Whether it now serves.
        accepted: bool,
        /// The plugin now serving, or why the candidate was refused.
        detail: String,
    },
    /// What became of a decision.
    Outcome {
        /// Tick number.
        tick: u64,
        /// Index within the tick.
        index: usize,
        /// Applied or rejected, with the reason.
        outcome: Outcome,
    },
}

/// The journal.
pub struct Journal {
    recent: VecDeque<Record>,
    capacity: usize,
    file: File,
    fsync: FsyncPolicy,
}

impl Journal {
    /// Opens (creating) the log for appending.
    pub fn open(path: &Path, fsync: FsyncPolicy, capacity: usize) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { recent: VecDeque::with_capacity(capacity.min(4096)), capacity, file, fsync })
    }

    /// Appends records as whole lines in one write, then syncs per policy.
    pub fn append(&mut self, records: Vec<Record>, end_of_tick: bool) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in &records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf)?;
        if self.fsync == FsyncPolicy::Always || (self.fsync == FsyncPolicy::EveryTick && end_of_tick) {
            self.file.sync_data()?;
        }
        for r in records {
            if self.recent.len() == self.capacity {
                self.recent.pop_front();
            }
            self.recent.push_back(r);
        }
        Ok(())
    }

    /// The newest `n` records, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Record> {
        self.recent.iter().skip(self.recent.len().saturating_sub(n)).cloned().collect()
    }
}
