//! A started Wasm plugin: a pre-linked component and a small pool of configured instances.
//!
//! Each call takes an idle instance (or builds one from the `InstancePre`), arms the deadline,
//! calls, and returns the instance to the pool. An instance that faulted is dropped, never
//! reused — wasmtime cannot re-enter an instance after a trap, and a plugin's half-updated state
//! must not leak into the next call.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use foresight_sdk::{
    Candidates, ClusterPlan, Descriptor, ForecastRequest, PlanRequest, PluginError, PluginKind, Scores,
    Workload,
};
use rustc_hash::{FxHashMap, FxHasher};
use wasmtime::component::InstancePre;
use wasmtime::{Engine, Store, Trap};

use super::bindings::exports::foresight::policy::{forecasting, planning, scoring};
use super::bindings::foresight::policy::types as wit;
use super::convert;
use super::fault::{Fault, LoadError};
use super::limits::Limits;
use super::policy::{ForecastPolicy, PlanPolicy, Policy, ScorePolicy};
use super::runtime::{EPOCH_TICK, Loaded};
use super::sandbox::{self, Sandbox};

/// Idle instances kept per plugin; more concurrent callers build extra ones and drop them.
const IDLE_INSTANCES: usize = 4;

/// Where a kind's exports sit in the component, looked up once.
#[derive(Clone)]
enum Indices {
    Forecasting(forecasting::GuestIndices),
    Scoring(scoring::GuestIndices),
    Planning(planning::GuestIndices),
}

/// A kind's exports bound to one instance.
enum Guest {
    Forecasting(forecasting::Guest),
    Scoring(scoring::Guest),
    Planning(planning::Guest),
}

/// Scorer schemas one instance may hold before it is retired for a fresh one.
const SCHEMAS_PER_INSTANCE: usize = 1024;

/// One configured instance and its store.
struct Live {
    store: Store<Sandbox>,
    guest: Guest,
    /// Scorer schemas prepared in this instance, by hash of (service, regions, feature names).
    schemas: FxHashMap<u64, (SchemaKey, u32)>,
}

/// What a scorer schema names; kept to confirm a hash hit.
struct SchemaKey {
    service: String,
    regions: Vec<String>,
    names: Vec<String>,
}

impl SchemaKey {
    fn hash(workload: &Workload, names: &[String]) -> u64 {
        // Fx, not SipHash: this runs on every call, and a collision only costs a `prepare`.
        let mut h = FxHasher::default();
        (&workload.service, &workload.regions, names).hash(&mut h);
        h.finish()
    }

    fn matches(&self, workload: &Workload, names: &[String]) -> bool {
        self.service == workload.service && self.regions == workload.regions && self.names == names
    }
}

/// A started sandboxed plugin.
pub struct WasmPlugin {
    descriptor: Descriptor,
    label: Arc<str>,
    path: PathBuf,
    hash: String,
    engine: Engine,
    pre: InstancePre<Sandbox>,
    indices: Indices,
    limits: Limits,
    config: String,
    deadline_ticks: u64,
    idle: Mutex<Vec<Live>>,
}

