//! Contacts and opt-outs: which phones are bound to which accounts (and from what source), and
//! who asked not to be notified.
//!
//! A binding's source says where we learnt it: `marketing` (the billing system's contact
//! phone, mirrored when seen), `sms` (a customer's DY request), `staff` (entered or approved at
//! a desk), `legacy` (imported from the old outage-notice phone lists). A binding is `active`,
//! `pending` (waiting for staff approval) or `rejected`.
//!
//! An opt-out beats every source: every job, reply-driven notice and staff send checks
//! [`opted_out_among`] (or [`is_opted_out`]) right before enqueueing, inside the same store
//! transaction, so an opt-out committed before a batch is always honoured by it. Replies to a
//! customer's own SMS are never suppressed (the answer to TD must arrive).

use super::{StoreError, from_ms, to_ms};
use crate::message::Category;
use crate::phone::E164;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;

/// Where a binding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactSource {
    Marketing,
    Sms,
    Staff,
    Legacy,
}

impl ContactSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactSource::Marketing => "marketing",
            ContactSource::Sms => "sms",
            ContactSource::Staff => "staff",
            ContactSource::Legacy => "legacy",
        }
    }

    pub fn parse(s: &str) -> Option<ContactSource> {
        [
            ContactSource::Marketing,
            ContactSource::Sms,
            ContactSource::Staff,
            ContactSource::Legacy,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A binding's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingStatus {
    Active,
    Pending,
    Rejected,
}

impl BindingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingStatus::Active => "active",
            BindingStatus::Pending => "pending",
            BindingStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<BindingStatus> {
        [
            BindingStatus::Active,
            BindingStatus::Pending,
            BindingStatus::Rejected,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// One phone ↔ account binding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Binding {
    pub phone: String,
    pub account: String,
    pub source: ContactSource,
    pub status: BindingStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
}

/// The key an opt-out is stored under: a category, or every notice.
fn opt_out_key(category: Option<Category>) -> &'static str {
    category.map_or("*", Category::as_str)
}

/// Insert or update a binding (same phone, account and source).
pub fn upsert_binding(
    conn: &Connection,
    phone: &E164,
    account: &str,
    source: ContactSource,
    status: BindingStatus,
    decided_by: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO contacts (phone, account, source, status, created_at, updated_at, decided_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
         ON CONFLICT (phone, account, source) DO UPDATE
            SET status = excluded.status, updated_at = excluded.updated_at,
                decided_by = coalesce(excluded.decided_by, decided_by)",
    )?
    .execute(params![
        phone.as_str(),
        account,
        source.as_str(),
        status.as_str(),
        to_ms(now),
        decided_by
    ])?;
    Ok(())
}

/// A binding row as stored; turned into a [`Binding`] by `decode`.
type RawBinding = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

fn binding_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawBinding> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn decode(raw: RawBinding) -> Result<Binding, StoreError> {
    let (phone, account, source, status, created, updated, decided_by, note) = raw;
    Ok(Binding {
        source: ContactSource::parse(&source)
            .ok_or_else(|| StoreError::Corrupt(format!("contact source {source:?}")))?,
        status: BindingStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("contact status {status:?}")))?,
        created_at: from_ms(created)?,
        updated_at: from_ms(updated)?,
        phone,
        account,
        decided_by,
        note,
    })
}

const BINDING_COLUMNS: &str =
    "phone, account, source, status, created_at, updated_at, decided_by, note";

/// Every binding of `account` (any source and status).
pub fn bindings_of_account(conn: &Connection, account: &str) -> Result<Vec<Binding>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BINDING_COLUMNS} FROM contacts WHERE account = ?1 ORDER BY created_at"
    ))?;
    let rows = stmt.query_map([account], binding_of)?;
    rows.map(|r| decode(r?)).collect()
}

