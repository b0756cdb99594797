//! The contract between the site's SQL and gridsms: every query the config may define under
//! `[marketing.queries]`, the named parameters it may use and the columns (aliases) it must
//! return.
//!
//! The bureau writes these queries against its own schema (or against views it creates for
//! us); gridsms only relies on the aliases. At start-up and in `check-config` each configured
//! query is prepared and its columns compared with [`QuerySpec::required`]: a missing alias is
//! an error naming it, found before the first poll instead of as skipped rows at 2 a.m.
//! docs/marketing.md documents each query with examples for every engine.

use super::source::{Query, SourceError};
use std::collections::BTreeMap;

/// One named query of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerySpec {
    pub name: &'static str,
    /// What it is for, shown by `check-config` and in errors.
    pub purpose: &'static str,
    /// Named parameters it may use (it need not use all of them).
    pub params: &'static [&'static str],
    /// Columns it must return.
    pub required: &'static [&'static str],
    /// Columns used when present.
    pub optional: &'static [&'static str],
}

/// Every query name gridsms understands. Parameters: `:since` is a local date-time
/// (`YYYY-MM-DD HH:MM:SS` in the bureau's zone) — rows changed after it; `:today` a local
/// date; `:account`, `:feeder`, `:area`, `:station` text codes; `:phone` an 11-digit national
/// mobile number as marketing systems store them.
pub const QUERIES: &[QuerySpec] = &[
    QuerySpec {
        name: "bills",
        purpose: "bills posted after :since, one row per account, period and contact phone",
        params: &["since"],
        required: &["account", "phone", "period", "amount", "posted_at"],
        optional: &["name", "kwh", "due_date", "late_fee", "revision", "station"],
    },
    QuerySpec {
        name: "corrections",
        purpose: "posted bills revised after :since, one row per revision and contact phone",
        params: &["since"],
        required: &[
            "account",
            "phone",
            "period",
            "revision",
            "amount",
            "revised_at",
        ],
        optional: &["name", "kwh", "due_date", "late_fee", "station"],
    },
    QuerySpec {
        name: "arrears",
        purpose: "accounts in arrears on :today, one row per account and contact phone",
        params: &["today"],
        required: &["account", "phone", "amount", "due_date"],
        optional: &["name", "late_fee", "station"],
    },
    QuerySpec {
        name: "account_arrears",
        purpose: "what :account owes now (no row or amount <= 0: nothing)",
        params: &["account", "today"],
        required: &["amount"],
        optional: &["due_date", "late_fee"],
    },
    QuerySpec {
        name: "outages",
        purpose: "planned outages created or changed after :since",
        params: &["since"],
        required: &["outage_id", "start", "end", "updated_at"],
        optional: &["feeder", "areas", "reason", "area", "status", "station"],
    },
    QuerySpec {
        name: "customers_on_feeder",
        purpose: "customers supplied by feeder line :feeder, one row per contact phone",
        params: &["feeder"],
        required: &["account", "phone"],
        optional: &["name", "station"],
    },
    QuerySpec {
        name: "customers_in_area",
        purpose: "customers in transformer area :area, one row per contact phone",
        params: &["area"],
        required: &["account", "phone"],
        optional: &["name", "station"],
    },
    QuerySpec {
        name: "customers_in_station",
        purpose: "customers of supply stations whose code starts with :station",
        params: &["station"],
        required: &["account", "phone"],
        optional: &["name", "station"],
    },
    QuerySpec {
        name: "account_contacts",
        purpose: "contact phones the marketing system records for :account (no row: unknown)",
        params: &["account"],
        required: &["phone"],
        optional: &["name", "station"],
    },
    QuerySpec {
        name: "accounts_of_phone",
        purpose: "accounts whose recorded contact phone is :phone",
        params: &["phone"],
        required: &["account"],
        optional: &["name", "station"],
    },
    QuerySpec {
        name: "latest_bill",
        purpose: "the latest posted bill of :account",
        params: &["account"],
        required: &["period", "amount"],
        optional: &["name", "kwh", "due_date", "late_fee", "revision"],
    },
    QuerySpec {
        name: "feeders_of_account",
        purpose: "feeder lines (and transformer areas) that supply :account",
        params: &["account"],
        required: &["feeder"],
        optional: &["area"],
    },
    QuerySpec {
        name: "feeder_station",
        purpose: "the supply station(s) a feeder line :feeder or a transformer area :area belongs to",
        params: &["feeder", "area"],
        required: &["station"],
        optional: &[],
    },
];

