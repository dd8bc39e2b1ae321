//! Command-line interface: parsing and dispatch. Each subcommand lives in its own module.

mod bench;
mod federate;
mod forecast;
mod plugin;
mod run;
mod scaffold;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use foresight_sdk::PluginKind;

/// Foresight: predictive, latency-aware capacity and placement for Kubernetes fleets.
#[derive(Debug, Parser)]
#[command(name = "foresight", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Configuration file.
    #[arg(long, global = true, default_value = "config/foresight.toml", env = "FORESIGHT_CONFIG")]
    pub config: PathBuf,
    /// Override one configuration key, after the file and the environment, e.g.
    /// `--set tick.interval=50ms` (repeatable; the value is TOML, or else a string).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    pub set: Vec<crate::config::Flag>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control loop on the configured backend (by default the simulator on the
    /// diurnal scenario, accelerated) until the scenario ends, --ticks are done, or Ctrl-C.
    #[command(after_help = "Example:\n  foresight run --ticks 600")]
    Run(run::RunArgs),
    /// Quantile forecasts for one recorded series (`timestamp,value` in, `timestamp,p10,p50,p90`
    /// out), or `forecast eval`: rolling-origin evaluation of the installed forecasters.
    #[command(
        after_help = "Examples:\n  foresight forecast --input demand.csv --horizon 24h --plugin seasonal-naive --out forecast.csv\n  foresight forecast eval --data ../shared/data/series --horizons 1h,6h,24h --out eval.json"
    )]
    Forecast(forecast::ForecastArgs),
    /// Run policies side by side on one scenario and seed: Foresight's own, its planner without
    /// a forecast (reactive) and with a perfect one (oracle), and the baselines (hpa, karpenter,
    /// kube-default, static-peak); writes report.json and report.html.
    #[command(
        after_help = "Example:\n  foresight simulate --scenario config/scenarios/regional.toml --policy predictive reactive oracle hpa karpenter static-peak --seed 7 --out /tmp/regional"
    )]
    Simulate(simulate::SimulateArgs),
    /// Build, check and scaffold policy plugins.
    #[command(
        subcommand,
        after_help = "Examples:\n  foresight plugin new my-scorer --kind scorer\n  foresight plugin build plugins/my-scorer\n  foresight plugin check .foresight/plugins/my-scorer.wasm"
    )]
    Plugin(PluginCommand),
    /// Measure performance and print the figures.
    #[command(
        subcommand,
        after_help = "Examples:\n  foresight bench scorer --json\n  foresight bench loop --json --warmup 7d --ticks 20"
    )]
    Bench(BenchCommand),
    /// Work with the configuration.
    #[command(
        subcommand,
        after_help = "Examples:\n  foresight config check config/foresight.toml --set tick.interval=1s\n  foresight config reference > docs/configuration.md"
    )]
    Config(ConfigCommand),
    /// Federated learning of the demand model: certificates, aggregator, agents, comparison.
    #[command(
        subcommand,
        after_help = "Examples:\n  foresight federate certs --out /tmp/fed --agent eu --agent us\n  foresight federate compare --cold-start fb --rounds 96"
    )]
    Federate(federate::FederateCommand),
    /// Print a shell completion script for foresight's subcommands and options.
    #[command(
        after_help = "Example:\n  foresight completions bash > ~/.local/share/bash-completion/completions/foresight"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file (with the FORESIGHT_* environment applied) and print each
    /// problem with its file, line, key and fix.
    #[command(after_help = "Example:\n  foresight config check config/foresight.toml")]
    Check {
        /// The file; default: the global --config.
        file: Option<PathBuf>,
    },
    /// Print the reference of every section and key (type, default, allowed values,
    /// description) as Markdown, generated from the configuration types; docs/configuration.md
    /// is its output.
    #[command(after_help = "Example:\n  foresight config reference > docs/configuration.md")]
    Reference,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Build every plugin crate under plugins/ (or the given crate folders) to a
    /// wasm32-wasip2 component in the configured plugin folder; prints each component's path.
    #[command(
        after_help = "Example:\n  foresight plugin build\n  foresight plugin build plugins/my-scorer --out /tmp/plugins"
    )]
    Build {
        /// Crate folders to build; default: every crate under plugins/.
        crates: Vec<PathBuf>,
        /// Output folder; default: `[plugins] dir` of the configuration.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar: cargo's own output instead (also when standard error is not a
        /// terminal).
        #[arg(long)]
        quiet: bool,
    },
    /// Load a component, check its world and contract version, and run the conformance suite.
    #[command(
        after_help = "Examples:\n  foresight plugin check .foresight/plugins/latency-aware.wasm --plugin-config 'weight-price = 5.0'\n  foresight plugin check .foresight/plugins/onnx-mlp.wasm --model demand-mlp=plugins/onnx-mlp/model/demand-mlp.onnx"
    )]
    Check {
        /// The component file.
        file: PathBuf,
        /// Kind the plugin must be; default: whatever it exports.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<PluginKind>,
        /// The plugin's configuration, as TOML text.
        #[arg(long = "plugin-config", default_value = "")]
        plugin_config: String,
        /// Grant the plugin an ONNX model for the check: the name it asks for and the `.onnx`
        /// file (repeatable). Needs ONNX Runtime (`pip install onnxruntime==1.31.1`, or
        /// ORT_DYLIB_PATH).
        #[arg(long = "model", value_name = "NAME=PATH", value_parser = parse_model)]
        models: Vec<(String, PathBuf)>,
    },
    /// Scaffold a new plugin crate that builds and passes `check` as generated.
    #[command(after_help = "Example:\n  foresight plugin new my-scorer --kind scorer")]
    New {
        /// Crate name (lowercase, digits and dashes).
        name: String,
        /// Policy kind.
        #[arg(long, value_parser = parse_kind)]
        kind: PluginKind,
        /// Parent folder; default: plugins/.
        #[arg(long, default_value = "plugins")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Score batches through the Wasm scorer and its native build; print throughput, the
    /// Wasm/native ratio, per-call overhead and compile/load times.
    #[command(after_help = "Example:\n  foresight bench scorer --json")]
    Scorer(bench::ScorerArgs),
    /// Replay a week of the diurnal scenario scaled up (20 clusters × 500 nodes × 200 services)
    /// with a no-op policy; print simulated ticks/s and peak memory.
    #[command(after_help = "Example:\n  foresight bench sim --json")]
    Sim(bench::SimArgs),
    /// Tick the whole loop (every policy in Wasm) on the scaled-up simulator and print tick
    /// latency per stage (p50/p99) and memory.
    #[command(after_help = "Example:\n  foresight bench loop --json")]
    Loop(bench::LoopArgs),
    /// Swap plugins back and forth while the loop ticks; print swap latency and missed or
    /// failed ticks.
    #[command(after_help = "Example:\n  foresight bench reload --json")]
    Reload(bench::ReloadArgs),
    /// Run a federation in one process (aggregator and agents on loopback, mutual TLS), in the
    /// clear and under secure aggregation; print round time and bytes per round.
    #[command(after_help = "Example:\n  foresight bench federate --agents 4 --rounds 16 --json")]
    Federate(bench::FederateArgs),
}

