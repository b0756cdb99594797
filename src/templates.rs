//! Notice texts: one template per kind of notice, placeholders filled from [`Vars`], the
//! bureau's signature in front, and — on broadcasts only — the unsubscribe hint at the end.
//!
//! Template syntax: `{name}`-style placeholders (see [`Placeholder`]); a clause in square
//! brackets, `[，请于{due_date}前缴纳]`, is left out whole when any placeholder in it has no
//! value, so a missing field never leaves "用电量千瓦时" behind. `{{ }} [[ ]]` write the
//! characters themselves. Outside a clause a missing value renders as nothing, which the
//! defaults are written for ("尊敬的{name}客户" → "尊敬的客户").
//!
//! Invariants: a [`Templates`] value only holds templates that parsed and use only placeholders
//! their kind fills (checked at config load, [`Templates::parse`]); rendering never fails.
//! The unsubscribe hint never goes on service notices (bills, reminders, outages): carriers'
//! spam filters key on it, and a customer must not be invited to opt out of outage warnings.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use std::fmt::Write as _;

/// Default signature; the shipped config tells the bureau to set its registered one.
pub const DEFAULT_SIGNATURE: &str = "【某某供电公司】";
/// Default unsubscribe hint, appended to broadcasts.
pub const DEFAULT_UNSUBSCRIBE_HINT: &str = "回复TD退订";

/// The kinds of notice, each with its own template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoticeKind {
    Bill,
    BillCorrected,
    Reminder,
    OutagePlanned,
    OutageReminder,
    OutageChanged,
    OutageCancelled,
    Broadcast,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 8] = [
        NoticeKind::Bill,
        NoticeKind::BillCorrected,
        NoticeKind::Reminder,
        NoticeKind::OutagePlanned,
        NoticeKind::OutageReminder,
        NoticeKind::OutageChanged,
        NoticeKind::OutageCancelled,
        NoticeKind::Broadcast,
    ];

    /// Its key under `[templates]`.
    pub fn key(self) -> &'static str {
        match self {
            NoticeKind::Bill => "bill",
            NoticeKind::BillCorrected => "bill_corrected",
            NoticeKind::Reminder => "reminder",
            NoticeKind::OutagePlanned => "outage_planned",
            NoticeKind::OutageReminder => "outage_reminder",
            NoticeKind::OutageChanged => "outage_changed",
            NoticeKind::OutageCancelled => "outage_cancelled",
            NoticeKind::Broadcast => "broadcast",
        }
    }

    /// The placeholders the code fills for this kind; any other is a config error.
    pub fn fills(self) -> &'static [Placeholder] {
        use Placeholder::*;
        match self {
            NoticeKind::Bill | NoticeKind::BillCorrected => &[
                Name, Account, Period, Kwh, Amount, DueDate, LateFee, Station,
            ],
            NoticeKind::Reminder => &[Name, Account, Period, Amount, DueDate, LateFee, Station],
            NoticeKind::OutagePlanned
            | NoticeKind::OutageReminder
            | NoticeKind::OutageChanged
            | NoticeKind::OutageCancelled => {
                &[Name, Account, Feeder, Area, Start, End, Reason, Station]
            }
            NoticeKind::Broadcast => &[Text, Name, Station],
        }
    }

    /// Only broadcasts are subscriptions a customer may leave; everything else is service.
    pub fn is_subscription(self) -> bool {
        self == NoticeKind::Broadcast
    }

    /// The shipped Chinese default.
    pub fn default_template(self) -> &'static str {
        match self {
            NoticeKind::Bill => {
                "尊敬的{name}客户，您户号{account}的{period}电费已出账，[用电量{kwh}千瓦时，]\
                 应缴电费{amount}[，请于{due_date}前缴纳]。"
            }
            NoticeKind::BillCorrected => {
                "尊敬的{name}客户，您户号{account}的{period}电费已更正，[更正后用电量{kwh}千瓦时，]\
                 应缴电费{amount}[，请于{due_date}前缴纳]，此前通知作废，给您带来不便敬请谅解。"
            }
            NoticeKind::Reminder => {
                "尊敬的{name}客户，您户号{account}欠缴电费{amount}[（{period}）][，缴费截止日为{due_date}]\
                 [，已产生违约金{late_fee}]，请尽快缴纳，以免影响正常用电。如已缴纳，请忽略本短信。"
            }
            NoticeKind::OutagePlanned => {
                "尊敬的{name}客户，[因{reason}，]定于{start}至{end}对[{area}][（{feeder}）]\
                 停电，请您提前做好准备。停电期间请勿靠近、触碰电力设施，给您带来不便敬请谅解。"
            }
            NoticeKind::OutageReminder => {
                "尊敬的{name}客户，温馨提醒：[{area}][（{feeder}）]将于{start}至{end}\
                 停电[（{reason}）]，请您提前做好准备。"
            }
            NoticeKind::OutageChanged => {
                "尊敬的{name}客户，[{area}][（{feeder}）]计划停电时间调整为{start}至{end}\
                 [，原因：{reason}]，请以本通知为准，给您带来不便敬请谅解。"
            }
            NoticeKind::OutageCancelled => {
                "尊敬的{name}客户，原定{start}至{end}[{area}][（{feeder}）]的计划停电已取消，\
                 届时将正常供电，感谢您的理解与支持。"
            }
            NoticeKind::Broadcast => "{text}",
        }
    }
}

