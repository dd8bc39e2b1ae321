//! `foresight config check` accepts the shipped configuration and lists every problem of a
//! broken one with file, line, key and fix.

use crate::fixtures::foresight;

#[test]
fn the_default_configuration_checks_clean() {
    let out = foresight().args(["config", "check", "config/foresight.toml"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (sim backend"));
}

#[test]
fn a_broken_configuration_is_refused_line_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[tick]\ninterval = \"soon\"\n\n[plugins.scorer]\nfile = \"x.wasm\"\nlimits = { memory-mib = 0 }\n",
    )
    .expect("write");
    let out = foresight().args(["config", "check"]).arg(&file).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("bad.toml:6: `plugins.scorer.limits` memory-mib = 0"), "{text}");
    assert!(text.contains("bad.toml:2: `tick.interval`") && text.contains("write it like"), "{text}");
    assert!(text.contains("2 problem(s)"), "{text}");
}

#[test]
fn command_line_flags_override_the_file_and_are_named_when_wrong() {
    let out = foresight()
        .args(["config", "check", "config/foresight.toml", "--set", "server.listen=nowhere"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("command-line flag --set server.listen: `server.listen`"), "{text}");
    let out = foresight().args(["config", "check", "--set", "tick.interval"]).output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));
}

#[test]
fn the_shipped_kubernetes_configuration_checks_clean() {
    let out =
        foresight().args(["config", "check", "deploy/kubernetes/foresight.toml"]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("valid (kubernetes backend"), "{text}");
}
