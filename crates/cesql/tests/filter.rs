//! The Subscriptions API filter dialects: parsing, errors, evaluation,
//! serialization.

use cesql::filter::{Filter, FilterError, MAX_FILTER_DEPTH, MatchKind};
use cesql::{ErrorKind, MapEvent};
use serde_json::{Value, json};

fn event() -> MapEvent {
    MapEvent::new()
        .with("specversion", "1.0".to_string())
        .with("id", "42".to_string())
        .with("source", "/shop/eu".to_string())
        .with("type", "com.example.order.created".to_string())
        .with("subject", "order-12345".to_string())
        .with("seq", 12)
        .with("urgent", true)
}

fn matches(f: Value) -> bool {
    Filter::from_json(&f)
        .unwrap_or_else(|e| panic!("{f}: {e}"))
        .matches(&event())
}

fn error(f: Value) -> FilterError {
    Filter::from_json(&f).expect_err("should be rejected")
}

#[test]
fn exact_prefix_suffix() {
    assert!(matches(
        json!({"exact": {"type": "com.example.order.created"}})
    ));
    assert!(!matches(json!({"exact": {"type": "com.example.order"}})));
    assert!(!matches(
        json!({"exact": {"type": "COM.example.order.created"}})
    ));
    assert!(matches(
        json!({"prefix": {"type": "com.example.", "source": "/shop/"}})
    ));
    assert!(!matches(
        json!({"prefix": {"type": "com.example.", "source": "/store/"}})
    ));
    assert!(matches(
        json!({"suffix": {"subject": "-12345", "type": ".created"}})
    ));
    assert!(!matches(json!({"suffix": {"subject": "-1234"}})));
}

#[test]
fn dialects_compare_canonical_strings() {
    assert!(matches(json!({"exact": {"seq": "12"}})));
    assert!(matches(json!({"prefix": {"seq": "1"}})));
    assert!(matches(json!({"exact": {"urgent": "true"}})));
    assert!(!matches(json!({"exact": {"urgent": "TRUE"}})));
}

#[test]
fn missing_attributes_do_not_match() {
    assert!(!matches(json!({"exact": {"tenant": "acme"}})));
    assert!(!matches(json!({"prefix": {"tenant": "a"}})));
    assert!(!matches(json!({"suffix": {"tenant": "e"}})));
    assert!(matches(json!({"not": {"exact": {"tenant": "acme"}}})));
}

#[test]
fn combinators() {
    let t = json!({"exact": {"id": "42"}});
    let f = json!({"exact": {"id": "43"}});
    assert!(matches(json!({"all": [t, t]})));
    assert!(!matches(json!({"all": [t, f]})));
    assert!(matches(json!({"any": [f, t]})));
    assert!(!matches(json!({"any": [f, f]})));
    assert!(matches(json!({"not": f})));
    assert!(!matches(json!({"not": {"not": f}})));
    assert!(matches(
        json!({"all": [{"any": [f, {"not": f}]}, {"sql": "seq > 10"}]})
    ));
}

#[test]
fn sql_dialect() {
    assert!(matches(
        json!({"sql": "type LIKE 'com.example.%' AND seq = 12"})
    ));
    assert!(!matches(json!({"sql": "seq = 13"})));
    assert!(matches(json!({"sql": "urgent"})));
    // Errors make the sql filter false (and its negation true).
    assert!(!matches(json!({"sql": "tenant = 'acme'"})));
    assert!(matches(json!({"not": {"sql": "tenant = 'acme'"}})));
    let f = Filter::from_json(&json!({"any": [{"sql": "tenant = 'a'"}, {"exact": {"id": "42"}}]}))
        .unwrap();
    let (pass, errors) = f.matches_with_errors(&event());
    assert!(pass);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind(), ErrorKind::MissingAttribute);
}

#[test]
fn a_list_is_an_implicit_all() {
    let list = vec![
        json!({"prefix": {"type": "com.example."}}),
        json!({"sql": "subject LIKE 'order-%'"}),
    ];
    let f = Filter::from_json_list(&list).unwrap();
    assert!(f.matches(&event()));
    assert_eq!(f.to_json_list(), list);
    let empty = Filter::from_json_list(&[]).unwrap();
    assert!(empty.matches(&event()), "no filters: everything passes");
    assert!(empty.to_json_list().is_empty());
    let failing = Filter::from_json_list(&[json!({"exact": {"id": "1"}})]).unwrap();
    assert!(!failing.matches(&event()));
    let err =
        Filter::from_json_list(&[json!({"exact": {"id": "1"}}), json!({"bogus": {}})]).unwrap_err();
    assert_eq!(
        err,
        FilterError::UnknownDialect {
            path: "/1".into(),
            dialect: "bogus".into()
        }
    );
}