impl std::fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// A placeholder of the template language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    Name,
    Account,
    Period,
    Kwh,
    Amount,
    DueDate,
    LateFee,
    Feeder,
    Area,
    Start,
    End,
    Reason,
    Station,
    /// The body of a broadcast, written by staff.
    Text,
}

impl Placeholder {
    pub const ALL: [Placeholder; 14] = [
        Placeholder::Name,
        Placeholder::Account,
        Placeholder::Period,
        Placeholder::Kwh,
        Placeholder::Amount,
        Placeholder::DueDate,
        Placeholder::LateFee,
        Placeholder::Feeder,
        Placeholder::Area,
        Placeholder::Start,
        Placeholder::End,
        Placeholder::Reason,
        Placeholder::Station,
        Placeholder::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Placeholder::Name => "name",
            Placeholder::Account => "account",
            Placeholder::Period => "period",
            Placeholder::Kwh => "kwh",
            Placeholder::Amount => "amount",
            Placeholder::DueDate => "due_date",
            Placeholder::LateFee => "late_fee",
            Placeholder::Feeder => "feeder",
            Placeholder::Area => "area",
            Placeholder::Start => "start",
            Placeholder::End => "end",
            Placeholder::Reason => "reason",
            Placeholder::Station => "station",
            Placeholder::Text => "text",
        }
    }

    fn parse(s: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The values a notice may carry; any may be missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    pub name: Option<String>,
    pub account: Option<String>,
    /// Billing period as the marketing system writes it (`202611`, `2026-11`, `2026年11月`).
    pub period: Option<String>,
    pub kwh: Option<f64>,
    /// Exact money in fen (1/100 yuan).
    pub amount_cents: Option<i64>,
    pub due_date: Option<NaiveDate>,
    pub late_fee_cents: Option<i64>,
    pub feeder: Option<String>,
    /// The affected area as people name it ("城关镇东街、南街一带").
    pub area: Option<String>,
    /// Outage window, local time of the bureau.
    pub start: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
    pub reason: Option<String>,
    pub station: Option<String>,
    /// Broadcast body.
    pub text: Option<String>,
}

