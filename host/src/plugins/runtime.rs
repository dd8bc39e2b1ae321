//! The shared engine: one wasmtime `Engine` for every plugin, the epoch clock that enforces
//! deadlines, and loading (compile or cache, then identify the policy kind).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use foresight_sdk::PluginKind;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel};

use super::cache::{ComponentCache, Origin};
use super::fault::{CONTRACT_VERSION, LoadError};
use super::instance::WasmPlugin;
use super::limits::Limits;

/// Period of the epoch clock; deadlines are enforced to within one period.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The plugin runtime. Cheap to share behind an `Arc`; dropping it stops its epoch clock.
pub struct Runtime {
    engine: Engine,
    cache: ComponentCache,
    ticker: Option<EpochTicker>,
}

/// A compiled component whose policy kind is known.
#[derive(Clone)]
pub struct Loaded {
    /// Where it came from.
    pub path: PathBuf,
    /// Hex SHA-256 of the component bytes.
    pub hash: String,
    /// The policy kind it exports.
    pub kind: PluginKind,
    /// The compiled component.
    pub component: Component,
    /// Compiled now or loaded from the cache.
    pub origin: Origin,
    /// Time spent compiling or deserialising.
    pub load_time: Duration,
}

impl Runtime {
    /// A runtime caching compiled components in `cache_dir` (or nowhere).
    pub fn new(cache_dir: Option<PathBuf>) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Deadlines: the generated code checks an epoch counter that a clock thread advances.
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self { engine, cache: ComponentCache::new(cache_dir), ticker: Some(ticker) })
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads, compiles (or loads from the cache) and identifies a component file.
    pub fn load_file(&self, path: &Path) -> Result<Loaded, LoadError> {
        let bytes =
            std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        self.load_bytes(path, &bytes)
    }

    /// Compiles (or loads from the cache) and identifies component bytes; `path` names them in
    /// errors.
    pub fn load_bytes(&self, path: &Path, bytes: &[u8]) -> Result<Loaded, LoadError> {
        let path = path.to_owned();
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err(LoadError::NotWasm { path });
        }
        if bytes[4..8] == [1, 0, 0, 0] {
            return Err(LoadError::CoreModule { path });
        }
        let hash = ComponentCache::content_hash(bytes);
        let started = Instant::now();
        let (component, origin) = self
            .cache
            .load(&self.engine, bytes, &hash)
            .map_err(|e| LoadError::Compile { path: path.clone(), reason: root_cause(&e) })?;
        let load_time = started.elapsed();
        let kind = identify(&self.engine, &component, &path)?;
        Ok(Loaded { path, hash, kind, component, origin, load_time })
    }

    /// Instantiates and configures a loaded plugin, checking it is of the expected kind.
    pub fn start(
        &self,
        loaded: &Loaded,
        expected: Option<PluginKind>,
        limits: &Limits,
        config: &str,
    ) -> Result<WasmPlugin, LoadError> {
        if let Some(expected) = expected.filter(|k| *k != loaded.kind) {
            return Err(LoadError::KindMismatch { path: loaded.path.clone(), found: loaded.kind, expected });
        }
        WasmPlugin::start(&self.engine, loaded, limits.clone(), config.to_owned())
    }

    /// Loads and starts a plugin file in one step.
    pub fn start_file(
        &self,
        path: &Path,
        expected: Option<PluginKind>,
        limits: &Limits,
        config: &str,
    ) -> Result<WasmPlugin, LoadError> {
        let loaded = self.load_file(path)?;
        self.start(&loaded, expected, limits, config)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

fn root_cause(e: &wasmtime::Error) -> String {
    e.chain().last().map(ToString::to_string).unwrap_or_else(|| e.to_string())
}

/// Finds the one policy interface a component exports and checks its contract version.
fn identify(engine: &Engine, component: &Component, path: &Path) -> Result<PluginKind, LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let mut found = Vec::new();
    for name in &exports {
        let Some(rest) = name.strip_prefix("foresight:policy/") else { continue };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        let kind = match interface {
            "forecasting" => PluginKind::Forecaster,
            "scoring" => PluginKind::Scorer,
            "planning" => PluginKind::CostModel,
            _ => continue,
        };
        if version != CONTRACT_VERSION {
            return Err(LoadError::ContractVersion { path: path.to_owned(), found: version.to_owned() });
        }
        found.push(kind);
    }
    match found.as_slice() {
        [kind] => Ok(*kind),
        [] => Err(LoadError::WrongWorld {
            path: path.to_owned(),
            exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") },
        }),
        kinds => Err(LoadError::Ambiguous {
            path: path.to_owned(),
            kinds: kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own thread, so deadlines hold even
/// when every async worker is busy inside plugin calls.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("foresight-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("the OS refused to start the epoch clock thread");
        Self { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
