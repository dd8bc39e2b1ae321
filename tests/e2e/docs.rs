//! What is generated from the code for users: `foresight config reference` prints exactly the
//! checked-in `docs/configuration.md`, and `foresight completions SHELL` a script that knows
//! the subcommands; `foresight plugin check` tells an operator the keys a plugin accepts.

use crate::fixtures::{self, foresight};

#[test]
fn config_reference_prints_the_checked_in_docs() {
    let out = foresight().args(["config", "reference"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).expect("UTF-8");
    let checked_in =
        std::fs::read_to_string(fixtures::workspace().join("docs/configuration.md")).unwrap_or_default();
    assert!(
        printed == checked_in,
        "docs/configuration.md is out of date; regenerate it with \
         `cargo run -- config reference > docs/configuration.md`"
    );
    for section in ["## `[tick]`", "## `[plugins.scorer.limits]`", "## `[[experiments]]`"] {
        assert!(printed.contains(section), "no {section} in the reference");
    }
}

#[test]
fn completions_know_the_subcommands_in_every_shell() {
    let out = foresight().args(["completions", "bash"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("complete -F _foresight"), "not a bash completion script:\n{script}");
    for word in ["simulate", "federate", "plugin", "reference", "--scenario", "--plugin-config"] {
        assert!(script.contains(word), "the bash completions do not mention {word}");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = foresight().args(["completions", shell]).output().expect("runs");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && script.contains("simulate"), "{shell}: {script}");
    }
    let out = foresight().args(["completions", "tcsh"]).output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

#[test]
fn plugin_check_lists_the_keys_a_plugin_accepts() {
    let out = foresight()
        .args(["plugin", "check"])
        .arg(fixtures::component("latency-aware"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("config keys (the role's `config` table; any other key is refused):"), "{text}");
    for line in ["weight-latency = 1.0", "weight-price = 10.0", "Score lost per unit of hourly price."] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
}
