//! Checks `udev/90-gridsms.rules`.
//!
//! `udevadm verify` only exists from systemd 254 on (Debian 12 has 252), so this file carries
//! its own checker of the rules grammar (udev(7): `KEY[{attr}] OP "value"` pairs, which keys
//! take which operators and attributes, substitutions, GOTO targets) and a small evaluator of
//! the subset the file uses, run on simulated devices to check the names the rules produce.
//! udev's own parser is run too, through `udevadm test` in a private mount namespace where
//! our file is the only local rules file (it reports bad keys and operators, but lets a
//! missing comma or a bad MODE pass); `udevadm verify` where it exists. Every check is also
//! run on broken copies of the file, which must be rejected, so the checkers are known to bite.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const RULES_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/udev/90-gridsms.rules");

fn rules_text() -> String {
    std::fs::read_to_string(RULES_PATH).unwrap_or_else(|e| panic!("read {RULES_PATH}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Parsing and grammar.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Match,    // ==
    NotMatch, // !=
    Assign,   // =
    Add,      // +=
    Remove,   // -=
    Final,    // :=
}

#[derive(Debug, Clone)]
struct Pair {
    key: String,
    attr: Option<String>,
    op: Op,
    value: String,
}

#[derive(Debug, Clone)]
struct Rule {
    line: usize,
    pairs: Vec<Pair>,
}

/// How a key may be used: operators allowed, and whether `{attr}` is required, optional or
/// forbidden. Taken from udev(7).
struct KeySpec {
    ops: &'static [Op],
    attr: AttrUse,
}

#[derive(PartialEq)]
enum AttrUse {
    Required,
    Optional,
    Forbidden,
}

fn key_spec(key: &str) -> Option<KeySpec> {
    use AttrUse::*;
    use Op::*;
    const M: &[Op] = &[Match, NotMatch];
    let spec = |ops: &'static [Op], attr| Some(KeySpec { ops, attr });
    match key {
        "ACTION" | "DEVPATH" | "KERNEL" | "KERNELS" | "SUBSYSTEM" | "SUBSYSTEMS" | "DRIVER"
        | "DRIVERS" | "TAGS" | "RESULT" | "PROGRAM" => spec(M, Forbidden),
        "ATTRS" | "CONST" => spec(M, Required),
        "TEST" => spec(M, Optional),
        "NAME" => spec(&[Match, NotMatch, Assign, Final], Forbidden),
        "SYMLINK" | "TAG" => spec(&[Match, NotMatch, Assign, Add, Remove, Final], Forbidden),
        "ENV" => spec(&[Match, NotMatch, Assign, Add, Final], Required),
        "ATTR" | "SYSCTL" => spec(&[Match, NotMatch, Assign, Final], Required),
        "OWNER" | "GROUP" | "MODE" => spec(&[Assign, Final], Forbidden),
        "SECLABEL" => spec(&[Assign, Add, Final], Required),
        "RUN" => spec(&[Assign, Add, Final], Optional),
        "IMPORT" => spec(&[Assign], Required),
        "OPTIONS" => spec(&[Assign, Add], Forbidden),
        "LABEL" | "GOTO" => spec(&[Assign], Forbidden),
        _ => None,
    }
}

const IMPORT_TYPES: &[&str] = &["program", "builtin", "file", "db", "cmdline", "parent"];
const BUILTINS: &[&str] = &[
    "usb_id",
    "path_id",
    "input_id",
    "hwdb",
    "blkid",
    "kmod",
    "keyboard",
    "net_id",
    "net_setup_link",
    "btrfs",
    "uaccess",
    "factory_reset",
];
const DOLLAR_SUBST: &[&str] = &[
    "devnode", "attr", "sysfs", "env", "kernel", "number", "driver", "devpath", "id", "major",
    "minor", "result", "parent", "name", "links", "root", "sys", "tempnode",
];

/// Splits the file into rules (continuation lines joined) and parses each; returns every
/// problem found, each prefixed with its line number.
fn parse(text: &str) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        if pending.is_empty() {
            start = lineno;
        }
        let line = raw.trim_end();
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let joined = std::mem::take(&mut pending);
        let trimmed = joined.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_rule(trimmed) {
            Ok(pairs) => rules.push(Rule { line: start, pairs }),
            Err(e) => errors.push(format!("line {start}: {e}")),
        }
    }
    if !pending.trim().is_empty() {
        errors.push(format!("line {start}: file ends inside a continued line"));
    }
    (rules, errors)
}

