//! The keyword parser: what a customer's SMS asks for. Pure (no I/O, no time), total (every
//! input gives a [`Command`], never a panic) and bounded (the input is cut at
//! [`MAX_PARSE_CHARS`] before anything else), so it is fuzzed on arbitrary text.
//!
//! Customers type on every kind of phone: `cx`, `ＣＸ`, `查询 1234５６`, `TD账单。`, ` BZ! `.
//! Normalisation folds full-width ASCII (U+FF01..U+FF5E) and the ideographic space to ASCII,
//! compares Latin keywords case-insensitively, trims surrounding whitespace and punctuation
//! (ASCII and CJK), and accepts an account number right after the keyword with or without a
//! space. A Latin keyword must not run into more Latin letters (`THANKS` is not `T`); a Chinese
//! one may be followed by anything. Text that starts with a keyword but continues with
//! something that is not an account (or, for TD, a category) is [`Command::Unknown`]: a
//! customer is never unsubscribed or bound on a guess.

use crate::message::Category;

/// Longest text looked at; anything longer is cut first (a keyword SMS is a few characters).
pub const MAX_PARSE_CHARS: usize = 160;
/// Longest account number accepted.
pub const MAX_ACCOUNT_CHARS: usize = 32;

/// What a customer's SMS asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// CX / 查询 / 电费 [account]: the latest bill.
    Bill { account: Option<String> },
    /// QF / 欠费 [account]: what is owed.
    Arrears { account: Option<String> },
    /// TZ / 停电 [account]: upcoming planned outages on the account's feeders.
    Outages { account: Option<String> },
    /// DY / 订阅 <account>: bind this phone to the account (None: the account is missing).
    Subscribe { account: Option<String> },
    /// TD / 退订 / T [category]: stop every notice (None) or one category.
    Unsubscribe { category: Option<Category> },
    /// BZ / 帮助 / ?: the help text.
    Help,
    /// Nothing we understand.
    Unknown,
}

impl Command {
    /// A short stable name for the inbox and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Bill { .. } => "bill",
            Command::Arrears { .. } => "arrears",
            Command::Outages { .. } => "outages",
            Command::Subscribe { .. } => "subscribe",
            Command::Unsubscribe { .. } => "unsubscribe",
            Command::Help => "help",
            Command::Unknown => "unknown",
        }
    }
}

/// Which command a keyword stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Bill,
    Arrears,
    Outages,
    Subscribe,
    Unsubscribe,
    Help,
}

impl Verb {
    pub const ALL: [Verb; 6] = [
        Verb::Bill,
        Verb::Arrears,
        Verb::Outages,
        Verb::Subscribe,
        Verb::Unsubscribe,
        Verb::Help,
    ];

    /// The config key under `[inbound.keywords]`.
    pub fn key(self) -> &'static str {
        match self {
            Verb::Bill => "bill",
            Verb::Arrears => "arrears",
            Verb::Outages => "outages",
            Verb::Subscribe => "subscribe",
            Verb::Unsubscribe => "unsubscribe",
            Verb::Help => "help",
        }
    }

    fn default_words(self) -> &'static [&'static str] {
        match self {
            Verb::Bill => &["CX", "查询", "电费", "查电费", "账单"],
            Verb::Arrears => &["QF", "欠费", "查欠费"],
            Verb::Outages => &["TZ", "停电", "停电查询"],
            Verb::Subscribe => &["DY", "订阅", "绑定"],
            Verb::Unsubscribe => &["TD", "退订", "T"],
            Verb::Help => &["BZ", "帮助", "?", "HELP"],
        }
    }
}

/// The default words naming a category after TD.
pub const DEFAULT_CATEGORY_WORDS: &[(&str, Category)] = &[
    ("账单", Category::Bill),
    ("电费", Category::Bill),
    ("bill", Category::Bill),
    ("bills", Category::Bill),
    ("催费", Category::Reminder),
    ("欠费", Category::Reminder),
    ("reminder", Category::Reminder),
    ("reminders", Category::Reminder),
    ("停电", Category::Outage),
    ("outage", Category::Outage),
    ("outages", Category::Outage),
    ("公告", Category::Broadcast),
    ("通知", Category::Broadcast),
    ("广播", Category::Broadcast),
    ("broadcast", Category::Broadcast),
];

/// Words meaning "every notice" after TD.
const ALL_WORDS: &[&str] = &["全部", "所有", "all"];

/// The keyword table (`[inbound.keywords]`), already normalised for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordTable {
    /// (normalised keyword, verb), longest first so `查电费` wins over `电费`.
    words: Vec<(String, Verb)>,
    /// (normalised word, category), longest first.
    categories: Vec<(String, Category)>,
}

/// Printed (check-config) as the config writes it: verb = [words], categories = {word = cat}.
impl serde::Serialize for KeywordTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(Verb::ALL.len() + 1))?;
        for verb in Verb::ALL {
            map.serialize_entry(verb.key(), &self.words_of(verb))?;
        }
        let cats: std::collections::BTreeMap<&str, &str> = self
            .categories
            .iter()
            .map(|(w, c)| (w.as_str(), c.as_str()))
            .collect();
        map.serialize_entry("categories", &cats)?;
        map.end()
    }
}

