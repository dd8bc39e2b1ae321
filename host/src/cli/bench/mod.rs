//! `foresight bench …`: performance figures measured in one run, as ratios where the machine's
//! noise would otherwise dominate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod federate;

pub use federate::{FederateArgs, federate};

use anyhow::{Context, bail};
use foresight_sdk::{Candidates, PluginKind, Workload};
use latency_aware::LatencyAware;
use serde::Serialize;

use crate::config::Config;
use crate::plugins::{Limits, Native, Origin, Runtime, ScorePolicy, samples};

/// Options of `foresight bench scorer`.
#[derive(Debug, clap::Args)]
pub struct ScorerArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// The latency-aware component; default: `latency-aware.wasm` in the plugin folder.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Candidates per call.
    #[arg(long, default_value_t = 5000)]
    candidates: usize,
    /// Measurement rounds; each times native and Wasm back to back.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Target duration of one side of a round, in milliseconds.
    #[arg(long, default_value_t = 60)]
    round_ms: u64,
}

/// What `bench scorer` measured.
#[derive(Debug, Serialize)]
struct ScorerFigures {
    candidates: usize,
    features: usize,
    deadline_ms: u64,
    wasm_call_us: f64,
    native_call_us: f64,
    wasm_native_ratio: f64,
    calls_per_sec: f64,
    candidate_scores_per_sec: f64,
    per_call_overhead_us: f64,
    native_single_call_us: f64,
    compile_ms: f64,
    cached_load_ms: f64,
}

/// Runs the scorer benchmark.
pub fn scorer(args: &ScorerArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if args.rounds == 0 || args.candidates == 0 {
        bail!("--rounds and --candidates must be at least 1");
    }
    let file = args.plugin.clone().unwrap_or_else(|| config.plugins.dir().join("latency-aware.wasm"));
    if !file.is_file() {
        bail!(
            "{} does not exist; build it with `foresight plugin build` (or pass --plugin FILE)",
            file.display()
        );
    }

    // Compile into an empty cache, then load from it, as a daemon restart would.
    let cache = tempfile::tempdir().context("cannot create a scratch cache folder")?;
    let compile_ms = {
        let runtime = Runtime::new(Some(cache.path().to_owned())).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let loaded = runtime.load_file(&file)?;
        debug_assert_eq!(loaded.origin, Origin::Compiled);
        ms(loaded.load_time)
    };
    let runtime = Runtime::new(Some(cache.path().to_owned())).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let mut loads = Vec::new();
    let mut loaded = None;
    for _ in 0..7 {
        let l = runtime.load_file(&file)?;
        if l.origin != Origin::Cached {
            bail!("the compiled component was not served from the cache");
        }
        loads.push(ms(l.load_time));
        loaded = Some(l);
    }
    let cached_load_ms = median(&mut loads);
    let loaded = loaded.context("no load")?;

    let limits = Limits::default();
    let wasm = runtime.start(&loaded, Some(PluginKind::Scorer), &limits, "")?;
    let native = Native::<LatencyAware>::scorer("").map_err(|e| anyhow::anyhow!("native scorer: {e}"))?;

    let workload = samples::workload();
    let batch = samples::candidates(args.candidates, 42);
    let single = samples::candidates(1, 43);
    agree(&wasm, &native, &workload, &batch)?;

    let round = Duration::from_millis(args.round_ms);
    let big = measure(&wasm, &native, &workload, &batch, args.rounds, round)?;
    let small = measure(&wasm, &native, &workload, &single, args.rounds, round)?;
    let figures = ScorerFigures {
        candidates: args.candidates,
        features: batch.width(),
        deadline_ms: limits.deadline_ms,
        wasm_call_us: big.wasm_us,
        native_call_us: big.native_us,
        wasm_native_ratio: big.ratio,
        calls_per_sec: 1e6 / big.wasm_us,
        candidate_scores_per_sec: args.candidates as f64 * 1e6 / big.wasm_us,
        per_call_overhead_us: small.wasm_us,
        native_single_call_us: small.native_us,
        compile_ms,
        cached_load_ms,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        let f = &figures;
        println!(
            "scorer benchmark: {} ({} candidates × {} features per call)",
            file.display(),
            f.candidates,
            f.features
        );
        println!("  epoch deadline          {} ms (interruption checks on)", f.deadline_ms);
        println!("  wasm call               {:>10.1} µs", f.wasm_call_us);
        println!("  native call             {:>10.1} µs", f.native_call_us);
        println!("  wasm / native           {:>10.3}", f.wasm_native_ratio);
        println!("  calls/s (wasm)          {:>10.0}", f.calls_per_sec);
        println!("  candidate-scores/s      {:>10.2} M", f.candidate_scores_per_sec / 1e6);
        println!(
            "  1-candidate call (wasm) {:>10.2} µs   (native {:.2} µs)",
            f.per_call_overhead_us, f.native_single_call_us
        );
        println!("  first compile           {:>10.1} ms", f.compile_ms);
        println!("  cached load             {:>10.3} ms", f.cached_load_ms);
    }
    Ok(ExitCode::SUCCESS)
}