fn parse_rule(s: &str) -> Result<Vec<Pair>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut pairs = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let ks = i;
        while i < b.len() && (b[i].is_ascii_uppercase() || b[i] == b'_') {
            i += 1;
        }
        let key = &s[ks..i];
        if key.is_empty() {
            return Err(format!("expected a key at column {}", ks + 1));
        }
        let attr = if i < b.len() && b[i] == b'{' {
            let close = s[i..]
                .find('}')
                .ok_or_else(|| format!("{key}: unclosed '{{'"))?;
            let a = &s[i + 1..i + close];
            i += close + 1;
            if a.is_empty() {
                return Err(format!("{key}: empty {{}}"));
            }
            Some(a.to_string())
        } else {
            None
        };
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let rest = &s[i..];
        let (op, len) = if rest.starts_with("==") {
            (Op::Match, 2)
        } else if rest.starts_with("!=") {
            (Op::NotMatch, 2)
        } else if rest.starts_with("+=") {
            (Op::Add, 2)
        } else if rest.starts_with("-=") {
            (Op::Remove, 2)
        } else if rest.starts_with(":=") {
            (Op::Final, 2)
        } else if rest.starts_with('=') {
            (Op::Assign, 1)
        } else {
            return Err(format!("{key}: expected an operator"));
        };
        i += len;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'"' {
            return Err(format!("{key}: value must be in double quotes"));
        }
        i += 1;
        let vs = i;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        if i >= b.len() {
            return Err(format!("{key}: unterminated value"));
        }
        let value = s[vs..i].to_string();
        i += 1;
        pairs.push(Pair {
            key: key.to_string(),
            attr,
            op,
            value,
        });
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            return Ok(pairs);
        }
        if b[i] != b',' {
            return Err(format!("{key}: expected ',' after the value"));
        }
        i += 1;
        if s[i..].trim().is_empty() {
            return Err("trailing ','".to_string());
        }
    }
}

