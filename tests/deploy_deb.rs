//! Builds the Debian package with `cargo deb` and inspects it with `dpkg-deb`: files, modes,
//! conffiles, maintainer scripts, and that they agree with `systemd/gridsms.service`. Also
//! runs the maintainer scripts against stub commands to check what they would do.
//!
//! No release build: the test binary cargo already built is copied into a scratch target
//! directory as `release/gridsms` and `cargo deb --no-build` packages that. Without cargo-deb
//! the package tests print a SKIPPED line, unless GRIDSMS_REQUIRE_EXTERNAL=1 (set by
//! .ci/run), where they fail.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn require_external() -> bool {
    std::env::var("GRIDSMS_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}

fn tool_present(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The built package, shared by the tests of this file (built once); None when skipped.
struct Deb {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// Control area (`dpkg-deb -e`).
    control: PathBuf,
    /// Data area (`dpkg-deb -x`).
    data: PathBuf,
}

fn deb() -> Option<&'static Deb> {
    static DEB: OnceLock<Option<Deb>> = OnceLock::new();
    DEB.get_or_init(build_deb).as_ref()
}

fn build_deb() -> Option<Deb> {
    let have_deb = tool_present("cargo", &["deb", "--version"]);
    let have_dpkg = tool_present("dpkg-deb", &["--version"]);
    if !(have_deb && have_dpkg) {
        let msg = format!(
            "cargo-deb present: {have_deb}, dpkg-deb present: {have_dpkg}; \
             install with `cargo install cargo-deb --locked` and `apt-get install dpkg`"
        );
        assert!(!require_external(), "GRIDSMS_REQUIRE_EXTERNAL=1 but {msg}");
        println!("SKIPPED: .deb tests did not run: {msg}");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let release = dir.path().join("target/release");
    std::fs::create_dir_all(&release).expect("mkdir release");
    std::fs::copy(env!("CARGO_BIN_EXE_gridsms"), release.join("gridsms")).expect("copy binary");
    let out_dir = dir.path().join("out");
    let out = Command::new("cargo")
        .current_dir(ROOT)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .args(["deb", "--no-build", "--offline", "--fast", "--output"])
        .arg(&out_dir)
        .output()
        .expect("run cargo deb");
    let stdout = ok(&out, "cargo deb");
    let path = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert!(
        path.is_file(),
        "cargo deb printed {stdout:?}, no .deb there"
    );
    let control = dir.path().join("control");
    let data = dir.path().join("data");
    ok(
        &Command::new("dpkg-deb")
            .arg("-e")
            .arg(&path)
            .arg(&control)
            .output()
            .expect("dpkg-deb"),
        "dpkg-deb -e",
    );
    ok(
        &Command::new("dpkg-deb")
            .arg("-x")
            .arg(&path)
            .arg(&data)
            .output()
            .expect("dpkg-deb"),
        "dpkg-deb -x",
    );
    Some(Deb {
        _dir: dir,
        path,
        control,
        data,
    })
}

/// `dpkg-deb --contents`: path (without the leading "."), to (mode string, owner/group).
fn contents(deb: &Deb) -> BTreeMap<String, (String, String)> {
    let out = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&deb.path)
        .output()
        .expect("run");
    ok(&out, "dpkg-deb --contents")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f
                .get(5)?
                .trim_start_matches('.')
                .trim_end_matches('/')
                .to_string();
            Some((path, (f[0].to_string(), f[1].to_string())))
        })
        .collect()
}

fn field(deb: &Deb, name: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb.path)
        .arg(name)
        .output()
        .expect("run");
    ok(&out, "dpkg-deb -f").trim().to_string()
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

