//! `foresight bench federate`: rounds of a real federation — the aggregator and its agents in
//! one process, on loopback, over mutual TLS, each agent training on one of the shipped
//! traces — in the clear and then under secure aggregation, with the same agents and seeds.
//! Prints round time, how much of it one agent's training takes, and the bytes a round moves.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::quantile;
use crate::backends::sim::Rng;
use crate::federate::aggregate::Rule;
use crate::federate::experiment;
use crate::federate::join::{Agent, join};
use crate::federate::model::{Samples, parameter_count};
use crate::federate::round::{LocalTraining, RoundConfig, local_update};
use crate::federate::serve::{Aggregation, ServeConfig, Summary, server_tls};
use crate::federate::tls;

/// Options of `foresight bench federate`.
#[derive(Debug, clap::Args)]
pub struct FederateArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Agents; each trains on one of the shipped traces, in turn.
    #[arg(long, default_value_t = 4)]
    agents: usize,
    /// Rounds per mode.
    #[arg(long, default_value_t = 16)]
    rounds: u64,
    /// Training samples per agent.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Local epochs per round.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// How often agents ask whether a round is open: the most a round waits on polling.
    #[arg(long, default_value = "5ms")]
    poll: humantime::Duration,
    /// Folder with the shipped traces.
    #[arg(long, default_value = "config/scenarios/traces")]
    traces: PathBuf,
}

/// One mode's figures.
#[derive(Debug, Serialize)]
struct ModeFigures {
    rounds: usize,
    round_p50_ms: f64,
    round_p99_ms: f64,
    round_mean_ms: f64,
    /// Received by the aggregator per round (every agent's update).
    bytes_in_per_round: f64,
    /// Sent by the aggregator per round (weights, and under secure aggregation the keys).
    bytes_out_per_round: f64,
    /// In and out over agents: what one agent's link carries per round.
    bytes_per_agent_round: f64,
}

/// What `bench federate` measured.
#[derive(Debug, Serialize)]
struct FederateFigures {
    agents: usize,
    parameters: usize,
    samples_per_agent: usize,
    epochs: usize,
    poll_ms: f64,
    /// One agent's local training for a round, alone on the machine (mean over agents).
    train_ms: f64,
    plain: ModeFigures,
    secure: ModeFigures,
    /// Secure over plain mean round time.
    secure_plain_round_ratio: f64,
}

