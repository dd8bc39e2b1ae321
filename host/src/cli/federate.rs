//! `foresight federate`: mint a federation's certificates, run the aggregator, join as an
//! agent, or compare federated with local-only and central training in one process.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::backends::sim::{Rng, Trace};
use crate::federate::aggregate::Rule;
use crate::federate::experiment::{self, ClusterData, Settings};
use crate::federate::join::{Agent, join_publishing};
use crate::federate::model::{Mlp, Samples};
use crate::federate::round::{LocalTraining, RoundConfig};
use crate::federate::serve::{Aggregation, ServeConfig, server_tls};
use crate::federate::{export, tls};

/// `foresight federate …`.
#[derive(Debug, Subcommand)]
pub enum FederateCommand {
    /// Mint a CA, the aggregator's certificate and one client certificate per agent (PEM).
    #[command(after_help = "Example:\n  foresight federate certs --out /tmp/fed --agent eu --agent us")]
    Certs {
        /// Folder to write ca.pem, server.pem/.key and <agent>.pem/.key into.
        #[arg(long)]
        out: PathBuf,
        /// An agent's name (repeatable).
        #[arg(long = "agent", required = true)]
        agents: Vec<String>,
        /// Another name the aggregator is reached by (besides localhost and 127.0.0.1).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Run the aggregator until its rounds are done; print the summary as JSON.
    #[command(
        after_help = "Example:\n  foresight federate serve --tls /tmp/fed --agents 4 --rounds 24 --out /tmp/fed/model"
    )]
    Serve(ServeArgs),
    /// Join a federation as an agent, training on one series; print its scores as JSON.
    #[command(
        after_help = "Example:\n  foresight federate join --aggregator https://127.0.0.1:7443 --name eu --tls /tmp/fed --series demand.csv"
    )]
    Join(JoinArgs),
    /// Train one model centrally on several clusters' series pooled — the yardstick federated
    /// learning is measured against — drawing each cluster's samples exactly as `federate
    /// join` does with the same --seed; print each cluster's held-out MASE as JSON.
    #[command(
        after_help = "Example:\n  foresight federate central --series eu=eu.csv --series us=us.csv --history us=2d --samples 300"
    )]
    Central(CentralArgs),
    /// Federated, local-only and central training side by side on the shipped traces.
    #[command(after_help = "Example:\n  foresight federate compare --cold-start fb --rounds 96")]
    Compare(CompareArgs),
}

