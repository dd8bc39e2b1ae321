//! Hot reload: the config file, the plugin folder and the folders of the ONNX models granted to
//! roles are watched; a changed plugin — or a role whose granted model changed, such as the
//! federated model an agent writes after each round — is started afresh and put through the
//! conformance suite on a worker thread, never on the loop's, and handed to the loop ready to
//! swap in between ticks. A candidate that fails (a model that does not load included) is
//! refused and the old plugin keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use foresight_sdk::PluginKind;
use notify::{RecursiveMode, Watcher};

use crate::config::{Config, RoleConfig, Source};
use crate::plugins::{Runtime, WasmPlugin, conformance};

/// What the reloader hands the loop.
pub enum Reload {
    /// A plugin that passed its checks, ready to serve `kind`.
    Plugin {
        /// The role.
        kind: PluginKind,
        /// The started plugin.
        plugin: Arc<WasmPlugin>,
        /// What changed: its file, its configuration, or a model granted to it.
        cause: String,
    },
    /// A configuration that loaded and validated.
    Config(Box<Config>),
    /// A candidate that was refused, with the reason.
    Refused {
        /// What was refused (a file).
        what: String,
        /// Why.
        reason: String,
    },
}

/// Watches files and prepares candidates; dropping it stops the watch.
pub struct Reloader {
    _watcher: notify::RecommendedWatcher,
    /// Ready candidates, drained by the loop between ticks.
    pub ready: Receiver<Reload>,
}

/// Writers save in several steps (write a temporary file, rename it); changes within this
/// window are handled once.
const SETTLE: Duration = Duration::from_millis(150);

impl Reloader {
    /// Starts watching the configuration's file and the configured plugin folder; a changed
    /// file is loaded again from all of `source` (environment and flags still override it).
    pub fn start(runtime: Arc<Runtime>, source: Source, config: Config) -> notify::Result<Self> {
        let (events_tx, events_rx) = channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && is_change(&event.kind)
            {
                for path in event.paths {
                    let _ = events_tx.send(path);
                }
            }
        })?;
        // Folders, not files: writers replace a file (write, then rename), which drops a watch
        // on the file itself.
        let mut folders = vec![config.plugins.dir()];
        folders.extend(source.file.parent().filter(|d| d.is_dir()).map(Path::to_path_buf));
        for (_, role) in config.plugins.roles() {
            folders.extend(role.limits.models.values().filter_map(|m| m.parent()).map(Path::to_path_buf));
        }
        let mut watched: Vec<PathBuf> = Vec::new();
        for folder in folders.into_iter().filter(|d| d.is_dir()) {
            let key = folder.canonicalize().unwrap_or_else(|_| folder.clone());
            if !watched.contains(&key) {
                watcher.watch(&folder, RecursiveMode::NonRecursive)?;
                watched.push(key);
            }
        }
        let (ready_tx, ready) = channel();
        std::thread::Builder::new()
            .name("foresight-reload".into())
            .spawn(move || worker(runtime, source, config, events_rx, ready_tx))
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(Self { _watcher: watcher, ready })
    }
}

/// Whether an event can mean that a file's content changed. Opening and reading a file are
/// reported too (inotify's open and close-without-write), and the reloader itself reads every
/// file it reloads: taken for changes, a single read would start a reload that never ends.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