/// The spec of a query name.
pub fn spec(name: &str) -> Option<&'static QuerySpec> {
    QUERIES.iter().find(|q| q.name == name)
}

/// Required columns missing from `columns` (case-insensitive).
pub fn missing_columns(spec: &QuerySpec, columns: &[String]) -> Vec<&'static str> {
    spec.required
        .iter()
        .copied()
        .filter(|r| !columns.iter().any(|c| c.eq_ignore_ascii_case(r)))
        .collect()
}

/// Parameters `query` uses that its spec does not offer.
pub fn unknown_params<'q>(spec: &QuerySpec, query: &'q Query) -> Vec<&'q str> {
    query
        .param_names()
        .into_iter()
        .filter(|p| !spec.params.contains(p))
        .collect()
}

/// The configured queries, parsed. Features whose queries are absent are off.
#[derive(Debug, Clone, Default)]
pub struct Queries(BTreeMap<&'static str, Query>);

/// Why a configured query is unusable.
#[derive(Debug, thiserror::Error)]
pub enum QueryConfigError {
    #[error("[marketing.queries] {0}: unknown query name (known: {known})", known = known_names())]
    UnknownName(String),
    #[error("[marketing.queries] {name}: {error}")]
    Sql { name: String, error: SourceError },
    #[error(
        "[marketing.queries] {name}: unknown parameter :{param} (this query may use {allowed})"
    )]
    UnknownParam {
        name: String,
        param: String,
        allowed: String,
    },
}

fn known_names() -> String {
    QUERIES
        .iter()
        .map(|q| q.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Queries {
    /// Parse the configured SQL; every problem is returned, not only the first.
    pub fn parse<'a>(
        configured: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Queries, Vec<QueryConfigError>> {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, sql) in configured {
            let Some(spec) = spec(name) else {
                errors.push(QueryConfigError::UnknownName(name.to_owned()));
                continue;
            };
            match Query::parse(sql) {
                Ok(q) => {
                    for param in unknown_params(spec, &q) {
                        errors.push(QueryConfigError::UnknownParam {
                            name: name.to_owned(),
                            param: param.to_owned(),
                            allowed: spec
                                .params
                                .iter()
                                .map(|p| format!(":{p}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                    out.insert(spec.name, q);
                }
                Err(error) => errors.push(QueryConfigError::Sql {
                    name: name.to_owned(),
                    error,
                }),
            }
        }
        if errors.is_empty() {
            Ok(Queries(out))
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Query> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Query)> {
        self.0.iter().map(|(n, q)| (*n, q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parameters_declared() {
        for (i, q) in QUERIES.iter().enumerate() {
            assert!(
                QUERIES[i + 1..].iter().all(|o| o.name != q.name),
                "{}",
                q.name
            );
            assert!(!q.required.is_empty());
        }
    }

    #[test]
    fn unknown_names_and_parameters_are_reported_together() {
        let errs = Queries::parse([
            ("bils", "SELECT 1"),
            (
                "bills",
                "SELECT * FROM b WHERE posted > :since AND x = :feeder",
            ),
            ("arrears", "SELECT 'x"),
        ])
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].contains("bils: unknown query name"), "{}", text[0]);
        assert!(text[1].contains("unknown parameter :feeder"), "{}", text[1]);
        assert!(text[2].contains("unterminated"), "{}", text[2]);
    }

    #[test]
    fn missing_columns_named() {
        let spec = spec("bills").unwrap();
        let cols = ["ACCOUNT", "phone", "period", "amount"].map(String::from);
        assert_eq!(missing_columns(spec, &cols), vec!["posted_at"]);
    }
}
