//! `foresight forecast` (quantile forecasts for one recorded series) and `foresight forecast
//! eval` (rolling-origin evaluation of installed forecasters over a folder of series).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use foresight_sdk::{ForecastRequest, PluginKind};
use serde::Serialize;

use crate::config::Config;
use crate::plugins::{ForecastPolicy, Limits, Policy, Runtime};
use crate::predict::ensemble::combine;
use crate::predict::evaluate::{self, Contender, LEVELS};
use crate::predict::history;

/// The name that stands for the combination of the other forecasters.
pub const ENSEMBLE: &str = "ensemble";
/// The name that stands for the forecaster the configuration serves, with its ensemble.
pub const DEFAULT: &str = "default";

/// Options of `foresight forecast`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ForecastArgs {
    #[command(subcommand)]
    command: Option<ForecastCommand>,
    /// The series, a `timestamp,value` CSV (gaps are missing rows).
    #[arg(long, required = true)]
    input: Option<PathBuf>,
    /// How far ahead to forecast; every step of the series up to it is written.
    #[arg(long, default_value = "24h")]
    horizon: humantime::Duration,
    /// Installed forecaster (descriptor name or file stem in the plugin folder), `ensemble`, or
    /// `default` (the forecaster `[plugins.forecaster]` serves, with `[plugins] ensemble`).
    #[arg(long, default_value = DEFAULT)]
    plugin: String,
    /// Output CSV (`timestamp,p10,p50,p90`); standard output when left out.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Grant forecasters an ONNX model (besides those `[plugins.forecaster]` grants).
    #[arg(long = "model", value_name = "NAME=PATH", value_parser = super::parse_model, global = true)]
    models: Vec<(String, PathBuf)>,
}

#[derive(Debug, clap::Subcommand)]
enum ForecastCommand {
    /// Rolling-origin evaluation over every `timestamp,value` CSV of a folder.
    ///
    /// Protocol: origins every 24 h over the last 20 % of each series; at an origin the model
    /// sees only the data before it; the error for horizon H is taken at lead time exactly H
    /// (after the last value seen) with p50 as the point forecast, only where a value was
    /// observed (gaps stay gaps; a lead that is not a whole number of the series' steps is not
    /// scored); MASE is scaled by the in-sample MAE of a one-day seasonal-naive forecast on
    /// the data before the first origin; MAPE (non-zero actuals) and p10–p90 coverage are
    /// fractions. Figures per plugin and horizon are means over series; `seconds` is the time
    /// spent forecasting. Files that are not `timestamp,value` are skipped with a note.
    #[command(
        after_help = "Example:\n  foresight forecast eval --data ../shared/data/series --horizons 1h,6h,24h --out eval.json"
    )]
    Eval(EvalArgs),
}

/// Options of `foresight forecast eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Folder of `timestamp,value` CSV files.
    #[arg(long)]
    data: PathBuf,
    /// Horizons, comma separated; reported as written.
    #[arg(long, value_delimiter = ',', default_value = "1h,6h,12h,24h,48h")]
    horizons: Vec<String>,
    /// Forecasters to evaluate (installed names, `ensemble` for their combination, `default`
    /// for the forecaster `[plugins.forecaster]` serves combined with `[plugins] ensemble`);
    /// default: every installed forecaster, the ensemble and `default`.
    #[arg(long, num_args = 1..)]
    plugin: Vec<String>,
    /// JSON report.
    #[arg(long)]
    out: PathBuf,
    /// No progress bar (it is drawn only when standard error is a terminal anyway).
    #[arg(long)]
    quiet: bool,
}

/// Runs `foresight forecast` or `foresight forecast eval`.
pub fn run(args: &ForecastArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let mut config = config.clone();
    config.plugins.forecaster.limits.models.extend(args.models.iter().cloned());
    match &args.command {
        Some(ForecastCommand::Eval(eval)) => run_eval(eval, &config),
        None => forecast_one(args, &config),
    }
}

/// Limits for offline forecasting: whole histories in one call, so generous ones, and the
/// models the forecaster role is granted.
fn offline_limits(config: &Config) -> Limits {
    let models = config.plugins.forecaster.limits.models.clone();
    Limits { deadline_ms: 120_000, memory_mib: 2048, models, ..Limits::default() }
}

