//! Matching an event against every subscription without testing every subscription.
//!
//! Each subscription is filed under one *anchor*: a condition it cannot match without, that
//! one lookup can test for a whole group at once. The most selective one found is used:
//!
//! 1. an exact `type` (the subscription's `types`, or an `exact` filter on `type` at the top
//!    of its filters): a hash lookup on the event's type;
//! 2. an exact `source` (its `source`, or an `exact` filter on `source`): a hash lookup;
//! 3. a `prefix` filter on `source` or `type`: one hash lookup per distinct prefix length
//!    among the subscriptions (a handful in practice);
//! 4. none (a CESQL-only or `any`/`not` filter): tested for every event.
//!
//! Only the candidates an event's anchors select are then tested in full, so the cost of
//! matching grows with the subscriptions that could match, not with all of them. Matches are
//! reported in subscription order, as a full scan would.

use std::collections::{BTreeMap, HashMap};

use cesql::{Filter, MatchKind};
use cloudevent::Event;
use delivery::{Subscription, SubscriptionId};

/// One subscription's conditions: `source` (exact), `types` (any of), `filters` (all).
struct Matcher {
    id: SubscriptionId,
    source: Option<String>,
    types: Option<Vec<String>>,
    filter: Option<Filter>,
}

impl Matcher {
    fn compile(sub: &Subscription) -> Option<Matcher> {
        let filter = match sub.filters.as_deref() {
            None | Some([]) => None,
            Some(filters) => match Filter::from_json_list(filters) {
                Ok(filter) => Some(filter),
                Err(error) => {
                    // The API refuses such filters; a stored one can only come from an older
                    // version. It matches nothing rather than everything.
                    tracing::error!(subscription = %sub.id, %error,
                        "subscription filters do not compile; it receives no events");
                    return None;
                }
            },
        };
        Some(Matcher {
            id: sub.id.clone(),
            source: sub.source.clone(),
            types: sub.types.clone().filter(|t| !t.is_empty()),
            filter,
        })
    }

    fn matches(&self, event: &Event) -> bool {
        self.source.as_deref().is_none_or(|s| s == event.source())
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| t == event.ty()))
            && self.filter.as_ref().is_none_or(|f| f.matches(event))
    }

    /// The anchor this subscription is filed under.
    fn anchor(&self) -> Anchor {
        if let Some(types) = &self.types {
            return Anchor::Types(types.clone());
        }
        let required = self.filter.as_ref().map(required).unwrap_or_default();
        let find = |kind: MatchKind, attribute: &str| {
            required
                .iter()
                .find(|(k, a, _)| *k == kind && *a == attribute)
                .map(|(_, _, v)| (*v).to_owned())
        };
        if let Some(ty) = find(MatchKind::Exact, "type") {
            return Anchor::Types(vec![ty]);
        }
        if let Some(source) = self
            .source
            .clone()
            .or_else(|| find(MatchKind::Exact, "source"))
        {
            return Anchor::Source(source);
        }
        for attribute in [Attribute::Source, Attribute::Type] {
            if let Some(prefix) = find(MatchKind::Prefix, attribute.name()) {
                return Anchor::Prefix(attribute, prefix);
            }
        }
        Anchor::None
    }
}

