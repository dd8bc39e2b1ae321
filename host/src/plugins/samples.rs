//! Deterministic sample inputs for every policy kind: the conformance suite, the benchmarks and
//! tests all draw from here, so a plugin is exercised the same way everywhere.

use foresight_sdk::scorer::features;

pub use crate::backends::sim::Rng;
use foresight_sdk::{
    Candidates, ClusterDemand, Event, ForecastRequest, Offering, PlanRequest, Series, Workload,
};

/// User regions of the sample workload.
pub const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];

/// A latency-sensitive service with demand from every sample region.
pub fn workload() -> Workload {
    Workload {
        service: "checkout".into(),
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        demand: vec![420.0, 310.0, 95.0],
        slo_p95_ms: 150.0,
        service_ms: 12.0,
        cpu_request: 0.5,
        memory_request_gib: 1.0,
    }
}

/// The eight standard feature names the host sends: RTT per region, then utilisation, replicas,
/// headroom, price and interruption rate.
pub fn feature_names() -> Vec<String> {
    let mut names: Vec<String> = REGIONS.iter().map(|r| features::rtt(r)).collect();
    names.extend(
        [
            features::UTILISATION,
            features::REPLICAS,
            features::HEADROOM,
            features::HOURLY_PRICE,
            features::INTERRUPTION_RATE,
        ]
        .map(String::from),
    );
    names
}

/// `n` candidate placements with realistic feature values.
pub fn candidates(n: usize, seed: u64) -> Candidates {
    let mut rng = Rng::new(seed);
    let names = feature_names();
    let mut values = Vec::with_capacity(n * names.len());
    for _ in 0..n {
        for _ in REGIONS {
            values.push(rng.range(2.0, 220.0));
        }
        values.push(rng.range(0.05, 0.98));
        values.push(rng.range(1.0, 64.0).floor());
        values.push(rng.range(0.0, 1.0));
        values.push(rng.range(0.02, 0.9));
        values.push(if rng.next_f64() < 0.3 { rng.range(0.01, 0.2) } else { 0.0 });
    }
    Candidates { feature_names: names, features: values }
}

/// `count` series of `len` points at `step` seconds with a daily cycle, a weekly cycle and noise.
pub fn series(count: usize, len: usize, step: u32, seed: u64) -> Vec<Series> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|k| {
            let level = rng.range(50.0, 500.0);
            let values = (0..len)
                .map(|i| {
                    let t = i as f64 * f64::from(step);
                    let day = (t / 86_400.0 * std::f64::consts::TAU).sin();
                    let week = if (t / 86_400.0) as u64 % 7 >= 5 { 0.7 } else { 1.0 };
                    (level * week * (1.0 + 0.5 * day) * rng.range(0.9, 1.1)).max(0.0)
                })
                .collect();
            Series { start: 1_700_000_000 + k as i64 * 60, step, values, ..Default::default() }
        })
        .collect()
}

/// A typical forecasting question: a day of 5-minute history for a few series.
pub fn forecast_request() -> ForecastRequest {
    ForecastRequest {
        series: series(3, 2 * 288, 300, 7),
        horizons: vec![300, 3600, 6 * 3600, 86_400],
        quantiles: vec![0.1, 0.5, 0.9],
    }
}

/// A flash sale announced for the forecast window of `series`.
pub fn flash_sale(series: &Series) -> Event {
    let start = series.last_time() + 1800;
    Event { name: "flash-sale".into(), start, end: start + 1800, multiplier: 10.0 }
}

/// Instance offerings of a cloud region: on-demand and spot in two sizes.
pub fn offerings() -> Vec<Offering> {
    let offering = |name: &str, vcpu: f64, memory_gib: f64, hourly_price: f64, spot: bool| Offering {
        name: name.into(),
        vcpu,
        memory_gib,
        hourly_price,
        spot,
        interruption_rate: if spot { 0.05 } else { 0.0 },
        lead_time_s: if spot { 180 } else { 120 },
        max_nodes: 50,
        current_nodes: 2,
    };
    vec![
        offering("m-4x16", 4.0, 16.0, 0.19, false),
        offering("m-4x16-spot", 4.0, 16.0, 0.06, true),
        offering("c-16x32", 16.0, 32.0, 0.68, false),
        offering("r-4x64", 4.0, 64.0, 0.34, false),
    ]
}

/// A typical planning question for two clusters.
pub fn plan_request() -> PlanRequest {
    let horizons = vec![600, 3600, 6 * 3600];
    let quantiles = vec![0.1, 0.5, 0.9];
    let cluster = |name: &str, base: f64| ClusterDemand {
        cluster: name.into(),
        cpu: horizons
            .iter()
            .enumerate()
            .flat_map(|(h, _)| quantiles.iter().map(move |q| base * (1.0 + 0.2 * h as f64) * (0.6 + q)))
            .collect(),
        memory_gib: horizons
            .iter()
            .enumerate()
            .flat_map(|(h, _)| quantiles.iter().map(move |q| 3.0 * base * (1.0 + 0.2 * h as f64) * (0.6 + q)))
            .collect(),
        offerings: offerings(),
    };
    PlanRequest {
        clusters: vec![cluster("eu-west-1", 20.0), cluster("us-east-1", 55.0)],
        horizons,
        quantiles,
    }
}