/// A forecaster component found in the plugin folder: descriptor name, file, plugin.
type Installed = (String, PathBuf, Arc<dyn ForecastPolicy>);

/// A forecaster component that did not start: its file and why.
type Refused = (PathBuf, String);

/// Every forecaster component in the plugin folder that starts, sorted by file, and those that
/// did not with why; the runtime must outlive the plugins (it drives their deadlines).
fn installed(config: &Config) -> anyhow::Result<(Runtime, Vec<Installed>, Vec<Refused>)> {
    let dir = config.plugins.dir();
    let runtime = Runtime::new(Some(config.plugins.cache_dir()))
        .map_err(|e| anyhow::anyhow!("cannot start the plugin runtime: {e:#}"))?;
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "cannot read the plugin folder {}; build the plugins with `foresight plugin build`",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    let (mut found, mut failed) = (Vec::new(), Vec::new());
    for file in files {
        let loaded = match runtime.load_file(&file) {
            Ok(l) if l.kind == PluginKind::Forecaster => l,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("note: skipping {}: {e}", file.display());
                continue;
            }
        };
        // The live forecaster's configuration applies to its own file.
        let role = &config.plugins.forecaster;
        let text = if config.plugins.file(role) == file { role.config_text() } else { String::new() };
        // One plugin that cannot start (a model not granted, say) does not stop the others.
        let plugin =
            match runtime.start(&loaded, Some(PluginKind::Forecaster), &offline_limits(config), &text) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("note: skipping {}: {e}", file.display());
                    failed.push((file, e.to_string()));
                    continue;
                }
            };
        let name = plugin.descriptor().name.clone();
        found.push((name, file, Arc::new(plugin) as Arc<dyn ForecastPolicy>));
    }
    Ok((runtime, found, failed))
}

/// The forecaster the configuration serves and the ensemble members it combines it with.
struct Served {
    forecaster: Contender,
    members: Vec<Contender>,
}

impl Served {
    /// As `[plugins.forecaster]` and `[plugins] ensemble` name them, among the installed.
    fn of(config: &Config, all: &[Installed], failed: &[Refused]) -> anyhow::Result<Self> {
        let p = &config.plugins;
        let find = |file: &Path, key: &str| -> anyhow::Result<Contender> {
            if let Some((name, _, policy)) = all.iter().find(|(_, f, _)| f == file) {
                return Ok(Contender { name: name.clone(), policy: policy.clone() });
            }
            if let Some((_, why)) = failed.iter().find(|(f, _)| f == file) {
                bail!("{key} ({}) could not start: {why}; fix its configuration", file.display());
            }
            let wasm = file.with_extension("wasm");
            if file.extension().is_none() && wasm.exists() {
                bail!(
                    "{key} names {}; components end in `.wasm`: did you mean {}?",
                    file.display(),
                    wasm.display()
                );
            }
            bail!(
                "{key} names {}, which is not an installed forecaster; build it with `foresight plugin build` or fix {key}",
                file.display()
            )
        };
        let forecaster = find(&p.file(&p.forecaster), "[plugins.forecaster] file")?;
        let members = p
            .ensemble
            .iter()
            .enumerate()
            .map(|(i, file)| find(&p.dir().join(file), &format!("[plugins] ensemble[{i}]")))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { forecaster, members })
    }

    /// Its rows and seconds on one series: the forecaster's own when it serves alone and was
    /// already evaluated (the same plugin, started with the same configuration), else its own
    /// evaluation.
    fn evaluate(
        &self,
        name: &str,
        series: &foresight_sdk::Series,
        evaluated: &evaluate::SeriesResult,
        horizons: &[(String, u32)],
    ) -> evaluate::SeriesResult {
        let combined = !self.members.is_empty();
        let own;
        let (result, label) = if combined {
            let list: Vec<Contender> = std::iter::once(&self.forecaster)
                .chain(&self.members)
                .map(|c| Contender { name: c.name.clone(), policy: c.policy.clone() })
                .collect();
            own = evaluate::evaluate_series(name, series, &list, true, horizons);
            (&own, ENSEMBLE)
        } else if evaluated.rows.iter().any(|r| r.plugin == self.forecaster.name)
            || evaluated.failures.iter().any(|(p, _)| *p == self.forecaster.name)
        {
            (evaluated, self.forecaster.name.as_str())
        } else {
            own = evaluate::evaluate_series(
                name,
                series,
                std::slice::from_ref(&self.forecaster),
                false,
                horizons,
            );
            (&own, self.forecaster.name.as_str())
        };
        let rename = |p: &String| (p == label).then(|| DEFAULT.to_owned());
        evaluate::SeriesResult {
            rows: result
                .rows
                .iter()
                .filter_map(|r| rename(&r.plugin).map(|plugin| evaluate::Row { plugin, ..r.clone() }))
                .collect(),
            seconds: result.seconds.iter().filter_map(|(p, s)| rename(p).map(|p| (p, *s))).collect(),
            failures: result.failures.iter().filter_map(|(p, w)| rename(p).map(|p| (p, w.clone()))).collect(),
        }
    }
}