impl WasmPlugin {
    pub(super) fn start(
        engine: &Engine,
        loaded: &Loaded,
        limits: Limits,
        config: String,
    ) -> Result<Self, LoadError> {
        let file_label: Arc<str> =
            loaded.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default().into();
        let start_error = |plugin: &str, fault: Fault| LoadError::Start {
            path: loaded.path.clone(),
            plugin: plugin.to_owned(),
            fault,
        };

        let linker = sandbox::linker(engine, &limits)
            .map_err(|e| start_error(&file_label, Fault::Instantiate(format!("{e:#}"))))?;
        // An import the host does not provide (filesystem, sockets, an ungranted clock) is
        // refused here, at load time, rather than failing some later call.
        let pre = linker.instantiate_pre(&loaded.component).map_err(|e| {
            let hint = "this host provides foresight:policy/log and /ml, wasi:cli and wasi:io, and \
                        wasi:clocks or wasi:random only when `clock` or `random` is listed in the \
                        plugin's limits.capabilities";
            start_error(&file_label, Fault::Instantiate(format!("{e:#}; {hint}")))
        })?;
        let indices = match loaded.kind {
            PluginKind::Forecaster => forecasting::GuestIndices::new(&pre).map(Indices::Forecasting),
            PluginKind::Scorer => scoring::GuestIndices::new(&pre).map(Indices::Scoring),
            PluginKind::CostModel => planning::GuestIndices::new(&pre).map(Indices::Planning),
        }
        .map_err(|e| start_error(&file_label, Fault::Instantiate(format!("{e:#}"))))?;

        let deadline_ticks = limits.deadline().as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64 + 1;
        let mut plugin = Self {
            descriptor: foresight_sdk::Descriptor::new(&file_label, "?", loaded.kind, ""),
            label: file_label.clone(),
            path: loaded.path.clone(),
            hash: loaded.hash.clone(),
            engine: engine.clone(),
            pre,
            indices,
            limits,
            config,
            deadline_ticks,
            idle: Mutex::new(Vec::new()),
        };

        // The first instance tells us who the plugin is, and proves it accepts its config.
        let mut live = plugin.instantiate_unconfigured().map_err(|f| start_error(&file_label, f))?;
        let descriptor = plugin.describe(&mut live).map_err(|f| start_error(&file_label, f))?;
        let label: Arc<str> = format!("{}@{}", descriptor.name, descriptor.version).into();
        if descriptor.kind != loaded.kind {
            let fault = Fault::Malformed(format!(
                "describe() says it is a {} but the component exports the {} interface",
                descriptor.kind, loaded.kind
            ));
            return Err(start_error(&label, fault));
        }
        plugin.descriptor = descriptor;
        plugin.label = label.clone();
        plugin.configure(&mut live).map_err(|f| start_error(&label, f))?;
        plugin.release(live);
        Ok(plugin)
    }

    /// The file the plugin was loaded from.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Hex SHA-256 of the component.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The limits it runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The configuration text it was given.
    pub fn config(&self) -> &str {
        &self.config
    }

    fn instantiate_unconfigured(&self) -> Result<Live, Fault> {
        let mut store = Store::new(&self.engine, Sandbox::new(self.label.clone(), &self.limits));
        store.limiter(|s| s.limiter());
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks);
        let instance = self.pre.instantiate(&mut store).map_err(|e| self.classify(e, store.data()))?;
        let guest = match &self.indices {
            Indices::Forecasting(i) => i.load(&mut store, &instance).map(Guest::Forecasting),
            Indices::Scoring(i) => i.load(&mut store, &instance).map(Guest::Scoring),
            Indices::Planning(i) => i.load(&mut store, &instance).map(Guest::Planning),
        }
        .map_err(|e| Fault::Instantiate(format!("{e:#}")))?;
        Ok(Live { store, guest, schemas: FxHashMap::default() })
    }

    fn describe(&self, live: &mut Live) -> Result<Descriptor, Fault> {
        self.run(live, |Live { store, guest, .. }| {
            let d = match guest {
                Guest::Forecasting(g) => g.call_describe(store)?,
                Guest::Scoring(g) => g.call_describe(store)?,
                Guest::Planning(g) => g.call_describe(store)?,
            };
            Ok(Ok(convert::descriptor(d)))
        })
    }

    fn configure(&self, live: &mut Live) -> Result<(), Fault> {
        let config = self.config.as_str();
        self.run(live, |Live { store, guest, .. }| match guest {
            Guest::Forecasting(g) => g.call_configure(store, config),
            Guest::Scoring(g) => g.call_configure(store, config),
            Guest::Planning(g) => g.call_configure(store, config),
        })
    }

    /// Runs one guest call with a fresh deadline, turning every failure into a [`Fault`].
    fn run<R>(
        &self,
        live: &mut Live,
        call: impl FnOnce(&mut Live) -> wasmtime::Result<Result<R, wit::PluginError>>,
    ) -> Result<R, Fault> {
        live.store.data_mut().begin_call();
        live.store.set_epoch_deadline(self.deadline_ticks);
        match call(live) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Fault::Plugin(convert::plugin_error(e))),
            Err(e) => Err(self.classify(e, live.store.data())),
        }
    }

    fn classify(&self, error: wasmtime::Error, sandbox: &Sandbox) -> Fault {
        // A Rust guest whose allocation is refused aborts with `unreachable`; the limiter's
        // record says what really happened.
        if sandbox.memory_denied() {
            return Fault::MemoryExhausted(self.limits.memory_mib);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Fault::Timeout(self.limits.deadline()),
            Some(Trap::StackOverflow) => Fault::StackOverflow,
            // A Rust guest keeps large locals on a stack in its linear memory; running off its
            // end shows up as an out-of-bounds access rather than a wasm stack overflow.
            Some(Trap::MemoryOutOfBounds) => Fault::Trap(format!(
                "{} (in a Rust plugin, usually its stack overflowing from deep recursion)",
                Trap::MemoryOutOfBounds
            )),
            Some(trap) => {
                let stderr = sandbox.stderr_text();
                Fault::Trap(if stderr.is_empty() {
                    trap.to_string()
                } else {
                    format!("{trap}; plugin stderr: {stderr}")
                })
            }
            None => Fault::Trap(error.root_cause().to_string()),
        }
    }

    fn acquire(&self) -> Result<Live, Fault> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(live) => Ok(live),
            None => {
                tracing::debug!(plugin = %self.label, "starting a new instance");
                let mut live = self.instantiate_unconfigured()?;
                self.configure(&mut live)
                    .map_err(|f| Fault::Instantiate(format!("configure failed: {f}")))?;
                Ok(live)
            }
        }
    }

    fn release(&self, live: Live) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_INSTANCES {
            idle.push(live);
        }
    }

    /// One policy call on a pooled instance; a faulted instance is dropped.
    fn call<R>(
        &self,
        call: impl FnOnce(&mut Live) -> wasmtime::Result<Result<R, wit::PluginError>>,
    ) -> Result<R, Fault> {
        let mut live = self.acquire()?;
        let _span = tracing::trace_span!("plugin_call", plugin = %self.label).entered();
        let result = self.run(&mut live, call);
        // A plugin error is an answer, not a crash: the instance stays usable. Any other fault
        // kills it, and one holding many schemas is retired so they cannot pile up.
        let healthy = matches!(result, Ok(_) | Err(Fault::Plugin(_)));
        if healthy && live.schemas.len() < SCHEMAS_PER_INSTANCE {
            self.release(live);
        }
        result
    }

    fn wrong_kind(&self, wanted: PluginKind) -> wit::PluginError {
        wit::PluginError::Failed(format!(
            "{} is a {} plugin, not a {wanted}",
            self.label, self.descriptor.kind
        ))
    }
}