/// `Key=value` lines of the unit's [Service] and [Unit] sections (all values of repeated keys).
fn unit_values(key: &str) -> Vec<String> {
    read(format!("{ROOT}/systemd/gridsms.service"))
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

/// Where the package puts the unit (cargo-deb uses /usr/lib; /lib on older layouts).
fn unit_path(files: &BTreeMap<String, (String, String)>) -> String {
    [
        "/usr/lib/systemd/system/gridsms.service",
        "/lib/systemd/system/gridsms.service",
    ]
    .into_iter()
    .find(|p| files.contains_key(*p))
    .unwrap_or_else(|| panic!("no gridsms.service in the package: {files:?}"))
    .to_string()
}

#[test]
fn package_holds_the_files_with_the_right_modes() {
    let Some(deb) = deb() else { return };
    let files = contents(deb);
    let expect = [
        ("/usr/bin/gridsms", "-rwxr-xr-x"),
        ("/lib/udev/rules.d/90-gridsms.rules", "-rw-r--r--"),
        ("/etc/gridsms/gridsms.toml", "-rw-r-----"),
        ("/usr/share/doc/gridsms/operations.md", "-rw-r--r--"),
        ("/usr/share/doc/gridsms/hardware.md", "-rw-r--r--"),
        ("/usr/share/doc/gridsms/README.md", "-rw-r--r--"),
    ];
    for (path, mode) in expect {
        let (m, owner) = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the package: {files:?}"));
        assert_eq!(m, mode, "{path}");
        assert_eq!(owner, "0/0", "{path}: files in a .deb are root-owned");
    }
    let unit = unit_path(&files);
    assert_eq!(files[&unit].0, "-rw-r--r--");
    // Nothing writable by others, nothing setuid or setgid.
    for (path, (mode, _)) in &files {
        assert_eq!(mode.len(), 10, "{path} {mode}");
        assert_eq!(&mode[8..9], "-", "{path} is writable by others: {mode}");
        assert!(
            !mode.contains('s') && !mode.contains('S'),
            "{path} is set-id: {mode}"
        );
    }
    // The packaged files are the ones in the repository.
    assert_eq!(
        read(deb.data.join(unit.trim_start_matches('/'))),
        read(format!("{ROOT}/systemd/gridsms.service"))
    );
    assert_eq!(
        read(deb.data.join("lib/udev/rules.d/90-gridsms.rules")),
        read(format!("{ROOT}/udev/90-gridsms.rules"))
    );
    assert_eq!(
        read(deb.data.join("etc/gridsms/gridsms.toml")),
        read(format!("{ROOT}/config/gridsms.toml"))
    );
    // The packaged binary runs.
    let out = Command::new(deb.data.join("usr/bin/gridsms"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(ok(&out, "gridsms --version").contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn control_fields_and_conffiles() {
    let Some(deb) = deb() else { return };
    assert_eq!(field(deb, "Package"), "gridsms");
    assert!(field(deb, "Version").starts_with(env!("CARGO_PKG_VERSION")));
    let depends = field(deb, "Depends");
    assert!(
        depends.split(", ").any(|d| d == "adduser"),
        "Depends: {depends}"
    );
    assert!(
        depends.contains("libc6"),
        "Depends lacks the $auto libc6: {depends}"
    );
    assert_eq!(
        read(deb.control.join("conffiles")).trim(),
        "/etc/gridsms/gridsms.toml"
    );
}

#[test]
fn maintainer_scripts_are_present_executable_and_valid_sh() {
    let Some(deb) = deb() else { return };
    for name in ["postinst", "prerm", "postrm"] {
        let path = deb.control.join(name);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{name} is not executable ({mode:o})");
        let text = read(&path);
        assert!(text.starts_with("#!/bin/sh\n"), "{name}");
        assert!(
            !text.contains("#DEBHELPER#"),
            "{name}: token left unreplaced"
        );
        assert!(
            text.contains("gridsms.service"),
            "{name}: no systemd fragment merged in"
        );
        let out = Command::new("sh")
            .arg("-n")
            .arg(&path)
            .output()
            .expect("sh -n");
        ok(&out, &format!("sh -n {name}"));
    }
    let postinst = read(deb.control.join("postinst"));
    // Enabled, not started (the config must be edited first); restarted on upgrade if running.
    assert!(postinst.contains("deb-systemd-helper enable gridsms.service"));
    assert!(
        !postinst.contains("deb-systemd-invoke start"),
        "postinst starts the service"
    );
}

/// Runs a maintainer script with stub commands that log their arguments; returns the log.
fn run_with_stubs(script: &Path, args: &[&str], known_user: bool) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let log = dir.path().join("log");
    let logging = [
        "adduser",
        "deluser",
        "delgroup",
        "chown",
        "chmod",
        "install",
        "rm",
        "udevadm",
        "deb-systemd-helper",
        "deb-systemd-invoke",
        "systemctl",
    ];
    for name in logging {
        let stub = format!(
            "#!/bin/sh\necho \"{name} $*\" >> '{}'\nexit 0\n",
            log.display()
        );
        std::fs::write(bin.join(name), stub).expect("stub");
    }
    // getent: the user exists or not; id: the user's groups; dpkg-statoverride: none set.
    let getent = if known_user { "exit 0" } else { "exit 2" };
    let stubs = [
        ("getent", getent.to_string()),
        ("id", "echo gridsms".to_string()),
        ("dpkg-statoverride", "exit 1".to_string()),
    ];
    for (name, body) in stubs {
        std::fs::write(bin.join(name), format!("#!/bin/sh\n{body}\n")).expect("stub");
    }
    for entry in std::fs::read_dir(&bin).expect("read_dir") {
        let p = entry.expect("entry").path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = Command::new("sh")
        .arg(script)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .output()
        .expect("run script");
    ok(&out, &format!("{} {args:?}", script.display()));
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn postinst_creates_the_account_and_locks_down_etc() {
    let Some(deb) = deb() else { return };
    let log = run_with_stubs(&deb.control.join("postinst"), &["configure", ""], false);
    let lines: Vec<&str> = log.lines().collect();
    let has = |want: &str| lines.iter().any(|l| l.starts_with(want));
    assert!(
        has("adduser --system --group --home /var/lib/gridsms"),
        "no system user created:\n{log}"
    );
    assert!(
        has("adduser --quiet gridsms dialout"),
        "not added to dialout:\n{log}"
    );
    assert!(has("chown root:gridsms /etc/gridsms"), "{log}");
    assert!(has("chmod 0750 /etc/gridsms"), "{log}");
    assert!(has("deb-systemd-helper enable gridsms.service"), "{log}");
    assert!(!log.contains("deb-systemd-invoke start"), "{log}");

    // Second configure (upgrade): the account exists, nothing is re-created.
    let log = run_with_stubs(
        &deb.control.join("postinst"),
        &["configure", "0.0.9-1"],
        true,
    );
    assert!(!log.contains("adduser --system"), "{log}");
    assert!(log.contains("chown root:gridsms /etc/gridsms"), "{log}");
}

#[test]
fn postrm_purge_removes_state_and_account_but_remove_keeps_them() {
    let Some(deb) = deb() else { return };
    let postrm = deb.control.join("postrm");
    let log = run_with_stubs(&postrm, &["remove"], true);
    assert!(
        !log.contains("rm -rf") && !log.contains("deluser"),
        "remove deleted data:\n{log}"
    );

    let log = run_with_stubs(&postrm, &["purge"], true);
    let rm = log
        .lines()
        .find(|l| l.starts_with("rm -rf /var/lib/gridsms"))
        .unwrap_or("");
    for dir in ["/var/lib/gridsms", "/var/log/gridsms", "/etc/gridsms"] {
        assert!(rm.split(' ').any(|w| w == dir), "purge keeps {dir}:\n{log}");
    }
    assert!(log.contains("deluser --system --quiet gridsms"), "{log}");
    assert!(
        log.contains("deb-systemd-helper purge gridsms.service"),
        "{log}"
    );
}

#[test]
fn unit_agrees_with_the_package() {
    let Some(deb) = deb() else { return };
    let files = contents(deb);
    let exec = unit_values("ExecStart");
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    assert!(
        files.contains_key(words[0]),
        "ExecStart binary {} not packaged",
        words[0]
    );
    let config = words
        .iter()
        .skip_while(|w| **w != "--config")
        .nth(1)
        .copied();
    assert_eq!(config, Some("/etc/gridsms/gridsms.toml"));
    assert_eq!(
        read(deb.control.join("conffiles")).trim(),
        config.unwrap_or("")
    );
    for doc in unit_values("Documentation")
        .iter()
        .flat_map(|v| v.split_whitespace())
    {
        let path = doc.trim_start_matches("file:");
        assert!(files.contains_key(path), "Documentation={doc} not packaged");
    }
    // The account postinst makes is the one the unit runs as, in the group udev gives ports.
    let postinst = read(deb.control.join("postinst"));
    assert_eq!(unit_values("User"), ["gridsms"]);
    assert_eq!(unit_values("Group"), ["gridsms"]);
    assert!(postinst.contains("--group --home /var/lib/gridsms"));
    assert_eq!(unit_values("SupplementaryGroups"), ["dialout"]);
    assert!(postinst.contains("adduser --quiet gridsms dialout"));
    let rules = read(format!("{ROOT}/udev/90-gridsms.rules"));
    assert!(rules.contains("GROUP=\"dialout\", MODE=\"0660\""));
    // The directories the unit declares are the ones postinst prepares and postrm purges.
    let postrm = read(deb.control.join("postrm"));
    for (key, dir) in [
        ("StateDirectory", "/var/lib/"),
        ("LogsDirectory", "/var/log/"),
        ("ConfigurationDirectory", "/etc/"),
    ] {
        let name = unit_values(key);
        assert_eq!(name, ["gridsms"], "{key}");
        let full = format!("{dir}{}", name[0]);
        assert!(postrm.contains(&full), "postrm does not purge {full}");
    }
    assert!(postinst.contains("chmod 0750 /etc/gridsms"));
    assert_eq!(unit_values("ConfigurationDirectoryMode"), ["0750"]);
}