/// The attribute-map conditions every event matching `filter` meets: the filter itself, or
/// the members of a top-level `all` (and of `all`s within it).
fn required(filter: &Filter) -> Vec<(MatchKind, &str, &str)> {
    match filter {
        Filter::Attributes { kind, entries } => entries
            .iter()
            .map(|(a, v)| (*kind, a.as_str(), v.as_str()))
            .collect(),
        Filter::All(members) => members.iter().flat_map(required).collect(),
        Filter::Any(_) | Filter::Not(_) | Filter::Sql(_) => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Attribute {
    Source,
    Type,
}

impl Attribute {
    fn name(self) -> &'static str {
        match self {
            Attribute::Source => "source",
            Attribute::Type => "type",
        }
    }

    fn of(self, event: &Event) -> &str {
        match self {
            Attribute::Source => event.source(),
            Attribute::Type => event.ty(),
        }
    }
}

enum Anchor {
    Types(Vec<String>),
    Source(String),
    Prefix(Attribute, String),
    None,
}

/// The compiled subscriptions, filed by anchor.
#[derive(Default)]
pub struct SubscriptionIndex {
    matchers: Vec<Matcher>,
    by_type: HashMap<String, Vec<u32>>,
    by_source: HashMap<String, Vec<u32>>,
    /// By attribute, then prefix length (in bytes), then prefix.
    by_prefix: BTreeMap<(Attribute, usize), HashMap<String, Vec<u32>>>,
    unanchored: Vec<u32>,
}

impl SubscriptionIndex {
    /// Compiles and files `subscriptions` (in the order matches are reported).
    pub fn build<'a>(subscriptions: impl IntoIterator<Item = &'a Subscription>) -> Self {
        let mut index = SubscriptionIndex::default();
        for sub in subscriptions {
            let Some(matcher) = Matcher::compile(sub) else {
                continue;
            };
            let at = u32::try_from(index.matchers.len()).expect("fewer than 2^32 subscriptions");
            match matcher.anchor() {
                Anchor::Types(types) => {
                    for ty in types {
                        let list = index.by_type.entry(ty).or_default();
                        // A type listed twice files the subscription once.
                        if list.last() != Some(&at) {
                            list.push(at);
                        }
                    }
                }
                Anchor::Source(source) => index.by_source.entry(source).or_default().push(at),
                Anchor::Prefix(attribute, prefix) => index
                    .by_prefix
                    .entry((attribute, prefix.len()))
                    .or_default()
                    .entry(prefix)
                    .or_default()
                    .push(at),
                Anchor::None => index.unanchored.push(at),
            }
            index.matchers.push(matcher);
        }
        index
    }

    /// How many subscriptions are indexed.
    pub fn len(&self) -> usize {
        self.matchers.len()
    }

    /// Whether no subscription is indexed.
    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// Calls `matched` with the id of every subscription `event` matches, in subscription
    /// order.
    pub fn matching(&self, event: &Event, mut matched: impl FnMut(&SubscriptionId)) {
        if self.matchers.is_empty() {
            return;
        }
        let mut candidates: Vec<u32> = Vec::new();
        if let Some(list) = self.by_type.get(event.ty()) {
            candidates.extend_from_slice(list);
        }
        if let Some(list) = self.by_source.get(event.source()) {
            candidates.extend_from_slice(list);
        }
        for ((attribute, len), prefixes) in &self.by_prefix {
            let value = attribute.of(event);
            if let Some(head) = value.get(..*len)
                && let Some(list) = prefixes.get(head)
            {
                candidates.extend_from_slice(list);
            }
        }
        candidates.extend_from_slice(&self.unanchored);
        // Each subscription is filed once, so the candidates hold no duplicates.
        candidates.sort_unstable();
        for at in candidates {
            let matcher = &self.matchers[at as usize];
            if matcher.matches(event) {
                matched(&matcher.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use delivery::Protocol;
    use serde_json::json;

    fn sub(id: &str, f: impl FnOnce(&mut Subscription)) -> Subscription {
        let mut s = Subscription::new(id, Protocol::Http, "http://127.0.0.1:1/".to_owned());
        f(&mut s);
        s
    }

    fn event(ty: &str, source: &str, subject: &str) -> Event {
        Event::builder()
            .id("1")
            .source(source)
            .ty(ty)
            .subject(subject)
            .build()
            .unwrap()
    }

    /// The index agrees with testing every subscription, whatever its anchor.
    #[test]
    fn the_index_matches_what_a_full_scan_matches() {
        let subs = vec![
            sub("types", |s| {
                s.types = Some(vec!["a".into(), "b".into(), "a".into()])
            }),
            sub("source", |s| s.source = Some("/shop".into())),
            sub("exact-type", |s| {
                s.filters = Some(vec![json!({"exact": {"type": "a", "subject": "x"}})])
            }),
            sub("exact-source", |s| {
                s.filters = Some(vec![json!({"all": [{"exact": {"source": "/shop"}}]})])
            }),
            sub("prefix-source", |s| {
                s.filters = Some(vec![json!({"prefix": {"source": "/sh"}})])
            }),
            sub("prefix-type", |s| {
                s.filters = Some(vec![json!({"prefix": {"type": "com."}})])
            }),
            sub("sql", |s| {
                s.filters = Some(vec![json!({"sql": "subject = 'x'"})])
            }),
            sub("any", |s| {
                s.filters = Some(vec![
                    json!({"any": [{"exact": {"type": "a"}}, {"exact": {"type": "c"}}]}),
                ])
            }),
            sub("everything", |_| {}),
            sub("both", |s| {
                s.source = Some("/other".into());
                s.types = Some(vec!["a".into()]);
            }),
        ];
        let index = SubscriptionIndex::build(&subs);
        let full: Vec<Matcher> = subs.iter().filter_map(Matcher::compile).collect();
        for ty in ["a", "b", "c", "com.x", "co"] {
            for source in ["/shop", "/sh", "/s", "/other"] {
                for subject in ["x", "y"] {
                    let e = event(ty, source, subject);
                    let mut got = Vec::new();
                    index.matching(&e, |id| got.push(id.as_str().to_owned()));
                    let want: Vec<String> = full
                        .iter()
                        .filter(|m| m.matches(&e))
                        .map(|m| m.id.as_str().to_owned())
                        .collect();
                    assert_eq!(got, want, "type {ty}, source {source}, subject {subject}");
                }
            }
        }
    }

    #[test]
    fn anchors_are_the_most_selective_condition() {
        let m = |f: &mut dyn FnMut(&mut Subscription)| {
            let mut s = sub("s", |_| {});
            f(&mut s);
            Matcher::compile(&s).unwrap().anchor()
        };
        assert!(matches!(
            m(&mut |s| s.types = Some(vec!["t".into()])),
            Anchor::Types(_)
        ));
        assert!(matches!(
            m(&mut |s| s.source = Some("/s".into())),
            Anchor::Source(_)
        ));
        assert!(matches!(
            m(&mut |s| s.filters = Some(vec![json!({"prefix": {"source": "/s"}})])),
            Anchor::Prefix(Attribute::Source, _)
        ));
        assert!(matches!(
            m(&mut |s| s.filters = Some(vec![json!({"not": {"exact": {"type": "t"}}})])),
            Anchor::None
        ));
    }
}