/// Checks one value's `$name{..}` / `%x` substitutions.
fn check_substitutions(v: &str) -> Result<(), String> {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' => {
                if b.get(i + 1) == Some(&b'$') {
                    i += 2;
                    continue;
                }
                let ns = i + 1;
                let mut j = ns;
                while j < b.len() && b[j].is_ascii_lowercase() {
                    j += 1;
                }
                let name = &v[ns..j];
                if !DOLLAR_SUBST.contains(&name) {
                    return Err(format!("unknown substitution ${name}"));
                }
                if b.get(j) == Some(&b'{') {
                    let close = v[j..]
                        .find('}')
                        .ok_or_else(|| format!("${name}: unclosed '{{'"))?;
                    j += close + 1;
                } else if matches!(name, "env" | "attr" | "sysfs") {
                    return Err(format!("${name} needs {{name}}"));
                }
                i = j;
            }
            b'%' => {
                let c = b.get(i + 1).copied().unwrap_or(b' ');
                if !b"knpbdMmcPNrSDL%sEe".contains(&c) {
                    return Err(format!("unknown substitution %{}", c as char));
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The whole grammar check: every problem in the file, or none.
fn check(text: &str) -> Vec<String> {
    let (rules, mut errors) = parse(text);
    let mut labels: Vec<(usize, String)> = Vec::new();
    for (idx, r) in rules.iter().enumerate() {
        for p in &r.pairs {
            if p.key == "LABEL" {
                labels.push((idx, p.value.clone()));
            }
        }
    }
    for (idx, r) in rules.iter().enumerate() {
        let at = |m: String| format!("line {}: {m}", r.line);
        let mut acts = false;
        for p in &r.pairs {
            let Some(spec) = key_spec(&p.key) else {
                errors.push(at(format!("unknown key {}", p.key)));
                continue;
            };
            match (&spec.attr, &p.attr) {
                (AttrUse::Required, None) => errors.push(at(format!("{} needs {{attr}}", p.key))),
                (AttrUse::Forbidden, Some(a)) => {
                    errors.push(at(format!("{} takes no {{{a}}}", p.key)))
                }
                _ => {}
            }
            if !spec.ops.contains(&p.op) {
                errors.push(at(format!("{} does not take {:?}", p.key, p.op)));
            }
            if !matches!(p.op, Op::Match | Op::NotMatch) {
                acts = true;
            }
            if let Err(e) = check_substitutions(&p.value) {
                errors.push(at(format!("{}: {e}", p.key)));
            }
            match p.key.as_str() {
                "MODE" => {
                    let ok = !p.value.is_empty()
                        && p.value.len() <= 4
                        && p.value.bytes().all(|c| (b'0'..=b'7').contains(&c));
                    if !ok {
                        errors.push(at(format!("MODE {:?} is not octal", p.value)));
                    }
                }
                "GROUP" | "OWNER" | "LABEL"
                    if p.value.is_empty() || p.value.contains(char::is_whitespace) =>
                {
                    errors.push(at(format!("{} {:?} is not a name", p.key, p.value)));
                }
                // udev only jumps forward.
                "GOTO" if !labels.iter().any(|(li, l)| *li > idx && *l == p.value) => {
                    errors.push(at(format!("GOTO {:?} has no LABEL after it", p.value)));
                }
                "IMPORT" => {
                    let t = p.attr.as_deref().unwrap_or("");
                    if !IMPORT_TYPES.contains(&t) {
                        errors.push(at(format!("IMPORT{{{t}}} is not an import type")));
                    }
                    if t == "builtin" {
                        let name = p.value.split_whitespace().next().unwrap_or("");
                        if !BUILTINS.contains(&name) {
                            errors.push(at(format!("unknown builtin {name:?}")));
                        }
                    }
                }
                _ => {}
            }
        }
        if !acts {
            errors.push(at("rule only matches and never acts".to_string()));
        }
    }
    errors
}

// ---------------------------------------------------------------------------------------
// A small evaluator: just enough of udev to run these rules on a simulated device.

/// A device in sysfs: kernel name, subsystem, attributes.
#[derive(Clone)]
struct Dev {
    kernel: String,
    subsystem: String,
    attrs: BTreeMap<String, String>,
}

/// A tty event: the tty itself, then its parents from nearest to root.
struct Event {
    action: String,
    chain: Vec<Dev>,
}

#[derive(Default, Debug)]
struct Outcome {
    env: BTreeMap<String, String>,
    symlinks: Vec<String>,
    group: Option<String>,
    mode: Option<String>,
}

/// udev's glob: `*`, `?`, and `|` between alternatives.
fn glob(pattern: &str, s: &str) -> bool {
    fn one(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len()).any(|k| one(&p[1..], &s[k..])),
            Some(b'?') => !s.is_empty() && one(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && one(&p[1..], &s[1..]),
        }
    }
    pattern
        .split('|')
        .any(|alt| one(alt.as_bytes(), s.as_bytes()))
}

fn substitute(v: &str, ev: &Event, env: &BTreeMap<String, String>, parent: Option<&Dev>) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 1..];
        let name_len = tail.bytes().take_while(|c| c.is_ascii_lowercase()).count();
        let name = &tail[..name_len];
        let mut after = &tail[name_len..];
        let arg = if let Some(a) = after.strip_prefix('{') {
            let close = a.find('}').unwrap_or(a.len());
            after = a.get(close + 1..).unwrap_or("");
            Some(&a[..close])
        } else {
            None
        };
        match (name, arg) {
            ("env", Some(k)) => out.push_str(env.get(k).map(String::as_str).unwrap_or("")),
            ("attr", Some(k)) => {
                let v = ev.chain[0]
                    .attrs
                    .get(k)
                    .or_else(|| parent.and_then(|p| p.attrs.get(k)));
                out.push_str(v.map(String::as_str).unwrap_or(""));
            }
            ("id", None) => out.push_str(parent.map(|p| p.kernel.as_str()).unwrap_or("")),
            ("kernel", None) => out.push_str(&ev.chain[0].kernel),
            other => panic!("evaluator does not implement substitution {other:?}"),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// udev's `usb_id` builtin, reduced to the properties the rules read.
fn usb_id(ev: &Event, env: &mut BTreeMap<String, String>) {
    if let Some(usb) = ev.chain.iter().find(|d| d.attrs.contains_key("idVendor")) {
        if let Some(s) = usb.attrs.get("serial") {
            env.insert("ID_SERIAL_SHORT".into(), s.clone());
        }
        env.insert("ID_VENDOR_ID".into(), usb.attrs["idVendor"].clone());
        env.insert("ID_MODEL_ID".into(), usb.attrs["idProduct"].clone());
    }
}

fn evaluate(rules: &[Rule], ev: &Event) -> Outcome {
    let mut out = Outcome::default();
    let mut idx = 0;
    'rules: while idx < rules.len() {
        let rule = &rules[idx];
        idx += 1;
        // Parent keys of one rule must all match the same device of the chain.
        let parent_keys: Vec<&Pair> = rule
            .pairs
            .iter()
            .filter(|p| matches!(p.key.as_str(), "ATTRS" | "SUBSYSTEMS" | "KERNELS"))
            .collect();
        let parent = if parent_keys.is_empty() {
            None
        } else {
            let found = ev.chain.iter().find(|d| {
                parent_keys.iter().all(|p| {
                    let actual = match p.key.as_str() {
                        "ATTRS" => d.attrs.get(p.attr.as_deref().unwrap_or("")).cloned(),
                        "SUBSYSTEMS" => Some(d.subsystem.clone()),
                        _ => Some(d.kernel.clone()),
                    };
                    let hit = actual.is_some_and(|a| glob(&p.value, &a));
                    hit == (p.op == Op::Match)
                })
            });
            match found {
                Some(d) => Some(d),
                None => continue 'rules,
            }
        };
        for p in rule
            .pairs
            .iter()
            .filter(|p| matches!(p.op, Op::Match | Op::NotMatch))
        {
            let actual = match p.key.as_str() {
                "ACTION" => ev.action.clone(),
                "SUBSYSTEM" => ev.chain[0].subsystem.clone(),
                "KERNEL" => ev.chain[0].kernel.clone(),
                "ENV" => out
                    .env
                    .get(p.attr.as_deref().unwrap_or(""))
                    .cloned()
                    .unwrap_or_default(),
                "ATTRS" | "SUBSYSTEMS" | "KERNELS" => continue,
                other => panic!("evaluator does not implement match key {other}"),
            };
            if glob(&p.value, &actual) != (p.op == Op::Match) {
                continue 'rules;
            }
        }
        for p in rule
            .pairs
            .iter()
            .filter(|p| !matches!(p.op, Op::Match | Op::NotMatch))
        {
            let value = substitute(&p.value, ev, &out.env, parent);
            match p.key.as_str() {
                "ENV" => {
                    out.env.insert(p.attr.clone().unwrap_or_default(), value);
                }
                "SYMLINK" => out
                    .symlinks
                    .extend(value.split_whitespace().map(String::from)),
                "GROUP" => out.group = Some(value),
                "MODE" => out.mode = Some(value),
                "LABEL" => {}
                "IMPORT" if value == "usb_id" => usb_id(ev, &mut out.env),
                "GOTO" => {
                    let target = rules
                        .iter()
                        .position(|r| r.pairs.iter().any(|q| q.key == "LABEL" && q.value == value));
                    idx = target.unwrap_or(rules.len());
                    continue 'rules;
                }
                other => panic!("evaluator does not implement assignment key {other}"),
            }
        }
    }
    out
}