/// Every binding of `phone` (any source and status).
pub fn bindings_of_phone(conn: &Connection, phone: &E164) -> Result<Vec<Binding>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BINDING_COLUMNS} FROM contacts WHERE phone = ?1 ORDER BY created_at"
    ))?;
    let rows = stmt.query_map([phone.as_str()], binding_of)?;
    rows.map(|r| decode(r?)).collect()
}

/// Phones with an active binding to `account`.
pub fn active_phones_of_account(conn: &Connection, account: &str) -> Result<Vec<E164>, StoreError> {
    let mut out: Vec<E164> = Vec::new();
    for b in bindings_of_account(conn, account)? {
        if b.status == BindingStatus::Active
            && let Ok(p) = b.phone.parse::<E164>()
            && !out.contains(&p)
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// Record an opt-out of one category (`Some`) or of every notice (`None`).
pub fn opt_out(
    conn: &Connection,
    phone: &E164,
    category: Option<Category>,
    via: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO opt_outs (phone, category, via, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (phone, category) DO NOTHING",
    )?
    .execute(params![
        phone.as_str(),
        opt_out_key(category),
        via,
        to_ms(now)
    ])?;
    Ok(())
}

/// Withdraw an opt-out (`None`: every opt-out of the phone). Returns how many were removed.
pub fn opt_in(
    conn: &Connection,
    phone: &E164,
    category: Option<Category>,
) -> Result<usize, StoreError> {
    let n = match category {
        Some(c) => conn.execute(
            "DELETE FROM opt_outs WHERE phone = ?1 AND category = ?2",
            params![phone.as_str(), c.as_str()],
        )?,
        None => conn.execute("DELETE FROM opt_outs WHERE phone = ?1", [phone.as_str()])?,
    };
    Ok(n)
}

/// The opt-outs of `phone`: `None` in the list stands for "every notice".
pub fn opt_outs_of(conn: &Connection, phone: &E164) -> Result<Vec<Option<Category>>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT category FROM opt_outs WHERE phone = ?1 ORDER BY category")?;
    let rows = stmt.query_map([phone.as_str()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        let c = r?;
        if c == "*" {
            out.push(None);
        } else {
            out.push(Some(c.parse::<Category>().map_err(|_| {
                StoreError::Corrupt(format!("opt-out category {c:?}"))
            })?));
        }
    }
    Ok(out)
}

/// True when `phone` must not get messages of `category`.
pub fn is_opted_out(
    conn: &Connection,
    phone: &E164,
    category: Category,
) -> Result<bool, StoreError> {
    if category == Category::Reply {
        return Ok(false);
    }
    Ok(conn
        .prepare_cached("SELECT 1 FROM opt_outs WHERE phone = ?1 AND category IN ('*', ?2)")?
        .query_row(params![phone.as_str(), category.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Which of `phones` must not get messages of `category` (E.164 strings).
pub fn opted_out_among<'a>(
    conn: &Connection,
    phones: impl IntoIterator<Item = &'a E164>,
    category: Category,
) -> Result<HashSet<String>, StoreError> {
    let mut out = HashSet::new();
    for p in phones {
        if is_opted_out(conn, p, category)? {
            out.insert(p.as_str().to_owned());
        }
    }
    Ok(out)
}

/// Bindings in `status` (any when `None`), oldest first, `limit` (1..=1000) from `offset`.
pub fn list_bindings(
    conn: &Connection,
    status: Option<BindingStatus>,
    limit: usize,
    offset: usize,
) -> Result<Vec<Binding>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BINDING_COLUMNS} FROM contacts WHERE (?1 IS NULL OR status = ?1)
         ORDER BY created_at, phone, account LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(
        params![
            status.map(BindingStatus::as_str),
            limit.clamp(1, 1000) as i64,
            offset as i64
        ],
        binding_of,
    )?;
    rows.map(|r| decode(r?)).collect()
}

/// Staff decision on a pending binding (any source): `active` or `rejected`, with who decided
/// and why. Compare-and-set on `pending`; returns how many bindings changed (0: none pending).
pub fn decide_pending(
    conn: &Connection,
    phone: &E164,
    account: &str,
    to: BindingStatus,
    decided_by: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE contacts SET status = ?3, decided_by = ?4, note = coalesce(?5, note),
                 updated_at = ?6
             WHERE phone = ?1 AND account = ?2 AND status = 'pending'",
        )?
        .execute(params![
            phone.as_str(),
            account,
            to.as_str(),
            decided_by,
            note,
            to_ms(now)
        ])?)
}

/// Phones whose only active bindings come from the legacy lists, with their accounts;
/// at most `limit` phones, in phone order after `after` (paging for the cut-over run).
pub fn legacy_only_phones(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(E164, Vec<String>)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT phone, group_concat(account, char(31)) FROM contacts c
         WHERE source = 'legacy' AND status = 'active' AND phone > coalesce(?1, '')
           AND NOT EXISTS (SELECT 1 FROM contacts o WHERE o.phone = c.phone
                           AND o.source <> 'legacy' AND o.status = 'active')
         GROUP BY phone ORDER BY phone LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit.clamp(1, 10_000) as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (phone, accounts) = row?;
        let phone = phone
            .parse::<E164>()
            .map_err(|e| StoreError::Corrupt(format!("contact phone {phone:?}: {e}")))?;
        out.push((phone, accounts.split('\u{1f}').map(str::to_owned).collect()));
    }
    Ok(out)
}

