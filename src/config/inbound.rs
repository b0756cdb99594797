//! `[inbound]`: what customers may text in and how gridsms answers.
//!
//! ```toml
//! [inbound]
//! enabled = true                  # store, reassemble and answer inbound SMS
//! incomplete_wait = "10m"         # a multipart message missing parts is handled after this
//! max_pending_groups = 256        # multipart messages waiting for parts, at most
//! own_numbers = ["+8613912345678"]  # our SIMs' numbers when the SIM does not report them
//! per_phone_per_hour = 10         # answers to one phone per clock hour
//! total_per_hour = 600            # answers to everyone per clock hour
//! unknown_per_phone_per_hour = 2  # help answers to unrecognised text, per phone and hour
//! cutover_date = "2027-01-01"     # legacy phone lists retired from this local date on
//!
//! [inbound.keywords]              # replaces the defaults of the verbs it names
//! bill = ["CX", "查询", "电费"]
//! categories = { "账单" = "bill" }
//!
//! [inbound.replies]               # Chinese defaults; {placeholders} are filled in
//! help = "…"
//! ```

use super::{KeyPath, Problems, parse_duration};
use crate::inbound::keywords::{DEFAULT_CATEGORY_WORDS, KeywordTable, Verb};
use crate::inbound::replies::Replies;
use crate::message::Category;
use crate::phone::{self, E164};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInbound {
    pub enabled: Option<bool>,
    pub incomplete_wait: Option<String>,
    pub max_pending_groups: Option<i64>,
    pub own_numbers: Option<Vec<String>>,
    pub per_phone_per_hour: Option<i64>,
    pub total_per_hour: Option<i64>,
    pub unknown_per_phone_per_hour: Option<i64>,
    pub cutover_date: Option<String>,
    pub keywords: Option<RawKeywords>,
    pub replies: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeywords {
    pub bill: Option<Vec<String>>,
    pub arrears: Option<Vec<String>>,
    pub outages: Option<Vec<String>>,
    pub subscribe: Option<Vec<String>>,
    pub unsubscribe: Option<Vec<String>>,
    pub help: Option<Vec<String>>,
    pub categories: Option<BTreeMap<String, String>>,
}

/// The validated `[inbound]` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundConfig {
    pub enabled: bool,
    #[serde(serialize_with = "super::ser_duration")]
    pub incomplete_wait: Duration,
    pub max_pending_groups: u32,
    pub own_numbers: Vec<E164>,
    pub per_phone_per_hour: u32,
    pub total_per_hour: u32,
    pub unknown_per_phone_per_hour: u32,
    pub cutover_date: Option<NaiveDate>,
    pub keywords: KeywordTable,
    pub replies: Replies,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            enabled: true,
            incomplete_wait: Duration::from_secs(600),
            max_pending_groups: 256,
            own_numbers: Vec::new(),
            per_phone_per_hour: 10,
            total_per_hour: 600,
            unknown_per_phone_per_hour: 2,
            cutover_date: None,
            keywords: KeywordTable::default(),
            replies: Replies::default(),
        }
    }
}

/// Validates `[inbound]` into `p`; always returns a usable value (defaults where invalid).
pub fn validate(raw: Option<RawInbound>, at: &KeyPath, p: &mut Problems) -> InboundConfig {
    let d = InboundConfig::default();
    let Some(raw) = raw else { return d };
    let count = |p: &mut Problems, key: &str, v: Option<i64>, default: u32, max: u32| match v {
        None => default,
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                p.error(
                    &at.key(key),
                    format!("{n} is out of range: expected 1 to {max}"),
                );
                default
            }
        },
    };
    let incomplete_wait = match raw.incomplete_wait.as_deref() {
        None => d.incomplete_wait,
        Some(text) => match parse_duration(text) {
            Ok(w) if w >= Duration::from_secs(10) && w <= Duration::from_secs(7 * 86_400) => w,
            Ok(_) => {
                p.error(
                    &at.key("incomplete_wait"),
                    format!("{text:?} is out of range: expected 10s to 7d"),
                );
                d.incomplete_wait
            }
            Err(e) => {
                p.error(&at.key("incomplete_wait"), e.to_string());
                d.incomplete_wait
            }
        },
    };
    let mut own_numbers = Vec::new();
    for (i, n) in raw.own_numbers.unwrap_or_default().iter().enumerate() {
        match phone::normalise(n) {
            Ok(e) => own_numbers.push(e),
            Err(e) => p.error(&at.key("own_numbers").index(i), format!("{n:?}: {e}")),
        }
    }
    let cutover_date = raw.cutover_date.as_deref().and_then(|s| {
        let parsed = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        if parsed.is_none() {
            p.error(
                &at.key("cutover_date"),
                format!("{s:?}: expected a local date such as \"2027-01-01\""),
            );
        }
        parsed
    });
    let keywords = keywords(raw.keywords, &at.key("keywords"), p);
    let replies = Replies::from_config(raw.replies.unwrap_or_default(), &at.key("replies"), p);
    InboundConfig {
        enabled: raw.enabled.unwrap_or(true),
        incomplete_wait,
        max_pending_groups: count(
            p,
            "max_pending_groups",
            raw.max_pending_groups,
            d.max_pending_groups,
            100_000,
        ),
        own_numbers,
        per_phone_per_hour: count(
            p,
            "per_phone_per_hour",
            raw.per_phone_per_hour,
            d.per_phone_per_hour,
            10_000,
        ),
        total_per_hour: count(
            p,
            "total_per_hour",
            raw.total_per_hour,
            d.total_per_hour,
            10_000_000,
        ),
        unknown_per_phone_per_hour: count(
            p,
            "unknown_per_phone_per_hour",
            raw.unknown_per_phone_per_hour,
            d.unknown_per_phone_per_hour,
            10_000,
        ),
        cutover_date,
        keywords,
        replies,
    }
}

