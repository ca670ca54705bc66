//! Evaluation semantics beyond the conformance kit: casts, error
//! propagation, short-circuits, overflow, IN, LIKE, diagnostics.

use cesql::{ErrorKind, EvalError, Expression, MapEvent, NoAttributes, Type, Value};

fn event() -> MapEvent {
    MapEvent::new()
        .with("specversion", "1.0".to_string())
        .with("id", "1".to_string())
        .with("source", "/shop/eu".to_string())
        .with("type", "com.example.order.created".to_string())
        .with("seq", "5".to_string())
        .with("count", 7)
        .with("flag", true)
        .with("yes", "TRUE".to_string())
        .with("word", "abc".to_string())
}

/// Evaluates `s` against [`event`]: value and error kinds.
fn eval(s: &str) -> (Value<'static>, Vec<ErrorKind>) {
    let e = Expression::parse(s).unwrap_or_else(|err| panic!("{s}: {err}"));
    let ev = event();
    let r = e.evaluate(&ev).into_owned();
    (r.value, r.errors.iter().map(EvalError::kind).collect())
}

fn ok(s: &str) -> Value<'static> {
    let (v, errors) = eval(s);
    assert!(errors.is_empty(), "{s}: unexpected {errors:?}");
    v
}

fn b(v: bool) -> Value<'static> {
    Value::Boolean(v)
}

fn i(v: i32) -> Value<'static> {
    Value::Integer(v)
}

fn s(v: &str) -> Value<'static> {
    Value::from(v.to_owned())
}

#[test]
fn equality_casts_the_left_side_to_the_right_type() {
    assert_eq!(ok("seq = 5"), b(true));
    assert_eq!(
        ok("5 = seq"),
        b(true),
        "dynamic right side: cast 5 to String"
    );
    assert_eq!(ok("'05' = 5"), b(true), "String '05' as Integer is 5");
    assert_eq!(ok("5 = '05'"), b(false), "Integer 5 as String is '5'");
    assert_eq!(ok("count = '7'"), b(true));
    assert_eq!(ok("flag = 'true'"), b(true));
    assert_eq!(ok("yes = TRUE"), b(true));
    assert_eq!(ok("TRUE = 'TRUE'"), b(false));
    assert_eq!(ok("word != 'abc'"), b(false));
    assert_eq!(ok("word <> 'abd'"), b(true));
}

#[test]
fn ordering_is_integer_only() {
    assert_eq!(ok("seq < 10"), b(true));
    assert_eq!(
        ok("'10' > '9'"),
        b(true),
        "compared as integers, not strings"
    );
    assert_eq!(ok("TRUE > FALSE"), b(true));
    let (v, e) = eval("word < 1");
    assert_eq!(
        (v, e),
        (b(true), vec![ErrorKind::Cast]),
        "abc→0 with a CastError"
    );
}

#[test]
fn failed_casts_go_on_with_the_zero_value() {
    assert_eq!(eval("word + 1"), (i(1), vec![ErrorKind::Cast]));
    assert_eq!(eval("NOT word"), (b(true), vec![ErrorKind::Cast]));
    assert_eq!(eval("NOT count"), (b(true), vec![ErrorKind::Cast]));
    assert_eq!(eval("TRUE AND 1"), (b(false), vec![ErrorKind::Cast]));
    assert_eq!(eval("1 XOR TRUE"), (b(true), vec![ErrorKind::Cast]));
    assert_eq!(
        eval("BOOL(count)"),
        (b(true), vec![]),
        "explicit Integer→Boolean is fine"
    );
}