/// A tty on interface `ifnum` of a USB device `vid:pid` at USB port `port`.
fn usb_tty(vid: &str, pid: &str, serial: Option<&str>, port: &str, ifnum: &str) -> Event {
    let attrs = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut dev_attrs = attrs(&[("idVendor", vid), ("idProduct", pid)]);
    if let Some(s) = serial {
        dev_attrs.insert("serial".into(), s.into());
    }
    let ifn = u8::from_str_radix(ifnum, 16).unwrap_or(0);
    Event {
        action: "add".into(),
        chain: vec![
            Dev {
                kernel: "ttyUSB7".into(),
                subsystem: "tty".into(),
                attrs: BTreeMap::new(),
            },
            Dev {
                kernel: "ttyUSB7".into(),
                subsystem: "usb-serial".into(),
                attrs: BTreeMap::new(),
            },
            Dev {
                kernel: format!("{port}:1.{ifn}"),
                subsystem: "usb".into(),
                attrs: attrs(&[("bInterfaceNumber", ifnum)]),
            },
            Dev {
                kernel: port.into(),
                subsystem: "usb".into(),
                attrs: dev_attrs,
            },
        ],
    }
}

fn run(ev: &Event) -> Outcome {
    let text = rules_text();
    let (rules, errors) = parse(&text);
    assert!(errors.is_empty(), "{errors:?}");
    evaluate(&rules, ev)
}