/// The whole command tree, as clap sees it (for completions and for checking the help).
pub fn command() -> clap::Command {
    Cli::command()
}

fn parse_kind(s: &str) -> Result<PluginKind, String> {
    s.parse()
}

pub(crate) fn parse_model(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.is_empty() => {
            Ok((name.trim().to_owned(), PathBuf::from(path)))
        }
        _ => {
            Err(format!("`{s}` is not NAME=PATH; write it like `--model demand-mlp=models/demand-mlp.onnx`"))
        }
    }
}

/// Sets up logging on stderr: colours only on a terminal, JSON lines when `[log] format =
/// "json"`.
pub fn init_tracing(verbose: u8, json: bool) {
    let default = match verbose {
        0 => "info,wasmtime=warn,cranelift=warn",
        1 => "debug,wasmtime=info,cranelift=warn",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        use std::io::IsTerminal;
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let explicit_config = std::env::args().any(|a| a == "--config" || a.starts_with("--config="))
        || std::env::var_os("FORESIGHT_CONFIG").is_some();
    let mut source =
        crate::config::Source { file: cli.config.clone(), required: explicit_config, flags: cli.set.clone() };
    if let Command::Run(args) = &cli.command {
        source.flags.extend(args.flags());
    }
    let load_config = || source.load();
    match cli.command {
        Command::Run(args) => {
            let config = load_config()?;
            let watched =
                cli.config.is_file().then(|| crate::config::Source { required: true, ..source.clone() });
            run::run(&args, config, watched)
        }
        Command::Plugin(PluginCommand::Build { crates, out, quiet }) => {
            let out = match out {
                Some(out) => out,
                None => load_config()?.plugins.dir(),
            };
            plugin::build(&crates, &out, quiet)
        }
        Command::Plugin(PluginCommand::Check { file, kind, plugin_config, models }) => {
            plugin::check(&file, kind, &plugin_config, &models, load_config()?.plugins.cache_dir())
        }
        Command::Plugin(PluginCommand::New { name, kind, dir }) => scaffold::new_plugin(&name, kind, &dir),
        Command::Forecast(args) => forecast::run(&args, &load_config()?),
        Command::Simulate(args) => simulate::run(&args, &load_config()?),
        Command::Federate(command) => federate::run(command),
        Command::Bench(BenchCommand::Scorer(args)) => bench::scorer(&args, &load_config()?),
        Command::Bench(BenchCommand::Sim(args)) => bench::sim(&args),
        Command::Bench(BenchCommand::Loop(args)) => bench::tick_loop(&args, load_config()?),
        Command::Bench(BenchCommand::Reload(args)) => bench::reload(&args, load_config()?),
        Command::Bench(BenchCommand::Federate(args)) => bench::federate(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "foresight", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Reference) => {
            print!("{}", crate::config::reference::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let file = file.unwrap_or(cli.config);
            match crate::config::Config::load_with(&file, true, &cli.set) {
                Ok(config) => {
                    println!(
                        "{}: valid ({} backend, plugins from {}, {} experiments)",
                        file.display(),
                        match config.backend.kind {
                            crate::config::BackendKind::Sim => "sim",
                            crate::config::BackendKind::Kubernetes => "kubernetes",
                        },
                        config.plugins.dir().display(),
                        config.experiments.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(crate::config::ConfigError::Invalid(problems)) => {
                    for p in &problems {
                        println!("{p}");
                    }
                    println!("{}: {} problem(s)", file.display(), problems.len());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::command;

    /// Every subcommand under `cmd`, with its full name (`plugin build`), depth first.
    fn subcommands(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{prefix}{}", sub.get_name()).trim().to_owned();
            out.push((name.clone(), sub.clone()));
            subcommands(sub, &format!("{name} "), out);
        }
    }

    /// Splits an example line as a shell would (quotes, no expansion), up to a redirection.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut quote = None;
        for c in line.chars() {
            match (quote, c) {
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_default();
                }
                (Some(q), c) if c == q => quote = None,
                (None, ' ') => words.extend(word.take()),
                (None, '>' | '|') => break,
                (_, c) => word.get_or_insert_default().push(c),
            }
        }
        words.extend(word);
        words
    }

    #[test]
    fn every_subcommand_shows_an_example_that_parses() {
        let mut all = Vec::new();
        subcommands(&command(), "", &mut all);
        assert!(all.len() > 20, "only {} subcommands found", all.len());
        let mut problems = Vec::new();
        for (name, sub) in &all {
            let help = sub.get_after_help().map(ToString::to_string).unwrap_or_default();
            let examples: Vec<&str> =
                help.lines().filter_map(|l| l.trim().strip_prefix("foresight ")).collect();
            if !help.contains("Example") || examples.is_empty() {
                problems.push(format!(
                    "`foresight {name} --help` shows no example; add after_help = \"Example:\\n  foresight {name} …\""
                ));
            }
            for example in examples {
                let args: Vec<String> = words(example);
                // `--config` is the global configuration file, not a plugin's table.
                if let Some(i) = args.iter().position(|a| a == "--config")
                    && !args.get(i + 1).is_some_and(|f| f.ends_with(".toml"))
                {
                    problems.push(format!(
                        "the example `foresight {example}` passes --config something not a .toml file"
                    ));
                }
                let args = std::iter::once("foresight".to_owned()).chain(args);
                if let Err(e) = command().try_get_matches_from(args) {
                    problems
                        .push(format!("the example `foresight {example}` of `{name}` does not parse: {e}"));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
