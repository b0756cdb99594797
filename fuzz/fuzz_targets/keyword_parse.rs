//! Fuzz target: any text through the inbound keyword parser (default table and a configured
//! one) and the reply filler. The parser must return a command for every input, never panic,
//! never take long; an account it extracts is always a short ASCII token.
#![no_main]

use gridsms::inbound::keywords::{Command, KeywordTable, MAX_ACCOUNT_CHARS, Verb};
use gridsms::inbound::replies::fill;
use gridsms::message::Category;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let default = KeywordTable::default();
    let custom = KeywordTable::new(
        [("查".to_owned(), Verb::Bill), ("Q".to_owned(), Verb::Arrears), ("ｔ".to_owned(), Verb::Unsubscribe)],
        [("账".to_owned(), Category::Bill)],
    );
    for table in [&default, &custom] {
        match table.parse(&text) {
            Command::Bill { account }
            | Command::Arrears { account }
            | Command::Outages { account }
            | Command::Subscribe { account } => {
                if let Some(a) = account {
                    assert!(!a.is_empty() && a.len() <= MAX_ACCOUNT_CHARS);
                    assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                }
            }
            Command::Unsubscribe { category } => assert_ne!(category, Some(Category::Reply)),
            Command::Help | Command::Unknown => {}
        }
    }
    let _ = fill(&text, &[("account", "A1"), ("amount", "1.00")]);
});
