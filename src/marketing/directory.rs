//! Lookups in the marketing database, typed: who the contacts of an account are, which
//! accounts a phone is recorded for, an account's latest bill and arrears, which feeders supply
//! it, and the customers of a feeder, transformer area or supply station.
//!
//! The jobs, the inbound keyword replies and staff sends all go through this one layer, so a
//! row is read, validated and skipped the same way everywhere. Single-account lookups are
//! capped at [`LOOKUP_ROW_CAP`] rows (a wrong query must not fill memory); customer lists are
//! streamed.

use super::queries::Queries;
use super::source::{FieldError, Query, Row, RowStream, Source, SourceError, Value};
use crate::phone::{self, E164, PhoneError};
use chrono::NaiveDate;
use chrono_tz::Tz;
use std::sync::Arc;

/// At most this many rows are read for one account's lookup.
pub const LOOKUP_ROW_CAP: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum MarketingError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("the marketing query {0:?} is not configured")]
    NotConfigured(&'static str),
    #[error("marketing query {query}: {error}")]
    Field {
        query: &'static str,
        error: FieldError,
    },
}

impl MarketingError {
    /// The database is down or slow: waiting helps.
    pub fn is_transient(&self) -> bool {
        matches!(self, MarketingError::Source(e) if e.is_transient())
    }
}

/// Why one customer row was skipped (counted per reason by the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("no phone")]
    NoPhone,
    #[error("invalid phone: {0}")]
    InvalidPhone(PhoneError),
    #[error("{0}")]
    Field(FieldError),
}

impl SkipReason {
    /// A short stable label for counters and job-run records.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::NoPhone => "no_phone",
            SkipReason::InvalidPhone(_) => "invalid_phone",
            SkipReason::Field(_) => "bad_field",
        }
    }
}

/// Reads a row's `phone` column as a normalised mobile number.
pub fn phone_of(row: &Row) -> Result<E164, SkipReason> {
    match row.text("phone").map_err(SkipReason::Field)? {
        None => Err(SkipReason::NoPhone),
        Some(p) => phone::normalise(&p).map_err(SkipReason::InvalidPhone),
    }
}

/// A customer to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub account: String,
    pub phone: E164,
    pub name: Option<String>,
    pub station: Option<String>,
}

/// The contacts the marketing system records for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountContacts {
    pub account: String,
    pub name: Option<String>,
    pub station: Option<String>,
    /// Valid, distinct phones, in the order the database gave them.
    pub phones: Vec<E164>,
    /// Rows skipped (no or invalid phone).
    pub skipped: Vec<SkipReason>,
}

/// An account a phone is recorded for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    pub account: String,
    pub name: Option<String>,
    pub station: Option<String>,
}

/// An account's latest posted bill.
#[derive(Debug, Clone, PartialEq)]
pub struct BillSummary {
    pub period: String,
    pub amount_cents: i64,
    pub name: Option<String>,
    pub kwh: Option<f64>,
    pub due_date: Option<NaiveDate>,
    pub late_fee_cents: Option<i64>,
    pub revision: Option<i64>,
}

/// What an account owes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrears {
    pub amount_cents: i64,
    pub due_date: Option<NaiveDate>,
    pub late_fee_cents: Option<i64>,
}

/// A feeder line (and transformer area) that supplies an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supply {
    pub feeder: String,
    pub area: Option<String>,
}

/// Who a customer list is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Feeder(String),
    Area(String),
    /// Organisation-code prefix of supply stations.
    Station(String),
}

impl Audience {
    fn query(&self) -> (&'static str, &'static str, &str) {
        match self {
            Audience::Feeder(c) => ("customers_on_feeder", "feeder", c),
            Audience::Area(c) => ("customers_in_area", "area", c),
            Audience::Station(c) => ("customers_in_station", "station", c),
        }
    }
}

/// The marketing database as gridsms uses it.
#[derive(Clone)]
pub struct Directory {
    source: Arc<dyn Source>,
    queries: Arc<Queries>,
    tz: Tz,
}