/// The contenders `names` stands for (all installed when empty), whether the ensemble is among
/// them, the served forecaster if `default` is, and the runtime they run on.
fn contenders(
    config: &Config,
    names: &[String],
) -> anyhow::Result<(Vec<Contender>, bool, Option<Served>, Runtime)> {
    let (runtime, all, failed) = installed(config)?;
    if all.is_empty() {
        bail!(
            "no forecaster components in {}; build them with `foresight plugin build`",
            config.plugins.dir().display()
        );
    }
    let ensemble = names.is_empty() || names.iter().any(|n| n == ENSEMBLE);
    let served = if names.is_empty() || names.iter().any(|n| n == DEFAULT) {
        Some(Served::of(config, &all, &failed)?)
    } else {
        None
    };
    let wanted: Vec<&String> = names.iter().filter(|n| *n != ENSEMBLE && *n != DEFAULT).collect();
    let mut picked = Vec::new();
    for name in &wanted {
        let Some((n, _, p)) =
            all.iter().find(|(n, f, _)| n == *name || f.file_stem().is_some_and(|s| s == name.as_str()))
        else {
            // Installed but refused to start: say why, not that it is missing.
            if let Some((file, why)) =
                failed.iter().find(|(f, _)| f.file_stem().is_some_and(|s| s == name.as_str()))
            {
                bail!(
                    "forecaster `{name}` ({}) could not start: {why}; fix its configuration ([plugins.forecaster] `config`, or `--set`)",
                    file.display()
                );
            }
            let known: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
            bail!(
                "no installed forecaster named `{name}`; installed: {}, or `{ENSEMBLE}` or `{DEFAULT}`",
                known.join(", ")
            );
        };
        picked.push(Contender { name: n.clone(), policy: p.clone() });
    }
    if names.is_empty() || (wanted.is_empty() && ensemble) {
        picked = all.into_iter().map(|(name, _, policy)| Contender { name, policy }).collect();
    }
    Ok((picked, ensemble, served, runtime))
}

