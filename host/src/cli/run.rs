//! `foresight run`: the daemon.

use std::process::ExitCode;
use std::time::Instant;

use crate::config::Config;
use crate::control::Daemon;

/// Options of `foresight run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Stop after this many ticks.
    #[arg(long)]
    ticks: Option<u64>,
}

/// Runs the loop; ticks never overlap: the next starts when the interval has passed since the
/// previous one started, or at once if it took longer.
pub fn run(args: &RunArgs, config: Config) -> anyhow::Result<ExitCode> {
    let interval = config.tick.interval().map_err(|e| anyhow::anyhow!("[tick] {e}"))?;
    let mut daemon = Daemon::new(config)?;
    let [forecaster, scorer, cost_model] = daemon.plugin_labels();
    tracing::info!(%forecaster, %scorer, %cost_model, ?interval, "running");
    let mut done = 0;
    while args.ticks.is_none_or(|n| done < n) && !daemon.finished() {
        let started = Instant::now();
        let summary = daemon.tick()?;
        tracing::info!(
            tick = summary.tick,
            decisions = summary.decisions,
            rejected = summary.rejected,
            observe_ms = summary.stages.observe_ms,
            predict_ms = summary.stages.predict_ms,
            decide_ms = summary.stages.decide_ms,
            act_ms = summary.stages.act_ms,
            "tick"
        );
        done += 1;
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let l = daemon.ledger();
    let per_service: Vec<String> = daemon
        .service_names()
        .iter()
        .zip(&l.slo_violation_minutes)
        .map(|(name, minutes)| format!("{name} {minutes:.0}"))
        .collect();
    println!(
        "{done} ticks: cost {:.2}, SLO-violation minutes [{}], dropped {:.0} of {:.0} requests, {} interruptions",
        l.cost,
        per_service.join(", "),
        l.dropped_requests,
        l.offered_requests,
        l.interruptions
    );
    Ok(ExitCode::SUCCESS)
}