fn assert_claimed(o: &Outcome) {
    assert_eq!(o.group.as_deref(), Some("dialout"), "{o:?}");
    assert_eq!(o.mode.as_deref(), Some("0660"), "{o:?}");
    assert_eq!(
        o.env.get("ID_MM_DEVICE_IGNORE").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        o.env.get("ID_MM_PORT_IGNORE").map(String::as_str),
        Some("1")
    );
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn shipped_rules_pass_the_grammar_check() {
    let errors = check(&rules_text());
    assert!(
        errors.is_empty(),
        "udev/90-gridsms.rules:\n{}",
        errors.join("\n")
    );
}

#[test]
fn broken_copies_are_rejected() {
    let good = rules_text();
    // (what, from, to, whether udev 252's own parser reports it; the rest it silently accepts
    // or misreads, which is why this file has its own checker).
    let mutations: &[(&str, &str, &str, bool)] = &[
        (
            "match as assignment",
            "ATTRS{idVendor}==\"2c7c\"",
            "ATTRS{idVendor}=\"2c7c\"",
            true,
        ),
        (
            "unknown key",
            "SUBSYSTEM!=\"tty\"",
            "SUBSYSTEMZ!=\"tty\"",
            true,
        ),
        ("unquoted value", "GROUP=\"dialout\"", "GROUP=dialout", true),
        (
            "missing comma",
            "GROUP=\"dialout\", MODE",
            "GROUP=\"dialout\" MODE",
            false,
        ),
        ("bad mode", "MODE=\"0660\"", "MODE=\"0x660\"", false),
        (
            "GOTO to nowhere",
            "GOTO=\"gridsms_usb\"",
            "GOTO=\"gridsms_usbb\"",
            true,
        ),
        (
            "label removed",
            "LABEL=\"gridsms_end\"",
            "LABEL=\"gridsms_fin\"",
            true,
        ),
        (
            "ENV without name",
            "ENV{ID_MM_PORT_IGNORE}=\"1\"",
            "ENV=\"1\"",
            true,
        ),
        (
            "bad substitution",
            "$env{GRIDSMS_MODEL}-",
            "$envv{GRIDSMS_MODEL}-",
            true,
        ),
        (
            "unknown builtin",
            "IMPORT{builtin}=\"usb_id\"",
            "IMPORT{builtin}=\"usbid\"",
            true,
        ),
        (
            "unterminated value",
            "GROUP=\"dialout\"",
            "GROUP=\"dialout",
            true,
        ),
        (
            "GROUP compared",
            "GROUP=\"dialout\"",
            "GROUP==\"dialout\"",
            true,
        ),
    ];
    let real_udev = udev_available();
    for (what, from, to, udev_catches) in mutations {
        let broken = mutate_rule_line(&good, from, to)
            .unwrap_or_else(|| panic!("mutation {what:?}: {from:?} not in any rule"));
        let errors = check(&broken);
        assert!(
            !errors.is_empty(),
            "checker accepted a broken copy ({what})"
        );
        if let Some(verdict) = udevadm_verify(&broken) {
            assert!(!verdict, "udevadm verify accepted a broken copy ({what})");
        }
        if real_udev && *udev_catches {
            let diags = udev_diagnostics(&broken).unwrap_or_default();
            assert!(
                !diags.is_empty(),
                "udev's parser accepted a broken copy ({what})"
            );
        }
    }
}

/// Whether udev's own rules parser can be run here: `udevadm test` in a private mount
/// namespace (`unshare -m`, needs root) with our file bind-mounted as the only local rules.
/// Under GRIDSMS_REQUIRE_EXTERNAL=1 its absence fails the test.
fn udev_available() -> bool {
    let ok = udev_diagnostics("# probe\nACTION==\"add\", ENV{GRIDSMS_PROBE}=\"1\"\n").is_some();
    if !ok {
        let strict = std::env::var("GRIDSMS_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1");
        assert!(
            !strict,
            "GRIDSMS_REQUIRE_EXTERNAL=1 but udevadm test cannot run (apt-get install udev; needs root for unshare -m)"
        );
        println!("SKIPPED: udev's own parser not run (needs udevadm, root and unshare -m)");
    }
    ok
}

/// What udev's parser says about our rules file: its diagnostics naming the file (empty when
/// clean), or None when `udevadm test` cannot run here.
fn udev_diagnostics(text: &str) -> Option<Vec<String>> {
    let device = std::fs::read_dir("/sys/class/tty")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tty"))
        })?;
    let dir = tempfile::tempdir().ok()?;
    std::fs::write(dir.path().join("90-gridsms.rules"), text).ok()?;
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/udev/rules.d && exec udevadm test --action=add \"$2\"")
        .arg("sh")
        .arg(dir.path())
        .arg(&device)
        .output()
        .ok()?;
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Proof the file was read at all; otherwise the run says nothing about it.
    if !out.status.success()
        || !all.contains("Reading rules file: /etc/udev/rules.d/90-gridsms.rules")
    {
        return None;
    }
    Some(
        all.lines()
            .filter(|l| l.contains("90-gridsms.rules:"))
            .map(String::from)
            .collect(),
    )
}

