//! `foresight plugin new`: a new plugin crate that builds and passes `foresight plugin check`
//! exactly as generated, with a simple real algorithm to replace.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use foresight_sdk::PluginKind;

/// Creates `dir/name` holding a plugin crate of `kind`.
pub fn new_plugin(name: &str, kind: PluginKind, dir: &Path) -> anyhow::Result<ExitCode> {
    validate_name(name)?;
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists; pick another name or remove it", root.display());
    }
    std::fs::create_dir_all(root.join("src")).with_context(|| format!("cannot create {}", root.display()))?;
    let root = root.canonicalize()?;
    let (sdk, workspace) = locate_sdk(&root)?;
    let sdk_path = relative(&root, &sdk);
    // Under plugins/ the crate joins the workspace and its profiles. Anywhere else it stands
    // alone: it needs the profile `plugin build` uses and, inside the Foresight checkout, an
    // empty [workspace] so cargo does not claim it for the parent.
    let member = workspace.as_ref().is_some_and(|w| root.parent() == Some(&w.join("plugins")));
    let mut standalone = String::new();
    if !member {
        if workspace.is_some() {
            standalone.push_str("\n[workspace]\n");
        }
        standalone.push_str(PLUGIN_PROFILE);
    }

    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
description = "A Foresight {kind} plugin."

[lib]
# cdylib: the WebAssembly component; rlib: the same code for native tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
foresight-sdk = {{ path = "{sdk}" }}
{standalone}"#,
        sdk = sdk_path.display()
    );
    let source = match kind {
        PluginKind::Scorer => SCORER,
        PluginKind::Forecaster => FORECASTER,
        PluginKind::CostModel => COST_MODEL,
    }
    .replace("{{name}}", name)
    .replace("{{Type}}", &type_name(name));
    std::fs::write(root.join("Cargo.toml"), manifest)?;
    std::fs::write(root.join("src/lib.rs"), source)?;
    println!("created {} ({kind})", root.display());
    println!(
        "next: foresight plugin build {} && foresight plugin check <plugin dir>/{name}.wasm",
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "`{name}` is not a valid plugin name: use lowercase letters, digits and dashes, starting with a letter"
        );
    }
    Ok(())
}

/// Finds the SDK crate and the workspace root by walking up from `start`.
fn locate_sdk(start: &Path) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    for dir in start.ancestors() {
        let sdk = dir.join("plugin-sdk");
        if sdk.join("Cargo.toml").is_file() {
            return Ok((sdk, Some(dir.to_owned())));
        }
    }
    if let Ok(sdk) = std::env::var("FORESIGHT_SDK_PATH") {
        return Ok((PathBuf::from(sdk), None));
    }
    bail!(
        "cannot find plugin-sdk/ above {}: create plugins inside a Foresight checkout, or set \
         FORESIGHT_SDK_PATH to the plugin-sdk folder",
        start.display()
    )
}

/// `to` relative to `from` when they share a root, else `to` as is.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_parts).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to.to_owned();
    }
    let mut path: PathBuf = std::iter::repeat_n("..", from.len() - common).collect();
    path.extend(&to_parts[common..]);
    path
}

fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The profile `foresight plugin build` compiles with; the workspace root defines the same.
const PLUGIN_PROFILE: &str = r#"
[profile.plugin]
inherits = "release"
debug = false
strip = true
codegen-units = 1
lto = true
"#;

const SCORER: &str = r#"//! {{name}}: a Foresight scorer.
//!
//! Scores each candidate placement by the demand-weighted round trip its users would see plus
//! its price. Replace `score` with your own ranking; `foresight plugin check` tells you whether
//! it still honours the contract.

use foresight_sdk::scorer::features;
use foresight_sdk::{Candidates, Config, ConfigKey, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload};

/// The plugin's state: its configuration, parsed once.
pub struct {{Type}} {
    weight_price: f64,
}

impl Scorer for {{Type}} {
    fn describe() -> Descriptor {
        Descriptor::new("{{name}}", env!("CARGO_PKG_VERSION"), PluginKind::Scorer, "Prefers near, cheap placements.")
            .key(ConfigKey::new("weight-price", "Score lost per unit of hourly price.", Some("10.0")))
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let weight_price: f64 = config.get("weight-price")?;
        if !weight_price.is_finite() || weight_price < 0.0 {
            return Err(PluginError::InvalidConfig("`weight-price` must be a non-negative number".into()));
        }
        Ok(Self { weight_price })
    }