/// What rounds do.
#[derive(Debug, Args)]
pub struct RoundArgs {
    /// Rounds.
    #[arg(long, default_value_t = 64)]
    rounds: u64,
    /// Local epochs per round. Few epochs over many rounds keep the agents from drifting
    /// towards their own series between averages.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Learning rate (decayed on a cosine over the rounds).
    #[arg(long, default_value_t = 3e-3)]
    lr: f32,
    /// How updates are combined: fedavg, median, trimmed-mean or multi-krum.
    #[arg(long, default_value = "fedavg")]
    rule: String,
    /// Share trimmed at each end by trimmed-mean.
    #[arg(long, default_value_t = 0.2)]
    trim: f64,
    /// Attackers multi-krum tolerates (a round needs 2·this + 3 updates).
    #[arg(long, default_value_t = 1)]
    byzantine: usize,
    /// L2 clip of each update (differential privacy); off when absent.
    #[arg(long)]
    clip: Option<f64>,
    /// Noise multiplier z (σ = z·clip/n); needs --clip.
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// δ of the reported (ε, δ).
    #[arg(long, default_value_t = 1e-5)]
    delta: f64,
    /// Server momentum β (FedAvgM), in [0, 1); 0 is plain averaging.
    #[arg(long, default_value_t = 0.0)]
    momentum: f32,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl RoundArgs {
    fn rule(&self) -> anyhow::Result<Rule> {
        match self.rule.as_str() {
            "fedavg" => Ok(Rule::FedAvg),
            "median" => Ok(Rule::Median),
            "trimmed-mean" if (0.0..0.5).contains(&self.trim) => Ok(Rule::TrimmedMean(self.trim)),
            "trimmed-mean" => anyhow::bail!("--trim {} is outside [0, 0.5)", self.trim),
            "multi-krum" => Ok(Rule::MultiKrum(self.byzantine)),
            other => anyhow::bail!("--rule {other} is not one of fedavg, median, trimmed-mean, multi-krum"),
        }
    }

    fn round(&self, quorum: usize, deadline_s: f64) -> anyhow::Result<RoundConfig> {
        if !(0.0..1.0).contains(&self.momentum) {
            anyhow::bail!("--momentum {} is outside [0, 1)", self.momentum);
        }
        if self.noise > 0.0 && self.clip.is_none() {
            anyhow::bail!("--noise needs --clip: noise is scaled to the clip norm");
        }
        Ok(RoundConfig {
            quorum,
            deadline_s,
            rule: self.rule()?,
            clip: self.clip,
            noise: self.noise,
            delta: self.delta,
        })
    }
}

/// `federate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free one; the address is logged).
    #[arg(long, default_value = "127.0.0.1:7443")]
    listen: String,
    /// Folder with ca.pem, server.pem and server.key (see `federate certs`).
    #[arg(long)]
    tls: PathBuf,
    /// Agents to wait for before the first round.
    #[arg(long)]
    agents: usize,
    /// Fewest updates a round closes with (default: every agent).
    #[arg(long)]
    quorum: Option<usize>,
    /// How long a round waits for stragglers.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    deadline: Duration,
    #[command(flatten)]
    round: RoundArgs,
    /// Secure aggregation: agents mask their updates with pairwise keys, so the aggregator
    /// holds only masked updates and learns only their sum (needs --rule fedavg, 2+ agents).
    #[arg(long)]
    secure: bool,
    /// Folder to write the final weights (weights.f32), federated.onnx and summary.json into.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The ONNX model whose graph the weights go into.
    #[arg(long, default_value = "plugins/onnx-mlp/model/demand-mlp.onnx")]
    template: PathBuf,
}

/// `federate join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The aggregator, `https://host:port`.
    #[arg(long)]
    aggregator: String,
    /// This agent's name (its certificate is <tls>/<name>.pem).
    #[arg(long)]
    name: String,
    /// Folder with ca.pem, <name>.pem and <name>.key.
    #[arg(long)]
    tls: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Epochs of the local-only model it is compared with.
    #[arg(long, default_value_t = 48)]
    local_epochs: usize,
    /// Learning rate of the local-only model.
    #[arg(long, default_value_t = 3e-3)]
    local_lr: f32,
    /// The aggregator's --seed: the local-only model starts from the same weights the
    /// federation did.
    #[arg(long, default_value_t = 1)]
    init_seed: u64,
    /// How often to ask whether a round is open.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    poll: Duration,
    /// Insist on secure aggregation: fail rather than send an update in the clear. (Without
    /// it the agent masks whenever the aggregator asks.)
    #[arg(long)]
    secure: bool,
    /// Write each new version of the federated model here as ONNX (replaced whole, so a
    /// daemon granting this file to its forecaster hot-reloads it, round by round).
    #[arg(long)]
    model_out: Option<PathBuf>,
    /// The ONNX model whose graph the weights go into (with --model-out).
    #[arg(long, default_value = "plugins/onnx-mlp/model/demand-mlp.onnx")]
    template: PathBuf,
    /// Leave the federation after submitting to this many rounds (scored on the last model
    /// it trained from).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    leave_after: Option<u64>,
}

/// Which part of a series trains and which is held out.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The series, `timestamp,value` CSV; it never leaves this process.
    #[arg(long)]
    series: PathBuf,
    /// Train on only this much history before the split (a new cluster).
    #[arg(long, value_parser = humantime::parse_duration)]
    history: Option<Duration>,
    #[command(flatten)]
    draw: DrawArgs,
}

