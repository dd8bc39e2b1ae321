//! `foresight run`: the daemon. The loop runs on this thread (plugin calls block, and must not
//! starve an async runtime); the HTTP server and the signal handlers run on a small tokio
//! runtime beside it.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::Config;
use crate::control::{Daemon, Record};
use crate::server::{Shared, router};

/// Options of `foresight run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Stop after this many ticks.
    #[arg(long)]
    ticks: Option<u64>,
    /// Address to serve on; shorthand for `--set server.listen=ADDR`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Scenario the simulator runs; shorthand for `--set backend.scenario=FILE`.
    #[arg(long, value_name = "FILE")]
    scenario: Option<std::path::PathBuf>,
}

impl RunArgs {
    /// The configuration overrides these options stand for.
    pub fn flags(&self) -> Vec<crate::config::Flag> {
        let flag = |key: &str, value: String| crate::config::Flag {
            key: key.into(),
            value: toml::Value::String(value),
        };
        let mut flags = Vec::new();
        if let Some(listen) = &self.listen {
            flags.push(flag("server.listen", listen.clone()));
        }
        if let Some(scenario) = &self.scenario {
            flags.push(flag("backend.scenario", scenario.display().to_string()));
        }
        flags
    }
}

/// Runs the loop until the scenario ends, `--ticks` are done, or SIGINT/SIGTERM; ticks never
/// overlap: the next starts when the interval has passed since the previous one started, or at
/// once if it took longer. On a signal the current tick finishes, then the server drains.
pub fn run(
    args: &RunArgs,
    config: Config,
    watched: Option<crate::config::Source>,
) -> anyhow::Result<ExitCode> {
    config.tick.interval().map_err(|e| anyhow::anyhow!("[tick] {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("foresight-http")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let shared = Arc::new(Shared::new(config.decisions.journal));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&config.server.listen))
        .with_context(|| format!("cannot listen on {} ([server] listen)", config.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr}");

    let (stop_tx, stop_rx) = mpsc::channel::<&'static str>();
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let server = runtime.spawn({
        let app = router(shared.clone());
        let mut drain = drain_rx.clone();
        async move {
            let shutdown = async move {
                let _ = drain.wait_for(|d| *d).await;
            };
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
    });
    runtime.spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot watch SIGTERM: {e}");
                return;
            }
        };
        let which = tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        let _ = stop_tx.send(which);
    });

    let mut daemon = Daemon::new(config, watched)?;
    // The simulated backend holds the week before the start, as a metrics store would.
    daemon.prefill_history(crate::simulate::PREFILL_S);
    let services = daemon.service_names();
    let mut done = 0;
    let mut stopped_by = None;
    while args.ticks.is_none_or(|n| done < n) && !daemon.finished() {
        let started = Instant::now();
        let summary = daemon.tick()?;
        // On Kubernetes services appear (and go) as their Deployments do.
        publish(&shared, &daemon, &summary, &daemon.service_names());
        tracing::info!(
            tick = summary.tick,
            decisions = summary.decisions,
            rejected = summary.rejected,
            total_ms = summary.stages.observe_ms
                + summary.stages.predict_ms
                + summary.stages.decide_ms
                + summary.stages.act_ms,
            "tick"
        );
        done += 1;
        let rest = daemon.interval().saturating_sub(started.elapsed());
        match stop_rx.recv_timeout(rest.max(Duration::from_micros(1))) {
            Ok(signal) => {
                stopped_by = Some(signal);
                break;
            }
            Err(_) => continue,
        }
    }
    if let Some(signal) = stopped_by {
        tracing::info!(signal, ticks = done, "shutting down after the current tick");
    }
    let _ = drain_tx.send(true);
    runtime.block_on(server).context("HTTP server task")?.context("HTTP server")?;

    let Some(l) = daemon.ledger() else {
        println!("{done} ticks on {} cluster(s)", daemon.config().backend.kubernetes.clusters.len());
        return Ok(ExitCode::SUCCESS);
    };
    let per_service: Vec<String> = services
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

/// Hands the tick's results to the server: metrics, status, decisions.
fn publish(shared: &Shared, daemon: &Daemon, summary: &crate::control::TickSummary, services: &[String]) {
    let records = daemon.last_records();
    let kinds: Vec<(String, String)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Outcome { index, outcome, .. } => {
                let kind = records.iter().find_map(|d| match d {
                    Record::Decision { index: i, decision, .. } if i == index => {
                        Some(decision.action.kind().to_owned())
                    }
                    _ => None,
                })?;
                Some((kind, outcome.status().to_owned()))
            }
            Record::Reload { accepted, .. } => {
                Some(("reload".to_owned(), if *accepted { "applied" } else { "refused" }.to_owned()))
            }
            Record::Decision { .. } => None,
        })
        .collect();
    shared.metrics.tick(summary, &kinds);
    let roles = daemon.role_stats();
    let roles: Vec<(&str, _)> = roles.iter().map(|(n, s)| (*n, s.clone())).collect();
    shared.metrics.totals(&roles, daemon.ledger(), services);
    shared.metrics.experiments(&daemon.experiments());
    if let Some((health, leader)) = daemon.cluster_health() {
        shared.metrics.clusters(&health, leader);
    }
    if let Some(predicted) = daemon.last_impact() {
        shared.metrics.predicted_latency(services, predicted);
    }
    let accuracy = daemon.forecast_accuracy();
    shared.metrics.forecast_accuracy(&accuracy);
    shared.accuracy.store(Arc::new(serde_json::json!({
        "by_horizon": accuracy,
        "by_series": daemon.forecast_accuracy_by_series(),
    })));
    shared.publish(records.to_vec());
    if let Some(view) = daemon.last_view() {
        shared.record_view(view.clone());
    }
    shared.status.store(Arc::new(daemon.status()));
    shared.ready.store(true, Ordering::Relaxed);
}
