//! `foresight plugin new` scaffolds a crate of each kind that builds and passes `check` exactly
//! as generated.

use std::process::Command;

use crate::fixtures::{self, foresight};

#[test]
fn scaffolded_plugins_build_and_pass_their_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    for (name, kind) in
        [("my-scorer", "scorer"), ("my-forecaster", "forecaster"), ("my-planner", "cost-model")]
    {
        let status = foresight()
            .args(["plugin", "new", name, "--kind", kind, "--dir"])
            .arg(dir.path())
            .env("FORESIGHT_SDK_PATH", fixtures::workspace().join("plugin-sdk"))
            .status()
            .expect("runs");
        assert!(status.success(), "plugin new {name}");
        // Pin dependency versions to the workspace's so nothing is re-resolved or rebuilt.
        std::fs::copy(fixtures::workspace().join("Cargo.lock"), dir.path().join(name).join("Cargo.lock"))
            .expect("lock");

        let built = foresight()
            .args(["plugin", "build"])
            .arg(dir.path().join(name))
            .arg("--out")
            .arg(&out)
            .output()
            .expect("runs");
        assert!(built.status.success(), "build {name}: {}", String::from_utf8_lossy(&built.stderr));
        let path = String::from_utf8_lossy(&built.stdout).trim().to_owned();
        assert!(path.ends_with(&format!("{name}.wasm")), "build printed {path}");

        let checked = foresight().args(["plugin", "check", &path]).output().expect("runs");
        let report = String::from_utf8_lossy(&checked.stdout);
        assert!(checked.status.success(), "{name} fails its check:\n{report}");
        assert!(report.contains(&format!("{name}@0.1.0 ({kind})")), "{report}");

        // The generated unit test passes natively too.
        let test = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["test", "--quiet", "--manifest-path"])
            .arg(dir.path().join(name).join("Cargo.toml"))
            .output()
            .expect("cargo runs");
        assert!(test.status.success(), "{name}: {}", String::from_utf8_lossy(&test.stderr));
    }
}

#[test]
fn bad_names_and_existing_folders_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = foresight()
        .args(["plugin", "new", "Bad_Name", "--kind", "scorer", "--dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid plugin name"));
    std::fs::create_dir(dir.path().join("taken")).expect("mkdir");
    let out = foresight()
        .args(["plugin", "new", "taken", "--kind", "scorer", "--dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}