impl Policy for WasmPlugin {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn label(&self) -> String {
        self.label.to_string()
    }
}

impl ForecastPolicy for WasmPlugin {
    fn forecast(&self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, Fault> {
        let request = convert::forecast_request(request);
        self.call(|Live { store, guest, .. }| match guest {
            Guest::Forecasting(g) => g.call_forecast(store, &request),
            _ => Ok(Err(self.wrong_kind(PluginKind::Forecaster))),
        })
    }
}

impl ScorePolicy for WasmPlugin {
    fn score(&self, workload: &Workload, candidates: &Candidates, explain: bool) -> Result<Scores, Fault> {
        let load = convert::load(workload);
        let names = &candidates.feature_names;
        self.call(|Live { store, guest, schemas }| {
            let Guest::Scoring(g) = guest else { return Ok(Err(self.wrong_kind(PluginKind::Scorer))) };
            // Names cross the boundary once per instance; after that a call carries numbers only.
            let hash = SchemaKey::hash(workload, names);
            let schema = match schemas.get(&hash) {
                Some((key, id)) if key.matches(workload, names) => *id,
                _ => match g.call_prepare(&mut *store, &workload.service, &workload.regions, names)? {
                    Ok(id) => {
                        let key = SchemaKey {
                            service: workload.service.clone(),
                            regions: workload.regions.clone(),
                            names: names.clone(),
                        };
                        schemas.insert(hash, (key, id));
                        id
                    }
                    Err(e) => return Ok(Err(e)),
                },
            };
            g.call_score(store, schema, &load, &candidates.features, explain)
        })
        .map(convert::scores)
    }
}

impl PlanPolicy for WasmPlugin {
    fn plan(&self, request: &PlanRequest) -> Result<Vec<ClusterPlan>, Fault> {
        let request = convert::plan_request(request);
        self.call(|Live { store, guest, .. }| match guest {
            Guest::Planning(g) => g.call_plan(store, &request),
            _ => Ok(Err(self.wrong_kind(PluginKind::CostModel))),
        })
        .map(convert::cluster_plans)
    }
}

impl From<PluginError> for Fault {
    fn from(e: PluginError) -> Self {
        Fault::Plugin(e)
    }
}