impl Directory {
    pub fn new(source: Arc<dyn Source>, queries: Arc<Queries>, tz: Tz) -> Directory {
        Directory {
            source,
            queries,
            tz,
        }
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    pub fn queries(&self) -> &Queries {
        &self.queries
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// True when the named query is configured (the feature using it is on).
    pub fn has(&self, name: &str) -> bool {
        self.queries.get(name).is_some()
    }

    fn query(&self, name: &'static str) -> Result<&Query, MarketingError> {
        self.queries
            .get(name)
            .ok_or(MarketingError::NotConfigured(name))
    }

    /// Run a configured query; rows stream.
    pub fn stream(
        &self,
        name: &'static str,
        params: &[(&str, Value)],
    ) -> Result<RowStream, MarketingError> {
        Ok(self.source.stream(self.query(name)?, params))
    }

    /// Run a small lookup and collect at most [`LOOKUP_ROW_CAP`] rows.
    async fn collect(
        &self,
        name: &'static str,
        params: &[(&str, Value)],
    ) -> Result<Vec<Row>, MarketingError> {
        let mut rows = self.stream(name, params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await {
            out.push(row?);
            if out.len() >= LOOKUP_ROW_CAP {
                tracing::warn!(
                    query = name,
                    "lookup returned too many rows; the rest ignored"
                );
                break;
            }
        }
        Ok(out)
    }

    /// The contacts of `account`; `None` when the marketing system does not know it.
    pub async fn account_contacts(
        &self,
        account: &str,
    ) -> Result<Option<AccountContacts>, MarketingError> {
        let rows = self
            .collect("account_contacts", &[("account", account.into())])
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = AccountContacts {
            account: account.to_owned(),
            name: None,
            station: None,
            phones: Vec::new(),
            skipped: Vec::new(),
        };
        for row in &rows {
            out.name = out.name.or(row.text("name").ok().flatten());
            out.station = out.station.or(row.text("station").ok().flatten());
            match phone_of(row) {
                Ok(p) if !out.phones.contains(&p) => out.phones.push(p),
                Ok(_) => {}
                Err(skip) => out.skipped.push(skip),
            }
        }
        Ok(Some(out))
    }

    /// The accounts whose recorded contact phone is `phone`.
    pub async fn accounts_of_phone(&self, phone: &E164) -> Result<Vec<AccountRef>, MarketingError> {
        let rows = self
            .collect("accounts_of_phone", &[("phone", phone.national().into())])
            .await?;
        let mut out: Vec<AccountRef> = Vec::new();
        for row in &rows {
            let account = field("accounts_of_phone", row.text("account"))?;
            let Some(account) = account else { continue };
            if out.iter().any(|a| a.account == account) {
                continue;
            }
            out.push(AccountRef {
                account,
                name: row.text("name").ok().flatten(),
                station: row.text("station").ok().flatten(),
            });
        }
        Ok(out)
    }

    /// The latest posted bill of `account`, `None` when there is none.
    pub async fn latest_bill(&self, account: &str) -> Result<Option<BillSummary>, MarketingError> {
        const Q: &str = "latest_bill";
        let rows = self.collect(Q, &[("account", account.into())]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (Some(period), Some(amount_cents)) = (
            field(Q, row.text("period"))?,
            field(Q, row.cents("amount"))?,
        ) else {
            return Ok(None);
        };
        Ok(Some(BillSummary {
            period,
            amount_cents,
            name: row.text("name").ok().flatten(),
            kwh: optional(Q, row, "kwh", Row::number)?,
            due_date: optional(Q, row, "due_date", Row::date)?,
            late_fee_cents: optional(Q, row, "late_fee", Row::cents)?,
            revision: optional(Q, row, "revision", Row::int)?,
        }))
    }

    /// What `account` owes on `today`; `None` when nothing (no row, NULL or ≤ 0).
    pub async fn arrears_of(
        &self,
        account: &str,
        today: NaiveDate,
    ) -> Result<Option<Arrears>, MarketingError> {
        const Q: &str = "account_arrears";
        let rows = self
            .collect(
                Q,
                &[("account", account.into()), ("today", Value::Date(today))],
            )
            .await?;
        let mut total: Option<Arrears> = None;
        // Several unpaid periods may come as several rows: they add up.
        for row in &rows {
            let Some(amount) = field(Q, row.cents("amount"))? else {
                continue;
            };
            let due = optional(Q, row, "due_date", Row::date)?;
            let fee = optional(Q, row, "late_fee", Row::cents)?;
            let t = total.get_or_insert(Arrears {
                amount_cents: 0,
                due_date: None,
                late_fee_cents: None,
            });
            t.amount_cents = t.amount_cents.saturating_add(amount);
            t.due_date = match (t.due_date, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(fee) = fee {
                t.late_fee_cents = Some(t.late_fee_cents.unwrap_or(0).saturating_add(fee));
            }
        }
        Ok(total.filter(|a| a.amount_cents > 0))
    }

    /// Feeder lines (and areas) that supply `account`.
    pub async fn feeders_of(&self, account: &str) -> Result<Vec<Supply>, MarketingError> {
        const Q: &str = "feeders_of_account";
        let rows = self.collect(Q, &[("account", account.into())]).await?;
        let mut out: Vec<Supply> = Vec::new();
        for row in &rows {
            let Some(feeder) = field(Q, row.text("feeder"))? else {
                continue;
            };
            let s = Supply {
                feeder,
                area: row.text("area").ok().flatten(),
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The supply stations a feeder or an area belongs to (for station-scoped tokens).
    pub async fn stations_of(
        &self,
        feeder: Option<&str>,
        area: Option<&str>,
    ) -> Result<Vec<String>, MarketingError> {
        const Q: &str = "feeder_station";
        let params = [
            ("feeder", feeder.map_or(Value::Null, Value::from)),
            ("area", area.map_or(Value::Null, Value::from)),
        ];
        let rows = self.collect(Q, &params).await?;
        let mut out = Vec::new();
        for row in &rows {
            if let Some(s) = field(Q, row.text("station"))?
                && !out.contains(&s)
            {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Customers of a feeder, area or station, streamed. Each item is a customer or the reason
    /// its row was skipped; a database error ends the stream.
    pub fn customers(&self, audience: &Audience) -> Result<CustomerStream, MarketingError> {
        let (name, param, code) = audience.query();
        Ok(CustomerStream {
            rows: self.stream(name, &[(param, code.into())])?,
        })
    }
}

/// Customers as they stream from the database.
pub struct CustomerStream {
    rows: RowStream,
}

impl CustomerStream {
    pub async fn next(&mut self) -> Option<Result<Result<Customer, SkipReason>, MarketingError>> {
        let row = match self.rows.next().await? {
            Ok(row) => row,
            Err(e) => return Some(Err(e.into())),
        };
        Some(Ok(customer_of(&row)))
    }
}

/// A customer row: `account` and `phone`, optional `name` and `station`.
pub fn customer_of(row: &Row) -> Result<Customer, SkipReason> {
    let account = row
        .text("account")
        .map_err(SkipReason::Field)?
        .ok_or(SkipReason::Field(FieldError::Type {
            column: "account".into(),
            value: "NULL".into(),
            wanted: "an account number",
        }))?;
    let phone = phone_of(row)?;
    Ok(Customer {
        account,
        phone,
        name: row.text("name").ok().flatten(),
        station: row.text("station").ok().flatten(),
    })
}

fn field<T>(query: &'static str, r: Result<T, FieldError>) -> Result<T, MarketingError> {
    r.map_err(|error| MarketingError::Field { query, error })
}

/// An optional column: absent → `None`; present but unreadable → an error.
fn optional<T>(
    query: &'static str,
    row: &Row,
    column: &str,
    read: fn(&Row, &str) -> Result<Option<T>, FieldError>,
) -> Result<Option<T>, MarketingError> {
    if row.get(column).is_none() {
        return Ok(None);
    }
    field(query, read(row, column))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marketing::source::{SourceConfig, open};
    use std::time::Duration;

    async fn directory(schema: &str, queries: &[(&str, &str)]) -> (tempfile::TempDir, Directory) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mk.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(schema)
            .unwrap();
        let source = open(&SourceConfig {
            url: format!("sqlite://{}", path.display()),
            password: None,
            connect_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_secs(5),
        })
        .unwrap();
        let queries = Queries::parse(queries.iter().copied()).unwrap();
        (
            dir,
            Directory::new(source, Arc::new(queries), chrono_tz::Asia::Shanghai),
        )
    }

    #[tokio::test]
    async fn contacts_normalised_deduplicated_and_bad_rows_skipped() {
        let (_d, dir) = directory(
            "CREATE TABLE c (acct TEXT, tel TEXT, nm TEXT);
             INSERT INTO c VALUES ('A1', '138 0013 8000', '张三'), ('A1', '+8613800138000', NULL),
                                  ('A1', NULL, NULL), ('A1', '12345', NULL);",
            &[(
                "account_contacts",
                "SELECT tel AS phone, nm AS name FROM c WHERE acct = :account",
            )],
        )
        .await;
        let c = dir.account_contacts("A1").await.unwrap().unwrap();
        assert_eq!(c.phones.len(), 1);
        assert_eq!(c.phones[0].as_str(), "+8613800138000");
        assert_eq!(c.name.as_deref(), Some("张三"));
        let labels: Vec<_> = c.skipped.iter().map(SkipReason::label).collect();
        assert_eq!(labels, vec!["no_phone", "invalid_phone"]);
        assert_eq!(dir.account_contacts("NOPE").await.unwrap(), None);
        assert!(matches!(
            dir.latest_bill("A1").await,
            Err(MarketingError::NotConfigured("latest_bill"))
        ));
    }

    #[tokio::test]
    async fn arrears_add_up_and_paid_accounts_owe_nothing() {
        let (_d, dir) = directory(
            "CREATE TABLE r (acct TEXT, owed TEXT, due TEXT);
             INSERT INTO r VALUES ('A1', '100.50', '2026-10-25'), ('A1', '20', '2026-11-25'),
                                  ('A2', '0.00', '2026-11-25');",
            &[(
                "account_arrears",
                "SELECT owed AS amount, due AS due_date FROM r WHERE acct = :account",
            )],
        )
        .await;
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let a = dir.arrears_of("A1", today).await.unwrap().unwrap();
        assert_eq!(a.amount_cents, 12050);
        assert_eq!(a.due_date, NaiveDate::from_ymd_opt(2026, 10, 25));
        assert_eq!(dir.arrears_of("A2", today).await.unwrap(), None);
        assert_eq!(dir.arrears_of("A3", today).await.unwrap(), None);
    }

    #[tokio::test]
    async fn customers_stream_with_skips() {
        let (_d, dir) = directory(
            "CREATE TABLE f (acct TEXT, tel TEXT, feeder TEXT);
             INSERT INTO f VALUES ('A1', '13800138000', 'F1'), ('A2', '', 'F1'),
                                  ('A3', '13900139000', 'F2');",
            &[(
                "customers_on_feeder",
                "SELECT acct AS account, tel AS phone FROM f WHERE feeder = :feeder",
            )],
        )
        .await;
        let mut s = dir.customers(&Audience::Feeder("F1".into())).unwrap();
        let mut got = Vec::new();
        while let Some(item) = s.next().await {
            got.push(item.unwrap().map(|c| c.account));
        }
        assert_eq!(got, vec![Ok("A1".to_owned()), Err(SkipReason::NoPhone)]);
    }
}