impl Default for KeywordTable {
    fn default() -> Self {
        let words = Verb::ALL
            .iter()
            .flat_map(|v| v.default_words().iter().map(move |w| (w.to_string(), *v)));
        KeywordTable::new(
            words,
            DEFAULT_CATEGORY_WORDS
                .iter()
                .map(|(w, c)| (w.to_string(), *c)),
        )
    }
}

impl KeywordTable {
    /// A table from (keyword, verb) and (category word, category) pairs. Keywords are
    /// normalised like incoming text; empty ones are dropped; the first of two equal
    /// keywords wins (the config refuses duplicates before this).
    pub fn new(
        words: impl IntoIterator<Item = (String, Verb)>,
        categories: impl IntoIterator<Item = (String, Category)>,
    ) -> KeywordTable {
        let mut w: Vec<(String, Verb)> = Vec::new();
        for (word, verb) in words {
            let n = fold(&word);
            let n = n.trim();
            if !n.is_empty() && !w.iter().any(|(x, _)| x == n) {
                w.push((n.to_owned(), verb));
            }
        }
        w.sort_by_key(|(x, _)| std::cmp::Reverse(x.chars().count()));
        let mut c: Vec<(String, Category)> = Vec::new();
        for (word, cat) in categories {
            let n = fold(&word);
            let n = n.trim();
            if !n.is_empty() && !c.iter().any(|(x, _)| x == n) {
                c.push((n.to_owned(), cat));
            }
        }
        c.sort_by_key(|(x, _)| std::cmp::Reverse(x.chars().count()));
        KeywordTable {
            words: w,
            categories: c,
        }
    }

    /// The keywords of `verb` as configured (normalised), for the help text.
    pub fn words_of(&self, verb: Verb) -> Vec<&str> {
        self.words
            .iter()
            .filter(|(_, v)| *v == verb)
            .map(|(w, _)| w.as_str())
            .collect()
    }

    /// What `text` asks for.
    pub fn parse(&self, text: &str) -> Command {
        let cut: String = text.chars().take(MAX_PARSE_CHARS).collect();
        let folded = fold(&cut);
        let trimmed = folded.trim_matches(is_space);
        // `?` alone is a help keyword, so look before punctuation is trimmed away.
        if !trimmed.is_empty() && trimmed.chars().all(|c| c == '?' || is_space(c)) {
            return Command::Help;
        }
        let body = trim_noise(trimmed);
        if body.is_empty() {
            return Command::Unknown;
        }
        let Some((verb, rest)) = self.keyword_at(body) else {
            return Command::Unknown;
        };
        match verb {
            Verb::Help => Command::Help,
            Verb::Bill | Verb::Arrears | Verb::Outages | Verb::Subscribe => {
                // `查询电费 123`: further keywords of the same command are noise.
                let mut rest = trim_noise(rest);
                while let Some((v, r)) = self.keyword_at(rest) {
                    if v != verb {
                        break;
                    }
                    rest = trim_noise(r);
                }
                let account = match account(rest) {
                    Ok(a) => a,
                    Err(()) => return Command::Unknown,
                };
                match verb {
                    Verb::Bill => Command::Bill { account },
                    Verb::Arrears => Command::Arrears { account },
                    Verb::Outages => Command::Outages { account },
                    _ => Command::Subscribe { account },
                }
            }
            Verb::Unsubscribe => {
                let rest = trim_noise(rest).to_lowercase();
                if rest.is_empty() || ALL_WORDS.contains(&rest.as_str()) {
                    return Command::Unsubscribe { category: None };
                }
                match self
                    .categories
                    .iter()
                    .find(|(w, _)| *w == rest)
                    .map(|(_, c)| *c)
                    .or_else(|| rest.parse::<Category>().ok())
                {
                    Some(Category::Reply) | None => Command::Unknown,
                    Some(c) => Command::Unsubscribe { category: Some(c) },
                }
            }
        }
    }

    /// The keyword `s` starts with (longest first) and the text after it.
    fn keyword_at<'s>(&self, s: &'s str) -> Option<(Verb, &'s str)> {
        for (word, verb) in &self.words {
            let Some(head) = s.get(..word.len()) else {
                continue;
            };
            if !head.eq_ignore_ascii_case(word) {
                continue;
            }
            let rest = &s[word.len()..];
            let latin_end = word.chars().last().is_some_and(|c| c.is_ascii_alphabetic());
            if latin_end && rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                continue;
            }
            return Some((*verb, rest));
        }
        None
    }
}

/// `Ok(None)` for nothing, `Ok(Some)` for an account number, `Err` for anything else.
fn account(rest: &str) -> Result<Option<String>, ()> {
    if rest.is_empty() {
        return Ok(None);
    }
    let ok = rest.chars().count() <= MAX_ACCOUNT_CHARS
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && rest.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(Some(rest.to_ascii_uppercase()))
    } else {
        Err(())
    }
}

/// Full-width ASCII and the ideographic space to ASCII; everything else as is.
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{200b}' || c == '\u{feff}'
}

