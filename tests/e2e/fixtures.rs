//! Builds the plugin components the tests use, once per test run, and hands out their paths.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Reference plugins, built from `plugins/`.
pub const REFERENCE: [&str; 6] =
    ["seasonal-naive", "latency-aware", "spot-mix", "holt-winters", "mstl", "decaying-histogram"];

/// Plugins built from `plugins/` that need more than the default configuration (a model).
pub const WITH_MODELS: [&str; 1] = ["onnx-mlp"];

/// Test plugins, built from `tests/plugins/`: the hostile ones and a second valid scorer.
pub const TEST_PLUGINS: [&str; 9] = [
    "hostile-loop",
    "hostile-alloc",
    "hostile-recursion",
    "hostile-panic",
    "hostile-wrong-length",
    "hostile-nan",
    "hostile-wrong-world",
    "hostile-clock",
    // Not hostile: a second valid scorer to swap in.
    "cheapest-scorer",
];

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// The `foresight` binary under test.
pub fn foresight() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_foresight"));
    cmd.current_dir(workspace())
        .env_remove("FORESIGHT_CONFIG")
        .env("RUST_LOG", "warn")
        .env("FORESIGHT_PLUGINS__CACHE_DIR", cache_dir())
        // Every daemon a test starts listens on a port of its own choosing: tests run in parallel.
        .env("FORESIGHT_SERVER__LISTEN", "127.0.0.1:0");
    cmd
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// A compile cache shared by the tests of this run and later runs: compiling a component in a
/// debug build of the host takes seconds, loading it from the cache a millisecond.
pub fn cache_dir() -> PathBuf {
    target_dir().join("foresight-test-cache")
}

/// Path of a built component, by crate name; builds every fixture on first use.
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(workspace()).args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"]);
        for name in REFERENCE.iter().chain(&WITH_MODELS).chain(&TEST_PLUGINS) {
            cmd.args(["-p", name]);
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the test plugins failed; is the wasm32-wasip2 target installed?");
        target_dir().join("wasm32-wasip2").join("plugin")
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Bytes that are not WebAssembly at all.
pub fn not_wasm(dir: &Path) -> PathBuf {
    let path = dir.join("notes.wasm");
    std::fs::write(&path, "this is a text file that someone renamed to .wasm\n").expect("write");
    path
}

/// The first half of a real component.
pub fn truncated(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(component("latency-aware")).expect("read");
    let path = dir.join("truncated.wasm");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    path
}

/// A folder under `dir` holding the reference plugins under the names the default
/// configuration loads.
pub fn plugin_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    for name in REFERENCE {
        std::fs::copy(component(name), plugins.join(format!("{name}.wasm"))).expect("copy");
    }
    plugins
}

/// A kubeconfig in `dir` whose only cluster is a loopback port nothing listens on (every list
/// and watch fails), and that address (for a Prometheus that cannot be reached either).
pub fn unreachable_kubeconfig(dir: &Path) -> (PathBuf, std::net::SocketAddr) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://{closed}\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: nobody\nusers:\n- name: nobody\n  user: {{}}\ncurrent-context: gone\n"
        ),
    )
    .expect("write kubeconfig");
    (kubeconfig, closed)
}
