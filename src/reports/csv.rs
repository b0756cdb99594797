//! Reports as CSV for spreadsheet programs: UTF-8 with a byte-order mark (Excel on Chinese
//! Windows otherwise reads the file as GBK), CRLF line ends, RFC 4180 quoting, Chinese column
//! names, dates as 2026-11-28 (local), money as ¥12.30.

use super::{DeliveryReport, FailedNumbersReport, SimsReport, yuan};
use chrono_tz::Tz;
use std::fmt::Write;

/// The UTF-8 byte-order mark every file starts with.
pub const BOM: &str = "\u{feff}";

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn line(out: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
    let _ = write!(out, "{}\r\n", cells.join(","));
}

fn money(units: i64) -> String {
    format!("¥{}", yuan(units))
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn category_zh(c: &str) -> String {
    match c {
        "outage" => "停电",
        "reply" => "回复",
        "manual" => "人工",
        "bill" => "账单",
        "reminder" => "催费",
        "broadcast" => "公告",
        other => other,
    }
    .to_owned()
}

pub fn delivery(r: &DeliveryReport) -> String {
    let mut out = String::from(BOM);
    line(
        &mut out,
        &[
            "日期",
            "类别",
            "供电所",
            "短信猫",
            "SIM卡",
            "受理",
            "待发",
            "已发送",
            "已送达",
            "失败",
            "过期",
            "已取消",
            "条数",
            "费用",
        ]
        .map(str::to_owned),
    );
    for row in &r.rows {
        let c = &row.counts;
        line(
            &mut out,
            &[
                row.day.format("%Y-%m-%d").to_string(),
                category_zh(&row.category),
                opt(&row.station),
                opt(&row.modem),
                opt(&row.sim_iccid),
                c.accepted.to_string(),
                c.queued.to_string(),
                c.sent.to_string(),
                c.delivered.to_string(),
                c.failed.to_string(),
                c.expired.to_string(),
                c.cancelled.to_string(),
                c.segments.to_string(),
                money(row.cost_units),
            ],
        );
    }
    let t = &r.totals.counts;
    line(
        &mut out,
        &[
            "合计".to_owned(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            t.accepted.to_string(),
            t.queued.to_string(),
            t.sent.to_string(),
            t.delivered.to_string(),
            t.failed.to_string(),
            t.expired.to_string(),
            t.cancelled.to_string(),
            t.segments.to_string(),
            money(r.totals.cost_units),
        ],
    );
    out
}

pub fn failed_numbers(r: &FailedNumbersReport, tz: Tz) -> String {
    let mut out = String::from(BOM);
    line(
        &mut out,
        &[
            "号码",
            "永久失败次数",
            "期间失败条数",
            "最近失败",
            "最近错误",
            "户号",
        ]
        .map(str::to_owned),
    );
    for row in &r.numbers {
        let national = row.number.strip_prefix("+86").unwrap_or(&row.number);
        line(
            &mut out,
            &[
                national.to_owned(),
                row.permanent_failures.to_string(),
                row.failed_messages.to_string(),
                row.last_failed_at
                    .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
                opt(&row.last_error),
                row.accounts.join(" "),
            ],
        );
    }
    out
}

pub fn sims(r: &SimsReport) -> String {
    let mut out = String::from(BOM);
    line(
        &mut out,
        &[
            "短信猫",
            "SIM卡",
            "运营商",
            "本小时",
            "小时上限",
            "今日",
            "日上限",
            "本月",
            "月上限",
        ]
        .map(str::to_owned),
    );
    for s in &r.sims {
        line(
            &mut out,
            &[
                s.modem.clone(),
                opt(&s.sim_iccid),
                s.carrier.clone(),
                s.sent_hour.to_string(),
                s.hourly_limit.to_string(),
                s.sent_day.to_string(),
                s.daily_limit.to_string(),
                s.sent_month.to_string(),
                s.monthly_limit.to_string(),
            ],
        );
    }
    out.push_str("\r\n");
    line(
        &mut out,
        &["月份", "SIM卡", "短信猫", "条数", "费用"].map(str::to_owned),
    );
    for m in &r.months {
        line(
            &mut out,
            &[
                m.month.clone(),
                m.sim_iccid.clone(),
                opt(&m.modem),
                m.segments.to_string(),
                money(m.cost_units),
            ],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_money() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("城关线"), "城关线");
        assert_eq!(money(123_000), "¥12.30");
    }
}
