//! Stand-in for `crate::templates` (written in parallel by the templates engineer): the same
//! `Vars` / `NoticeKind` / `render` shape with fixed Chinese defaults, so the jobs produce real
//! notices now. At merge, `render` is replaced by `config.templates.render(kind, &vars)`.

use chrono::{DateTime, NaiveDate, Utc};

/// Values a notice may show; missing ones render without a gap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    pub name: Option<String>,
    pub account: Option<String>,
    pub period: Option<String>,
    pub kwh: Option<f64>,
    pub amount_cents: Option<i64>,
    pub due_date: Option<NaiveDate>,
    pub late_fee_cents: Option<i64>,
    pub feeder: Option<String>,
    pub area: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub station: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Bill,
    BillCorrected,
    Reminder,
}

const SIGNATURE: &str = "【某某供电公司】";

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}¥{}.{:02}", c / 100, c % 100)
}

fn day(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}月{}日", d.month(), d.day())
}

fn kwh(k: f64) -> String {
    let s = format!("{k:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// The notice text for `kind`.
pub fn render(kind: NoticeKind, v: &Vars) -> String {
    let who = match &v.name {
        Some(n) => format!("尊敬的{n}客户"),
        None => "尊敬的客户".to_owned(),
    };
    let account = v.account.as_deref().unwrap_or("");
    let period = v.period.as_deref().unwrap_or("本期");
    let mut s = format!("{SIGNATURE}{who}，");
    match kind {
        NoticeKind::Bill | NoticeKind::BillCorrected => {
            if kind == NoticeKind::Bill {
                s.push_str(&format!("您户号{account}的{period}电费已出账"));
            } else {
                s.push_str(&format!("您户号{account}的{period}电费账单已更正"));
            }
            if let Some(k) = v.kwh {
                s.push_str(&format!("，用电量{}千瓦时", kwh(k)));
            }
            if let Some(a) = v.amount_cents {
                s.push_str(&format!("，应缴电费{}", money(a)));
            }
            if let Some(d) = v.due_date {
                s.push_str(&format!("，请于{}前缴纳", day(d)));
            }
            if kind == NoticeKind::BillCorrected {
                s.push_str("，以更正后金额为准");
            }
            s.push('。');
        }
        NoticeKind::Reminder => {
            s.push_str(&format!("您户号{account}尚有电费"));
            if let Some(a) = v.amount_cents {
                s.push_str(&money(a));
            }
            s.push_str("未缴");
            if let Some(d) = v.due_date {
                s.push_str(&format!("（缴费截止日{}）", day(d)));
            }
            if let Some(f) = v.late_fee_cents.filter(|f| *f > 0) {
                s.push_str(&format!("，已产生违约金{}", money(f)));
            }
            s.push_str("，请尽快缴纳。如已缴纳请忽略本短信。");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bill_notice_reads_like_one() {
        let v = Vars {
            name: Some("张三".into()),
            account: Some("3301000001".into()),
            period: Some("2026年11月".into()),
            kwh: Some(215.0),
            amount_cents: Some(12850),
            due_date: NaiveDate::from_ymd_opt(2026, 12, 15),
            ..Vars::default()
        };
        assert_eq!(
            render(NoticeKind::Bill, &v),
            "【某某供电公司】尊敬的张三客户，您户号3301000001的2026年11月电费已出账，\
             用电量215千瓦时，应缴电费¥128.50，请于12月15日前缴纳。"
        );
        let r = render(NoticeKind::Reminder, &Vars::default());
        assert!(r.starts_with("【某某供电公司】尊敬的客户，"), "{r}");
    }
}