/// How each series is split and drawn from; `federate join` and `federate central` share
/// them, so the same flags give the same samples.
#[derive(Debug, Args)]
pub struct DrawArgs {
    /// Share of each series trained on; the rest is held out for scoring.
    #[arg(long, default_value_t = 0.7)]
    train_share: f64,
    /// Training samples drawn per series.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Held-out samples scored per series.
    #[arg(long, default_value_t = 600)]
    test_samples: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

impl DrawArgs {
    /// A cluster's training and held-out samples.
    fn split(&self, data: &ClusterData) -> (Samples, Samples) {
        experiment::split(data, self.train_share, self.samples, self.test_samples, &mut Rng::new(self.seed))
    }
}

/// `federate central`.
#[derive(Debug, Args)]
pub struct CentralArgs {
    /// A cluster's series as NAME=PATH (repeatable); pooled here, which is what federated
    /// learning avoids.
    #[arg(long = "series", required = true, value_parser = named::<PathBuf>)]
    series: Vec<(String, PathBuf)>,
    /// A cluster that trains on only this much history before the split, as NAME=DURATION
    /// (repeatable; as `federate join --history`).
    #[arg(long = "history", value_parser = named::<humantime::Duration>)]
    history: Vec<(String, humantime::Duration)>,
    #[command(flatten)]
    draw: DrawArgs,
    /// Seed of the initial weights (the aggregator's --seed).
    #[arg(long, default_value_t = 1)]
    init_seed: u64,
    /// Passes over the pooled samples.
    #[arg(long, default_value_t = 48)]
    epochs: usize,
    /// Learning rate (decayed on a cosine over the epochs).
    #[arg(long, default_value_t = 3e-3)]
    lr: f32,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
}

/// `NAME=VALUE`.
fn named<T: std::str::FromStr>(raw: &str) -> Result<(String, T), String>
where
    T::Err: std::fmt::Display,
{
    let (name, value) = raw.split_once('=').ok_or_else(|| format!("`{raw}` is not NAME=VALUE"))?;
    if name.is_empty() {
        return Err(format!("`{raw}` has no name before `=`"));
    }
    Ok((name.to_string(), value.parse().map_err(|e| format!("`{value}`: {e}"))?))
}

/// `federate compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Folder with the four shipped traces.
    #[arg(long, default_value = "config/scenarios/traces")]
    traces: PathBuf,
    /// A cluster that has only --history of its training part.
    #[arg(long)]
    cold_start: Option<String>,
    /// History of the cold-start cluster.
    #[arg(long, default_value = "2d", value_parser = humantime::parse_duration)]
    history: Duration,
    #[command(flatten)]
    round: RoundArgs,
    /// Epochs of central and local-only training.
    #[arg(long, default_value_t = 24)]
    central_epochs: usize,
    /// Training samples per cluster.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn pem(dir: &Path, file: &str) -> anyhow::Result<String> {
    tls::read(&dir.join(file)).with_context(|| {
        format!("reading {file} from --tls {}; write them with `foresight federate certs`", dir.display())
    })
}

