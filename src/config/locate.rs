//! Key paths (`modem[2].daily_limit`) and where they sit in the source text.
//!
//! Validation names problems by key path; serde's parse errors come with a byte span. Both are
//! rendered as `file:line:col: key: message`, so this module maps paths to spans and spans to
//! paths over toml's spanned document tree.

use std::fmt;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path to a value in the config, printed as `api.tokens[0].secret_file`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// This path extended by a table key.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// A parsed document to ask positions of; `None` inside when the text is not valid TOML.
pub struct SourceMap<'s> {
    text: &'s str,
    doc: Option<Spanned<DeTable<'s>>>,
}

impl<'s> SourceMap<'s> {
    pub fn new(text: &'s str) -> Self {
        SourceMap {
            text,
            doc: DeTable::parse(text).ok(),
        }
    }

    /// The span of the value at `path`, or of the nearest enclosing value that exists (a
    /// missing key points at its table).
    pub fn span_of(&self, path: &KeyPath) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut best = None;
        let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
        let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
        for seg in &path.0 {
            let next = match (seg, table, array) {
                (Seg::Key(k), Some(t), _) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                    .map(|(key, v)| (key.span(), v)),
                (Seg::Index(i), _, Some(a)) => a.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((key_span, value)) = next else { break };
            // Tables of `[[modem]]` arrays span their header; prefer the key for scalars.
            best = Some(match value.get_ref() {
                DeValue::Table(_) | DeValue::Array(_) => key_span.clone(),
                _ => value.span(),
            });
            table = match value.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
            array = match value.get_ref() {
                DeValue::Array(a) => Some(a),
                _ => None,
            };
        }
        best
    }

    /// The deepest key path whose key or value covers byte `offset`. Containers are searched
    /// whatever their own span, since a `[[table]]`'s span is only its header.
    pub fn path_at(&self, offset: usize) -> KeyPath {
        let mut path = KeyPath::root();
        if let Some(doc) = self.doc.as_ref() {
            find_in_table(doc.get_ref(), offset, &mut path);
        }
        path
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, col)
    }
}

fn find_in_table(t: &DeTable<'_>, offset: usize, path: &mut KeyPath) -> bool {
    for (k, v) in t.iter() {
        path.0.push(Seg::Key(k.get_ref().to_string()));
        if find_in_value(v, offset, path) || covers(k.span(), offset) {
            return true;
        }
        path.0.pop();
    }
    false
}

fn find_in_value(v: &Spanned<DeValue<'_>>, offset: usize, path: &mut KeyPath) -> bool {
    match v.get_ref() {
        DeValue::Table(t) => find_in_table(t, offset, path) || covers(v.span(), offset),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.0.push(Seg::Index(i));
                if find_in_value(item, offset, path) {
                    return true;
                }
                path.0.pop();
            }
            covers(v.span(), offset)
        }
        _ => covers(v.span(), offset),
    }
}

fn covers(span: Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[storage]\npath = \"x.db\"\n\n[[modem]]\nname = \"a\"\n\n[[modem]]\nname = \"b\"\ndaily_limit = 5\n";

    #[test]
    fn paths_print_like_toml_keys() {
        let p = KeyPath::root()
            .key("api")
            .key("tokens")
            .index(0)
            .key("secret_file");
        assert_eq!(p.to_string(), "api.tokens[0].secret_file");
    }

    #[test]
    fn finds_values_and_their_paths() {
        let map = SourceMap::new(DOC);
        let p = KeyPath::root().key("modem").index(1).key("daily_limit");
        let Some(span) = map.span_of(&p) else {
            panic!("span")
        };
        assert_eq!(map.line_col(span.start), (9, 15));
        assert_eq!(map.path_at(span.start), p);
        // A missing key points at its table.
        let missing = KeyPath::root().key("modem").index(1).key("device");
        let Some(span) = map.span_of(&missing) else {
            panic!("span")
        };
        assert_eq!(map.line_col(span.start).0, 7);
        assert_eq!(map.line_col(0), (1, 1));
    }
}
