//! `foresight simulate`: every policy on the same scenario and seed, side by side, and the
//! report that compares them (`report.json`, `report.html`).

pub mod commitment;
pub mod federated;
mod html;
mod report;
mod timeline;

use std::path::Path;

use anyhow::Context;

pub use report::{PolicyReport, Report};
pub use timeline::Timeline;

use crate::backends::sim::Scenario;
use crate::config::Config;
use crate::control::Daemon;
use crate::decide::PolicyName;

/// Demand history the simulated backend holds before the first tick, as a metrics store would.
pub const PREFILL_S: u32 = 7 * 86_400;

/// One policy's run.
pub struct PolicyRun {
    /// The policy.
    pub policy: PolicyName,
    /// Its figures.
    pub report: PolicyReport,
    /// Its series over time, for the plots.
    pub timeline: Timeline,
}

/// Runs `policy` on `scenario` to its end; `on_tick` is called after every tick.
pub fn run_policy(
    config: &Config,
    scenario: &Scenario,
    policy: PolicyName,
    journal_dir: &Path,
    offers: &[commitment::Offer],
    mut on_tick: impl FnMut(),
) -> anyhow::Result<PolicyRun> {
    let mut config = config.clone();
    let log = journal_dir.join(format!("decisions-{policy}.jsonl"));
    // A log from an earlier run in the same folder is this run's to replace, not to extend.
    match std::fs::remove_file(&log) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing the old decision log {}", log.display()));
        }
        _ => {}
    }
    config.decisions.log = log.into();
    config.decisions.fsync = crate::config::FsyncPolicy::Never;
    let mut daemon = Daemon::with_scenario(config, None, scenario.clone())
        .with_context(|| format!("starting the `{policy}` policy"))?;
    daemon.set_policy(policy);
    daemon.prefill_history(PREFILL_S);
    let mut timeline = Timeline::new(scenario);
    let mut control_cpu_s = 0.0;
    // Nothing changes the world between one tick's end and the next one's start, so the
    // snapshot after a tick is the one before the next.
    let sim = |d: &Daemon| d.simulator().map(|s| s.snapshot()).context("simulate runs on the simulator");
    let mut before = sim(&daemon)?;
    while !daemon.finished() {
        let summary = daemon.tick().with_context(|| format!("`{policy}` at tick {}", before.time))?;
        control_cpu_s += summary.control_cpu_s;
        let after = sim(&daemon)?;
        let step = daemon.last_step().context("a tick always steps the simulator")?;
        timeline.record(&before, &after, step, daemon.last_forecasts(), daemon.last_impact());
        before = after;
        on_tick();
    }
    let report = PolicyReport::from_run(&daemon, &timeline, control_cpu_s, scenario, offers);
    Ok(PolicyRun { policy, report, timeline })
}

/// Writes `report.json` and `report.html` into `dir`.
pub fn write(dir: &Path, report: &Report, runs: &[PolicyRun], scenario: &Scenario) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let names: Vec<String> = scenario.services.iter().map(|s| s.name.clone()).collect();
    for run in runs {
        let csv = dir.join(format!("timeline-{}.csv", run.policy));
        std::fs::write(&csv, run.timeline.to_csv(&names))
            .with_context(|| format!("writing {}", csv.display()))?;
    }
    let page = dir.join("report.html");
    let text = html::render(report, runs, scenario).context("drawing the report's plots")?;
    std::fs::write(&page, text).with_context(|| format!("writing {}", page.display()))?;
    Ok(())
}
