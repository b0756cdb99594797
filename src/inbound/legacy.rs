//! The old outage-notice phone lists: import (`gridsms contacts import FILE.csv --source
//! legacy`) and the cut-over.
//!
//! Dual track: imported phones are `legacy` bindings, `active`, so notices go to marketing
//! contacts and legacy phones alike (recipients come from marketing + active bindings,
//! deduplicated by phone). From `[inbound] cutover_date` (local) on, a daily run sends each
//! phone known ONLY from the legacy lists one message ([`Replies::cutover`]: it will stop
//! receiving notices and how to subscribe), then retires its legacy bindings (status
//! `rejected`, note `cut-over`) in the same transaction. Idempotent: a retired phone is not
//! selected again, and the message's idempotency key is the phone.
//!
//! Files: UTF-8 with or without a BOM, or GBK (Chinese Windows exports) when the bytes are not
//! UTF-8; columns `phone, account[, name]` in that order, or in any order under a header naming
//! them (`phone`/`手机`/`电话`, `account`/`户号`, `name`/`户名`). Bad rows are reported by line.
//!
//! [`Replies::cutover`]: super::replies::Replies::cutover

use super::replies::fill;
use crate::daemon::state::Shared;
use crate::message::Category;
use crate::phone::{self, E164};
use crate::store::contacts::{self, BindingStatus, ContactSource};
use crate::store::{NewMessage, StoreError, outbox};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Largest file imported (a bureau's lists are a few MB).
pub const MAX_IMPORT_BYTES: usize = 64 << 20;
/// Phones handled per cut-over transaction.
const CUTOVER_PAGE: usize = 200;
/// How often the cut-over looks for work (it is idempotent; hourly catches the date soon).
const CUTOVER_EVERY: Duration = Duration::from_secs(3600);
const CUTOVER_FIRST_AFTER: Duration = Duration::from_secs(60);

/// The file's text and the encoding it was read as.
pub fn decode_text(bytes: &[u8]) -> (String, &'static str) {
    if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        return (String::from_utf8_lossy(rest).into_owned(), "utf-8 (BOM)");
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), "utf-8"),
        Err(_) => {
            // Not UTF-8: Chinese Windows saves CSV as GBK (code page 936); GB18030 is its
            // superset and never fails, so undecodable bytes become U+FFFD and the row is
            // then reported as bad.
            let (text, _, _) = encoding_rs::GB18030.decode(bytes);
            (text.into_owned(), "gbk")
        }
    }
}

/// One good row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRow {
    pub line: usize,
    pub phone: E164,
    pub account: String,
    pub name: Option<String>,
}

/// What a file held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub rows: Vec<LegacyRow>,
    /// (line, reason).
    pub bad: Vec<(usize, String)>,
}

/// Splits one CSV line; double quotes group (with `""` for a quote).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' | '\t' | '，' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_owned()).collect()
}

fn column_of(name: &str) -> Option<usize> {
    let n = name.trim().trim_start_matches('\u{feff}').to_lowercase();
    match n.as_str() {
        "phone" | "mobile" | "手机" | "手机号" | "手机号码" | "电话" | "联系电话" => {
            Some(0)
        }
        "account" | "户号" | "用户编号" | "户号编号" => Some(1),
        "name" | "户名" | "姓名" | "用户名称" => Some(2),
        _ => None,
    }
}

/// Reads rows from the file's text.
pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut order: [Option<usize>; 3] = [Some(0), Some(1), Some(2)];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let f = fields(raw);
        if out.rows.is_empty() && out.bad.is_empty() && f.iter().any(|x| column_of(x).is_some()) {
            let mut o = [None; 3];
            for (pos, name) in f.iter().enumerate() {
                if let Some(col) = column_of(name) {
                    o[col] = Some(pos);
                }
            }
            if o[0].is_none() || o[1].is_none() {
                out.bad
                    .push((line, "header lacks a phone or an account column".into()));
                return out;
            }
            order = o;
            continue;
        }
        let get = |col: usize| order[col].and_then(|p| f.get(p)).map(String::as_str);
        let phone = match get(0).filter(|p| !p.is_empty()) {
            None => {
                out.bad.push((line, "no phone".into()));
                continue;
            }
            Some(p) => match phone::normalise(p) {
                Ok(p) => p,
                Err(e) => {
                    out.bad.push((line, format!("phone {p:?}: {e}")));
                    continue;
                }
            },
        };
        let account = get(1).unwrap_or("").to_owned();
        if account.is_empty() {
            out.bad.push((line, "no account".into()));
            continue;
        }
        if account.chars().count() > 32
            || !account
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            out.bad.push((
                line,
                format!("account {account:?}: expected up to 32 letters and digits"),
            ));
            continue;
        }
        out.rows.push(LegacyRow {
            line,
            phone,
            account: account.to_ascii_uppercase(),
            name: get(2).filter(|n| !n.is_empty()).map(str::to_owned),
        });
    }
    out
}

/// Import counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    /// New bindings.
    pub added: usize,
    /// Bindings that existed (re-activated if they had been retired).
    pub existing: usize,
    /// The same phone and account twice in the file.
    pub repeated: usize,
}

