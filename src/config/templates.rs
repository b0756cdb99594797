//! `[templates]`: the signature, the unsubscribe hint and one text per notice kind, checked at
//! load (an unknown placeholder, or one the kind never fills, is an error naming the key).

use super::{KeyPath, Problems};
use crate::templates::{NoticeKind, Templates};
use serde::{Deserialize, Serializer};

/// Keys are the notice kinds, so a misspelt kind is an unknown key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplates {
    pub signature: Option<String>,
    pub unsubscribe_hint: Option<String>,
    pub bill: Option<String>,
    pub bill_corrected: Option<String>,
    pub reminder: Option<String>,
    pub outage_planned: Option<String>,
    pub outage_reminder: Option<String>,
    pub outage_changed: Option<String>,
    pub outage_cancelled: Option<String>,
    pub broadcast: Option<String>,
}

impl RawTemplates {
    fn overrides(&self) -> Vec<(NoticeKind, &str)> {
        [
            (NoticeKind::Bill, &self.bill),
            (NoticeKind::BillCorrected, &self.bill_corrected),
            (NoticeKind::Reminder, &self.reminder),
            (NoticeKind::OutagePlanned, &self.outage_planned),
            (NoticeKind::OutageReminder, &self.outage_reminder),
            (NoticeKind::OutageChanged, &self.outage_changed),
            (NoticeKind::OutageCancelled, &self.outage_cancelled),
            (NoticeKind::Broadcast, &self.broadcast),
        ]
        .into_iter()
        .filter_map(|(k, t)| t.as_deref().map(|t| (k, t)))
        .collect()
    }
}

/// Looks like a link: customers are taught that genuine utility SMS never carry one.
fn has_link(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["http://", "https://", "www.", ".cn/", ".com/"]
        .iter()
        .any(|l| lower.contains(l))
}

pub(super) fn validate(raw: RawTemplates, at: &KeyPath, p: &mut Problems) -> Templates {
    if let Some(sig) = raw.signature.as_deref() {
        let sig = sig.trim();
        if sig.is_empty() {
            p.warn(
                &at.key("signature"),
                "empty: carriers reject or filter SMS without the sender's registered signature",
            );
        } else if !(sig.starts_with('【') && sig.ends_with('】')) {
            p.warn(
                &at.key("signature"),
                "a registered signature is written in 【】 brackets, e.g. \"【某某供电公司】\"",
            );
        }
    }
    for (kind, text) in raw.overrides() {
        if has_link(text) {
            p.warn(
                &at.key(kind.key()),
                "contains a link; customers are taught that genuine utility SMS never do",
            );
        }
    }
    let overrides = raw.overrides();
    match Templates::parse(
        raw.signature.as_deref(),
        raw.unsubscribe_hint.as_deref(),
        overrides,
    ) {
        Ok(t) => t,
        Err(errors) => {
            for (kind, e) in errors {
                p.error(&at.key(kind.key()), e.to_string());
            }
            Templates::default()
        }
    }
}

/// Printed by `check-config`: every template as it is in effect.
pub(super) fn serialize<S: Serializer>(t: &Templates, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(2 + NoticeKind::ALL.len()))?;
    map.serialize_entry("signature", &t.signature)?;
    map.serialize_entry("unsubscribe_hint", &t.unsubscribe_hint)?;
    for kind in NoticeKind::ALL {
        if let Some(tpl) = t.template(kind) {
            map.serialize_entry(kind.key(), tpl.source())?;
        }
    }
    map.end()
}