struct Timing {
    wasm_us: f64,
    native_us: f64,
    ratio: f64,
}

/// Times both builds in alternating rounds; per-round ratios cancel most of the machine's drift.
fn measure(
    wasm: &dyn ScorePolicy,
    native: &dyn ScorePolicy,
    workload: &Workload,
    candidates: &Candidates,
    rounds: usize,
    round: Duration,
) -> anyhow::Result<Timing> {
    let per_call = |policy: &dyn ScorePolicy, calls: usize| -> anyhow::Result<f64> {
        let started = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(policy.score(workload, candidates, false)?);
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / calls as f64)
    };
    // Warm up, and size a round from the Wasm call's cost.
    let estimate = per_call(wasm, 20)?.max(0.01);
    per_call(native, 20)?;
    let calls = ((round.as_secs_f64() * 1e6 / estimate) as usize).clamp(5, 1_000_000);
    let (mut w, mut n, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let native_us = per_call(native, calls)?;
        let wasm_us = per_call(wasm, calls)?;
        w.push(wasm_us);
        n.push(native_us);
        tracing::debug!(native_us, wasm_us, ratio = wasm_us / native_us, "round");
        r.push(wasm_us / native_us);
    }
    Ok(Timing { wasm_us: median(&mut w), native_us: median(&mut n), ratio: median(&mut r) })
}

/// Both builds must compute the same scores and explanations.
fn agree(
    wasm: &dyn ScorePolicy,
    native: &dyn ScorePolicy,
    w: &Workload,
    c: &Candidates,
) -> anyhow::Result<()> {
    let a = wasm.score(w, c, true)?;
    let b = native.score(w, c, true)?;
    for (i, (x, y)) in
        a.values.iter().zip(&b.values).chain(a.contributions.iter().zip(&b.contributions)).enumerate()
    {
        if x.to_bits() != y.to_bits() {
            bail!("Wasm and native scores differ at candidate {i}: {x} vs {y}");
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(values: &mut [f64]) -> f64 {
    quantile(values, 0.5)
}

/// The `p`-quantile of `values` (nearest rank); sorts them.
fn quantile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// The size the diurnal scenario is scaled to.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ScaleArgs {
    /// Clusters after scaling.
    #[arg(long, default_value_t = 20)]
    clusters: usize,
    /// Nodes per cluster after scaling.
    #[arg(long, default_value_t = 500)]
    nodes: u32,
    /// Services after scaling.
    #[arg(long, default_value_t = 200)]
    services: usize,
}

/// Options of `foresight bench sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// The scenario to scale up.
    #[arg(long, default_value = "config/scenarios/diurnal.toml")]
    scenario: PathBuf,
    #[command(flatten)]
    size: ScaleArgs,
    /// Simulated duration; default: the scenario's.
    #[arg(long)]
    duration: Option<humantime::Duration>,
}

/// What `bench sim` measured.
#[derive(Debug, Serialize)]
struct SimFigures {
    clusters: usize,
    nodes: usize,
    services: usize,
    simulated_ticks: u64,
    wall_seconds: f64,
    simulated_ticks_per_sec: f64,
    peak_rss_mb: f64,
    cost: f64,
    dropped_requests: f64,
}

/// Runs the simulator benchmark.
pub fn sim(args: &SimArgs) -> anyhow::Result<ExitCode> {
    use crate::backends::sim::{Scenario, Simulator};
    use crate::observe::Observer;

    let base = Scenario::load(&args.scenario)?;
    let mut scenario = scale(base, &args.size)?;
    if let Some(d) = args.duration {
        scenario.duration_s = d.as_secs();
    }
    let nodes: usize = scenario.clusters.iter().flat_map(|c| &c.pools).map(|p| p.nodes as usize).sum();
    let services = scenario.services.len();
    let clusters = scenario.clusters.len();
    let started = Instant::now();
    let mut world = Simulator::from_scenario(scenario);
    while !world.finished() {
        // A no-op policy still looks at the world every tick, as the loop would.
        std::hint::black_box(world.observe()?);
        world.step();
    }
    let wall = started.elapsed().as_secs_f64();
    let ledger = world.ledger();
    let figures = SimFigures {
        clusters,
        nodes,
        services,
        simulated_ticks: ledger.ticks,
        wall_seconds: wall,
        simulated_ticks_per_sec: ledger.ticks as f64 / wall,
        peak_rss_mb: peak_rss_mb().unwrap_or(f64::NAN),
        cost: ledger.cost,
        dropped_requests: ledger.dropped_requests,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        let f = &figures;
        println!("simulator benchmark: {} clusters, {} nodes, {} services", f.clusters, f.nodes, f.services);
        println!("  simulated ticks     {:>12}", f.simulated_ticks);
        println!("  wall time           {:>12.2} s", f.wall_seconds);
        println!("  ticks/s             {:>12.0}", f.simulated_ticks_per_sec);
        println!("  peak RSS            {:>12.1} MB", f.peak_rss_mb);
    }
    Ok(ExitCode::SUCCESS)
}

/// The scenario grown to the requested size: clusters cycle through the originals with their
/// RTTs and pools (starting pools sized to `nodes`), services cycle through the originals with
/// their demand, and every service gets replicas in every cloud cluster.
fn scale(
    mut s: crate::backends::sim::Scenario,
    size: &ScaleArgs,
) -> anyhow::Result<crate::backends::sim::Scenario> {
    let ScaleArgs { clusters, nodes, services } = *size;
    use crate::observe::ClusterKind;
    if s.clusters.is_empty() || s.services.is_empty() || clusters == 0 || services == 0 {
        bail!("the scenario needs clusters and services, and the targets must be positive");
    }
    let originals = s.clusters.clone();
    s.clusters = (0..clusters)
        .map(|i| {
            let mut c = originals[i % originals.len()].clone();
            c.name = format!("{}-{i}", c.name);
            c.kind = ClusterKind::Cloud;
            let pools = c.pools.len().max(1) as u32;
            for (k, p) in c.pools.iter_mut().enumerate() {
                // The first pools take the remainder, so each cluster has exactly `nodes`.
                p.nodes = nodes / pools + u32::from((k as u32) < nodes % pools);
                p.max_nodes = p.max_nodes.max(p.nodes * 2);
            }
            c
        })
        .collect();
    let templates = s.services.clone();
    s.services = (0..services)
        .map(|i| {
            let mut svc = templates[i % templates.len()].clone();
            svc.name = format!("{}-{i}", svc.name);
            svc.replicas = (0..clusters).map(|c| if c % 2 == i % 2 { 2 } else { 1 }).collect();
            svc
        })
        .collect();
    s.batch_jobs.clear();
    s.events.clear();
    s.disruptions.clear();
    Ok(s)
}

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Options of `foresight bench loop`.
#[derive(Debug, clap::Args)]
pub struct LoopArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    size: ScaleArgs,
    /// Simulated time run before measuring, so forecasters see real history.
    #[arg(long, default_value = "1d")]
    warmup: humantime::Duration,
    /// Ticks measured.
    #[arg(long, default_value_t = 100)]
    ticks: u64,
}

