//! The unit, the packaging metadata, the maintainer scripts and the docs name the same paths.
//! Needs no external tool: reads `[package.metadata.deb]` from Cargo.toml and the files.
//! (tests/deploy_deb.rs checks the same against a built .deb where cargo-deb exists.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn deb_meta() -> toml::Table {
    let manifest: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml parses");
    manifest
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("deb"))
        .and_then(|d| d.as_table())
        .cloned()
        .expect("[package.metadata.deb] present")
}

/// (source, destination with a leading '/', mode) of every asset.
fn assets() -> Vec<(String, String, String)> {
    let meta = deb_meta();
    let list = meta
        .get("assets")
        .and_then(|a| a.as_array())
        .expect("assets");
    list.iter()
        .map(|a| {
            let f: Vec<&str> = a
                .as_array()
                .expect("asset is an array")
                .iter()
                .map(|v| v.as_str().expect("asset fields are strings"))
                .collect();
            assert_eq!(f.len(), 3, "asset {f:?} needs source, destination, mode");
            (f[0].to_string(), format!("/{}", f[1]), f[2].to_string())
        })
        .collect()
}

fn asset_to(dest: &str) -> (String, String, String) {
    assets()
        .into_iter()
        .find(|(_, d, _)| d == dest)
        .unwrap_or_else(|| panic!("no asset installs {dest}"))
}

