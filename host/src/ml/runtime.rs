//! Finding and starting ONNX Runtime, once per process.
//!
//! The host is built with `ort`'s `load-dynamic`: nothing is downloaded or linked at build time,
//! and a host that runs no model never needs the library. It is the
//! `onnxruntime/capi/libonnxruntime.so.1.31.1` file of PyPI's `onnxruntime==1.31.1` wheel, taken
//! from `ORT_DYLIB_PATH` when set, else from the site-packages of the usual Python
//! installations (virtualenv, conda, pyenv, `~/.local`, `/usr/local`, `/usr`), else from those
//! `python3` itself reports. Failing all that, the error says how to provide it; it never
//! panics (`ort` would, when asked to start without a library).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::environment::Environment;

use super::MlError;

/// The ONNX Runtime release this host is built against (`ort`'s `api-31` needs 1.31 or later).
pub const ORT_VERSION: &str = "1.31.1";

/// Where the wheel keeps the library, below site-packages.
const WHEEL_LIB_DIR: &str = "onnxruntime/capi";

/// The process-wide ONNX Runtime environment, started on first use. A failure is remembered:
/// installing the library later takes a restart.
pub fn environment() -> Result<&'static Environment, MlError> {
    static ENVIRONMENT: OnceLock<Result<Environment, MlError>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let path = find()?;
            let started = start(&path);
            match &started {
                Ok(_) => tracing::info!(library = %path.display(), "ONNX Runtime started"),
                Err(e) => tracing::warn!("{e}"),
            }
            started
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The library file: `ORT_DYLIB_PATH`, else the wheel in a known site-packages, else in one
/// that `python3` reports.
pub fn find() -> Result<PathBuf, MlError> {
    let from_env = std::env::var_os("ORT_DYLIB_PATH");
    let mut searched = known_site_packages();
    match locate(from_env, &searched) {
        Err(MlError::RuntimeMissing { .. }) => {
            for dir in python_site_packages() {
                if !searched.contains(&dir) {
                    searched.push(dir);
                }
            }
            locate(None, &searched)
        }
        found => found,
    }
}

/// Picks the library from an `ORT_DYLIB_PATH` value (which wins when set) or the first
/// site-packages folder holding the wheel.
pub fn locate(dylib_path: Option<OsString>, site_packages: &[PathBuf]) -> Result<PathBuf, MlError> {
    if let Some(path) = dylib_path.filter(|p| !p.is_empty()).map(PathBuf::from) {
        return if path.is_file() { Ok(path) } else { Err(MlError::DylibPathMissing { path }) };
    }
    site_packages
        .iter()
        .find_map(|dir| wheel_library(&dir.join(WHEEL_LIB_DIR)))
        .ok_or_else(|| MlError::RuntimeMissing { searched: site_packages.to_vec() })
}

/// The runtime library in a wheel's `capi` folder: this release's file, or else another
/// release's (`ort` checks its version when loading it).
fn wheel_library(dir: &Path) -> Option<PathBuf> {
    let exact = dir.join(format!("libonnxruntime.so.{ORT_VERSION}"));
    if exact.is_file() {
        return Some(exact);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_runtime_library))
        .collect();
    found.sort();
    found.pop()
}

