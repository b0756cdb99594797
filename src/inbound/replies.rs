//! The texts gridsms answers customers with (`[inbound.replies]`): Chinese defaults, no links
//! (carriers filter SMS with links, and customers are taught not to trust them), `{name}`
//! placeholders filled in by [`fill`].
//!
//! Invariant: the answer to "this account is not yours" and to "this account does not exist"
//! is the same template ([`Replies::not_bound`]) filled with the same values, so an answer never
//! tells a stranger whether an account exists.

use crate::config::{KeyPath, Problems};
use crate::message::Category;
use serde::Serialize;
use std::collections::BTreeMap;

/// Every reply template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replies {
    pub help: String,
    pub bill: String,
    pub no_bill: String,
    pub arrears: String,
    pub no_arrears: String,
    pub outages: String,
    pub no_outages: String,
    pub outages_unavailable: String,
    pub not_bound: String,
    pub no_account: String,
    pub choose_account: String,
    pub subscribe_usage: String,
    pub subscribed: String,
    pub subscribe_pending: String,
    pub approved: String,
    pub rejected: String,
    pub unsubscribed: String,
    pub unsubscribed_category: String,
    pub unavailable: String,
    pub cutover: String,
}

/// (key, default text, placeholders it may use).
const TEMPLATES: &[(&str, &str, &[&str])] = &[
    (
        "help",
        "供电服务短信指令：CX+户号 查电费；QF+户号 查欠费；TZ 查计划停电；DY+户号 订阅通知；\
         TD 退订全部通知（TD账单/TD催费/TD停电/TD公告 退订单项）；BZ 帮助。如有疑问请拨打95598。",
        &[],
    ),
    (
        "bill",
        "户号{account}，{period}账单：电费{amount}元{kwh_text}{due_text}。",
        &[
            "account", "name", "period", "amount", "kwh", "kwh_text", "due_date", "due_text",
        ],
    ),
    ("no_bill", "户号{account}暂无已出账单。", &["account"]),
    (
        "arrears",
        "户号{account}当前欠费{amount}元{due_text}{late_fee_text}，请及时缴纳。",
        &[
            "account",
            "amount",
            "due_date",
            "due_text",
            "late_fee",
            "late_fee_text",
        ],
    ),
    ("no_arrears", "户号{account}当前无欠费。", &["account"]),
    (
        "outages",
        "户号{account}所在线路计划停电：{outages}。请提前做好准备。",
        &["account", "outages"],
    ),
    (
        "no_outages",
        "户号{account}所在线路近期无计划停电。",
        &["account"],
    ),
    (
        "outages_unavailable",
        "停电计划暂时无法查询，请稍后再试或拨打95598。",
        &["account"],
    ),
    (
        "not_bound",
        "本机号码未绑定户号{account}，无法查询。如需绑定请发送“DY+户号”。",
        &["account"],
    ),
    (
        "no_account",
        "本机号码尚未绑定户号。请发送“CX+户号”查询，或发送“DY+户号”订阅通知。",
        &[],
    ),
    (
        "choose_account",
        "本机号码绑定了多个户号（{accounts}），请在指令后加户号，例如“CX{first}”。",
        &["accounts", "first"],
    ),
    (
        "subscribe_usage",
        "请发送“DY+户号”订阅通知，例如“DY1234567890”。",
        &[],
    ),
    (
        "subscribed",
        "户号{account}已与本机号码绑定，您将收到电费、催费和停电通知。发送TD可退订。",
        &["account"],
    ),
    (
        "subscribe_pending",
        "已收到绑定户号{account}的申请，工作人员核实后将短信告知结果。",
        &["account"],
    ),
    (
        "approved",
        "您绑定户号{account}的申请已通过，您将收到该户号的电费、催费和停电通知。发送TD可退订。",
        &["account"],
    ),
    (
        "rejected",
        "您绑定户号{account}的申请未通过核实。如有疑问请拨打95598。",
        &["account"],
    ),
    (
        "unsubscribed",
        "您已退订全部通知短信。如需恢复，请发送“DY+户号”。",
        &[],
    ),
    (
        "unsubscribed_category",
        "您已退订{category}通知短信。如需恢复，请发送“DY+户号”。",
        &["category"],
    ),
    (
        "unavailable",
        "系统繁忙，暂时无法查询，请稍后再试或拨打95598。",
        &[],
    ),
    (
        "cutover",
        "您好，原停电通知号码名单自{date}起停止使用，本号码将不再收到停电等供电通知。\
         如需继续接收，请发送“DY+户号”订阅。",
        &["date"],
    ),
];

