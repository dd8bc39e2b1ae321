//! The world a plugin instance lives in: its store data, the imports it may call, and the
//! limits that contain it.

use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::foresight::policy::{log, ml};
use super::limits::{Capability, Limits};
use crate::ml::{Grants, MlError, Tensor};

/// Most log messages one call may write; the rest are counted and dropped.
const LOG_MESSAGES_PER_CALL: u32 = 64;
/// Longest log message kept, in bytes.
const LOG_MESSAGE_BYTES: usize = 2048;
/// Bytes of stderr kept per instance (where a Rust guest's panic message lands).
const STDERR_BYTES: usize = 8 * 1024;

/// Store data of one plugin instance.
pub struct Sandbox {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    memory: MemoryCap,
    log_budget: u32,
    logs_dropped: u32,
    models: Grants,
}

impl Sandbox {
    /// A sandbox that grants nothing: no files, network, environment, arguments, clock or
    /// randomness (the last two are not even linked unless granted), and only the models in
    /// `limits.models`.
    pub fn new(plugin: Arc<str>, limits: &Limits) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        Self {
            plugin,
            wasi,
            table: ResourceTable::new(),
            stderr,
            memory: MemoryCap { cap: limits.memory_bytes(), denied: false },
            log_budget: LOG_MESSAGES_PER_CALL,
            logs_dropped: 0,
            models: Grants::new(limits.models.clone()),
        }
    }

    /// Resets per-call state before a call.
    pub fn begin_call(&mut self) {
        self.memory.denied = false;
        self.log_budget = LOG_MESSAGES_PER_CALL;
        self.logs_dropped = 0;
    }

    /// Whether the plugin tried to grow past its memory cap since `begin_call`.
    pub fn memory_denied(&self) -> bool {
        self.memory.denied
    }

    /// What the plugin wrote to stderr (a Rust guest's panic message), trimmed.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_owned()
    }

    /// The resource limiter the store consults on every memory or table growth.
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.memory
    }
}

/// Caps linear memory and remembers a refusal, so a guest's allocation failure (which a Rust
/// guest turns into an abort) is reported as memory exhaustion rather than a bare trap.
struct MemoryCap {
    cap: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.cap;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl log::Host for Sandbox {
    fn log(&mut self, level: log::Level, mut message: String) {
        if self.log_budget == 0 {
            self.logs_dropped += 1;
            if self.logs_dropped == 1 {
                tracing::warn!(plugin = %self.plugin, "plugin exceeded {LOG_MESSAGES_PER_CALL} log messages in one call; dropping the rest");
            }
            return;
        }
        self.log_budget -= 1;
        if message.len() > LOG_MESSAGE_BYTES {
            let mut end = LOG_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let plugin = &*self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl ml::Host for Sandbox {
    fn infer(&mut self, model: String, inputs: Vec<ml::Tensor>) -> Result<Vec<ml::Tensor>, ml::MlError> {
        let inputs = inputs.into_iter().map(|t| Tensor { shape: t.shape, data: t.data }).collect();
        match self.models.infer(&self.plugin, &model, inputs) {
            Ok(outputs) => {
                Ok(outputs.into_iter().map(|t| ml::Tensor { shape: t.shape, data: t.data }).collect())
            }
            Err(e) => {
                tracing::debug!(plugin = %self.plugin, model, kind = e.metric_label(), "inference refused: {e}");
                Err(match e {
                    MlError::NotGranted { .. } => ml::MlError::NotFound(e.to_string()),
                    MlError::InvalidInput { .. } => ml::MlError::InvalidInput(e.to_string()),
                    _ => ml::MlError::Failed(e.to_string()),
                })
            }
        }
    }
}

struct HasSandbox;

impl wasmtime::component::HasData for HasSandbox {
    type Data<'a> = &'a mut Sandbox;
}

struct HasTable;

impl wasmtime::component::HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Builds the linker for a plugin: the host's `log` and `ml`, the WASI interfaces a Rust guest
/// needs to start (stdio, environment, exit, terminals — all empty), and clocks or randomness
/// only when granted. A component importing anything else fails to instantiate.
pub fn linker(engine: &Engine, limits: &Limits) -> wasmtime::Result<Linker<Sandbox>> {
    let mut l = Linker::new(engine);
    log::add_to_linker::<Sandbox, HasSandbox>(&mut l, |s| s)?;
    ml::add_to_linker::<Sandbox, HasSandbox>(&mut l, |s| s)?;

    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<Sandbox, HasTable>(&mut l, |s| &mut s.table)?;
    sync::io::poll::add_to_linker::<Sandbox, HasTable>(&mut l, |s| &mut s.table)?;
    sync::io::streams::add_to_linker::<Sandbox, HasTable>(&mut l, |s| &mut s.table)?;
    cli::exit::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::environment::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::stdin::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::stdout::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::stderr::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::terminal_input::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::terminal_output::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::terminal_stdin::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::terminal_stdout::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;
    cli::terminal_stderr::add_to_linker::<Sandbox, WasiCli>(&mut l, Sandbox::cli)?;

    if limits.grants(Capability::Clock) {
        clocks::wall_clock::add_to_linker::<Sandbox, WasiClocks>(&mut l, Sandbox::clocks)?;
        clocks::monotonic_clock::add_to_linker::<Sandbox, WasiClocks>(&mut l, Sandbox::clocks)?;
    }
    if limits.grants(Capability::Random) {
        random::random::add_to_linker::<Sandbox, WasiRandom>(&mut l, |s| s.wasi.random())?;
        random::insecure::add_to_linker::<Sandbox, WasiRandom>(&mut l, |s| s.wasi.random())?;
        random::insecure_seed::add_to_linker::<Sandbox, WasiRandom>(&mut l, |s| s.wasi.random())?;
    }
    Ok(l)
}