fn unit(key: &str) -> Vec<String> {
    read("systemd/gridsms.service")
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

#[test]
fn exec_start_binary_and_config_are_packaged() {
    let exec = unit("ExecStart");
    assert_eq!(exec.len(), 1);
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    let (src, _, mode) = asset_to(words[0]);
    assert_eq!(
        src, "target/release/gridsms",
        "ExecStart runs something else than the build"
    );
    assert_eq!(mode, "755");
    assert_eq!(words.get(1), Some(&"run"));
    let config = words
        .iter()
        .skip_while(|w| **w != "--config")
        .nth(1)
        .expect("ExecStart passes --config");
    let (src, _, mode) = asset_to(config);
    assert_eq!(src, "config/gridsms.toml");
    assert_eq!(mode, "640", "the config may hold a database password");
    let conf_files = deb_meta()
        .get("conf-files")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert_eq!(
        conf_files,
        [config.to_string()],
        "the config must be a conffile"
    );
    // ConfigurationDirectory= is the config's directory.
    let dir = Path::new(config).parent().and_then(|p| p.file_name());
    assert_eq!(
        unit("ConfigurationDirectory"),
        [dir.and_then(|d| d.to_str()).unwrap_or("")]
    );
}

#[test]
fn asset_sources_exist() {
    for (src, dest, mode) in assets() {
        assert!(
            u32::from_str_radix(&mode, 8).is_ok_and(|m| m & 0o002 == 0),
            "{dest}: mode {mode}"
        );
        if src.starts_with("target/") {
            continue;
        }
        assert!(
            Path::new(ROOT).join(&src).is_file(),
            "asset source {src} missing (config/gridsms.toml comes from the config work)"
        );
    }
}

#[test]
fn systemd_units_enable_but_do_not_start() {
    let meta = deb_meta();
    let units = meta
        .get("systemd-units")
        .and_then(|u| u.as_table())
        .expect("systemd-units");
    let dir = units
        .get("unit-scripts")
        .and_then(|v| v.as_str())
        .expect("unit-scripts");
    assert!(Path::new(ROOT).join(dir).join("gridsms.service").is_file());
    assert_eq!(units.get("enable").and_then(|v| v.as_bool()), Some(true));
    assert_eq!(
        units.get("start").and_then(|v| v.as_bool()),
        Some(false),
        "the service must not start before the config is edited"
    );
    assert!(unit("WantedBy").contains(&"multi-user.target".to_string()));
}

#[test]
fn maintainer_scripts_carry_one_debhelper_token() {
    let dir = deb_meta()
        .get("maintainer-scripts")
        .and_then(|v| v.as_str())
        .expect("maintainer-scripts")
        .to_string();
    for name in ["postinst", "prerm", "postrm"] {
        let rel = format!("{dir}{name}");
        let text = read(&rel);
        let tokens = text.matches("#DEBHELPER#").count();
        let alone = text.lines().filter(|l| l.trim() == "#DEBHELPER#").count();
        assert_eq!(
            (tokens, alone),
            (1, 1),
            "{rel}: the token once, on its own line"
        );
        assert!(
            text.starts_with("#!/bin/sh\n") && text.contains("set -e"),
            "{rel}"
        );
        let mode = std::fs::metadata(Path::new(ROOT).join(&rel))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{rel} not executable");
    }
}

#[test]
fn documentation_and_rules_are_packaged_where_the_unit_says() {
    for doc in unit("Documentation").iter().flat_map(|v| {
        v.split_whitespace()
            .map(|s| s.trim_start_matches("file:").to_string())
            .collect::<Vec<_>>()
    }) {
        asset_to(&doc);
    }
    let (src, _, mode) = asset_to("/lib/udev/rules.d/90-gridsms.rules");
    assert_eq!(
        (src.as_str(), mode.as_str()),
        ("udev/90-gridsms.rules", "644")
    );
}

#[test]
fn operations_guide_names_the_real_paths() {
    let ops = read("docs/operations.md");
    let exec = unit("ExecStart").join(" ");
    for needle in [
        "/etc/gridsms/gridsms.toml",
        "/var/lib/gridsms/gridsms.db",
        "127.0.0.1:8727",
        "/dev/gridsms/",
        "gridsms backup --out",
        "gridsms modems detect",
        "IPAddressAllow=",
        "systemctl reload gridsms",
        "journalctl -u gridsms",
    ] {
        assert!(
            ops.contains(needle),
            "docs/operations.md does not mention {needle}"
        );
    }
    assert!(exec.contains("/etc/gridsms/gridsms.toml"));
    // The drain grace the docs promise fits inside the unit's stop timeout.
    assert!(ops.contains("up to 30 s, systemd waits 45 s"));
    assert_eq!(unit("TimeoutStopSec"), ["45s"]);
}

/// The shipped example config (installed as the conffile) fits the unit and the udev rules.
#[test]
fn example_config_fits_the_unit_and_rules() {
    let config: toml::Table = read("config/gridsms.toml")
        .parse()
        .expect("config parses as TOML");
    let get = |section: &str, key: &str| {
        config
            .get(section)
            .and_then(|s| s.get(key))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    // State lives where StateDirectory= puts it, under the name the docs use.
    let db = get("storage", "path").expect("[storage] path");
    assert_eq!(unit("StateDirectory"), ["gridsms"]);
    assert!(
        db.starts_with("/var/lib/gridsms/"),
        "{db} is outside StateDirectory"
    );
    assert!(
        read("docs/operations.md").contains(&db),
        "docs/operations.md does not name {db}"
    );
    // The API must be reachable under IPAddressAllow=localhost.
    let listen = get("api", "listen").expect("[api] listen");
    assert!(
        listen.starts_with("127.0.0.1:") || listen.starts_with("[::1]:"),
        "{listen}"
    );
    // Modem devices: udev names (a model the rules know), plain ttys, or simulated modems.
    let rules = read("udev/90-gridsms.rules");
    let models: Vec<&str> = rules
        .split("ENV{GRIDSMS_MODEL}=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let modems = config
        .get("modem")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    assert!(!modems.is_empty(), "the example configures no modem");
    for m in &modems {
        let device = m.get("device").and_then(|d| d.as_str()).unwrap_or("");
        if let Some(name) = device.strip_prefix("/dev/gridsms/") {
            assert!(
                models
                    .iter()
                    .any(|model| name.starts_with(&format!("{model}-"))),
                "{device}: no rule makes a /dev/gridsms/ name like this"
            );
            assert!(
                name.ends_with("-at")
                    || name.rsplit('-').next().is_some_and(|s| s.starts_with("if")),
                "{device}: udev names end in -at or -ifNN"
            );
        } else {
            assert!(
                device.starts_with("/dev/tty") || device.starts_with("sim:"),
                "{device}"
            );
        }
    }
}