impl Vars {
    fn value(&self, p: Placeholder) -> Option<String> {
        fn text(s: &Option<String>) -> Option<&str> {
            s.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        match p {
            Placeholder::Name => text(&self.name).map(str::to_owned),
            Placeholder::Account => text(&self.account).map(str::to_owned),
            Placeholder::Period => text(&self.period).map(format_period),
            Placeholder::Kwh => self.kwh.filter(|k| k.is_finite()).map(format_kwh),
            Placeholder::Amount => self.amount_cents.map(format_money),
            Placeholder::DueDate => self.due_date.map(format_date),
            Placeholder::LateFee => self.late_fee_cents.filter(|c| *c > 0).map(format_money),
            Placeholder::Feeder => text(&self.feeder).map(str::to_owned),
            Placeholder::Area => text(&self.area).map(str::to_owned),
            Placeholder::Start => self.start.map(format_time),
            Placeholder::End => self.end.map(|end| match self.start {
                // "11月29日08:00至18:00": the date is not repeated within a day.
                Some(start) if start.date() == end.date() => {
                    format!("{:02}:{:02}", end.hour(), end.minute())
                }
                _ => format_time(end),
            }),
            Placeholder::Reason => text(&self.reason).map(str::to_owned),
            Placeholder::Station => text(&self.station).map(str::to_owned),
            Placeholder::Text => text(&self.text).or(text(&self.reason)).map(str::to_owned),
        }
    }
}

/// ¥ with two decimals: 12850 → "¥128.50".
pub fn format_money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}¥{}.{:02}", abs / 100, abs % 100)
}

