//! Conversions between the SDK's plain types (what the host works with) and the generated
//! binding types (what crosses into the sandbox).

use foresight_sdk::{Descriptor, PluginError, PluginKind};

use super::bindings::exports::foresight::policy::{forecasting, planning, scoring};
use super::bindings::foresight::policy::types as wit;

pub fn descriptor(d: wit::Descriptor) -> Descriptor {
    Descriptor {
        name: d.name,
        version: d.version,
        kind: match d.kind {
            wit::PluginKind::Forecaster => PluginKind::Forecaster,
            wit::PluginKind::Scorer => PluginKind::Scorer,
            wit::PluginKind::CostModel => PluginKind::CostModel,
        },
        summary: d.summary,
        config_keys: d
            .config_keys
            .into_iter()
            .map(|k| foresight_sdk::ConfigKey {
                name: k.name,
                description: k.description,
                default_value: k.default_value,
            })
            .collect(),
    }
}

pub fn plugin_error(e: wit::PluginError) -> PluginError {
    match e {
        wit::PluginError::InvalidConfig(m) => PluginError::InvalidConfig(m),
        wit::PluginError::InvalidInput(m) => PluginError::InvalidInput(m),
        wit::PluginError::Failed(m) => PluginError::Failed(m),
    }
}

pub fn forecast_request(r: &foresight_sdk::ForecastRequest) -> forecasting::ForecastRequest {
    forecasting::ForecastRequest {
        series: r
            .series
            .iter()
            .map(|s| forecasting::Series {
                start: s.start,
                step: s.step,
                values: s.values.clone(),
                covariate_names: s.covariate_names.clone(),
                covariates: s.covariates.clone(),
                events: s
                    .events
                    .iter()
                    .map(|e| forecasting::Event {
                        name: e.name.clone(),
                        start: e.start,
                        end: e.end,
                        multiplier: e.multiplier,
                    })
                    .collect(),
            })
            .collect(),
        horizons: r.horizons.clone(),
        quantiles: r.quantiles.clone(),
    }
}

pub fn load(w: &foresight_sdk::Workload) -> scoring::Load {
    scoring::Load {
        demand: w.demand.clone(),
        slo_p95_ms: w.slo_p95_ms,
        service_ms: w.service_ms,
        cpu_request: w.cpu_request,
        memory_request_gib: w.memory_request_gib,
    }
}

pub fn scores(s: scoring::Scores) -> foresight_sdk::Scores {
    foresight_sdk::Scores { values: s.values, contributions: s.contributions }
}

pub fn plan_request(r: &foresight_sdk::PlanRequest) -> planning::PlanRequest {
    planning::PlanRequest {
        horizons: r.horizons.clone(),
        quantiles: r.quantiles.clone(),
        clusters: r
            .clusters
            .iter()
            .map(|c| planning::ClusterDemand {
                cluster: c.cluster.clone(),
                cpu: c.cpu.clone(),
                memory_gib: c.memory_gib.clone(),
                offerings: c
                    .offerings
                    .iter()
                    .map(|o| planning::Offering {
                        name: o.name.clone(),
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
    }
}

pub fn cluster_plans(plans: Vec<planning::ClusterPlan>) -> Vec<foresight_sdk::ClusterPlan> {
    plans
        .into_iter()
        .map(|p| foresight_sdk::ClusterPlan {
            steps: p
                .steps
                .into_iter()
                .map(|s| foresight_sdk::CapacityStep {
                    offering: s.offering,
                    nodes: s.nodes,
                    request_in_s: s.request_in_s,
                })
                .collect(),
            hourly_cost: p.hourly_cost,
        })
        .collect()
}