/// Punctuation customers put around a keyword: ASCII, CJK and general punctuation.
fn is_noise(c: char) -> bool {
    is_space(c)
        || c.is_ascii_punctuation()
        || matches!(c,
            '\u{3001}'..='\u{3003}'   // 、。〃
            | '\u{3008}'..='\u{3011}' // 〈〉《》「」『』【】
            | '\u{3014}'..='\u{301f}'
            | '\u{2010}'..='\u{2027}' // dashes, quotes, …
            | '\u{00b7}' | '\u{30fb}' | '\u{ff61}'..='\u{ff65}')
}

fn trim_noise(s: &str) -> &str {
    s.trim_matches(is_noise)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Command {
        KeywordTable::default().parse(s)
    }

    fn bill(a: Option<&str>) -> Command {
        Command::Bill {
            account: a.map(str::to_owned),
        }
    }

    #[test]
    fn bill_query_variants() {
        for s in [
            "CX",
            "cx",
            "Cx",
            "ＣＸ",
            "ｃｘ",
            " CX ",
            "CX。",
            "CX!",
            "查询",
            "电费",
            "【查询】",
            "查电费？",
            "\u{3000}cx\u{3000}",
            "查询电费",
        ] {
            assert_eq!(p(s), bill(None), "{s:?}");
        }
        for s in [
            "CX 1234567890",
            "CX1234567890",
            "cx　1234567890",
            "ＣＸ１２３４５６７８９０",
            "查询1234567890",
            "查询 1234567890。",
            "电费:1234567890",
            "查询电费 1234567890",
            "CX，1234567890！",
        ] {
            assert_eq!(p(s), bill(Some("1234567890")), "{s:?}");
        }
    }

    #[test]
    fn other_keywords() {
        let acc = |s: &str| Some(s.to_owned());
        assert_eq!(p("QF"), Command::Arrears { account: None });
        assert_eq!(p("欠费 88"), Command::Arrears { account: acc("88") });
        assert_eq!(p("tz"), Command::Outages { account: None });
        assert_eq!(p("停电99"), Command::Outages { account: acc("99") });
        assert_eq!(
            p("DY 0100200"),
            Command::Subscribe {
                account: acc("0100200")
            }
        );
        assert_eq!(
            p("订阅0100200"),
            Command::Subscribe {
                account: acc("0100200")
            }
        );
        assert_eq!(p("DY"), Command::Subscribe { account: None });
        assert_eq!(p("BZ"), Command::Help);
        assert_eq!(p("帮助"), Command::Help);
        assert_eq!(p("?"), Command::Help);
        assert_eq!(p("？"), Command::Help);
        assert_eq!(p(" ?? "), Command::Help);
    }

    #[test]
    fn unsubscribe_all_or_one_category() {
        for s in [
            "TD",
            "td",
            "ＴＤ",
            "退订",
            "T",
            "t。",
            "TD 全部",
            "退订所有",
            "TD ALL",
        ] {
            assert_eq!(p(s), Command::Unsubscribe { category: None }, "{s:?}");
        }
        let one = |c| Command::Unsubscribe { category: Some(c) };
        assert_eq!(p("TD 账单"), one(Category::Bill));
        assert_eq!(p("TD账单"), one(Category::Bill));
        assert_eq!(p("退订催费"), one(Category::Reminder));
        assert_eq!(p("TD outage"), one(Category::Outage));
        assert_eq!(p("td BILL"), one(Category::Bill));
        assert_eq!(p("退订 公告。"), one(Category::Broadcast));
        assert_eq!(p("TD broadcast"), one(Category::Broadcast));
        // Replies cannot be unsubscribed; unknown words are not guessed.
        assert_eq!(p("TD reply"), Command::Unknown);
        assert_eq!(p("TD 你好"), Command::Unknown);
    }

    #[test]
    fn latin_keywords_do_not_run_into_words_and_noise_is_unknown() {
        for s in [
            "",
            "   ",
            "。。",
            "THANKS",
            "Tomorrow",
            "CXY",
            "你好",
            "谢谢",
            "CX 你好",
            "T恤",
            "DY 12 34",
            "查询 ABC",
            &format!("CX {}", "1".repeat(40)),
        ] {
            assert_eq!(p(s), Command::Unknown, "{s:?}");
        }
    }

    #[test]
    fn accounts_are_uppercased_and_long_input_is_cut() {
        assert_eq!(p("cx ab12"), bill(Some("AB12")));
        let long = format!("CX 123{}", " ".repeat(10_000));
        assert_eq!(p(&long), bill(Some("123")));
    }

    #[test]
    fn configured_table_replaces_defaults() {
        let t = KeywordTable::new(
            [
                ("CHA".to_owned(), Verb::Bill),
                ("停".to_owned(), Verb::Outages),
            ],
            [("账".to_owned(), Category::Bill)],
        );
        assert_eq!(t.parse("cha 12"), bill(Some("12")));
        assert_eq!(t.parse("CX"), Command::Unknown);
        assert_eq!(t.parse("停"), Command::Outages { account: None });
        assert_eq!(t.words_of(Verb::Bill), vec!["CHA"]);
    }
}
