//! Loading rules: every problem at once, relative paths, secrets, defaults, warnings.

use gridsms::config::{self, ConfigError, Device, Pin};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn write(dir: &Path, name: &str, text: &str, mode: u32) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let ok = std::fs::write(&path, text)
        .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)));
    if let Err(e) = ok {
        panic!("write {}: {e}", path.display());
    }
}

fn tmp() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

#[test]
fn defaults_fill_an_empty_file() {
    let loaded = match config::parse("", Path::new("/etc/gridsms/gridsms.toml")) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let c = loaded.config;
    assert_eq!(c.storage.retention_days, 183);
    assert_eq!(c.dispatch.max_attempts, 5);
    assert_eq!(c.dispatch.validity, Duration::from_secs(86_400));
    assert!(c.dispatch.status_reports);
    assert_eq!(c.api.listen.to_string(), "127.0.0.1:8727");
    assert_eq!(c.log.level, "info");
    let keys: Vec<String> = loaded.warnings.iter().map(|w| w.key.clone()).collect();
    assert_eq!(keys, ["modem", "api.tokens"], "no modem, no token: warned");
}

#[test]
fn modem_defaults_stay_below_spam_checks() {
    let text = "[[modem]]\nname = \"a\"\ndevice = \"sim:sim800\"\n";
    let c = match config::parse(text, Path::new("x.toml")) {
        Ok(l) => l.config,
        Err(e) => panic!("{e}"),
    };
    let m = &c.modems[0];
    assert_eq!(
        (m.hourly_limit, m.daily_limit, m.monthly_limit),
        (150, 800, 20_000)
    );
    assert_eq!(m.baud, 115_200);
    assert_eq!(m.send_timeout, Duration::from_secs(60));
    assert_eq!(m.min_interval, Duration::from_secs(2));
    assert!(m.enabled && m.allow_reset);
}

#[test]
fn reports_every_problem_at_once_in_file_order() {
    let text = r#"
[storage]
retention_days = 30

[[modem]]
name = "a"
device = "sim:nokia"
min_interval = "soon"

[dispatch]
timezone = "Mars/Olympus"
quiet_hours = "8-21"

[log]
format = "xml"
"#;
    let err = match config::parse(text, Path::new("/etc/gridsms/gridsms.toml")) {
        Ok(_) => panic!("should fail"),
        Err(e) => e,
    };
    let ConfigError::Invalid(ds) = &err else {
        panic!("{err}")
    };
    let got: Vec<(String, Option<(usize, usize)>)> =
        ds.iter().map(|d| (d.key.clone(), d.position)).collect();
    assert_eq!(
        got,
        [
            ("storage.retention_days".into(), Some((3, 18))),
            ("modem[0].device".into(), Some((7, 10))),
            ("modem[0].min_interval".into(), Some((8, 16))),
            ("dispatch.timezone".into(), Some((11, 12))),
            ("dispatch.quiet_hours".into(), Some((12, 15))),
            ("log.format".into(), Some((15, 10))),
        ]
    );
    assert!(err.to_string().starts_with(
        "/etc/gridsms/gridsms.toml:3:18: storage.retention_days: 30 days is too short"
    ));
}

#[test]
fn relative_paths_follow_the_config_file() {
    let dir = tmp();
    let d = dir.path();
    write(d, "etc/pins/a.pin", "4321\n", 0o600);
    write(
        d,
        "etc/tokens/ops.token",
        "abcdefghijklmnopqrstuvwxyz\n",
        0o600,
    );
    write(
        d,
        "etc/gridsms.toml",
        r#"
[storage]
path = "../var/./outbox.sqlite"
[[modem]]
name = "a"
device = "links/modem-1"
pin_file = "pins/a.pin"
[[api.tokens]]
name = "ops"
secret_file = "tokens/ops.token"
scopes = ["read"]
"#,
        0o600,
    );
    let loaded = match config::load(&d.join("etc/gridsms.toml")) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let c = &loaded.config;
    assert_eq!(c.storage.path, d.join("var/outbox.sqlite"));
    assert_eq!(
        c.modems[0].device,
        Device::Path(d.join("etc/links/modem-1"))
    );
    assert_eq!(c.modems[0].pin(), Some("4321"));
    assert!(
        matches!(&c.modems[0].pin, Some(Pin::File { path, .. }) if *path == d.join("etc/pins/a.pin"))
    );
    assert_eq!(c.api.tokens[0].secret_file, d.join("etc/tokens/ops.token"));
    assert!(c.api.token_for("abcdefghijklmnopqrstuvwxyz").is_some());
    // The missing device is a warning (modems come and go), not an error.
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(loaded.warnings[0].key, "modem[0].device");
}