fn same(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Conformance verdicts by (component hash, kind, configuration): a component already checked
/// with the same configuration is not checked again, so swapping back and forth is cheap.
#[derive(Debug, Default)]
pub struct Verdicts(std::collections::HashMap<(String, PluginKind, String), Result<(), String>>);

fn worker(
    runtime: Arc<Runtime>,
    source: Source,
    mut config: Config,
    events: Receiver<PathBuf>,
    ready: Sender<Reload>,
) {
    let mut verdicts = Verdicts::default();
    while let Ok(first) = events.recv() {
        // Gather everything that changes while the writer finishes.
        let mut changed = vec![first];
        let deadline = Instant::now() + SETTLE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match events.recv_timeout(left) {
                Ok(p) => changed.push(p),
                Err(_) => break,
            }
        }
        changed.sort();
        changed.dedup();

        let mut roles_to_start: Vec<(PluginKind, String)> = Vec::new();
        if changed.iter().any(|p| same(p, &source.file)) {
            match source.load() {
                Ok(new) => {
                    for (kind, role) in new.plugins.roles() {
                        let old = config
                            .plugins
                            .roles()
                            .into_iter()
                            .find(|(k, _)| *k == kind)
                            .map(|(_, r)| r.clone());
                        if old.as_ref() != Some(role) || new.plugins.dir() != config.plugins.dir() {
                            roles_to_start.push((kind, "its configuration changed".into()));
                        }
                    }
                    config = new.clone();
                    tracing::info!(file = %source.file.display(), "configuration changed; applying between ticks");
                    let _ = ready.send(Reload::Config(Box::new(new)));
                }
                Err(e) => {
                    tracing::error!(file = %source.file.display(), "refusing the changed configuration; the old one keeps serving: {e}");
                    let _ = ready.send(Reload::Refused {
                        what: source.file.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        for (kind, role) in config.plugins.roles() {
            if roles_to_start.iter().any(|(k, _)| *k == kind) {
                continue;
            }
            let file = config.plugins.file(role);
            if changed.iter().any(|p| same(p, &file)) {
                roles_to_start.push((kind, "its file changed".into()));
            } else if let Some((name, _)) =
                role.limits.models.iter().find(|(_, m)| changed.iter().any(|p| same(p, m)))
            {
                roles_to_start.push((kind, format!("model {name} changed")));
            }
        }
        for (kind, cause) in roles_to_start {
            let role = config.plugins.roles().into_iter().find(|(k, _)| *k == kind).map(|(_, r)| r.clone());
            let Some(role) = role else { continue };
            let _ = ready.send(prepare(&runtime, &config, kind, &role, &mut verdicts, cause));
        }
    }
}

/// Compiles (or loads from the cache), starts and checks a candidate for `kind`.
pub fn prepare(
    runtime: &Runtime,
    config: &Config,
    kind: PluginKind,
    role: &RoleConfig,
    verdicts: &mut Verdicts,
    cause: String,
) -> Reload {
    let file = config.plugins.file(role);
    let refuse = |reason: String| {
        tracing::error!(role = %kind, file = %file.display(), "refusing the candidate plugin; the old one keeps serving: {reason}");
        Reload::Refused { what: file.display().to_string(), reason }
    };
    // A granted model that does not load would fail the plugin's first forecast, after the
    // swap; checked here, the old plugin and its model keep serving instead.
    for (name, path) in &role.limits.models {
        if let Err(e) = crate::ml::Model::open(name, path) {
            return refuse(format!(
                "{e}; write a complete ONNX model there (an agent writes it with `federate join --model-out`)"
            ));
        }
    }
    let plugin = match runtime.start_file(&file, Some(kind), &role.limits, &role.config_text()) {
        Ok(p) => p,
        Err(e) => return refuse(e.to_string()),
    };
    let key = (plugin.hash().to_owned(), kind, plugin.config().to_owned());
    let verdict = verdicts
        .0
        .entry(key)
        .or_insert_with(|| {
            let report = conformance::check(&plugin);
            if report.passed() { Ok(()) } else { Err(report.failures().join("; ")) }
        })
        .clone();
    if let Err(failures) = verdict {
        return refuse(format!("failed its conformance check: {failures}"));
    }
    tracing::info!(role = %kind, plugin = %crate::plugins::Policy::label(&plugin), %cause, "candidate passed its checks; swapping it in between ticks");
    Reload::Plugin { kind, plugin: Arc::new(plugin), cause }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_watched_file_reloads_nothing_and_writing_it_reloads_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("mkdir");
        let file = dir.path().join("foresight.toml");
        std::fs::write(&file, "[plugins]\ndir = \"plugins\"\n").expect("write");
        let source = Source { file: file.clone(), required: true, flags: vec![] };
        let config = source.load().expect("loads");
        let runtime = Arc::new(Runtime::new(None).expect("runtime"));
        let reloader = Reloader::start(runtime, source, config).expect("watches");

        // What an operator's `cat`, an editor opening the file, or the reloader's own reading does.
        for _ in 0..3 {
            std::fs::read_to_string(&file).expect("read");
        }
        let quiet = reloader.ready.recv_timeout(Duration::from_millis(600));
        assert!(quiet.is_err(), "reading the configuration reloaded it");

        std::fs::write(&file, "[plugins]\ndir = \"plugins\"\n[tick]\ninterval = \"1s\"\n").expect("write");
        let first = reloader.ready.recv_timeout(Duration::from_secs(5)).expect("a reload");
        assert!(matches!(&first, Reload::Config(c) if c.tick.interval == "1s"));
        // Its own reading of the file does not start another.
        let again = reloader.ready.recv_timeout(Duration::from_millis(600));
        assert!(!matches!(again, Ok(Reload::Config(_))), "the reload reloaded itself");
    }
}
