//! WebAssembly glue: the generated bindings and the adapters that let a plain trait
//! implementation serve a world. Nothing here is part of the public API.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::{Config, CostModel, Descriptor, Forecaster, PluginError, PluginKind, Scorer};

pub use wit_bindgen;

/// Bindings of the `forecaster` world.
pub mod forecaster {
    wit_bindgen::generate!({
        world: "forecaster",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_forecaster_world",
        default_bindings_module: "::foresight_sdk::__private::forecaster",
        runtime_path: "::foresight_sdk::__private::wit_bindgen::rt",
    });
}

/// Bindings of the `scorer` world.
pub mod scorer {
    wit_bindgen::generate!({
        world: "scorer",
        path: "../wit",
        // Shared interfaces are generated once, in `forecaster`, and reused.
        with: {
            "foresight:policy/types@0.1.0": ::foresight_sdk::__private::forecaster::foresight::policy::types,
            "foresight:policy/log@0.1.0": ::foresight_sdk::__private::forecaster::foresight::policy::log,
            "foresight:policy/ml@0.1.0": ::foresight_sdk::__private::forecaster::foresight::policy::ml,
        },
        pub_export_macro: true,
        export_macro_name: "export_scorer_world",
        default_bindings_module: "::foresight_sdk::__private::scorer",
        runtime_path: "::foresight_sdk::__private::wit_bindgen::rt",
    });
}

/// Bindings of the `cost-model` world.
pub mod cost_model {
    wit_bindgen::generate!({
        world: "cost-model",
        path: "../wit",
        // Shared interfaces are generated once, in `forecaster`, and reused.
        with: {
            "foresight:policy/types@0.1.0": ::foresight_sdk::__private::forecaster::foresight::policy::types,
            "foresight:policy/log@0.1.0": ::foresight_sdk::__private::forecaster::foresight::policy::log,
            "foresight:policy/ml@0.1.0": ::foresight_sdk::__private::forecaster::foresight::policy::ml,
        },
        pub_export_macro: true,
        export_macro_name: "export_cost_model_world",
        default_bindings_module: "::foresight_sdk::__private::cost_model",
        runtime_path: "::foresight_sdk::__private::wit_bindgen::rt",
    });
}

thread_local! {
    // A component instance holds exactly one configured plugin; the host calls `configure`
    // before anything else and never from two threads.
    static PLUGIN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn configure<T: 'static>(
    text: &str,
    descriptor: Descriptor,
    build: impl FnOnce(&Config) -> Result<T, PluginError>,
) -> Result<(), PluginError> {
    let config = Config::parse(text, &descriptor.config_keys)?;
    let plugin = build(&config)?;
    PLUGIN.with_borrow_mut(|slot| *slot = Some(Box::new(plugin)));
    Ok(())
}

fn with_plugin<T: 'static, R>(f: impl FnOnce(&mut T) -> Result<R, PluginError>) -> Result<R, PluginError> {
    PLUGIN.with_borrow_mut(|slot| match slot.as_mut().and_then(|p| p.downcast_mut::<T>()) {
        Some(plugin) => f(plugin),
        None => Err(PluginError::Failed("the plugin was called before `configure` succeeded".into())),
    })
}

use forecaster::foresight::policy::types as wit;

impl From<PluginError> for wit::PluginError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::InvalidConfig(m) => Self::InvalidConfig(m),
            PluginError::InvalidInput(m) => Self::InvalidInput(m),
            PluginError::Failed(m) => Self::Failed(m),
        }
    }
}

impl From<Descriptor> for wit::Descriptor {
    fn from(d: Descriptor) -> Self {
        Self {
            name: d.name,
            version: d.version,
            kind: match d.kind {
                PluginKind::Forecaster => wit::PluginKind::Forecaster,
                PluginKind::Scorer => wit::PluginKind::Scorer,
                PluginKind::CostModel => wit::PluginKind::CostModel,
            },
            summary: d.summary,
            config_keys: d
                .config_keys
                .into_iter()
                .map(|k| wit::ConfigKey {
                    name: k.name,
                    description: k.description,
                    default_value: k.default_value,
                })
                .collect(),
        }
    }
}

/// Serves a [`Forecaster`] as the `forecaster` world.
pub struct ForecasterAdapter<T>(PhantomData<T>);
/// Serves a [`Scorer`] as the `scorer` world.
pub struct ScorerAdapter<T>(PhantomData<T>);
/// Serves a [`CostModel`] as the `cost-model` world.
pub struct CostModelAdapter<T>(PhantomData<T>);

impl<T: Forecaster> forecaster::exports::foresight::policy::forecasting::Guest for ForecasterAdapter<T> {
    fn describe() -> wit::Descriptor {
        T::describe().into()
    }

    fn configure(config: String) -> Result<(), wit::PluginError> {
        configure(&config, T::describe(), T::new).map_err(Into::into)
    }

