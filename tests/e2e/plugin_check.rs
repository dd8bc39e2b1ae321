//! `foresight plugin check` passes every reference plugin and fails every hostile one with a
//! readable reason that names what went wrong.

use std::path::Path;

use crate::fixtures::{self, REFERENCE, foresight};

fn check(file: &Path, extra: &[&str]) -> (bool, String) {
    let output =
        foresight().arg("plugin").arg("check").arg(file).args(extra).output().expect("foresight runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        !text.contains("panicked at") || text.contains("plugin stderr"),
        "the host itself panicked:\n{text}"
    );
    (output.status.success(), text)
}

#[test]
fn every_reference_plugin_passes() {
    for name in REFERENCE {
        let (ok, text) = check(&fixtures::component(name), &[]);
        assert!(ok, "{name} failed its check:\n{text}");
        assert!(text.contains("cases passed"), "{text}");
        assert!(!text.contains("FAIL"), "{text}");
    }
}

/// Each hostile plugin fails with a reason an operator can act on.
#[test]
fn every_hostile_plugin_fails_with_a_readable_reason() {
    let cases = [
        ("hostile-loop", "deadline and was stopped"),
        ("hostile-alloc", "memory limit"),
        ("hostile-recursion", "stack overflowing from deep recursion"),
        ("hostile-panic", "scorer exploded on purpose"),
        ("hostile-wrong-length", "scores for"),
        ("hostile-nan", "is NaN"),
        ("hostile-wrong-world", "exports no Foresight policy"),
    ];
    for (name, reason) in cases {
        let (ok, text) = check(&fixtures::component(name), &[]);
        assert!(!ok, "{name} passed its check:\n{text}");
        assert!(text.contains(reason), "{name}: expected `{reason}` in:\n{text}");
        if name != "hostile-wrong-world" {
            assert!(
                text.contains(&format!("{name}@0.1.0")),
                "{name}: the report does not name the plugin:\n{text}"
            );
        }
    }
}

#[test]
fn files_that_are_not_components_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text) = check(&fixtures::not_wasm(dir.path()), &[]);
    assert!(!ok && text.contains("is not a WebAssembly component"), "{text}");
    let (ok, text) = check(&fixtures::truncated(dir.path()), &[]);
    assert!(!ok && text.contains("could not be compiled") && text.contains("truncated"), "{text}");
    let (ok, text) = check(&dir.path().join("missing.wasm"), &[]);
    assert!(!ok && text.contains("cannot read plugin"), "{text}");
}

#[test]
fn a_plugin_checked_as_another_kind_is_refused() {
    let (ok, text) = check(&fixtures::component("seasonal-naive"), &["--kind", "scorer"]);
    assert!(!ok && text.contains("is a forecaster plugin but is used as a scorer"), "{text}");
}

#[test]
fn a_plugin_refusing_its_config_fails_the_check_by_key() {
    let (ok, text) = check(&fixtures::component("latency-aware"), &["--plugin-config", "weight-cheese = 3"]);
    assert!(!ok && text.contains("unknown key `weight-cheese`"), "{text}");
}