#[test]
fn world_readable_secrets_and_high_limits_warn() {
    let dir = tmp();
    let d = dir.path();
    write(d, "ops.token", "abcdefghijklmnopqrstuvwxyz\n", 0o644);
    write(
        d,
        "gridsms.toml",
        r#"
[[modem]]
name = "a"
device = "sim:sim800"
hourly_limit = 300
daily_limit = 2000
[api]
listen = "0.0.0.0:8727"
[[api.tokens]]
name = "ops"
secret_file = "ops.token"
scopes = ["read"]
"#,
        0o600,
    );
    let loaded = match config::load(&d.join("gridsms.toml")) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let keys: Vec<&str> = loaded.warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "modem[0].hourly_limit",
            "modem[0].daily_limit",
            "api.listen",
            "api.tokens[0].secret_file"
        ]
    );
    assert!(loaded.warnings[0].message.contains("spam checks"));
    assert!(loaded.warnings[3].message.contains("chmod 640"));
}

#[test]
fn secrets_never_print() {
    let dir = tmp();
    let d = dir.path();
    write(d, "ops.token", "s3cr3t-t0ken-value-0123\n", 0o600);
    write(
        d,
        "gridsms.toml",
        "[[modem]]\nname = \"a\"\ndevice = \"sim:sim800\"\npin = \"9876\"\n[[api.tokens]]\nname = \"ops\"\nsecret_file = \"ops.token\"\nscopes = [\"admin\"]\n",
        0o600,
    );
    let c = match config::load(&d.join("gridsms.toml")) {
        Ok(l) => l.config,
        Err(e) => panic!("{e}"),
    };
    let printed = match c.to_toml() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let debug = format!("{c:?}");
    for shown in [&printed, &debug] {
        assert!(
            !shown.contains("9876") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
    assert!(printed.contains("pin = \"<redacted>\""), "{printed}");
    assert_eq!(c.modems[0].pin(), Some("9876"));
}

#[test]
fn unreadable_or_huge_files_are_errors_not_panics() {
    let err = config::load(Path::new("/nonexistent/gridsms.toml"));
    assert!(matches!(err, Err(ConfigError::Read { .. })));
    let dir = tmp();
    let big = "# padding\n".repeat(200_000);
    write(dir.path(), "big.toml", &big, 0o600);
    assert!(matches!(
        config::load(&dir.path().join("big.toml")),
        Err(ConfigError::Read { .. })
    ));
    let bytes = [0xffu8, 0xfe, 0x00];
    if let Err(e) = std::fs::write(dir.path().join("bin.toml"), bytes) {
        panic!("{e}");
    }
    assert!(config::load(&dir.path().join("bin.toml")).is_err());
}

mod never_panics {
    use proptest::prelude::*;
    use std::path::Path;

    const BASE: &str = include_str!("../config/gridsms.toml");

    proptest! {
        #[test]
        fn on_arbitrary_text(text in "\\PC{0,200}") {
            let _ = gridsms::config::parse(&text, Path::new("/x/gridsms.toml"));
        }

        /// The production example with a slice cut out or replaced: any outcome but a panic,
        /// and a failure always has at least one located problem.
        #[test]
        fn on_damaged_examples(at in 0usize..BASE.len(), len in 0usize..40, insert in "\\PC{0,8}") {
            let mut text = BASE.to_owned();
            let start = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (start + len).min(text.len());
            let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(start..end, &insert);
            if let Err(e) = gridsms::config::parse(&text, Path::new("/x/gridsms.toml")) {
                prop_assert!(!e.diagnostics().is_empty());
            }
        }
    }
}