/// Writes the rows as `source` bindings, `active` (one transaction: all or nothing).
pub fn import(
    conn: &rusqlite::Connection,
    rows: &[LegacyRow],
    source: ContactSource,
    now: DateTime<Utc>,
) -> Result<Imported, StoreError> {
    let mut n = Imported::default();
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        if !seen.insert((r.phone.clone(), r.account.clone())) {
            n.repeated += 1;
            continue;
        }
        let exists = contacts::bindings_of_phone(conn, &r.phone)?
            .iter()
            .any(|b| b.account == r.account && b.source == source);
        contacts::upsert_binding(
            conn,
            &r.phone,
            &r.account,
            source,
            BindingStatus::Active,
            None,
            now,
        )?;
        if exists {
            n.existing += 1;
        } else {
            n.added += 1;
        }
    }
    Ok(n)
}

/// What one cut-over run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutoverReport {
    /// Phones told and retired.
    pub notified: usize,
    /// Retired without a message (opted out of every notice or of broadcasts).
    pub retired_silently: usize,
    /// Left alone: the marketing database records them (they keep their notices).
    pub kept: usize,
}

/// One cut-over pass, if the configured date has come (local); idempotent.
pub async fn cutover_once(shared: &Shared) -> Result<CutoverReport, StoreError> {
    let config = shared.config();
    let mut report = CutoverReport::default();
    let Some(date) = config.inbound.cutover_date else {
        return Ok(report);
    };
    let now = shared.clock.now();
    if now.with_timezone(&config.dispatch.timezone).date_naive() < date {
        return Ok(report);
    }
    let template = config.inbound.replies.cutover.clone();
    let date_text = date.format("%Y年%-m月%-d日").to_string();
    // "Known only from the legacy lists" needs the marketing database's answer.
    let Some(directory) = shared.directory() else {
        tracing::warn!("legacy cut-over waits: the marketing database is not configured");
        return Ok(report);
    };
    let mut after: Option<String> = None;
    loop {
        let a = after.clone();
        let page = shared
            .store
            .call(move |c| contacts::legacy_only_phones(c, a.as_deref(), CUTOVER_PAGE))
            .await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.as_str().to_owned());
        let full = page.len() == CUTOVER_PAGE;
        let mut todo = Vec::new();
        for (phone, accounts) in page {
            // Known to the marketing database too: not "only legacy"; it keeps its notices.
            match directory.accounts_of_phone(&phone).await {
                Ok(list) if !list.is_empty() => {
                    report.kept += 1;
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "cut-over paused: marketing database unavailable");
                    return Ok(report);
                }
            }
            todo.push((phone, accounts));
        }
        let text = fill(&template, &[("date", &date_text)]);
        let done = shared
            .store
            .call_durable(move |conn| {
                let mut notified = 0;
                let mut silent = 0;
                for (phone, accounts) in &todo {
                    if contacts::is_opted_out(conn, phone, Category::Broadcast)? {
                        silent += 1;
                    } else {
                        let msg = NewMessage {
                            idempotency_key: Some(format!("cutover:{}", phone.as_str())),
                            origin: Some("cut-over".into()),
                            account: accounts.first().cloned(),
                            ..NewMessage::new(phone.clone(), text.clone(), Category::Broadcast)
                        };
                        outbox::enqueue_bulk(conn, &[msg], now)?;
                        notified += 1;
                    }
                    contacts::retire_legacy(conn, phone, now)?;
                }
                Ok((notified, silent))
            })
            .await?;
        report.notified += done.0;
        report.retired_silently += done.1;
        if !full {
            break;
        }
    }
    if report.notified > 0 || report.retired_silently > 0 {
        shared.wake.notify_one();
        tracing::info!(
            notified = report.notified,
            retired_silently = report.retired_silently,
            kept = report.kept,
            "legacy cut-over: phones known only from the old lists told and retired"
        );
    }
    Ok(report)
}

/// Runs [`cutover_once`] a minute after start (the marketing lookups are set up by then) and
/// then hourly until `stop`.
pub async fn run(shared: std::sync::Arc<Shared>, stop: CancellationToken) {
    let first = tokio::time::Instant::now() + CUTOVER_FIRST_AFTER;
    let mut tick = tokio::time::interval_at(first, CUTOVER_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                if let Err(error) = cutover_once(&shared).await {
                    tracing::error!(%error, "legacy cut-over failed; retried in an hour");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_headers_and_bad_lines() {
        let p = parse(
            "户号,手机,户名\n0100200,138 0013 8000,张三\n0100201,12345,李四\n,13900139000,\n\
             \"0100202\",+86 139 0013 9000\n\n0100203,13700137000",
        );
        assert_eq!(p.rows.len(), 3);
        assert_eq!(p.rows[0].phone.as_str(), "+8613800138000");
        assert_eq!(p.rows[0].account, "0100200");
        assert_eq!(p.rows[0].name.as_deref(), Some("张三"));
        assert_eq!(p.rows[1].line, 5);
        assert_eq!(p.bad.len(), 2);
        assert_eq!(p.bad[0].0, 3);
        assert!(p.bad[0].1.contains("12345"));
        assert_eq!(p.bad[1], (4, "no account".into()));
        let plain = parse("13800138000,A1\n13900139000,A2,王五\n");
        assert_eq!(plain.rows.len(), 2);
        assert_eq!(plain.rows[1].name.as_deref(), Some("王五"));
    }

    #[test]
    fn encodings() {
        assert_eq!(decode_text(b"\xef\xbb\xbfa,b").0, "a,b");
        assert_eq!(decode_text("户号".as_bytes()), ("户号".to_owned(), "utf-8"));
        // "户号" in GBK.
        let (t, enc) = decode_text(&[0xBB, 0xA7, 0xBA, 0xC5]);
        assert_eq!((t.as_str(), enc), ("户号", "gbk"));
    }
}
