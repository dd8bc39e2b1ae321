//! What the documentation is generated from: `foresight config reference` prints exactly the
//! checked-in `docs/configuration.md`.

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