    fn score(&mut self, workload: &Workload, candidates: &Candidates, _explain: bool) -> Result<Scores, PluginError> {
        // Resolve columns once per call, not per candidate.
        let total: f64 = workload.demand.iter().map(|d| d.max(0.0)).sum();
        let rtt: Vec<(usize, f64)> = workload
            .regions
            .iter()
            .zip(&workload.demand)
            .filter_map(|(region, demand)| {
                let share = if total > 0.0 { demand.max(0.0) / total } else { 1.0 / workload.regions.len() as f64 };
                candidates.column(&features::rtt(region)).map(|c| (c, share))
            })
            .collect();
        let price = candidates.column(features::HOURLY_PRICE);
        let values = candidates
            .rows()
            .map(|row| {
                let latency: f64 = rtt.iter().map(|&(c, share)| share * row[c]).sum();
                let cost = price.map_or(0.0, |c| row[c]);
                -latency - self.weight_price * cost
            })
            .collect();
        Ok(Scores { values, contributions: Vec::new() })
    }
}

foresight_sdk::export_scorer!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearer_candidates_score_higher() {
        let config = Config::parse("", &{{Type}}::describe().config_keys).unwrap();
        let mut scorer = {{Type}}::new(&config).unwrap();
        let workload = Workload { regions: vec!["eu".into()], demand: vec![10.0], ..Default::default() };
        let candidates = Candidates::new(vec!["rtt-ms:eu".into()], vec![5.0, 50.0]).unwrap();
        let scores = scorer.score(&workload, &candidates, false).unwrap();
        assert!(scores.values[0] > scores.values[1]);
    }
}
"#;

const FORECASTER: &str = r#"//! {{name}}: a Foresight forecaster.
//!
//! Forecasts every horizon with the empirical quantiles of the most recent window of history.
//! Replace `forecast` with your own model; `foresight plugin check` tells you whether it still
//! honours the contract.

use foresight_sdk::{Config, ConfigKey, Descriptor, ForecastRequest, Forecaster, PluginError, PluginKind};

/// The plugin's state: its configuration, parsed once.
pub struct {{Type}} {
    window: usize,
}

/// The `q`-quantile of sorted values, interpolating linearly.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Forecaster for {{Type}} {
    fn describe() -> Descriptor {
        Descriptor::new("{{name}}", env!("CARGO_PKG_VERSION"), PluginKind::Forecaster, "Recent-window quantiles.")
            .key(ConfigKey::new("window", "Number of most recent observations used.", Some("288")))
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let window: u32 = config.get("window")?;
        if window == 0 {
            return Err(PluginError::InvalidConfig("`window` must be at least 1".into()));
        }
        Ok(Self { window: window as usize })
    }

    fn forecast(&mut self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, PluginError> {
        Ok(request
            .series
            .iter()
            .map(|series| {
                // Gaps are NaN: leave them out.
                let mut recent: Vec<f64> =
                    series.values.iter().rev().filter(|v| v.is_finite()).take(self.window).copied().collect();
                recent.sort_by(f64::total_cmp);
                let row: Vec<f64> = request
                    .quantiles
                    .iter()
                    .map(|&q| if recent.is_empty() { 0.0 } else { quantile(&recent, q) })
                    .collect();
                // The same distribution at every horizon: a flat forecast.
                row.iter().copied().cycle().take(request.answer_len()).collect()
            })
            .collect())
    }
}

foresight_sdk::export_forecaster!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_sdk::Series;

    #[test]
    fn quantiles_come_from_the_recent_window() {
        let config = Config::parse("window = 4", &{{Type}}::describe().config_keys).unwrap();
        let mut plugin = {{Type}}::new(&config).unwrap();
        let series = Series { step: 60, values: vec![100.0, 1.0, 2.0, f64::NAN, 3.0, 4.0], ..Default::default() };
        let request = ForecastRequest { series: vec![series], horizons: vec![60], quantiles: vec![0.0001, 0.5, 0.9999] };
        let answer = plugin.forecast(&request).unwrap();
        assert!((answer[0][0] - 1.0).abs() < 0.01 && (answer[0][1] - 2.5).abs() < 1e-9 && (answer[0][2] - 4.0).abs() < 0.01);
    }
}
"#;

