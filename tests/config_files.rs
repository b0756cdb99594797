//! Config tests over folders: every file in tests/config/valid loads; every file in
//! tests/config/invalid fails, and some reported problem contains each ` | `-separated part of
//! the `# expect:` comment on its first line (the key path, and often the message).

use gridsms::config;
use std::path::{Path, PathBuf};

fn files(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/config")
        .join(folder);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

#[test]
fn every_valid_file_loads() {
    for path in files("valid") {
        if let Err(e) = config::load(&path) {
            panic!("{} should load:\n{e}", path.display());
        }
    }
}

#[test]
fn every_invalid_file_fails_naming_its_key() {
    for path in files("invalid") {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let Some(expect) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
        else {
            panic!("{} lacks a first-line `# expect: ` comment", path.display());
        };
        let parts: Vec<&str> = expect.split(" | ").map(str::trim).collect();
        match config::load(&path) {
            Ok(_) => panic!("{} should fail with {expect:?}", path.display()),
            Err(e) => {
                let lines: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
                assert!(
                    lines.iter().any(|l| parts.iter().all(|p| l.contains(p))),
                    "{}: no problem contains {parts:?}; got:\n{}",
                    path.display(),
                    lines.join("\n")
                );
                // Every problem is located: it names the file and, if in the file, a line.
                for l in &lines {
                    assert!(l.starts_with(&path.display().to_string()), "{l}");
                }
            }
        }
    }
}
