//! Notice templates: rendering (money, dates, kWh, missing values), the unsubscribe hint on
//! broadcasts only, config errors naming the key, and `gridsms template check`.

use chrono::NaiveDate;
use gridsms::templates::{NoticeKind, Templates, Vars};
use std::path::Path;
use std::process::Command;

fn bill_vars() -> Vars {
    Vars {
        name: Some("张三".into()),
        account: Some("3301120045678".into()),
        period: Some("2026-11".into()),
        kwh: Some(256.0),
        amount_cents: Some(12_850),
        due_date: NaiveDate::from_ymd_opt(2026, 12, 5),
        ..Vars::default()
    }
}

#[test]
fn bill_renders_money_dates_and_kwh_as_people_write_them() {
    let t = Templates::default();
    assert_eq!(
        t.render(NoticeKind::Bill, &bill_vars()),
        "【某某供电公司】尊敬的张三客户，您户号3301120045678的2026年11月电费已出账，\
         用电量256千瓦时，应缴电费¥128.50，请于12月5日前缴纳。"
    );
    let mut v = bill_vars();
    v.kwh = Some(12.5);
    v.amount_cents = Some(7);
    let text = t.render(NoticeKind::Bill, &v);
    assert!(text.contains("用电量12.5千瓦时，应缴电费¥0.07"), "{text}");
}

#[test]
fn missing_values_leave_no_holes() {
    let t = Templates::default();
    let v = Vars {
        account: Some("A1".into()),
        period: Some("202611".into()),
        amount_cents: Some(100),
        ..Vars::default()
    };
    assert_eq!(
        t.render(NoticeKind::Bill, &v),
        "【某某供电公司】尊敬的客户，您户号A1的2026年11月电费已出账，应缴电费¥1.00。"
    );
    let outage = Vars {
        start: NaiveDate::from_ymd_opt(2026, 11, 29).and_then(|d| d.and_hms_opt(8, 0, 0)),
        end: NaiveDate::from_ymd_opt(2026, 11, 30).and_then(|d| d.and_hms_opt(2, 30, 0)),
        ..Vars::default()
    };
    let text = t.render(NoticeKind::OutagePlanned, &outage);
    assert!(
        text.starts_with("【某某供电公司】尊敬的客户，定于11月29日08:00至11月30日02:30对停电"),
        "{text}"
    );
}

#[test]
fn unsubscribe_hint_only_on_broadcasts() {
    let t = Templates::default();
    for kind in NoticeKind::ALL {
        let text = t.render(kind, &Templates::sample_vars(kind));
        assert!(text.starts_with("【某某供电公司】"), "{kind}: {text}");
        assert!(!text.contains("http"), "{kind}: {text}");
        assert_eq!(
            text.ends_with("回复TD退订"),
            kind == NoticeKind::Broadcast,
            "{kind}: {text}"
        );
    }
    let b = Vars {
        text: Some("计划于12月1日起调整居民电价".into()),
        ..Vars::default()
    };
    assert_eq!(
        t.render(NoticeKind::Broadcast, &b),
        "【某某供电公司】计划于12月1日起调整居民电价。回复TD退订"
    );
}

fn load(text: &str) -> Result<gridsms::config::Loaded, Vec<String>> {
    gridsms::config::parse(text, Path::new("/etc/gridsms/gridsms.toml"))
        .map_err(|e| e.diagnostics().iter().map(ToString::to_string).collect())
}

#[test]
fn config_overrides_and_errors_name_the_key() {
    let loaded = load(
        "[templates]\nsignature = \"【城关供电】\"\nunsubscribe_hint = \"回T退订\"\n\
         bill = \"{name}：{period}电费{amount}\"\n",
    )
    .unwrap();
    let t = &loaded.config.templates;
    assert_eq!(
        t.render(NoticeKind::Bill, &bill_vars()),
        "【城关供电】张三：2026年11月电费¥128.50"
    );
    assert!(
        t.render(
            NoticeKind::Broadcast,
            &Vars {
                text: Some("x".into()),
                ..Vars::default()
            }
        )
        .ends_with("回T退订")
    );
    let errors = load(
        "[templates]\nbill = \"{name} {amonut}\"\nreminder = \"{start}\"\noutage_planned = \"[{start}\"\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains(":2:")
            && errors[0].contains("templates.bill: unknown placeholder {amonut}"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains(
            "templates.reminder: placeholder {start} is never filled for reminder notices"
        ),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("templates.outage_planned: unclosed ["),
        "{}",
        errors[2]
    );
    let unknown = load("[templates]\nbil = \"x\"\n").unwrap_err();
    assert!(unknown[0].contains("unknown field `bil`"), "{unknown:?}");
    let warned = load("[templates]\nbroadcast = \"{text} 详见 http://example.cn/x\"\n").unwrap();
    assert!(
        warned
            .warnings
            .iter()
            .any(|w| w.to_string().contains("link"))
    );
}

#[test]
fn template_check_prints_text_length_and_segments() {
    let out = Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(["template", "check", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), NoticeKind::ALL.len());
    for l in &lines {
        let text = l["text"].as_str().unwrap();
        let chars = text.chars().count() as u64;
        assert_eq!(l["chars"], chars);
        // UCS-2: 70 characters in one SMS, 67 per part when split.
        let expected = if chars <= 70 { 1 } else { chars.div_ceil(67) };
        assert_eq!(l["segments"], expected, "{l}");
        assert_eq!(l["encoding"], "ucs2");
    }
    // A config with a broken template: exit 2 and the key named.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, "[templates]\nbill = \"{nope}\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(["template", "check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("templates.bill"));
    // A longer signature shows its cost.
    std::fs::write(
        &cfg,
        "[templates]\nsignature = \"【国网某某省某某市某某县供电公司城关供电所】\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(["template", "check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[broadcast]") && text.contains("segment(s)"),
        "{text}"
    );
}