/// What `bench loop` measured.
#[derive(Debug, Serialize)]
struct LoopFigures {
    clusters: usize,
    services: usize,
    ticks: u64,
    tick_p50_ms: f64,
    tick_p99_ms: f64,
    /// The first tick forecasts every series (later ones refresh a share), so it is the slowest.
    first_tick_ms: f64,
    observe_p99_ms: f64,
    predict_p50_ms: f64,
    predict_p99_ms: f64,
    decide_p50_ms: f64,
    decide_p99_ms: f64,
    act_p99_ms: f64,
    rss_mb: f64,
}

/// Runs the loop benchmark.
pub fn tick_loop(args: &LoopArgs, config: Config) -> anyhow::Result<ExitCode> {
    use crate::backends::sim::Scenario;
    use crate::control::Daemon;

    let base = Scenario::load(&config.backend.scenario.relative())?;
    let scenario = scale(base, &args.size)?;
    let step = u64::from(scenario.step_s);
    let log = tempfile::tempdir()?;
    let mut config = config;
    config.decisions.log = log.path().join("decisions.jsonl").into();
    let mut daemon = Daemon::with_scenario(config, None, scenario)?;
    daemon.warm_up(args.warmup.as_secs() / step);
    let mut stages: [Vec<f64>; 5] = Default::default();
    for _ in 0..args.ticks {
        let s = daemon.tick()?.stages;
        let total = s.observe_ms + s.predict_ms + s.decide_ms + s.act_ms;
        for (v, x) in stages.iter_mut().zip([s.observe_ms, s.predict_ms, s.decide_ms, s.act_ms, total]) {
            v.push(x);
        }
    }
    let [observe, predict, decide, act, total] = &mut stages;
    let first_tick_ms = total.first().copied().unwrap_or(f64::NAN);
    let f = LoopFigures {
        first_tick_ms,
        clusters: args.size.clusters,
        services: args.size.services,
        ticks: args.ticks,
        tick_p50_ms: quantile(total, 0.5),
        tick_p99_ms: quantile(total, 0.99),
        observe_p99_ms: quantile(observe, 0.99),
        predict_p50_ms: quantile(predict, 0.5),
        predict_p99_ms: quantile(predict, 0.99),
        decide_p50_ms: quantile(decide, 0.5),
        decide_p99_ms: quantile(decide, 0.99),
        act_p99_ms: quantile(act, 0.99),
        rss_mb: peak_rss_mb().unwrap_or(f64::NAN),
    };
    if args.json {
        println!("{}", serde_json::to_string(&f)?);
    } else {
        println!(
            "loop benchmark: {} clusters, {} services, {} ticks after warm-up",
            f.clusters, f.services, f.ticks
        );
        println!(
            "  tick      p50 {:>8.1} ms   p99 {:>8.1} ms   first {:.1} ms",
            f.tick_p50_ms, f.tick_p99_ms, f.first_tick_ms
        );
        println!("  predict   p50 {:>8.1} ms   p99 {:>8.1} ms", f.predict_p50_ms, f.predict_p99_ms);
        println!("  decide    p50 {:>8.1} ms   p99 {:>8.1} ms", f.decide_p50_ms, f.decide_p99_ms);
        println!("  observe   p99 {:>8.1} ms;  act p99 {:.1} ms", f.observe_p99_ms, f.act_p99_ms);
        println!("  peak RSS  {:>8.1} MB", f.rss_mb);
    }
    Ok(ExitCode::SUCCESS)
}