    fn forecast(
        request: forecaster::exports::foresight::policy::forecasting::ForecastRequest,
    ) -> Result<Vec<Vec<f64>>, wit::PluginError> {
        let request = crate::ForecastRequest {
            series: request
                .series
                .into_iter()
                .map(|s| crate::Series {
                    start: s.start,
                    step: s.step,
                    values: s.values,
                    covariate_names: s.covariate_names,
                    covariates: s.covariates,
                    events: s
                        .events
                        .into_iter()
                        .map(|e| crate::Event {
                            name: e.name,
                            start: e.start,
                            end: e.end,
                            multiplier: e.multiplier,
                        })
                        .collect(),
                })
                .collect(),
            horizons: request.horizons,
            quantiles: request.quantiles,
        };
        request.validate()?;
        with_plugin(|p: &mut T| p.forecast(&request)).map_err(Into::into)
    }
}

/// Most prepared schemas one instance keeps; the host starts a fresh instance long before.
const MAX_SCHEMAS: usize = 4096;

/// A scorer and the questions the host has prepared for it.
struct ScorerState<T> {
    plugin: T,
    prepared: Vec<(crate::Workload, crate::Candidates)>,
}

impl<T: Scorer> scorer::exports::foresight::policy::scoring::Guest for ScorerAdapter<T> {
    fn describe() -> wit::Descriptor {
        T::describe().into()
    }

    fn configure(config: String) -> Result<(), wit::PluginError> {
        let build = |c: &Config| T::new(c).map(|plugin| ScorerState { plugin, prepared: Vec::new() });
        configure(&config, T::describe(), build).map_err(Into::into)
    }

    fn prepare(
        service: String,
        regions: Vec<String>,
        feature_names: Vec<String>,
    ) -> Result<u32, wit::PluginError> {
        with_plugin(|state: &mut ScorerState<T>| {
            if state.prepared.len() >= MAX_SCHEMAS {
                return Err(PluginError::InvalidInput(format!("more than {MAX_SCHEMAS} prepared schemas")));
            }
            let workload = crate::Workload { service, regions, ..Default::default() };
            let candidates = crate::Candidates { feature_names, features: Vec::new() };
            state.prepared.push((workload, candidates));
            Ok(state.prepared.len() as u32 - 1)
        })
        .map_err(Into::into)
    }

    fn score(
        schema: u32,
        load: scorer::exports::foresight::policy::scoring::Load,
        features: Vec<f64>,
        explain: bool,
    ) -> Result<scorer::exports::foresight::policy::scoring::Scores, wit::PluginError> {
        with_plugin(|state: &mut ScorerState<T>| {
            let Some((workload, candidates)) = state.prepared.get_mut(schema as usize) else {
                return Err(PluginError::InvalidInput(format!("schema {schema} was never prepared")));
            };
            if load.demand.len() != workload.regions.len() {
                return Err(PluginError::InvalidInput(format!(
                    "{} demand values for {} regions",
                    load.demand.len(),
                    workload.regions.len()
                )));
            }
            // Reuse the prepared names; only the numbers are new.
            workload.demand = load.demand;
            workload.slo_p95_ms = load.slo_p95_ms;
            workload.service_ms = load.service_ms;
            workload.cpu_request = load.cpu_request;
            workload.memory_request_gib = load.memory_request_gib;
            candidates.features = features;
            let shaped = crate::Candidates::check_shape(&candidates.feature_names, &candidates.features);
            let scores = shaped.and_then(|()| state.plugin.score(workload, candidates, explain));
            candidates.features = Vec::new();
            scores
        })
        .map(|s| scorer::exports::foresight::policy::scoring::Scores {
            values: s.values,
            contributions: s.contributions,
        })
        .map_err(Into::into)
    }
}

impl<T: CostModel> cost_model::exports::foresight::policy::planning::Guest for CostModelAdapter<T> {
    fn describe() -> wit::Descriptor {
        T::describe().into()
    }

    fn configure(config: String) -> Result<(), wit::PluginError> {
        configure(&config, T::describe(), T::new).map_err(Into::into)
    }

    fn plan(
        request: cost_model::exports::foresight::policy::planning::PlanRequest,
    ) -> Result<Vec<cost_model::exports::foresight::policy::planning::ClusterPlan>, wit::PluginError> {
        use cost_model::exports::foresight::policy::planning as plan;
        let request = crate::PlanRequest {
            horizons: request.horizons,
            quantiles: request.quantiles,
            clusters: request
                .clusters
                .into_iter()
                .map(|c| crate::ClusterDemand {
                    cluster: c.cluster,
                    cpu: c.cpu,
                    memory_gib: c.memory_gib,
                    offerings: c
                        .offerings
                        .into_iter()
                        .map(|o| crate::Offering {
                            name: o.name,
                            vcpu: o.vcpu,
                            memory_gib: o.memory_gib,
                            hourly_price: o.hourly_price,
                            spot: o.spot,
                            interruption_rate: o.interruption_rate,
                            lead_time_s: o.lead_time_s,
                            max_nodes: o.max_nodes,
                            current_nodes: o.current_nodes,
                        })
                        .collect(),
                })
                .collect(),
        };
        request.validate()?;
        let plans = with_plugin(|p: &mut T| p.plan(&request))?;
        Ok(plans
            .into_iter()
            .map(|p| plan::ClusterPlan {
                steps: p
                    .steps
                    .into_iter()
                    .map(|s| plan::CapacityStep {
                        offering: s.offering,
                        nodes: s.nodes,
                        request_in_s: s.request_in_s,
                    })
                    .collect(),
                hourly_cost: p.hourly_cost,
            })
            .collect())
    }
}