impl Default for Replies {
    fn default() -> Self {
        let text = |key: &str| {
            TEMPLATES
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, t, _)| (*t).to_owned())
                .unwrap_or_default()
        };
        Replies {
            help: text("help"),
            bill: text("bill"),
            no_bill: text("no_bill"),
            arrears: text("arrears"),
            no_arrears: text("no_arrears"),
            outages: text("outages"),
            no_outages: text("no_outages"),
            outages_unavailable: text("outages_unavailable"),
            not_bound: text("not_bound"),
            no_account: text("no_account"),
            choose_account: text("choose_account"),
            subscribe_usage: text("subscribe_usage"),
            subscribed: text("subscribed"),
            subscribe_pending: text("subscribe_pending"),
            approved: text("approved"),
            rejected: text("rejected"),
            unsubscribed: text("unsubscribed"),
            unsubscribed_category: text("unsubscribed_category"),
            unavailable: text("unavailable"),
            cutover: text("cutover"),
        }
    }
}

impl Replies {
    fn slot(&mut self, key: &str) -> Option<&mut String> {
        Some(match key {
            "help" => &mut self.help,
            "bill" => &mut self.bill,
            "no_bill" => &mut self.no_bill,
            "arrears" => &mut self.arrears,
            "no_arrears" => &mut self.no_arrears,
            "outages" => &mut self.outages,
            "no_outages" => &mut self.no_outages,
            "outages_unavailable" => &mut self.outages_unavailable,
            "not_bound" => &mut self.not_bound,
            "no_account" => &mut self.no_account,
            "choose_account" => &mut self.choose_account,
            "subscribe_usage" => &mut self.subscribe_usage,
            "subscribed" => &mut self.subscribed,
            "subscribe_pending" => &mut self.subscribe_pending,
            "approved" => &mut self.approved,
            "rejected" => &mut self.rejected,
            "unsubscribed" => &mut self.unsubscribed,
            "unsubscribed_category" => &mut self.unsubscribed_category,
            "unavailable" => &mut self.unavailable,
            "cutover" => &mut self.cutover,
            _ => return None,
        })
    }

    /// The configured texts over the defaults; unknown keys, empty texts and unknown
    /// placeholders are reported.
    pub fn from_config(map: BTreeMap<String, String>, at: &KeyPath, p: &mut Problems) -> Replies {
        let mut out = Replies::default();
        for (key, text) in map {
            let at = at.key(&key);
            let Some((_, _, allowed)) = TEMPLATES.iter().find(|(k, _, _)| *k == key) else {
                let known: Vec<&str> = TEMPLATES.iter().map(|(k, _, _)| *k).collect();
                p.error(&at, format!("unknown reply (known: {})", known.join(", ")));
                continue;
            };
            if text.trim().is_empty() {
                p.error(&at, "empty: leave the key out for the default text");
                continue;
            }
            for name in placeholders(&text) {
                if !allowed.contains(&name) {
                    p.error(
                        &at,
                        format!(
                            "unknown placeholder {{{name}}} (this reply may use {})",
                            if allowed.is_empty() {
                                "none".to_owned()
                            } else {
                                allowed
                                    .iter()
                                    .map(|a| format!("{{{a}}}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ),
                    );
                }
            }
            if crate::pdu::preview(&text).is_err() {
                p.error(&at, "cannot be encoded as an SMS");
            }
            if let Some(slot) = out.slot(&key) {
                *slot = text;
            }
        }
        out
    }
}

/// The `{name}` placeholders of a template.
fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

/// `template` with each `{name}` replaced by its value; unknown names become empty.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                if let Some((_, v)) = vars.iter().find(|(n, _)| *n == name) {
                    out.push_str(v);
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Yuan with two decimals from fen: 12050 → "120.50".
pub fn yuan(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// The Chinese name of a category in replies.
pub fn category_name(c: Category) -> &'static str {
    match c {
        Category::Bill => "电费账单",
        Category::Reminder => "催费",
        Category::Outage => "停电",
        Category::Broadcast => "公告",
        Category::Manual => "人工",
        Category::Reply => "回复",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_known_names_only() {
        assert_eq!(
            fill(
                "户号{account}欠{amount}元{x}",
                &[("account", "A1"), ("amount", "1.00")]
            ),
            "户号A1欠1.00元"
        );
        assert_eq!(fill("{unclosed", &[]), "{unclosed");
        assert_eq!(yuan(12050), "120.50");
        assert_eq!(yuan(-5), "-0.05");
    }

    #[test]
    fn defaults_are_valid_sms_without_links() {
        let r = Replies::default();
        let mut p = Problems::default();
        let all: BTreeMap<String, String> = TEMPLATES
            .iter()
            .map(|(k, t, _)| ((*k).to_owned(), (*t).to_owned()))
            .collect();
        let again = Replies::from_config(all, &KeyPath::root(), &mut p);
        assert!(!p.has_errors(), "{p:?}");
        assert_eq!(again, r);
        for (_, t, _) in TEMPLATES {
            assert!(!t.contains("http") && !t.contains("www"), "{t}");
        }
    }
}