#[test]
fn errors_name_the_problem() {
    assert!(
        matches!(error(json!({"regex": {"type": "x"}})), FilterError::UnknownDialect { dialect, .. } if dialect == "regex")
    );
    assert!(matches!(
        error(json!({"exact": {"": "x"}})),
        FilterError::EmptyAttributeName {
            dialect: "exact",
            ..
        }
    ));
    assert!(matches!(
        error(json!({"prefix": {"type": ""}})),
        FilterError::EmptyValue {
            dialect: "prefix",
            ..
        }
    ));
    assert!(matches!(
        error(json!({"suffix": {"type": 1}})),
        FilterError::NonStringValue {
            dialect: "suffix",
            ..
        }
    ));
    assert!(matches!(
        error(json!({"exact": {}})),
        FilterError::Empty {
            dialect: "exact",
            ..
        }
    ));
    assert!(matches!(
        error(json!({"exact": "type"})),
        FilterError::WrongType {
            dialect: "exact",
            ..
        }
    ));
    assert!(matches!(
        error(json!({"all": []})),
        FilterError::Empty { dialect: "all", .. }
    ));
    assert!(matches!(
        error(json!({"any": {}})),
        FilterError::WrongType { dialect: "any", .. }
    ));
    assert!(matches!(
        error(json!({"not": []})),
        FilterError::WrongType { dialect: "not", .. }
    ));
    assert!(matches!(
        error(json!({"sql": 1})),
        FilterError::WrongType { dialect: "sql", .. }
    ));
    assert!(matches!(error(json!({})), FilterError::NoDialect { .. }));
    assert!(matches!(
        error(json!([])),
        FilterError::NotAnObject {
            found: "an array",
            ..
        }
    ));
    let several = error(json!({"exact": {"id": "1"}, "prefix": {"id": "1"}}));
    assert!(matches!(&several, FilterError::SeveralDialects { keys, .. } if keys.len() == 2));
    assert!(several.to_string().contains("exactly one dialect key"));
}

#[test]
fn invalid_sql_is_rejected_with_its_position() {
    let e = error(json!({"all": [{"exact": {"id": "1"}}, {"sql": "type = 'x' AND (id"}]}));
    match &e {
        FilterError::InvalidSql { path, error } => {
            assert_eq!(path, "/all/1/sql");
            assert_eq!(error.column(), 19);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "/all/1/sql: invalid CESQL expression: expected ')', found end of input (line 1, column 19)"
    );
    assert!(matches!(
        error(json!({"sql": "NOPE(type)"})),
        FilterError::UnusableSql { .. }
    ));
    assert!(matches!(
        error(json!({"sql": "seq / 0 = 1"})),
        FilterError::UnusableSql { .. }
    ));
    let e = error(json!({"sql": "seq + 1"}));
    assert!(e.to_string().contains("yields Integer"), "{e}");
    assert!(Filter::sql("type = 'x'").is_ok());
}

#[test]
fn error_paths_point_into_nested_filters() {
    let e = error(json!({"any": [{"not": {"exact": {"a/b": ""}}}]}));
    assert_eq!(
        e,
        FilterError::EmptyValue {
            path: "/any/0/not/exact/a~1b".into(),
            dialect: "exact",
            attribute: "a/b".into()
        }
    );
}

#[test]
fn nesting_is_limited() {
    let mut f = json!({"exact": {"id": "42"}});
    for _ in 0..MAX_FILTER_DEPTH {
        f = json!({"not": f});
    }
    assert!(Filter::from_json(&f).is_ok());
    let f = json!({"not": f});
    assert!(matches!(
        Filter::from_json(&f),
        Err(FilterError::TooDeep { .. })
    ));
}

#[test]
fn json_round_trip() {
    let docs = [
        json!({"exact": {"id": "1", "type": "t"}}),
        json!({"all": [{"prefix": {"type": "a"}}, {"any": [{"suffix": {"source": "x"}}, {"not": {"sql": "seq > 1"}}]}]}),
        json!({"sql": "type LIKE 'a%'"}),
    ];
    for doc in docs {
        let f = Filter::from_json(&doc).unwrap();
        assert_eq!(f.to_json(), doc);
        let text = serde_json::to_string(&f).unwrap();
        let back: Filter = serde_json::from_str(&text).unwrap();
        assert_eq!(back, f);
    }
    assert!(serde_json::from_str::<Filter>(r#"{"exact": {}}"#).is_err());
}

#[test]
fn tree_is_inspectable() {
    let f = Filter::from_json(&json!({"prefix": {"type": "a"}})).unwrap();
    assert_eq!(
        f,
        Filter::Attributes {
            kind: MatchKind::Prefix,
            entries: vec![("type".into(), "a".into())]
        }
    );
}
