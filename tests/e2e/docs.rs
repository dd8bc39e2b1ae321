//! The documentation stays true to the code: `foresight config reference` prints exactly the
//! checked-in `docs/configuration.md`; the WIT quoted in `docs/writing-plugins.md` is the
//! contract's; every link in the docs resolves; the alerting rules are valid PromQL on metrics
//! the daemon exports. And what the docs promise: `foresight completions SHELL` prints a script
//! that knows the subcommands, `foresight plugin check` the keys a plugin accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixtures::{self, foresight};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The documentation pages and the README, which links them.
fn pages() -> Vec<PathBuf> {
    let docs = fixtures::workspace().join("docs");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&docs)
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    pages.push(fixtures::workspace().join("README.md"));
    pages
}

/// The fenced blocks of `lang` in a Markdown text.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let end = body.find("```").expect("a closed block");
        found.push(body[..end].to_owned());
        rest = &body[end..];
    }
    found
}

/// The anchor GitHub gives a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' | '-' => Some('-'),
            '_' => Some('_'),
            c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap_or(c)),
            _ => None,
        })
        .collect()
}

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

#[test]
fn every_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = read(&page);
        let dir = page.parent().expect("a folder");
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let Some(end) = target.find(')') else { continue };
            let target = &target[..end];
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() { page.clone() } else { dir.join(file) };
            if !file.exists() {
                broken.push(format!("{}: {target}: no such file", page.display()));
                continue;
            }
            if anchor.is_empty() || file.extension().is_none_or(|x| x != "md") {
                continue;
            }
            let headings: Vec<String> = read(&file)
                .lines()
                .filter(|l| l.starts_with('#'))
                .map(|l| slug(l.trim_start_matches('#')))
                .collect();
            if !headings.iter().any(|h| h == anchor) {
                broken.push(format!("{}: {target}: no heading #{anchor}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_wit_quoted_in_the_docs_is_the_contract() {
    let wit = fixtures::workspace().join("wit");
    let sources: Vec<String> = std::fs::read_dir(&wit)
        .expect("wit/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .map(|p| read(&p))
        .collect();
    let quoted = blocks(&read(&fixtures::workspace().join("docs/writing-plugins.md")), "wit");
    assert!(quoted.len() >= 6, "only {} WIT excerpts", quoted.len());
    // An excerpt is a run of whole lines of one file, indented less by a constant.
    let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
    for excerpt in &quoted {
        let want = lines(excerpt);
        let found = sources.iter().any(|source| {
            let have = lines(source);
            have.windows(want.len()).any(|window| {
                let indent = window[0].len() - window[0].trim_start().len();
                window.iter().zip(&want).all(|(h, w)| {
                    (h.trim().is_empty() && w.is_empty()) || h.get(indent..) == Some(w.as_str())
                })
            })
        });
        assert!(found, "this excerpt is not in wit/ (copy it again from there):\n{excerpt}");
    }
}

/// `promtool`, from `PATH` or beside `FORESIGHT_PROMETHEUS`.
fn promtool() -> Option<PathBuf> {
    let beside = std::env::var_os("FORESIGHT_PROMETHEUS")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(|d| d.join("promtool")));
    let candidates = beside.into_iter().chain(std::iter::once(PathBuf::from("promtool")));
    for path in candidates {
        if Command::new(&path).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(path);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("no promtool: `apt-get install prometheus` or set FORESIGHT_PROMETHEUS");
    }
    eprintln!("note: skipping the PromQL check: `apt-get install prometheus` for promtool");
    None
}

#[test]
fn the_alerting_rules_in_the_docs_are_valid_on_exported_metrics() {
    let text = read(&fixtures::workspace().join("docs/operating-kubernetes.md"));
    let rules = blocks(&text, "yaml").into_iter().next().expect("a rules block");
    // The table's expressions: `| condition | `expr` | why |`.
    let table: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("| ")?.split_once(" | `")?.1.split_once("` |").map(|(e, _)| e.to_owned())
        })
        .collect();
    assert!(table.len() >= 10, "only {} expressions in the table", table.len());
    // Every metric named is registered by the daemon (counters gain `_total`, histograms `_bucket`).
    let metrics = read(&fixtures::workspace().join("host/src/server/metrics.rs"));
    let all = format!("{rules}\n{}", table.join("\n"));
    for (i, _) in all.match_indices("foresight_") {
        let name: String = all[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
            .collect();
        let base =
            name.trim_start_matches("foresight_").trim_end_matches("_total").trim_end_matches("_bucket");
        assert!(metrics.contains(&format!("\"{base}\"")), "{name} is not a metric the daemon exports");
    }
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = vec![dir.path().join("rules.yaml")];
    std::fs::write(&files[0], &rules).expect("write");
    let table_rules: String = table
        .iter()
        .enumerate()
        .map(|(i, e)| format!("      - alert: Table{i}\n        expr: '{e}'\n"))
        .collect();
    files.push(dir.path().join("table.yaml"));
    std::fs::write(&files[1], format!("groups:\n  - name: table\n    rules:\n{table_rules}")).expect("write");
    for file in files {
        let out =
            Command::new(&promtool).args(["check", "rules"]).arg(&file).output().expect("promtool runs");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
