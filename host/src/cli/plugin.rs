//! `foresight plugin build` and `foresight plugin check`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail};
use foresight_sdk::PluginKind;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::ml::{Model, Port};
use crate::plugins::{Limits, Origin, Policy, Runtime, conformance};

/// The Rust target plugins compile to.
pub const PLUGIN_TARGET: &str = "wasm32-wasip2";
/// The cargo profile plugins are built with (see the workspace `Cargo.toml`).
pub const PLUGIN_PROFILE: &str = "plugin";

#[derive(Debug, Deserialize)]
struct Metadata {
    workspace_root: PathBuf,
    target_directory: PathBuf,
    packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    crate_types: Vec<String>,
}

impl Package {
    /// The file name cargo gives the package's component.
    fn artifact(&self) -> Option<String> {
        self.targets
            .iter()
            .find(|t| t.crate_types.iter().any(|c| c == "cdylib"))
            .map(|t| format!("{}.wasm", t.name.replace('-', "_")))
    }

    fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

fn metadata(manifest: Option<&Path>) -> anyhow::Result<Metadata> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(manifest) = manifest {
        cmd.arg("--manifest-path").arg(manifest);
    }
    let output = cmd.output().context("cannot run `cargo metadata`; is cargo on PATH?")?;
    if !output.status.success() {
        bail!("`cargo metadata` failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    serde_json::from_slice(&output.stdout).context("cannot read `cargo metadata` output")
}

/// Builds plugin crates and copies their components into `out`.
pub fn build(crates: &[PathBuf], out: &Path, quiet: bool) -> anyhow::Result<ExitCode> {
    // Group the requested crates by the workspace they belong to: one cargo build each.
    let mut groups: Vec<(Metadata, Vec<usize>)> = Vec::new();
    if crates.is_empty() {
        let meta = metadata(None)?;
        let plugins_dir = meta.workspace_root.join("plugins");
        let picked: Vec<usize> = (0..meta.packages.len())
            .filter(|&i| {
                meta.packages[i].dir().starts_with(&plugins_dir) && meta.packages[i].artifact().is_some()
            })
            .collect();
        if picked.is_empty() {
            bail!(
                "no plugin crates under {}; create one with `foresight plugin new NAME --kind scorer`",
                plugins_dir.display()
            );
        }
        groups.push((meta, picked));
    } else {
        for dir in crates {
            let manifest = dir.join("Cargo.toml");
            if !manifest.is_file() {
                bail!("{} is not a crate folder (no Cargo.toml)", dir.display());
            }
            let manifest =
                manifest.canonicalize().with_context(|| format!("cannot resolve {}", manifest.display()))?;
            let meta = metadata(Some(&manifest))?;
            let index = meta
                .packages
                .iter()
                .position(|p| p.manifest_path == manifest)
                .with_context(|| format!("cargo does not list the package at {}", manifest.display()))?;
            if meta.packages[index].artifact().is_none() {
                bail!(
                    "{} is not a plugin: its [lib] needs crate-type = [\"cdylib\", \"rlib\"]",
                    meta.packages[index].name
                );
            }
            match groups.iter_mut().find(|(m, _)| m.workspace_root == meta.workspace_root) {
                Some((_, picked)) => picked.push(index),
                None => groups.push((meta, vec![index])),
            }
        }
    }

    std::fs::create_dir_all(out).with_context(|| format!("cannot create output folder {}", out.display()))?;
    let total: usize = groups.iter().map(|(_, picked)| picked.len()).sum();
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total as u64) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} building plugins [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    for (meta, picked) in &groups {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&meta.workspace_root).args([
            "build",
            "--target",
            PLUGIN_TARGET,
            "--profile",
            PLUGIN_PROFILE,
        ]);
        for &i in picked {
            cmd.args(["-p", &meta.packages[i].name]);
        }
        // Without a bar (not a terminal, or --quiet) cargo reports its own progress.
        let built = if bar.is_hidden() {
            cmd.status().context("cannot run `cargo build`")?.success()
        } else {
            build_with_bar(cmd, meta, picked, &bar)?
        };
        if !built {
            bar.finish_and_clear();
            bail!(
                "building plugins failed (see cargo's output above); if the target is missing, run \
                 `rustup target add {PLUGIN_TARGET}`"
            );
        }
        let artifacts = meta.target_directory.join(PLUGIN_TARGET).join(PLUGIN_PROFILE);
        for &i in picked {
            let package = &meta.packages[i];
            let built = artifacts.join(package.artifact().unwrap_or_default());
            let dest = out.join(format!("{}.wasm", package.name));
            install(&built, &dest)?;
            bar.suspend(|| println!("{}", dest.canonicalize().unwrap_or(dest).display()));
        }
    }
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

/// One cargo message (`--message-format json`); only compiled artifacts are read.
#[derive(Debug, Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<Target>,
}