/// Options of `foresight bench reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Plugin swaps.
    #[arg(long, default_value_t = 1000)]
    swaps: u64,
    /// Tick interval the swaps must fit between.
    #[arg(long, default_value = "20ms")]
    interval: humantime::Duration,
}

/// What `bench reload` measured.
#[derive(Debug, Serialize)]
struct ReloadFigures {
    swaps: u64,
    ticks: u64,
    swap_p50_ms: f64,
    swap_p99_ms: f64,
    missed_ticks: u64,
    failed_ticks: u64,
}

/// Runs the reload benchmark: the forecaster role alternates between two configurations of the
/// forecaster component, each candidate prepared (cache load, start, conformance verdict) and
/// swapped in between ticks, as hot reload does.
pub fn reload(args: &ReloadArgs, config: Config) -> anyhow::Result<ExitCode> {
    use crate::control::{Daemon, Reload, Verdicts, prepare};

    let log = tempfile::tempdir()?;
    let mut config = config;
    config.decisions.log = log.path().join("decisions.jsonl").into();
    let mut daemon = Daemon::new(config.clone(), None)?;
    daemon.warm_up(120);
    let interval = Duration::from(args.interval);
    let mut roles = [config.plugins.forecaster.clone(), config.plugins.forecaster.clone()];
    roles[1].config.insert("min-cycles".into(), toml::Value::Integer(2));
    let mut verdicts = Verdicts::default();
    let (mut swap_ms, mut missed, mut failed, mut ticks) = (Vec::new(), 0, 0, 0);
    let mut next = Instant::now();
    for i in 0..args.swaps {
        let started = Instant::now();
        let role = &roles[(i % 2) as usize];
        match prepare(
            daemon.runtime(),
            &config,
            PluginKind::Forecaster,
            role,
            &mut verdicts,
            "benchmark swap".into(),
        ) {
            Reload::Plugin { kind, plugin, .. } => {
                daemon.swap(kind, plugin);
            }
            Reload::Refused { reason, .. } => bail!("a candidate was refused: {reason}"),
            Reload::Config(_) => {}
        }
        swap_ms.push(ms(started.elapsed()));
        // A tick is missed when it could not start on schedule; failed when it did not act.
        if Instant::now() > next + interval {
            missed += 1;
        }
        next = Instant::now().max(next) + interval;
        let summary = daemon.tick()?;
        ticks += 1;
        if summary.skipped_acting || summary.rejected > 0 {
            failed += 1;
        }
    }
    let f = ReloadFigures {
        swaps: args.swaps,
        ticks,
        swap_p50_ms: quantile(&mut swap_ms, 0.5),
        swap_p99_ms: quantile(&mut swap_ms, 0.99),
        missed_ticks: missed,
        failed_ticks: failed,
    };
    if args.json {
        println!("{}", serde_json::to_string(&f)?);
    } else {
        println!("reload benchmark: {} swaps over {} ticks", f.swaps, f.ticks);
        println!("  swap      p50 {:>8.2} ms   p99 {:>8.2} ms", f.swap_p50_ms, f.swap_p99_ms);
        println!("  missed ticks {}, failed ticks {}", f.missed_ticks, f.failed_ticks);
    }
    Ok(ExitCode::SUCCESS)
}
