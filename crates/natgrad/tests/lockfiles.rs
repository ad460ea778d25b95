//! The fuzz workspace (`fuzz/`, built by `scripts/fuzz.sh` with nightly and sanitizers) is a
//! workspace of its own with its own lock file; it must build the versions the tests build,
//! or the fuzzers check other code than the one that ships.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Package name → versions, from a `Cargo.lock`'s `[[package]]` entries.
fn locked_versions(path: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut name = None;
    for line in text.lines() {
        let quoted = |key: &str| {
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(" = \"")?.strip_suffix('"'))
                .map(str::to_owned)
        };
        if line == "[[package]]" {
            name = None;
        } else if let Some(n) = quoted("name") {
            name = Some(n);
        } else if let (Some(v), Some(n)) = (quoted("version"), name.take()) {
            versions.entry(n).or_default().insert(v);
        }
    }
    versions
}

#[test]
fn the_fuzz_lock_pins_the_workspace_lock_versions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = locked_versions(&root.join("Cargo.lock"));
    let fuzz = locked_versions(&root.join("fuzz/Cargo.lock"));
    assert!(workspace.contains_key("cranelift-codegen") && fuzz.contains_key("cranelift-codegen"));
    let drifted: Vec<String> = fuzz
        .iter()
        .filter_map(|(name, versions)| {
            let pinned = workspace.get(name)?;
            (!versions.is_subset(pinned)).then(|| format!("{name} {versions:?} (workspace: {pinned:?})"))
        })
        .collect();
    assert!(
        drifted.is_empty(),
        "fuzz/Cargo.lock differs from Cargo.lock; copy Cargo.lock to fuzz/ and run \
         `cargo +nightly metadata` there:\n{}",
        drifted.join("\n")
    );
}