/// Runs the federation benchmark.
pub fn federate(args: &FederateArgs) -> anyhow::Result<ExitCode> {
    if args.agents < 2 {
        anyhow::bail!("--agents {} is too few: secure aggregation needs 2 or more", args.agents);
    }
    let clusters = experiment::shipped_clusters(&args.traces)
        .with_context(|| format!("reading the traces in {} (--traces)", args.traces.display()))?;
    let data: Vec<(String, Samples)> = (0..args.agents)
        .map(|i| {
            let c = &clusters[i % clusters.len()];
            let (train, _) = experiment::split(c, 0.7, args.samples, 0, &mut Rng::new(i as u64));
            (format!("{}-{i}", c.name), train)
        })
        .collect();
    let local = LocalTraining { epochs: args.epochs, batch: 32, lr: 3e-3 };
    let round = RoundConfig {
        quorum: args.agents,
        deadline_s: 600.0,
        rule: Rule::FedAvg,
        clip: None,
        noise: 0.0,
        delta: 1e-5,
    };
    let initial = crate::federate::model::Mlp::new(1).params;
    let started = Instant::now();
    for (_, samples) in &data {
        std::hint::black_box(local_update(&initial, samples, &local, &round, args.agents, 1, &mut || 0.0));
    }
    let train_ms = started.elapsed().as_secs_f64() * 1e3 / data.len() as f64;

    let config = |secure| ServeConfig {
        agents: args.agents,
        rounds: args.rounds,
        round: round.clone(),
        local: local.clone(),
        seed: 1,
        momentum: 0.0,
        secure,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let poll = Duration::from(args.poll);
    let plain = rt.block_on(federation(config(false), &data, poll))?;
    let secure = rt.block_on(federation(config(true), &data, poll))?;
    let figures = FederateFigures {
        agents: args.agents,
        parameters: parameter_count(),
        samples_per_agent: args.samples,
        epochs: args.epochs,
        poll_ms: poll.as_secs_f64() * 1e3,
        train_ms,
        secure_plain_round_ratio: secure.round_mean_ms / plain.round_mean_ms,
        plain,
        secure,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        let f = &figures;
        println!(
            "federation benchmark: {} agents × {} samples, {} parameters, {} epoch(s) a round, polling every {:.0} ms",
            f.agents, f.samples_per_agent, f.parameters, f.epochs, f.poll_ms
        );
        println!("  one agent's training a round   {:>10.1} ms", f.train_ms);
        for (name, m) in [("plain", &f.plain), ("secure", &f.secure)] {
            println!(
                "  {name:<7} round p50 {:>8.1} ms  p99 {:>8.1} ms  mean {:>8.1} ms  in {:>9.0} B  out {:>9.0} B  per agent {:>9.0} B",
                m.round_p50_ms,
                m.round_p99_ms,
                m.round_mean_ms,
                m.bytes_in_per_round,
                m.bytes_out_per_round,
                m.bytes_per_agent_round
            );
        }
        println!("  secure / plain round time      {:>10.2}", f.secure_plain_round_ratio);
    }
    Ok(ExitCode::SUCCESS)
}

/// One federation to its end: the aggregator on a loopback port, every agent a task.
async fn federation(
    config: ServeConfig,
    data: &[(String, Samples)],
    poll: Duration,
) -> anyhow::Result<ModeFigures> {
    let names: Vec<String> = data.iter().map(|(n, _)| n.clone()).collect();
    let bundle = tls::mint(&[], &names).context("minting the benchmark's certificates")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding a loopback port")?;
    let endpoint = format!("https://{}", listener.local_addr()?);
    let secure = config.secure;
    let aggregation = Aggregation::new(config)?;
    let server = tokio::spawn(aggregation.clone().serve(
        listener,
        server_tls(&bundle.ca, &bundle.server.cert, &bundle.server.key),
        Duration::from_secs(1),
    ));
    let runs: Vec<_> = data
        .iter()
        .zip(&bundle.agents)
        .enumerate()
        .map(|(i, ((name, samples), (_, pair)))| {
            let agent = Agent {
                name: name.clone(),
                endpoint: endpoint.clone(),
                ca: bundle.ca.clone(),
                cert: pair.cert.clone(),
                key: pair.key.clone(),
                poll,
                require_secure: secure,
                leave_after: None,
            };
            let samples = samples.clone();
            tokio::spawn(async move { join(&agent, &samples, i as u64).await })
        })
        .collect();
    for run in runs {
        run.await.context("an agent's task")?.context("an agent of the benchmark")?;
    }
    server.abort();
    let (_, summary) = aggregation.result();
    Ok(figures(&summary, data.len()))
}

fn figures(summary: &Summary, agents: usize) -> ModeFigures {
    let mut ms: Vec<f64> = summary.round_seconds.iter().map(|s| s * 1e3).collect();
    let n = ms.len().max(1) as f64;
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / n;
    let (bytes_in, bytes_out) = (mean(&summary.bytes_in), mean(&summary.bytes_out));
    ModeFigures {
        rounds: ms.len(),
        round_mean_ms: ms.iter().sum::<f64>() / n,
        round_p50_ms: quantile(&mut ms, 0.5),
        round_p99_ms: quantile(&mut ms, 0.99),
        bytes_in_per_round: bytes_in,
        bytes_out_per_round: bytes_out,
        bytes_per_agent_round: (bytes_in + bytes_out) / agents as f64,
    }
}