fn forecast_one(args: &ForecastArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let input = args.input.as_deref().context("--input is required")?;
    let series = history::load(input)?;
    let step = series.step;
    let horizon_s = Duration::from(args.horizon).as_secs();
    let steps = horizon_s / u64::from(step);
    if steps == 0 {
        bail!(
            "--horizon {} is shorter than the series' step of {step} s; ask for at least one step",
            args.horizon
        );
    }
    let leads: Vec<u32> = (1..=steps).map(|k| (k * u64::from(step)) as u32).collect();
    let names = std::slice::from_ref(&args.plugin);
    let (mut members, mut ensemble, served, _runtime) = contenders(config, names)?;
    if let Some(served) = served {
        ensemble = !served.members.is_empty();
        members = std::iter::once(served.forecaster).chain(served.members).collect();
    }
    let request =
        ForecastRequest { series: vec![series.clone()], horizons: leads.clone(), quantiles: LEVELS.to_vec() };
    let mut answers = Vec::new();
    for m in &members {
        let answer = evaluate::ask(m, &request).map_err(anyhow::Error::msg)?;
        answers.push(answer.into_iter().next().unwrap_or_default());
    }
    let values = if ensemble && members.len() > 1 {
        let weights = evaluate::fitted_weights(&series, &members, &leads).map_err(anyhow::Error::msg)?;
        let refs: Vec<&[f64]> = answers.iter().map(Vec::as_slice).collect();
        combine(&refs, &weights, LEVELS.len())
    } else {
        answers.into_iter().next().unwrap_or_default()
    };
    let last = series.last_time();
    let mut csv = String::from("timestamp,p10,p50,p90\n");
    for (lead, row) in leads.iter().zip(values.chunks(LEVELS.len())) {
        let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(last + i64::from(*lead)).unwrap_or(0));
        csv.push_str(&format!("{},{},{},{}\n", humantime::format_rfc3339_seconds(t), row[0], row[1], row[2]));
    }
    match &args.out {
        Some(out) => std::fs::write(out, csv).with_context(|| format!("cannot write {}", out.display()))?,
        None => print!("{csv}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Figures of one plugin at one horizon, over series.
#[derive(Debug, Serialize)]
struct Summary {
    mape: Option<f64>,
    mase: f64,
    coverage: f64,
    below_p10: f64,
    above_p90: f64,
    seconds: f64,
    series: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    protocol: &'static str,
    /// What the `default` row stands for, when it was evaluated.
    default: Option<Resolved>,
    plugins: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Summary>>,
    rows: Vec<evaluate::Row>,
    skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
struct Resolved {
    forecaster: String,
    ensemble: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Skipped {
    file: String,
    reason: String,
}

fn run_eval(args: &EvalArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let horizons: Vec<(String, u32)> = args
        .horizons
        .iter()
        .map(|h| {
            let d = humantime::parse_duration(h.trim()).map_err(|e| {
                anyhow::anyhow!("--horizons: `{h}` is not a duration ({e}); write e.g. 1h,6h,24h")
            })?;
            Ok((h.trim().to_owned(), u32::try_from(d.as_secs()).context("--horizons: too long")?))
        })
        .collect::<anyhow::Result<_>>()?;
    // Forecasters are asked for leads in ascending order; the table follows it.
    let mut horizons = horizons;
    horizons.sort_by_key(|(_, s)| *s);
    for pair in horizons.windows(2) {
        if pair[1].1 == pair[0].1 {
            bail!("--horizons: `{}` and `{}` are the same horizon; list each once", pair[0].0, pair[1].0);
        }
    }
    if let Some((label, _)) = horizons.iter().find(|(_, s)| *s == 0) {
        bail!(
            "--horizons: `{label}` is no time ahead; every horizon must be at least one step of the series"
        );
    }
    let (contenders, ensemble, served, _runtime) = contenders(config, &args.plugin)?;
    if let Some(served) = &served {
        let members: Vec<&str> = served.members.iter().map(|m| m.name.as_str()).collect();
        let with = if members.is_empty() { String::new() } else { format!(" with {}", members.join(", ")) };
        eprintln!("note: `{DEFAULT}` is {}{with}, as the configuration serves it", served.forecaster.name);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.data)
        .with_context(|| format!("cannot read --data {}", args.data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("--data {} holds no .csv files", args.data.display());
    }
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(files.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} series, {elapsed_precise} eta {eta} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!(
        "{} forecaster(s)",
        contenders.len() + usize::from(ensemble && contenders.len() > 1) + usize::from(served.is_some())
    ));
    // Notes go to standard error whether or not the bar is drawn.
    let note = |text: String| bar.suspend(|| eprintln!("{text}"));
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut seconds: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>> =
        Default::default();
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        bar.set_message(name.clone());
        let series = match history::load(file) {
            Ok(s) => s,
            Err(e) => {
                note(format!("note: skipping {name}: {e}"));
                skipped.push(Skipped { file: name, reason: e.to_string() });
                bar.inc(1);
                continue;
            }
        };
        let mut result = evaluate::evaluate_series(&name, &series, &contenders, ensemble, &horizons);
        if let Some(served) = &served {
            let own = served.evaluate(&name, &series, &result, &horizons);
            result.rows.extend(own.rows);
            result.seconds.extend(own.seconds);
            result.failures.extend(own.failures);
        }
        for (plugin, why) in &result.failures {
            note(format!("note: {plugin} failed on {name}: {why}"));
        }
        if result.rows.is_empty() {
            let reason = "no horizon could be scored (too short for an origin, or no horizon a whole number of its steps)";
            note(format!("note: skipping {name}: {reason}"));
            skipped.push(Skipped { file: name, reason: reason.into() });
        }
        for (plugin, s) in &result.seconds {
            for row in result.rows.iter().filter(|r| &r.plugin == plugin) {
                *seconds.entry(plugin.clone()).or_default().entry(row.horizon.clone()).or_default() += s;
            }
        }
        rows.extend(result.rows);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut plugins: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Summary>> =
        Default::default();
    let mut names: Vec<String> = contenders.iter().map(|c| c.name.clone()).collect();
    if ensemble && contenders.len() > 1 {
        names.push(ENSEMBLE.into());
    }
    if served.is_some() {
        names.push(DEFAULT.into());
    }
    for plugin in &names {
        for (label, _) in &horizons {
            let mine: Vec<&evaluate::Row> =
                rows.iter().filter(|r| &r.plugin == plugin && &r.horizon == label).collect();
            if mine.is_empty() {
                continue;
            }
            let n = mine.len() as f64;
            let mapes: Vec<f64> = mine.iter().filter_map(|r| r.mape).collect();
            plugins.entry(plugin.clone()).or_default().insert(
                label.clone(),
                Summary {
                    mape: (!mapes.is_empty()).then(|| mapes.iter().sum::<f64>() / mapes.len() as f64),
                    mase: mine.iter().map(|r| r.mase).sum::<f64>() / n,
                    coverage: mine.iter().map(|r| r.coverage).sum::<f64>() / n,
                    below_p10: mine.iter().map(|r| r.below_p10).sum::<f64>() / n,
                    above_p90: mine.iter().map(|r| r.above_p90).sum::<f64>() / n,
                    seconds: seconds.get(plugin).and_then(|m| m.get(label)).copied().unwrap_or(0.0),
                    series: mine.len(),
                },
            );
        }
    }
    print_table(&plugins, &horizons);
    let scored = plugins.len();
    let report = Report {
        default: served.as_ref().map(|s| Resolved {
            forecaster: s.forecaster.name.clone(),
            ensemble: s.members.iter().map(|m| m.name.clone()).collect(),
        }),
        protocol: "rolling origin: origins every 24 h over the last 20 % of each series; data before the origin only; error at lead exactly H with p50; MASE scaled by the in-sample MAE of a one-day seasonal-naive forecast before the first origin",
        plugins,
        rows,
        skipped,
    };
    write_json(&args.out, &report)?;
    if scored == 0 {
        bail!(
            "no .csv file in --data {} ({} of them) could be scored; why, per file, is under `skipped` in {}",
            args.data.display(),
            files.len(),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(
    plugins: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, Summary>>,
    horizons: &[(String, u32)],
) {
    for (plugin, by_horizon) in plugins {
        println!("{plugin}");
        println!(
            "  {:<8} {:>9} {:>8} {:>7} {:>9} {:>6} {:>6} {:>7} {:>9}",
            "horizon", "accuracy", "MAPE", "MASE", "coverage", "<p10", ">p90", "series", "s/series"
        );
        for (label, _) in horizons {
            let Some(s) = by_horizon.get(label) else { continue };
            let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.1} %", v * 100.0));
            println!(
                "  {:<8} {:>9} {:>8} {:>7.3} {:>8.1} % {:>4.1} % {:>4.1} % {:>7} {:>9.4}",
                label,
                pct(s.mape.map(|m| 1.0 - m)),
                pct(s.mape),
                s.mase,
                s.coverage * 100.0,
                s.below_p10 * 100.0,
                s.above_p90 * 100.0,
                s.series,
                s.seconds / s.series.max(1) as f64
            );
        }
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