/// Runs `cmd` (a cargo build) with its output read rather than shown: the bar moves as each
/// plugin crate is compiled and names the crate being built; cargo's warnings and errors are
/// printed once the bar is gone. Whether the build succeeded.
fn build_with_bar(
    mut cmd: Command,
    meta: &Metadata,
    picked: &[usize],
    bar: &ProgressBar,
) -> anyhow::Result<bool> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    cmd.args(["--message-format", "json-render-diagnostics", "--quiet", "--color", "always"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot run `cargo build`")?;
    let mut stderr = child.stderr.take().context("cargo's standard error")?;
    // Read concurrently, so cargo never blocks on a full pipe.
    let diagnostics = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message("resolving");
    let stdout = child.stdout.take().context("cargo's standard output")?;
    for line in BufReader::new(stdout).lines() {
        let Ok(message) = serde_json::from_str::<CargoMessage>(&line?) else { continue };
        if message.reason != "compiler-artifact" {
            continue;
        }
        let mine =
            picked.iter().any(|&i| message.manifest_path.as_ref() == Some(&meta.packages[i].manifest_path));
        if mine {
            bar.inc(1);
        } else if let Some(target) = message.target.filter(|t| t.name != "build-script-build") {
            bar.set_message(format!("compiled {}", target.name));
        }
    }
    let status = child.wait().context("waiting for `cargo build`")?;
    let text = diagnostics.join().unwrap_or_default();
    let write = || {
        use std::io::Write;
        let _ = std::io::stderr().write_all(&text);
    };
    if status.success() {
        bar.suspend(write);
    } else {
        // The errors end the output: no bar below them.
        bar.finish_and_clear();
        write();
    }
    Ok(status.success())
}

/// Copies a component into place atomically, so a watcher never sees half a file.
fn install(built: &Path, dest: &Path) -> anyhow::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut src =
        std::fs::File::open(built).with_context(|| format!("build produced no {}", built.display()))?;
    std::io::copy(&mut src, &mut tmp).with_context(|| format!("cannot copy {}", built.display()))?;
    tmp.persist(dest).with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(())
}

/// Loads a component and runs the conformance suite on it, granting it `models` (name, file).
pub fn check(
    file: &Path,
    kind: Option<PluginKind>,
    config: &str,
    models: &[(String, PathBuf)],
    cache_dir: PathBuf,
) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(Some(cache_dir))
        .map_err(|e| anyhow::anyhow!("cannot start the plugin runtime: {e:#}"))?;
    println!("checking {}", file.display());
    let loaded = match runtime.load_file(file) {
        Ok(loaded) => loaded,
        Err(e) => {
            println!("  FAIL  load: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!(
        "  ok    load: {} component, sha256 {}…, {} in {:.1} ms",
        loaded.kind,
        &loaded.hash[..12],
        match loaded.origin {
            Origin::Compiled => "compiled",
            Origin::Cached => "loaded from cache",
        },
        loaded.load_time.as_secs_f64() * 1e3
    );
    // Models first: a missing runtime or a broken file is reported as such, not as whatever
    // the plugin makes of the error it gets.
    for (name, path) in models {
        let started = Instant::now();
        match Model::open(name, path) {
            Ok(model) => println!(
                "  ok    model {name}: {} → {}, {} in {:.1} ms",
                list(model.inputs()),
                list(model.outputs()),
                path.display(),
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(e) => {
                println!("  FAIL  model {name}: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let limits = Limits { models: models.iter().cloned().collect(), ..Limits::default() };
    let plugin = match runtime.start(&loaded, kind, &limits, config) {
        Ok(plugin) => plugin,
        Err(e) => {
            println!("  FAIL  start: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = conformance::check(&plugin);
    println!("{report}");
    print_keys(&plugin.descriptor().config_keys);
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The configuration keys a plugin declares: what the operator may write in its role's
/// `config` table (any other key is refused).
fn print_keys(keys: &[foresight_sdk::ConfigKey]) {
    if keys.is_empty() {
        println!("config keys: none");
        return;
    }
    println!("config keys (the role's `config` table; any other key is refused):");
    let written: Vec<String> = keys
        .iter()
        .map(|k| match &k.default_value {
            Some(default) => format!("{} = {default}", k.name),
            None => format!("{} (required)", k.name),
        })
        .collect();
    let width = written.iter().map(|w| w.chars().count()).max().unwrap_or(0);
    for (key, text) in keys.iter().zip(&written) {
        println!("  {text:<width$}  {}", key.description);
    }
}

fn list(ports: &[Port]) -> String {
    ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
