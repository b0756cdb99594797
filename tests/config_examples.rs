//! The shipped examples load and say what they promise; `gridsms check-config` works on them.

use gridsms::config::{self, CrashRule, Device, LogFormat, Scope, SimProfile};
use gridsms::message::{Carrier, Category};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The production example as installed: /etc/gridsms/gridsms.toml with its token files in
/// /etc/gridsms/tokens/, here in a temporary folder.
fn installed_production_example() -> tempfile::TempDir {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let etc = dir.path();
    let ok = std::fs::copy(repo("config/gridsms.toml"), etc.join("gridsms.toml"))
        .and_then(|_| std::fs::create_dir(etc.join("tokens")));
    if let Err(e) = ok {
        panic!("install example: {e}");
    }
    for (name, secret) in [
        ("accounting", "0f4c2a9e81b7d3c5a6e2f9b8d1c7e3a4"),
        ("95598", "7b1e9d3c5a2f8e6d4c0b9a7e5d3c1f2a"),
        ("admin", "c3d9e1f7a5b2c8d4e6f0a1b3c5d7e9f2"),
    ] {
        let path = etc.join("tokens").join(format!("{name}.token"));
        let written = std::fs::write(&path, format!("{secret}\n"))
            .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)));
        if let Err(e) = written {
            panic!("write token: {e}");
        }
    }
    dir
}

#[test]
fn production_example_loads_with_documented_values() {
    let etc = installed_production_example();
    let loaded = match config::load(&etc.path().join("gridsms.toml")) {
        Ok(l) => l,
        Err(e) => panic!("config/gridsms.toml:\n{e}"),
    };
    let c = &loaded.config;
    // Only the absent udev links may draw warnings here: the limits stay below spam checks.
    for w in &loaded.warnings {
        assert!(
            w.message.contains("does not exist now"),
            "unexpected warning: {w}"
        );
    }
    assert_eq!(c.storage.retention_days, 183);
    assert_eq!(c.modems.len(), 4);
    for m in &c.modems {
        assert!(
            m.hourly_limit < 200 && m.daily_limit <= 1000,
            "{} limits",
            m.name
        );
        assert!(matches!(m.device, Device::Path(_)));
    }
    assert_eq!(c.dispatch.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(c.dispatch.quiet_hours.to_string(), "21:00-08:00");
    assert_eq!(
        c.dispatch.quiet_hours_categories,
        [Category::Bill, Category::Reminder, Category::Broadcast]
    );
    assert_eq!(
        c.dispatch.on_crash.rule(Category::Outage),
        CrashRule::Resend
    );
    assert_eq!(
        c.dispatch.on_crash.rule(Category::Broadcast),
        CrashRule::Fail
    );
    assert_eq!(c.api.listen.to_string(), "127.0.0.1:8727");
    // Token files are resolved against the config's folder and read.
    let desk = c.api.token_for("7b1e9d3c5a2f8e6d4c0b9a7e5d3c1f2a");
    assert_eq!(desk.map(|t| t.name.as_str()), Some("call-centre-95598"));
    assert!(desk.is_some_and(|t| t.allows(Scope::Outage) && !t.allows(Scope::Broadcast)));
    assert!(c.api.token_for("7b1e9d3c5a2f8e6d4c0b9a7e5d3c1f2").is_none());
    let admin = c.api.tokens.iter().find(|t| t.name == "it-admin");
    assert!(admin.is_some_and(|t| t.allows(Scope::Broadcast)));
    assert_eq!(c.log.effective_format(true), LogFormat::Compact);
    assert_eq!(c.log.effective_format(false), LogFormat::Pretty);
}

#[test]
fn production_example_documents_every_key() {
    let text = std::fs::read_to_string(repo("config/gridsms.toml")).unwrap_or_default();
    let keys = [
        "path",
        "retention_days",
        "name",
        "device",
        "baud",
        "pin",
        "pin_file",
        "smsc",
        "hourly_limit",
        "daily_limit",
        "monthly_limit",
        "min_interval",
        "enabled",
        "allow_reset",
        "send_timeout",
        "carrier",
        "price_per_segment",
        "timezone",
        "quiet_hours",
        "quiet_hours_categories",
        "max_attempts",
        "status_reports",
        "validity",
        "initial",
        "max",
        "multiplier",
        "jitter",
        "outage",
        "listen",
        "secret_file",
        "scopes",
        "stations",
        "temporary_failures",
        "level",
        "format",
        "incomplete_wait",
        "max_pending_groups",
        "own_numbers",
        "per_phone_per_hour",
        "unknown_per_phone_per_hour",
        "total_per_hour",
        "cutover_date",
    ];
    for key in keys {
        let set = format!("\n{key} = ");
        let commented = format!("\n# {key} = ");
        assert!(
            text.contains(&set) || text.contains(&commented),
            "{key} is not in config/gridsms.toml"
        );
    }
    assert!(
        text.contains("200") && text.contains("1,000"),
        "the spam-check levels are explained"
    );
}

#[test]
fn demo_config_runs_on_a_fresh_checkout() {
    let loaded = match config::load(&repo("config/demo.toml")) {
        Ok(l) => l,
        Err(e) => panic!("config/demo.toml:\n{e}"),
    };
    let c = &loaded.config;
    let profiles: Vec<SimProfile> = c
        .modems
        .iter()
        .filter_map(|m| match m.device {
            Device::Sim(p) => Some(p),
            Device::Path(_) => None,
        })
        .collect();
    assert_eq!(profiles.len(), 4, "four simulated modems");
    for p in SimProfile::ALL {
        assert!(profiles.contains(&p), "{p} is in the demo");
    }
    assert!(
        c.modems
            .iter()
            .any(|m| m.carrier == Some(Carrier::ChinaUnicom))
    );
    // Storage lands in demo-data/ at the top of the tree, not somewhere on the machine.
    assert_eq!(c.storage.path, repo("demo-data/gridsms.db"));
    assert_eq!(c.api.listen.to_string(), "127.0.0.1:8727");
    let token = std::fs::read_to_string(repo("config/demo-token")).unwrap_or_default();
    assert!(
        c.api
            .token_for(token.trim())
            .is_some_and(|t| t.allows(Scope::Send))
    );
}

#[test]
fn check_config_prints_the_effective_config_without_secrets() {
    let etc = installed_production_example();
    let out = Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(["check-config", "--config"])
        .arg(etc.path().join("gridsms.toml"))
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("run gridsms: {e}"),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The printed config is itself a config with every default filled in.
    assert!(stdout.contains("send_timeout = \"1m\""), "{stdout}");
    assert!(stdout.contains("[dispatch.backoff]"));
    assert!(
        !stdout.contains("0f4c2a9e81b7d3c5a6e2f9b8d1c7e3a4"),
        "a token leaked"
    );
    let printed = etc.path().join("printed.toml");
    if let Err(e) = std::fs::write(&printed, stdout.as_bytes()) {
        panic!("{e}");
    }
    let reloaded = config::load(&printed);
    assert!(
        reloaded.is_ok(),
        "the effective config reloads: {:?}",
        reloaded.err()
    );
}

#[test]
fn check_config_fails_with_every_problem() {
    let out = Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(["check-config", "-q", "--config"])
        .arg(repo("tests/config/invalid/hourly-over-daily.toml"))
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("run gridsms: {e}"),
    };
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "hourly-over-daily.toml:5:16: modem[0].hourly_limit: 900 exceeds daily_limit 800"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