fn keywords(raw: Option<RawKeywords>, at: &KeyPath, p: &mut Problems) -> KeywordTable {
    let Some(raw) = raw else {
        return KeywordTable::default();
    };
    let defaults = KeywordTable::default();
    let lists = [
        (Verb::Bill, raw.bill),
        (Verb::Arrears, raw.arrears),
        (Verb::Outages, raw.outages),
        (Verb::Subscribe, raw.subscribe),
        (Verb::Unsubscribe, raw.unsubscribe),
        (Verb::Help, raw.help),
    ];
    let mut words: Vec<(String, Verb)> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (verb, list) in lists {
        let list: Vec<String> = match list {
            Some(l) => {
                if l.is_empty() {
                    p.error(
                        &at.key(verb.key()),
                        "empty: give at least one keyword, or leave the key out for the defaults",
                    );
                }
                l
            }
            None => defaults
                .words_of(verb)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        for (i, w) in list.into_iter().enumerate() {
            let norm = crate::inbound::keywords::fold(w.trim()).to_ascii_uppercase();
            if norm.is_empty() {
                p.error(&at.key(verb.key()).index(i), "an empty keyword");
                continue;
            }
            if norm.chars().count() > 16 {
                p.error(
                    &at.key(verb.key()).index(i),
                    format!("{w:?} is longer than 16 characters"),
                );
                continue;
            }
            if let Some(other) = seen.insert(norm.clone(), verb.key().to_owned()) {
                p.error(
                    &at.key(verb.key()).index(i),
                    format!("{w:?} is already a keyword of {other}"),
                );
                continue;
            }
            words.push((w, verb));
        }
    }
    let categories: Vec<(String, Category)> = match raw.categories {
        None => DEFAULT_CATEGORY_WORDS
            .iter()
            .map(|(w, c)| ((*w).to_owned(), *c))
            .collect(),
        Some(map) => {
            let mut out = Vec::new();
            for (word, cat) in map {
                match cat.parse::<Category>() {
                    Ok(Category::Reply) => p.error(
                        &at.key("categories").key(&word),
                        "replies cannot be unsubscribed from",
                    ),
                    Ok(c) => out.push((word, c)),
                    Err(e) => p.error(&at.key("categories").key(&word), e.to_string()),
                }
            }
            out
        }
    };
    KeywordTable::new(words, categories)
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn load(text: &str) -> Result<super::InboundConfig, String> {
        parse(text, Path::new("/etc/gridsms/gridsms.toml"))
            .map(|l| l.config.inbound)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_without_the_section() {
        let c = load("").unwrap();
        assert!(c.enabled);
        assert_eq!(c.per_phone_per_hour, 10);
        assert_eq!(c.incomplete_wait.as_secs(), 600);
        assert!(c.replies.help.contains("CX"));
    }

    #[test]
    fn every_problem_reported_with_its_key() {
        let e = load(
            "[inbound]\nincomplete_wait = \"1s\"\nown_numbers = [\"10086\"]\n\
             per_phone_per_hour = 0\ncutover_date = \"2027-13-01\"\n\
             [inbound.keywords]\nbill = [\"CX\"]\nhelp = [\"cx\"]\n\
             categories = { \"x\" = \"reply\" }\n\
             [inbound.replies]\nhelpp = \"x\"\nbill = \"{nope}\"\n",
        )
        .unwrap_err();
        for needle in [
            "inbound.incomplete_wait",
            "inbound.own_numbers[0]",
            "inbound.per_phone_per_hour",
            "inbound.cutover_date",
            "inbound.keywords.help[0]: \"cx\" is already a keyword of bill",
            "inbound.keywords.categories.x",
            "inbound.replies.helpp",
            "inbound.replies.bill",
        ] {
            assert!(e.contains(needle), "{needle} missing from:\n{e}");
        }
    }

    #[test]
    fn configured_keywords_and_replies_apply() {
        let c = load(
            "[inbound]\nown_numbers = [\"13912345678\"]\ncutover_date = \"2027-01-01\"\n\
             [inbound.keywords]\nbill = [\"CHA\"]\n[inbound.replies]\nhelp = \"发送CHA查询\"\n",
        )
        .unwrap();
        assert_eq!(c.own_numbers[0].as_str(), "+8613912345678");
        assert_eq!(
            c.keywords.parse("cha"),
            crate::inbound::keywords::Command::Bill { account: None }
        );
        assert_eq!(
            c.keywords.parse("QF"),
            crate::inbound::keywords::Command::Arrears { account: None }
        );
        assert_eq!(c.replies.help, "发送CHA查询");
    }
}