/// kWh without useless decimals: 256.0 → "256", 12.50 → "12.5", 1.234 → "1.23".
pub fn format_kwh(kwh: f64) -> String {
    let s = format!("{kwh:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

/// "11月28日".
pub fn format_date(d: NaiveDate) -> String {
    format!("{}月{}日", d.month(), d.day())
}

/// "11月29日08:00".
pub fn format_time(t: NaiveDateTime) -> String {
    format!("{}{:02}:{:02}", format_date(t.date()), t.hour(), t.minute())
}

/// `202611` / `2026-11` / `2026/11` → "2026年11月"; anything else as given.
pub fn format_period(p: &str) -> String {
    let digits: String = p.chars().filter(char::is_ascii_digit).collect();
    let shaped = p
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.'));
    if shaped && digits.len() == 6 {
        let (y, m) = digits.split_at(4);
        if let Ok(m) = m.parse::<u32>()
            && (1..=12).contains(&m)
        {
            return format!("{y}年{m}月");
        }
    }
    p.to_owned()
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Ph(Placeholder),
    /// Dropped whole when a placeholder in it has no value.
    Clause(Vec<Piece>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// Why a template text is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{0}}} (known: {known})", known = known_placeholders())]
    Unknown(String),
    #[error("placeholder {{{placeholder}}} is never filled for {kind} notices (usable: {usable})")]
    NotFilled {
        placeholder: &'static str,
        kind: NoticeKind,
        usable: String,
    },
    #[error("unclosed {{ at character {0}: write {{{{ for a literal brace")]
    Unclosed(usize),
    #[error("stray }} at character {0}: write }}}} for a literal brace")]
    StrayClose(usize),
    #[error("unclosed [ at character {0}: write [[ for a literal bracket")]
    UnclosedClause(usize),
    #[error("stray ] at character {0}: write ]] for a literal bracket")]
    StrayClauseClose(usize),
    #[error("nested [ at character {0}: clauses do not nest")]
    Nested(usize),
    #[error("is empty")]
    Empty,
}

fn known_placeholders() -> String {
    Placeholder::ALL
        .iter()
        .map(|p| format!("{{{}}}", p.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Template {
    /// Parses `text` for `kind`: placeholders must be known and filled for that kind.
    pub fn parse(text: &str, kind: NoticeKind) -> Result<Template, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut top: Vec<Piece> = Vec::new();
        let mut clause: Option<(usize, Vec<Piece>)> = None;
        let mut lit = String::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let flush = |lit: &mut String, out: &mut Vec<Piece>| {
            if !lit.is_empty() {
                out.push(Piece::Lit(std::mem::take(lit)));
            }
        };
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match c {
                '{' | '}' | '[' | ']' if next == Some(c) => {
                    lit.push(c);
                    i += 2;
                    continue;
                }
                '{' => {
                    let Some(len) = chars[i + 1..].iter().position(|&c| c == '}') else {
                        return Err(TemplateError::Unclosed(i + 1));
                    };
                    let name: String = chars[i + 1..i + 1 + len].iter().collect();
                    let ph = Placeholder::parse(name.trim())
                        .ok_or_else(|| TemplateError::Unknown(name.clone()))?;
                    if !kind.fills().contains(&ph) {
                        return Err(TemplateError::NotFilled {
                            placeholder: ph.as_str(),
                            kind,
                            usable: kind
                                .fills()
                                .iter()
                                .map(|p| format!("{{{}}}", p.as_str()))
                                .collect::<Vec<_>>()
                                .join(" "),
                        });
                    }
                    let out = match &mut clause {
                        Some((_, c)) => c,
                        None => &mut top,
                    };
                    flush(&mut lit, out);
                    out.push(Piece::Ph(ph));
                    i += len + 2;
                    continue;
                }
                '}' => return Err(TemplateError::StrayClose(i + 1)),
                '[' => {
                    if clause.is_some() {
                        return Err(TemplateError::Nested(i + 1));
                    }
                    flush(&mut lit, &mut top);
                    clause = Some((i + 1, Vec::new()));
                }
                ']' => {
                    let Some((_, mut inner)) = clause.take() else {
                        return Err(TemplateError::StrayClauseClose(i + 1));
                    };
                    flush(&mut lit, &mut inner);
                    top.push(Piece::Clause(inner));
                }
                c => lit.push(c),
            }
            i += 1;
        }
        if let Some((at, _)) = clause {
            return Err(TemplateError::UnclosedClause(at));
        }
        flush(&mut lit, &mut top);
        Ok(Template {
            source: text.to_owned(),
            pieces: top,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The placeholders it uses.
    pub fn placeholders(&self) -> Vec<Placeholder> {
        fn walk(pieces: &[Piece], out: &mut Vec<Placeholder>) {
            for p in pieces {
                match p {
                    Piece::Ph(ph) if !out.contains(ph) => out.push(*ph),
                    Piece::Clause(inner) => walk(inner, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.pieces, &mut out);
        out
    }

    /// The body, without signature or hint.
    pub fn fill(&self, vars: &Vars) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Ph(p) => out.push_str(&vars.value(*p).unwrap_or_default()),
                Piece::Clause(inner) => {
                    let mut part = String::new();
                    let mut complete = true;
                    for q in inner {
                        match q {
                            Piece::Lit(s) => part.push_str(s),
                            Piece::Ph(p) => match vars.value(*p) {
                                Some(v) => part.push_str(&v),
                                None => complete = false,
                            },
                            Piece::Clause(_) => {}
                        }
                    }
                    if complete {
                        out.push_str(&part);
                    }
                }
            }
        }
        out
    }
}

/// Every notice template, the signature and the unsubscribe hint (`Config.templates`).
#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    pub signature: String,
    pub unsubscribe_hint: String,
    templates: Vec<(NoticeKind, Template)>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            signature: DEFAULT_SIGNATURE.to_owned(),
            unsubscribe_hint: DEFAULT_UNSUBSCRIBE_HINT.to_owned(),
            templates: NoticeKind::ALL
                .into_iter()
                .filter_map(|k| {
                    Template::parse(k.default_template(), k)
                        .ok()
                        .map(|t| (k, t))
                })
                .collect(),
        }
    }
}

impl Templates {
    /// The defaults with some kinds overridden; every problem is returned with its kind.
    pub fn parse<'a>(
        signature: Option<&str>,
        unsubscribe_hint: Option<&str>,
        overrides: impl IntoIterator<Item = (NoticeKind, &'a str)>,
    ) -> Result<Templates, Vec<(NoticeKind, TemplateError)>> {
        let mut t = Templates::default();
        if let Some(s) = signature {
            t.signature = s.trim().to_owned();
        }
        if let Some(h) = unsubscribe_hint {
            t.unsubscribe_hint = h.trim().to_owned();
        }
        let mut errors = Vec::new();
        for (kind, text) in overrides {
            match Template::parse(text, kind) {
                Ok(parsed) => t.set(kind, parsed),
                Err(e) => errors.push((kind, e)),
            }
        }
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    fn set(&mut self, kind: NoticeKind, template: Template) {
        match self.templates.iter_mut().find(|(k, _)| *k == kind) {
            Some(slot) => slot.1 = template,
            None => self.templates.push((kind, template)),
        }
    }

    pub fn template(&self, kind: NoticeKind) -> Option<&Template> {
        self.templates
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, t)| t)
    }

    /// The complete SMS text: signature, filled body and (broadcasts only) the hint.
    pub fn render(&self, kind: NoticeKind, vars: &Vars) -> String {
        let body = match self.template(kind) {
            Some(t) => t.fill(vars),
            // Unreachable for a value built by `default`/`parse`; never panic on it anyway.
            None => vars.value(Placeholder::Text).unwrap_or_default(),
        };
        let mut out = String::with_capacity(self.signature.len() + body.len() + 16);
        out.push_str(&self.signature);
        out.push_str(body.trim());
        if kind.is_subscription() && !self.unsubscribe_hint.is_empty() {
            // Keep the hint its own sentence.
            if !out.ends_with(['。', '！', '？', '.', '!', '?']) {
                out.push('。');
            }
            let _ = write!(out, "{}", self.unsubscribe_hint);
        }
        out
    }

    /// Sample values for `gridsms template check` and tests.
    pub fn sample_vars(kind: NoticeKind) -> Vars {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default();
        let at = |d, h| day(d).and_hms_opt(h, 0, 0).unwrap_or_default();
        let mut v = Vars {
            name: Some("张三".into()),
            account: Some("3301120045678".into()),
            station: Some("33011201".into()),
            ..Vars::default()
        };
        match kind {
            NoticeKind::Bill | NoticeKind::BillCorrected | NoticeKind::Reminder => {
                v.period = Some("202611".into());
                v.kwh = Some(256.0);
                v.amount_cents = Some(12_850);
                v.due_date = Some(day(28));
                if kind == NoticeKind::Reminder {
                    v.late_fee_cents = Some(64);
                }
            }
            NoticeKind::OutagePlanned
            | NoticeKind::OutageReminder
            | NoticeKind::OutageChanged
            | NoticeKind::OutageCancelled => {
                v.feeder = Some("10kV城关线".into());
                v.area = Some("城关镇东街、南街一带".into());
                v.start = Some(at(29, 8));
                v.end = Some(at(29, 18));
                v.reason = Some("线路检修".into());
            }
            NoticeKind::Broadcast => {
                v.text =
                    Some("自12月1日起，居民阶梯电价第二档起始电量调整为每月230千瓦时。".into());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        for k in NoticeKind::ALL {
            Template::parse(k.default_template(), k).unwrap();
        }
        assert_eq!(Templates::default().templates.len(), NoticeKind::ALL.len());
    }

    #[test]
    fn escapes_and_errors() {
        let t = Template::parse("{{x}} [[y]] {account}", NoticeKind::Bill).unwrap();
        let v = Vars {
            account: Some("A1".into()),
            ..Vars::default()
        };
        assert_eq!(t.fill(&v), "{x} [y] A1");
        assert_eq!(
            Template::parse("a {nmae}", NoticeKind::Bill),
            Err(TemplateError::Unknown("nmae".into()))
        );
        assert!(matches!(
            Template::parse("{start}", NoticeKind::Bill),
            Err(TemplateError::NotFilled { .. })
        ));
        assert_eq!(
            Template::parse("a {name", NoticeKind::Bill),
            Err(TemplateError::Unclosed(3))
        );
        assert_eq!(
            Template::parse("[a [b]]", NoticeKind::Bill),
            Err(TemplateError::Nested(4))
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_money(12_850), "¥128.50");
        assert_eq!(format_money(5), "¥0.05");
        assert_eq!(format_money(-100), "-¥1.00");
        assert_eq!(format_kwh(256.0), "256");
        assert_eq!(format_kwh(12.5), "12.5");
        assert_eq!(format_kwh(1.234), "1.23");
        assert_eq!(format_period("2026-11"), "2026年11月");
        assert_eq!(format_period("202611"), "2026年11月");
        assert_eq!(format_period("2026年11月"), "2026年11月");
        assert_eq!(format_period("202613"), "202613");
    }
}