const COST_MODEL: &str = r#"//! {{name}}: a Foresight cost model.
//!
//! Covers the forecast CPU demand at the highest requested quantile with the single cheapest
//! offering per core, requested early enough for its lead time. Replace `plan` with your own
//! policy; `foresight plugin check` tells you whether it still honours the contract.

use foresight_sdk::{
    CapacityStep, ClusterPlan, Config, ConfigKey, CostModel, Descriptor, PlanRequest, PluginError, PluginKind,
};

/// The plugin's state: its configuration, parsed once.
pub struct {{Type}} {
    headroom: f64,
}

impl CostModel for {{Type}} {
    fn describe() -> Descriptor {
        Descriptor::new("{{name}}", env!("CARGO_PKG_VERSION"), PluginKind::CostModel, "Cheapest cores, on time.")
            .key(ConfigKey::new("headroom", "Extra capacity above the forecast, as a fraction.", Some("0.1")))
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let headroom: f64 = config.get("headroom")?;
        if !(0.0..=10.0).contains(&headroom) {
            return Err(PluginError::InvalidConfig("`headroom` must be between 0 and 10".into()));
        }
        Ok(Self { headroom })
    }

    fn plan(&mut self, request: &PlanRequest) -> Result<Vec<ClusterPlan>, PluginError> {
        let top = request.quantiles.len() - 1;
        Ok(request
            .clusters
            .iter()
            .map(|cluster| {
                let cheapest = cluster
                    .offerings
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.vcpu > 0.0 && o.max_nodes > 0)
                    .min_by(|(_, a), (_, b)| (a.hourly_price / a.vcpu).total_cmp(&(b.hourly_price / b.vcpu)));
                let Some((index, offering)) = cheapest else { return ClusterPlan::default() };
                let mut steps: Vec<CapacityStep> = request
                    .horizons
                    .iter()
                    .enumerate()
                    .map(|(h, &horizon)| {
                        let cores = cluster.cpu[request.cell(h, top)] * (1.0 + self.headroom);
                        let nodes = ((cores / offering.vcpu).ceil() as u32).min(offering.max_nodes);
                        let request_in_s = horizon.saturating_sub(offering.lead_time_s);
                        CapacityStep { offering: index as u32, nodes, request_in_s }
                    })
                    .collect();
                steps.sort_by_key(|s| s.request_in_s);
                let final_nodes = steps.last().map_or(0, |s| s.nodes);
                ClusterPlan { steps, hourly_cost: f64::from(final_nodes) * offering.hourly_price }
            })
            .collect())
    }
}

foresight_sdk::export_cost_model!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_sdk::{ClusterDemand, Offering};

    #[test]
    fn covers_the_top_quantile_with_the_cheapest_cores() {
        let config = Config::parse("headroom = 0.0", &{{Type}}::describe().config_keys).unwrap();
        let mut plugin = {{Type}}::new(&config).unwrap();
        let offering = |vcpu: f64, price: f64| Offering { vcpu, hourly_price: price, max_nodes: 10, lead_time_s: 60, ..Default::default() };
        let request = PlanRequest {
            horizons: vec![600],
            quantiles: vec![0.5, 0.9],
            clusters: vec![ClusterDemand {
                cluster: "eu".into(),
                cpu: vec![4.0, 10.0],
                memory_gib: vec![8.0, 20.0],
                offerings: vec![offering(4.0, 0.4), offering(8.0, 0.4)],
            }],
        };
        let plan = plugin.plan(&request).unwrap();
        assert_eq!(plan[0].steps, vec![CapacityStep { offering: 1, nodes: 2, request_in_s: 540 }]);
        assert!((plan[0].hourly_cost - 0.8).abs() < 1e-9);
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_typed() {
        assert!(validate_name("my-scorer2").is_ok());
        for bad in ["", "My", "1abc", "a_b", "a-"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("my-fast-scorer"), "MyFastScorer");
    }

    #[test]
    fn relative_paths_climb_to_the_common_root() {
        assert_eq!(
            relative(Path::new("/w/plugins/x"), Path::new("/w/plugin-sdk")),
            PathBuf::from("../../plugin-sdk")
        );
    }
}