/// Retire the active legacy bindings of `phone` (status `rejected`, note `cut-over`).
pub fn retire_legacy(
    conn: &Connection,
    phone: &E164,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE contacts SET status = 'rejected', note = 'cut-over', updated_at = ?2
             WHERE phone = ?1 AND source = 'legacy' AND status = 'active'",
        )?
        .execute(params![phone.as_str(), to_ms(now)])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut c).unwrap();
        c
    }

    fn p(s: &str) -> E164 {
        s.parse().unwrap()
    }

    #[test]
    fn opt_out_of_everything_or_one_category_never_of_replies() {
        let c = conn();
        let now = Utc::now();
        let (a, b) = (p("13800138000"), p("13900139000"));
        opt_out(&c, &a, None, "sms", now).unwrap();
        opt_out(&c, &b, Some(Category::Bill), "sms", now).unwrap();
        opt_out(&c, &b, Some(Category::Bill), "sms", now).unwrap(); // twice is once
        assert!(is_opted_out(&c, &a, Category::Outage).unwrap());
        assert!(!is_opted_out(&c, &a, Category::Reply).unwrap());
        assert!(is_opted_out(&c, &b, Category::Bill).unwrap());
        assert!(!is_opted_out(&c, &b, Category::Reminder).unwrap());
        let set = opted_out_among(&c, [&a, &b], Category::Reminder).unwrap();
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec![a.as_str().to_owned()]
        );
        assert_eq!(opt_outs_of(&c, &b).unwrap(), vec![Some(Category::Bill)]);
        assert_eq!(opt_in(&c, &a, None).unwrap(), 1);
        assert!(!is_opted_out(&c, &a, Category::Outage).unwrap());
    }

    #[test]
    fn bindings_by_source_and_status() {
        let c = conn();
        let now = Utc::now();
        let a = p("13800138000");
        upsert_binding(
            &c,
            &a,
            "A1",
            ContactSource::Sms,
            BindingStatus::Pending,
            None,
            now,
        )
        .unwrap();
        assert!(active_phones_of_account(&c, "A1").unwrap().is_empty());
        upsert_binding(
            &c,
            &a,
            "A1",
            ContactSource::Sms,
            BindingStatus::Active,
            Some("desk"),
            now,
        )
        .unwrap();
        assert_eq!(active_phones_of_account(&c, "A1").unwrap(), vec![a.clone()]);
        let b = bindings_of_phone(&c, &a).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].decided_by.as_deref(), Some("desk"));
        assert_eq!(b[0].source, ContactSource::Sms);
    }
}