/// The main library's name on Linux, macOS or Windows wheels (not `…_providers_shared`).
fn is_runtime_library(name: &str) -> bool {
    name.starts_with("libonnxruntime.so.")
        || (name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
        || name == "onnxruntime.dll"
}

/// Existing site-packages folders of the usual Python installations, most specific first.
fn known_site_packages() -> Vec<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut prefixes: Vec<PathBuf> =
        [var("VIRTUAL_ENV"), var("CONDA_PREFIX")].into_iter().flatten().collect();
    if let Some(home) = var("HOME") {
        prefixes.push(home.join(".local"));
        let pyenv = var("PYENV_ROOT").unwrap_or_else(|| home.join(".pyenv"));
        prefixes.extend(sorted_entries(&pyenv.join("versions")).into_iter().rev());
    }
    prefixes.extend([PathBuf::from("/usr/local"), PathBuf::from("/usr")]);
    let mut dirs = Vec::new();
    for prefix in prefixes {
        for lib in ["lib", "lib64"] {
            for python in sorted_entries(&prefix.join(lib)).into_iter().rev() {
                if python.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("python3")) {
                    dirs.extend([python.join("site-packages"), python.join("dist-packages")]);
                }
            }
        }
    }
    dirs.push(PathBuf::from("/usr/lib/python3/dist-packages"));
    dirs.retain(|d| d.is_dir());
    dirs.dedup();
    dirs
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

/// The site-packages folders `python3` on the PATH reports, for installations in unusual
/// places. Asked only when the known places hold no library.
fn python_site_packages() -> Vec<PathBuf> {
    let script = "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))";
    let Ok(output) = Command::new("python3").args(["-c", script]).output() else { return Vec::new() };
    String::from_utf8_lossy(&output.stdout).lines().map(PathBuf::from).filter(|d| d.is_dir()).collect()
}

/// Loads the library and creates the environment.
fn start(path: &Path) -> Result<Environment, MlError> {
    let failed = |reason: String| MlError::RuntimeLoad { path: path.to_owned(), reason };
    // `ort` asserts on a few malformed libraries instead of returning an error; a bad library
    // must not take the daemon down.
    std::panic::catch_unwind(|| {
        ort::init_from(path)
            .map_err(|e| failed(e.to_string()))?
            .with_name("foresight")
            .with_telemetry(false)
            .build()
            .map_err(|e| failed(e.to_string()))
    })
    .unwrap_or_else(|_| Err(failed("ONNX Runtime panicked while starting".into())))
}

/// Paths for an error message.
pub(super) fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no Python site-packages found".into();
    }
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_runtime_names_both_ways_to_provide_it() {
        let empty = tempfile::tempdir().unwrap();
        let err = locate(None, &[empty.path().to_owned()]).unwrap_err();
        assert!(matches!(err, MlError::RuntimeMissing { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("pip install onnxruntime==1.31.1"), "{text}");
        assert!(text.contains("ORT_DYLIB_PATH"), "{text}");
        assert!(text.contains("onnxruntime/capi/libonnxruntime.so.1.31.1"), "{text}");
        assert!(text.contains(&empty.path().display().to_string()), "{text}");

        let err = locate(Some("/nowhere/libonnxruntime.so".into()), &[]).unwrap_err().to_string();
        assert!(err.contains("ORT_DYLIB_PATH is /nowhere/libonnxruntime.so, which is not a file"), "{err}");
        assert!(err.contains("pip install onnxruntime==1.31.1"), "{err}");
    }

    #[test]
    fn the_wheel_library_is_found_in_site_packages_and_the_variable_wins() {
        let site = tempfile::tempdir().unwrap();
        let capi = site.path().join(WHEEL_LIB_DIR);
        std::fs::create_dir_all(&capi).unwrap();
        for name in ["libonnxruntime_providers_shared.so", "onnxruntime_pybind11_state.so"] {
            std::fs::write(capi.join(name), "").unwrap();
        }
        assert!(locate(None, &[site.path().to_owned()]).is_err(), "helpers are not the runtime");
        std::fs::write(capi.join("libonnxruntime.so.1.31.1"), "").unwrap();
        let found = locate(None, &[PathBuf::from("/nonexistent"), site.path().to_owned()]).unwrap();
        assert_eq!(found, capi.join("libonnxruntime.so.1.31.1"));

        let explicit = site.path().join("custom.so");
        std::fs::write(&explicit, "").unwrap();
        assert_eq!(locate(Some(explicit.clone().into()), &[site.path().to_owned()]).unwrap(), explicit);
    }
}