#[test]
fn udev_own_parser_accepts_the_rules() {
    if !udev_available() {
        return;
    }
    let diags =
        udev_diagnostics(&rules_text()).unwrap_or_else(|| vec!["udevadm test failed".into()]);
    assert!(
        diags.is_empty(),
        "udev complains about 90-gridsms.rules:\n{}",
        diags.join("\n")
    );
}

/// Replaces the first `from` found on a rule line (comments are not rules).
fn mutate_rule_line(text: &str, from: &str, to: &str) -> Option<String> {
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && !l.trim_start().starts_with('#') && l.contains(from) {
                done = true;
                l.replacen(from, to, 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    done.then(|| lines.join("\n") + "\n")
}

/// `udevadm verify` on the text, where this systemd has it (254+); None when it does not.
fn udevadm_verify(text: &str) -> Option<bool> {
    let probe = Command::new("udevadm")
        .args(["verify", "--help"])
        .output()
        .ok()?;
    if !probe.status.success() {
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("90-gridsms.rules");
    std::fs::write(&path, text).ok()?;
    let out = Command::new("udevadm")
        .arg("verify")
        .arg(&path)
        .output()
        .ok()?;
    Some(out.status.success())
}

#[test]
fn udevadm_verify_where_available() {
    match udevadm_verify(&rules_text()) {
        Some(ok) => assert!(ok, "udevadm verify rejected udev/90-gridsms.rules"),
        None => println!(
            "SKIPPED: `udevadm verify` not available (systemd < 254); the built-in checker ran"
        ),
    }
}

#[test]
fn rules_cover_the_documented_modems_and_chips() {
    let text = rules_text();
    let (rules, _) = parse(&text);
    let claimed = |vid: &str, pid: &str| {
        rules.iter().any(|r| {
            let has = |k: &str, v: &str| {
                r.pairs
                    .iter()
                    .any(|p| p.key == "ATTRS" && p.attr.as_deref() == Some(k) && glob(&p.value, v))
            };
            has("idVendor", vid)
                && has("idProduct", pid)
                && r.pairs
                    .iter()
                    .any(|p| p.attr.as_deref() == Some("GRIDSMS_MODEL"))
        })
    };
    // Also listed in hardware.md; keep the two in step.
    let ids = [
        ("2c7c", "0125"), // Quectel EC25 / EC20 R2.1 / EG25-G
        ("2c7c", "0121"), // EC21
        ("2c7c", "6026"), // EC200T
        ("2c7c", "0901"), // EC200U
        ("1e0e", "9001"), // SIMCom SIM7600
        ("1e0e", "9011"), // SIMCom A7670
        ("12d1", "1001"), // Huawei E1750
        ("12d1", "1436"), // Huawei E173
        ("12d1", "1506"), // Huawei E3372 stick
        ("12d1", "155e"), // Huawei E3372h-320 stick
        ("1a86", "7523"), // CH340
        ("067b", "2303"), // PL2303
        ("0403", "6001"), // FTDI FT232R
        ("0403", "6010"),
        ("0403", "6011"),
        ("0403", "6014"),
        ("10c4", "ea60"), // CP210x
    ];
    for (vid, pid) in ids {
        assert!(claimed(vid, pid), "{vid}:{pid} is not claimed by the rules");
    }
    let hw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/hardware.md"))
        .unwrap_or_default()
        .to_lowercase();
    for (vid, pid) in ids {
        assert!(
            hw.contains(&format!("{vid}:{pid}")),
            "{vid}:{pid} missing from hardware.md"
        );
    }
}

#[test]
fn quectel_ec25_at_interface_gets_a_serial_based_name() {
    let o = run(&usb_tty("2c7c", "0125", Some("a1b2c3d4"), "1-1.3", "02"));
    assert_claimed(&o);
    assert_eq!(
        o.symlinks,
        [
            "gridsms/quectel-ec25-a1b2c3d4-if02",
            "gridsms/quectel-ec25-a1b2c3d4-at"
        ]
    );
}

#[test]
fn quectel_ec25_other_interfaces_get_only_the_interface_name() {
    let o = run(&usb_tty("2c7c", "0125", Some("a1b2c3d4"), "1-1.3", "01"));
    assert_claimed(&o);
    assert_eq!(o.symlinks, ["gridsms/quectel-ec25-a1b2c3d4-if01"]);
}

#[test]
fn placeholder_serial_falls_back_to_the_usb_port() {
    let o = run(&usb_tty("2c7c", "6026", Some("0000"), "1-1.4", "03"));
    assert_claimed(&o);
    assert_eq!(
        o.symlinks,
        [
            "gridsms/quectel-ec200-port1-1.4-if03",
            "gridsms/quectel-ec200-port1-1.4-at"
        ]
    );
    let o = run(&usb_tty(
        "2c7c",
        "0125",
        Some("0123456789ABCDEF"),
        "2-1",
        "02",
    ));
    assert_eq!(o.symlinks[1], "gridsms/quectel-ec25-port2-1-at");
}

#[test]
fn simcom_a7670_uses_interface_four() {
    let o = run(&usb_tty("1e0e", "9011", Some("S7670X"), "1-2", "04"));
    assert_eq!(
        o.symlinks,
        [
            "gridsms/simcom-a76xx-S7670X-if04",
            "gridsms/simcom-a76xx-S7670X-at"
        ]
    );
    let o = run(&usb_tty("1e0e", "9011", Some("S7670X"), "1-2", "02"));
    assert_eq!(o.symlinks, ["gridsms/simcom-a76xx-S7670X-if02"]);
}

#[test]
fn pool_chips_are_named_by_port_even_with_a_serial() {
    let o = run(&usb_tty("1a86", "7523", None, "1-1.2.3", "00"));
    assert_claimed(&o);
    assert_eq!(o.symlinks, ["gridsms/ch340-port1-1.2.3-if00"]);
    let o = run(&usb_tty("067b", "2303", Some("ABC"), "1-1.2.4", "00"));
    assert_eq!(o.symlinks, ["gridsms/pl2303-port1-1.2.4-if00"]);
}

#[test]
fn ftdi_quad_port_is_named_by_serial_and_interface() {
    let o = run(&usb_tty("0403", "6011", Some("FT4XYZ"), "1-4", "02"));
    assert_claimed(&o);
    assert_eq!(o.symlinks, ["gridsms/ftdi-FT4XYZ-if02"]);
    // CP210x default serial "0001" is shared by every unit.
    let o = run(&usb_tty("10c4", "ea60", Some("0001"), "1-5", "00"));
    assert_eq!(o.symlinks, ["gridsms/cp210x-port1-5-if00"]);
}

#[test]
fn other_devices_and_events_are_left_alone() {
    let o = run(&usb_tty("0bda", "8153", Some("000001"), "1-6", "00"));
    assert!(o.symlinks.is_empty() && o.group.is_none(), "{o:?}");
    assert!(!o.env.contains_key("ID_MM_DEVICE_IGNORE"));

    let mut ev = usb_tty("2c7c", "0125", Some("a1b2c3d4"), "1-1.3", "02");
    ev.action = "remove".into();
    let o = run(&ev);
    assert!(o.symlinks.is_empty() && o.group.is_none(), "{o:?}");

    let mut ev = usb_tty("2c7c", "0125", Some("a1b2c3d4"), "1-1.3", "04");
    ev.chain[0].subsystem = "net".into();
    let o = run(&ev);
    assert!(o.symlinks.is_empty() && o.group.is_none(), "{o:?}");
}

#[test]
fn evaluator_glob_follows_udev() {
    assert!(glob("0191|0195", "0195"));
    assert!(!glob("0191|0195", "0196"));
    assert!(glob("?*", "x"));
    assert!(!glob("?*", ""));
    assert!(glob("", ""));
    assert!(glob("tty*", "ttyUSB0"));
    assert!(Path::new(RULES_PATH).is_file());
}