/// Runs a `federate` command.
pub fn run(command: FederateCommand) -> anyhow::Result<ExitCode> {
    match command {
        FederateCommand::Certs { out, agents, hosts } => {
            tls::mint(&hosts, &agents)?.write(&out)?;
            println!("{}: ca.pem, server.pem/.key, and {} agent certificate(s)", out.display(), agents.len());
            Ok(ExitCode::SUCCESS)
        }
        FederateCommand::Serve(args) => serve(args),
        FederateCommand::Join(args) => join_federation(args),
        FederateCommand::Central(args) => central(args),
        FederateCommand::Compare(args) => compare(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = ServeConfig {
        agents: args.agents.max(1),
        rounds: args.round.rounds.max(1),
        round: args.round.round(args.quorum.unwrap_or(args.agents).max(1), args.deadline.as_secs_f64())?,
        local: LocalTraining { epochs: args.round.epochs, batch: args.round.batch, lr: args.round.lr },
        seed: args.round.seed,
        momentum: args.round.momentum,
        secure: args.secure,
    };
    let rounds = config.rounds;
    let aggregation = Aggregation::new(config)?;
    let tls = server_tls(
        &pem(&args.tls, "ca.pem")?,
        &pem(&args.tls, "server.pem")?,
        &pem(&args.tls, "server.key")?,
    );
    let template = std::fs::read(&args.template)
        .with_context(|| format!("reading the ONNX template {} (--template)", args.template.display()))?;
    let rt = runtime()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&args.listen))
        .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!("aggregator listening on https://{addr}");
    eprintln!("listening on https://{addr}");
    let bar = rounds_bar(rounds);
    // The bar follows the aggregation's summary from a task of its own (only when drawn).
    let progress = (!bar.is_hidden()).then(|| {
        let (aggregation, bar) = (aggregation.clone(), bar.clone());
        rt.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                let (_, summary) = aggregation.result();
                bar.set_position(summary.rounds.len() as u64);
                match summary.rounds.last() {
                    Some(last) => bar.set_message(format!(
                        "round {}: {} agent(s), {} missing",
                        last.round,
                        last.participants.len(),
                        last.missing.len()
                    )),
                    None => bar.set_message(format!("waiting for {} agent(s)", args.agents.max(1))),
                }
                if aggregation.done() {
                    bar.set_message("done; serving the final model to the agents");
                    break;
                }
            }
        })
    });
    let served = rt.block_on(aggregation.clone().serve(listener, tls, Duration::from_secs(2)));
    if let Some(task) = progress {
        task.abort();
    }
    bar.finish_and_clear();
    served.context("serving the federation")?;
    let (weights, summary) = aggregation.result();
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let mlp = Mlp { params: weights.clone() };
        let onnx = export::with_weights(&template, &mlp).context("exporting the federated model")?;
        let write = |name: &str, bytes: &[u8]| {
            export::replace_file(&out.join(name), bytes)
                .with_context(|| format!("writing {}", out.join(name).display()))
        };
        write("federated.onnx", &onnx)?;
        write("weights.f32", &crate::federate::wire::to_bytes(&weights))?;
        write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(ExitCode::SUCCESS)
}

