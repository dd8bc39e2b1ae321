//! `foresight simulate`: every named policy on one scenario and seed, and the report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backends::sim::Scenario;
use crate::config::Config;
use crate::decide::PolicyName;
use crate::simulate::{self, Report};

/// Options of `foresight simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario file (default: the configuration's `[backend] scenario`).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Policies to run: `predictive` (Foresight, as the configuration wires it), `reactive`
    /// (its planner fed only what is observed now), `oracle` (its planner fed the true future),
    /// `hpa`, `karpenter`, `kube-default`, `static-peak`. Default: all but `kube-default`.
    #[arg(long = "policy", num_args = 1.., value_parser = parse_policy)]
    policies: Vec<PolicyName>,
    /// Seed for the scenario's randomness (default: the scenario's own).
    #[arg(long)]
    seed: Option<u64>,
    /// Folder for `report.json`, `report.html` and each policy's decision log.
    #[arg(long, default_value = "simulation")]
    out: PathBuf,
    /// A commitment offer to advise on, `NAME=DISCOUNT` (repeatable; default: a 1-year savings
    /// plan at 28 %, 1- and 3-year reservations at 37 % and 57 %).
    #[arg(long = "discount", value_name = "NAME=DISCOUNT")]
    discounts: Vec<crate::simulate::commitment::Offer>,
    /// No progress bar (for logs and CI).
    #[arg(long)]
    quiet: bool,
    /// Also learn the demand model federated: one agent per simulated cluster, in process,
    /// scored beside local-only and central training (written to `federated.json`).
    #[arg(long)]
    federate: bool,
    /// Federated rounds (two local epochs each).
    #[arg(long, default_value_t = 64, requires = "federate")]
    federate_rounds: usize,
    /// A cluster given only two days of history, as a new one would have.
    #[arg(long, requires = "federate")]
    federate_cold_start: Option<String>,
}

fn parse_policy(s: &str) -> Result<PolicyName, String> {
    s.parse().map_err(|e: crate::decide::UnknownPolicy| e.to_string())
}

/// Runs the policies and writes the report.
pub fn run(args: &SimulateArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let path = args.scenario.clone().unwrap_or_else(|| config.backend.scenario.relative());
    let mut scenario =
        Scenario::load(&path).with_context(|| format!("loading the scenario {}", path.display()))?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    // Checked before the policies run, so a typo does not cost their run.
    if let Some(name) = args.federate_cold_start.as_deref().filter(|n| scenario.cluster_index(n).is_none()) {
        return Err(crate::simulate::federated::FederatedError::UnknownCluster(name.into()).into());
    }
    let policies =
        if args.policies.is_empty() { PolicyName::DEFAULT.to_vec() } else { dedup(&args.policies) };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating --out {}", args.out.display()))?;
    let ticks = scenario.ticks();
    let bar =
        if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(ticks * policies.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let offers = if args.discounts.is_empty() {
        simulate::commitment::default_offers()
    } else {
        args.discounts.clone()
    };
    let mut runs = Vec::new();
    for &policy in &policies {
        bar.set_message(policy.to_string());
        let run = simulate::run_policy(config, &scenario, policy, &args.out, &offers, || bar.inc(1))?;
        runs.push(run);
    }
    bar.finish_and_clear();
    let report = Report::new(
        &scenario.name,
        scenario.seed,
        &runs.iter().map(|r| (r.policy, r.report.clone())).collect::<Vec<_>>(),
    );
    simulate::write(&args.out, &report, &runs, &scenario)?;
    println!(
        "{:<14}{:>12}{:>12}{:>10}{:>12}{:>9}{:>11}",
        "policy", "SLO min", "dropped", "p95 ms", "cost USD", "CPU %", "control s"
    );
    for run in &runs {
        let r = &run.report;
        println!(
            "{:<14}{:>12.0}{:>12.0}{:>10}{:>12.2}{:>9.1}{:>11.2}",
            run.policy.as_str(),
            r.slo_violation_minutes,
            r.dropped_requests,
            r.p95_latency_ms.overall.map_or("-".into(), |v| format!("{v:.1}")),
            r.cost_usd,
            r.mean_cpu_utilisation * 100.0,
            r.control_cpu_seconds
        );
    }
    let ratio = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.3}"));
    for (name, c) in &report.comparison {
        println!(
            "predictive vs {name}: SLO-violation minutes ×{}, cost ×{:.3}",
            ratio(c.slo_violation_ratio),
            c.cost_ratio
        );
    }
    if let Some(v) = &report.value_of_prediction {
        println!(
            "value of prediction (predictive / reactive): SLO-violation minutes ×{}, cost ×{:.3}",
            ratio(v.slo_violation_ratio),
            v.cost_ratio
        );
    }
    if let Some(room) = report.oracle_headroom_minutes {
        println!(
            "oracle gap closed: {} of the {room:.0} violation minutes perfect foresight saves over reacting (the same over cost: {})",
            ratio(report.oracle_gap_closed),
            ratio(report.oracle_gap_closed_cost)
        );
    }
    println!("report: {}", args.out.join("report.html").display());
    if args.federate {
        federate(args, &scenario)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn federate(args: &SimulateArgs, scenario: &Scenario) -> anyhow::Result<()> {
    use crate::simulate::federated::{self, FederatedRun};

    let run = FederatedRun {
        rounds: args.federate_rounds,
        cold_start: args.federate_cold_start.clone(),
        seed: scenario.seed,
        ..FederatedRun::default()
    };
    let spinner = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    spinner.set_message(format!("federating {} rounds", run.rounds));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let report = federated::compare(scenario, &run)?;
    spinner.finish_and_clear();
    let path = args.out.join("federated.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{:<16}{:>9}{:>12}{:>12}{:>12}", "cluster", "samples", "local", "central", "federated");
    for c in &report.clusters {
        println!(
            "{:<16}{:>9}{:>12.3}{:>12.3}{:>12.3}",
            c.cluster, c.samples, c.local_mase, c.central_mase, c.federated_mase
        );
    }
    println!("held-out MASE (below 1 beats the one-day seasonal naive): {}", path.display());
    Ok(())
}

fn dedup(policies: &[PolicyName]) -> Vec<PolicyName> {
    let mut seen = Vec::new();
    for p in policies {
        if !seen.contains(p) {
            seen.push(*p);
        }
    }
    seen
}
