//! Turning byte offsets from the TOML parser into line numbers and key paths.
//!
//! Serde errors (unknown key, wrong type, missing key) come with a byte span
//! but not with the key they are about. To name the key anyway, the text is
//! parsed a second time into a spanned tree and the entry whose key or value
//! most tightly encloses the error span is looked up.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// 1-based line number of a byte offset (clamped to the text).
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    // Count on bytes: '\n' never occurs inside a multi-byte UTF-8 sequence.
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key path (`component.orders.limits.timeout`,
/// `trigger.http[1]`) of the innermost entry whose key or value span
/// contains `span` (empty if none does), or `None` if the text is not valid
/// TOML at all.
pub(crate) fn key_path_at(text: &str, span: &Range<usize>) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut best: Option<(usize, String)> = None;
    walk_table(root.get_ref(), "", span, &mut best);
    Some(best.map(|(_, path)| path).unwrap_or_default())
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

fn consider(
    entry_spans: [&Range<usize>; 2],
    path: &str,
    span: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    for s in entry_spans {
        if contains(s, span) {
            let width = s.end - s.start;
            // Ties go to the later (deeper) entry, since children are visited
            // after their parents.
            if best.as_ref().is_none_or(|(w, _)| width <= *w) {
                *best = Some((width, path.to_owned()));
            }
        }
    }
}

fn walk_table(
    table: &DeTable<'_>,
    prefix: &str,
    span: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            quote_key(key.get_ref())
        } else {
            format!("{prefix}.{}", quote_key(key.get_ref()))
        };
        consider([&key.span(), &value.span()], &path, span, best);
        walk_value(value, &path, span, best);
    }
}

fn walk_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    span: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, path, span, best),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                consider([&item.span(), &item.span()], &item_path, span, best);
                walk_value(item, &item_path, span, best);
            }
        }
        _ => {}
    }
}

/// Keys that are not bare TOML keys are quoted, as they would be written.
pub(crate) fn quote_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let t = "a\nb\nc";
        assert_eq!(line_of(t, 0), 1);
        assert_eq!(line_of(t, 2), 2);
        assert_eq!(line_of(t, 4), 3);
        assert_eq!(line_of(t, 999), 3);
    }

    #[test]
    fn finds_nested_keys() {
        let t = "[a]\nx = 1\n[[b.c]]\ny = 2\n[[b.c]]\nz = { w = 3 }\n";
        let at = |needle: &str| {
            let start = t.find(needle).unwrap();
            key_path_at(t, &(start..start + needle.len())).unwrap()
        };
        assert_eq!(at("x"), "a.x");
        assert_eq!(at("y"), "b.c[0].y");
        assert_eq!(at("w"), "b.c[1].z.w");
        assert_eq!(at("3"), "b.c[1].z.w");
        assert_eq!(key_path_at("not toml = = =", &(0..1)), None);
    }

    #[test]
    fn quotes_odd_keys() {
        assert_eq!(quote_key("orders"), "orders");
        assert_eq!(quote_key("a.b"), "\"a.b\"");
        assert_eq!(quote_key(""), "\"\"");
    }
}