/// A bar of the rounds closed, drawn only when standard error is a terminal.
fn rounds_bar(rounds: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(rounds);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} rounds [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn cluster(name: &str, data: &DataArgs) -> anyhow::Result<ClusterData> {
    let trace = Trace::load(&data.series).with_context(|| format!("--series {}", data.series.display()))?;
    Ok(ClusterData { name: name.into(), trace, history_s: data.history.map(|h| h.as_secs() as u32) })
}

fn join_federation(args: JoinArgs) -> anyhow::Result<ExitCode> {
    let data = cluster(&args.name, &args.data)?;
    let d = &args.data;
    // The same draws for every run given the same series and seed.
    let (train, test) = d.draw.split(&data);
    let agent = Agent {
        name: args.name.clone(),
        endpoint: args.aggregator.clone(),
        ca: pem(&args.tls, "ca.pem")?,
        cert: pem(&args.tls, &format!("{}.pem", args.name))?,
        key: pem(&args.tls, &format!("{}.key", args.name))?,
        poll: args.poll,
        require_secure: args.secure,
        leave_after: args.leave_after,
    };
    let template = match &args.model_out {
        Some(_) => Some(std::fs::read(&args.template).with_context(|| {
            format!("reading the ONNX template {} (--template)", args.template.display())
        })?),
        None => None,
    };
    // A model that cannot be written is reported once per version and the agent carries on:
    // the federation does not wait on one cluster's disk.
    let mut publish = |version: u64, weights: &[f32]| {
        let (Some(path), Some(template)) = (&args.model_out, &template) else { return };
        let written = export::with_weights(template, &Mlp { params: weights.to_vec() })
            .map_err(|e| e.to_string())
            .and_then(|onnx| export::replace_file(path, &onnx).map_err(|e| e.to_string()));
        match written {
            Ok(()) => tracing::info!(version, file = %path.display(), "federated model written"),
            Err(e) => {
                tracing::error!(version, file = %path.display(), "cannot write the federated model (--model-out): {e}")
            }
        }
    };
    let joined = runtime()?
        .block_on(join_publishing(&agent, &train, d.draw.seed, &mut publish))
        .context("taking part in the federation")?;
    let local = experiment::train_alone(
        &Mlp::new(args.init_seed),
        &train,
        args.local_epochs,
        32,
        args.local_lr,
        d.draw.seed,
    );
    let federated = Mlp { params: joined.weights };
    println!(
        "{}",
        serde_json::json!({
            "agent": args.name,
            "samples": train.len(),
            "rounds": joined.rounds,
            "version": joined.version,
            "federated_mase": experiment::mase(&federated, &test),
            "local_mase": experiment::mase(&local, &test),
        })
    );
    Ok(ExitCode::SUCCESS)
}

fn central(args: CentralArgs) -> anyhow::Result<ExitCode> {
    if let Some((name, _)) = args.history.iter().find(|(h, _)| !args.series.iter().any(|(s, _)| s == h)) {
        anyhow::bail!("--history {name}=… names no --series; give it as --series {name}=PATH");
    }
    let mut pooled = Samples::default();
    let mut held_out = Vec::new();
    for (name, path) in &args.series {
        let trace = Trace::load(path).with_context(|| format!("--series {name}={}", path.display()))?;
        let history_s =
            args.history.iter().find(|(h, _)| h == name).map(|(_, d)| Duration::from(*d).as_secs() as u32);
        let data = ClusterData { name: name.clone(), trace, history_s };
        // The agents' own draws: the same series, share and seed give the same samples.
        let (train, test) = args.draw.split(&data);
        if train.is_empty() {
            anyhow::bail!(
                "--series {name}={} has too little history to draw training samples from",
                path.display()
            );
        }
        pooled.extend(&train);
        held_out.push((name.clone(), train.len(), test));
    }
    let model = experiment::train_alone(
        &Mlp::new(args.init_seed),
        &pooled,
        args.epochs,
        args.batch,
        args.lr,
        args.draw.seed,
    );
    let clusters: Vec<serde_json::Value> = held_out
        .iter()
        .map(|(name, samples, test)| {
            serde_json::json!({
                "cluster": name,
                "samples": samples,
                "central_mase": experiment::mase(&model, test),
            })
        })
        .collect();
    println!("{}", serde_json::json!({ "epochs": args.epochs, "clusters": clusters }));
    Ok(ExitCode::SUCCESS)
}

fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let mut clusters = experiment::shipped_clusters(&args.traces)
        .with_context(|| format!("reading the traces in {} (--traces)", args.traces.display()))?;
    if let Some(name) = &args.cold_start {
        let c = clusters
            .iter_mut()
            .find(|c| &c.name == name)
            .with_context(|| format!("--cold-start {name} is not one of azure, google, amzn, fb"))?;
        c.history_s = Some(args.history.as_secs() as u32);
    }
    let s = Settings {
        train_share: 0.7,
        samples: args.samples,
        test_samples: 2000,
        rounds: args.round.rounds as usize,
        local: LocalTraining { epochs: args.round.epochs, batch: args.round.batch, lr: args.round.lr },
        epochs: args.central_epochs,
        round: args.round.round(clusters.len(), f64::INFINITY)?,
        seed: args.round.seed,
        attack: None,
        momentum: args.round.momentum,
    };
    let scores = experiment::compare(&clusters, &s);
    println!("{}", serde_json::to_string_pretty(&scores)?);
    Ok(ExitCode::SUCCESS)
}