#[test]
fn operand_errors_make_the_enclosing_expression_zero() {
    assert_eq!(
        eval("missing"),
        (b(false), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        eval("missing + 1"),
        (i(0), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        eval("NOT (missing = 1)"),
        (b(false), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        eval("LENGTH(missing)"),
        (i(0), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        eval("UPPER(missing)"),
        (s(""), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        eval("missing NOT IN (1)"),
        (b(false), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        eval("'a' IN (missing)"),
        (b(false), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        eval("missing NOT LIKE 'x'"),
        (b(false), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(eval("(1 / 0) + 5"), (i(0), vec![ErrorKind::Math]));
    assert_eq!(
        eval("TRUE XOR (TRUE XOR 1)"),
        (b(false), vec![ErrorKind::Cast]),
        "an inner node's cast error is an operand error of the outer node"
    );
    assert_eq!(
        eval("TRUE XOR TRUE XOR 1"),
        (b(false), vec![ErrorKind::Cast])
    );
}

#[test]
fn complete_evaluation_collects_every_error() {
    assert_eq!(
        eval("a1 = a2"),
        (
            b(false),
            vec![ErrorKind::MissingAttribute, ErrorKind::MissingAttribute]
        )
    );
    let e = Expression::parse("CONCAT(m1, 1 / 0, m2)").unwrap();
    let r = e.evaluate(&NoAttributes);
    assert_eq!(r.value, s(""));
    assert_eq!(
        r.errors,
        vec![
            EvalError::MissingAttribute { name: "m1".into() },
            EvalError::Math {
                message: "division by zero"
            },
            EvalError::MissingAttribute { name: "m2".into() },
        ]
    );
}

#[test]
fn and_or_short_circuit() {
    assert_eq!(ok("FALSE AND missing"), b(false));
    assert_eq!(ok("TRUE OR missing"), b(true));
    assert_eq!(ok("word = 'x' AND missing = 1"), b(false));
    assert_eq!(ok("word = 'abc' OR 1 / 0 = 1"), b(true));
    assert_eq!(
        eval("FALSE OR missing"),
        (b(false), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        eval("missing OR TRUE"),
        (b(false), vec![ErrorKind::MissingAttribute])
    );
    // XOR evaluates both sides.
    assert_eq!(
        eval("FALSE XOR missing"),
        (b(false), vec![ErrorKind::MissingAttribute])
    );
}

#[test]
fn logic_chains_are_right_associative() {
    // FALSE AND (TRUE OR TRUE) = FALSE; left-assoc would give TRUE.
    assert_eq!(ok("FALSE AND TRUE OR TRUE"), b(false));
    // TRUE OR (TRUE AND FALSE) = TRUE.
    assert_eq!(ok("TRUE OR TRUE AND FALSE"), b(true));
    // TRUE XOR (FALSE AND x): short-circuit inside, parity outside.
    assert_eq!(ok("TRUE XOR FALSE AND missing"), b(true));
    assert_eq!(ok("TRUE XOR TRUE XOR TRUE"), b(true));
    assert_eq!(ok("TRUE XOR TRUE OR missing"), b(false));
    assert_eq!(ok("flag AND seq = 5 AND word LIKE 'a%'"), b(true));
}

#[test]
fn integer_overflow_saturates_with_a_math_error() {
    assert_eq!(eval("2147483647 + 1"), (i(i32::MAX), vec![ErrorKind::Math]));
    assert_eq!(
        eval("-2147483648 - 1"),
        (i(i32::MIN), vec![ErrorKind::Math])
    );
    assert_eq!(eval("-(-2147483648)"), (i(i32::MAX), vec![ErrorKind::Math]));
    assert_eq!(
        eval("-2147483648 / -1"),
        (i(i32::MAX), vec![ErrorKind::Math])
    );
    assert_eq!(eval("65536 * 65536"), (i(i32::MAX), vec![ErrorKind::Math]));
    assert_eq!(ok("-7 / 2"), i(-3));
    assert_eq!(ok("-7 % 2"), i(-1));
    assert_eq!(ok("7 % -2"), i(1));
}

#[test]
fn in_uses_the_left_type() {
    assert_eq!(
        ok("seq IN (4, 5)"),
        b(true),
        "String '5' vs Integers cast to String"
    );
    assert_eq!(ok("count IN ('7')"), b(true));
    assert_eq!(ok("flag IN ('TRUE')"), b(true), "'TRUE' cast to Boolean");
    assert_eq!(ok("source IN (id, type)"), b(false));
    assert_eq!(ok("source NOT IN (id, type)"), b(true));
    assert_eq!(ok("'/shop/eu' IN (source)"), b(true));
}

#[test]
fn like_casts_its_operand_and_honours_escapes() {
    assert_eq!(ok("count LIKE '7'"), b(true));
    assert_eq!(ok("flag LIKE 'tr_e'"), b(true));
    assert_eq!(ok(r"'50%' LIKE '50\%'"), b(true));
    assert_eq!(ok(r"'50x' LIKE '50\%'"), b(false));
    assert_eq!(ok(r"'a_b' LIKE 'a\_b'"), b(true));
    assert_eq!(ok(r"'axb' LIKE 'a\_b'"), b(false));
    assert_eq!(
        ok(r"'a\b' LIKE 'a\\\\b'"),
        b(true),
        "\\\\\\\\ in source is \\\\ in the pattern: one backslash"
    );
    assert_eq!(ok("source like '/SHOP/%'"), b(false), "case-sensitive");
}

#[test]
fn exists() {
    assert_eq!(ok("EXISTS seq"), b(true));
    assert_eq!(ok("EXISTS nope"), b(false));
    assert_eq!(ok("NOT EXISTS nope"), b(true));
}

#[test]
fn functions_are_case_insensitive_and_resolved_by_arity() {
    assert_eq!(ok("length(word)"), i(3));
    assert_eq!(ok("Concat_Ws('-', word, count, flag)"), s("abc-7-true"));
    assert_eq!(ok("substring(source, 2, 4)"), s("shop"));
    assert_eq!(ok("int(seq) * 2"), i(10));
    assert_eq!(ok("string(count) = '7'"), b(true));
    assert_eq!(
        eval("LENGTH()"),
        (b(false), vec![ErrorKind::MissingFunction])
    );
    assert_eq!(
        eval("NOPE(word)"),
        (b(false), vec![ErrorKind::MissingFunction])
    );
    assert_eq!(
        eval("NOT NOPE()"),
        (b(false), vec![ErrorKind::MissingFunction])
    );
}

#[test]
fn results_borrow_from_the_event() {
    let e = Expression::parse("source").unwrap();
    let ev = event();
    let r = e.evaluate(&ev);
    assert!(matches!(
        r.value,
        Value::String(std::borrow::Cow::Borrowed("/shop/eu"))
    ));
    let e = Expression::parse("TRIM(source)").unwrap();
    let r = e.evaluate(&ev);
    assert!(matches!(
        r.value,
        Value::String(std::borrow::Cow::Borrowed(_))
    ));
}

#[test]
fn static_types_and_diagnostics() {
    let t = |s: &str| Expression::parse(s).unwrap().return_type();
    assert_eq!(t("a = 1"), Some(Type::Boolean));
    assert_eq!(t("a + 1"), Some(Type::Integer));
    assert_eq!(t("UPPER(a)"), Some(Type::String));
    assert_eq!(t("a"), None);
    assert_eq!(t("NOPE()"), Some(Type::Boolean));
    let d = |s: &str| {
        Expression::parse(s)
            .unwrap()
            .diagnostics()
            .iter()
            .map(EvalError::kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(d("a = 1"), vec![]);
    assert_eq!(d("a = 1 / 0"), vec![ErrorKind::Math]);
    assert_eq!(d("a = INT('x')"), vec![ErrorKind::Cast]);
    assert_eq!(d("FOO(a)"), vec![ErrorKind::MissingFunction]);
}

#[test]
fn matches_requires_a_boolean_true_without_errors() {
    let ev = event();
    let m = |s: &str| Expression::parse(s).unwrap().matches(&ev);
    assert!(m(
        "type = 'com.example.order.created' AND source LIKE '/shop/%'"
    ));
    assert!(!m("type = 'x'"));
    assert!(!m("TRUE XOR 1"), "true with a cast error does not pass");
    assert!(!m("1"), "an Integer is not a Boolean");
    assert!(m("flag"));
    assert!(!m("yes"), "the String 'TRUE' is not the Boolean true");
    assert!(m("BOOL(yes)"));
    assert!(!m("word"));
    assert!(!m("missing"));
    assert!(!m("NOT (missing = 1)"));
    let e = Expression::parse("NOT missing").unwrap();
    assert!(!e.evaluate(&ev).passes());
}

#[test]
fn folding_keeps_semantics() {
    // Constant parts are folded but still raise their errors when evaluated.
    let e = Expression::parse("word = 'abc' AND 1 / 0 = 0").unwrap();
    let r = e.evaluate(&event()).into_owned();
    assert_eq!((r.value, r.errors.len()), (b(false), 1));
    let e = Expression::parse("word = 'x' AND 1 / 0 = 0").unwrap();
    let r = e.evaluate(&event()).into_owned();
    assert_eq!((r.value, r.errors.len()), (b(false), 0), "short-circuited");
}

#[test]
fn parse_errors_display_their_position() {
    let e = Expression::parse("type = 'a' AND (source LIKE '/x/%'").unwrap_err();
    assert_eq!(e.line(), 1);
    assert_eq!(e.column(), 35);
    assert_eq!(
        e.to_string(),
        "expected ')', found end of input (line 1, column 35)"
    );
    let _: &dyn std::error::Error = &e;
}

#[test]
fn expression_serde_round_trip() {
    let e: Expression = serde_json::from_str("\"a = 1\"").unwrap();
    assert_eq!(serde_json::to_string(&e).unwrap(), "\"a = 1\"");
    assert!(serde_json::from_str::<Expression>("\"a = \"").is_err());
    assert_eq!("a=1".parse::<Expression>().unwrap(), e);
}

#[test]
fn compiled_forms_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
    assert_send_sync::<cesql::Filter>();
    assert_send_sync::<cesql::ParseError>();
    assert_send_sync::<cesql::FilterError>();
    assert_send_sync::<EvalError>();
}
