//! Hostile input: deep nesting, huge expressions and random text are
//! rejected or evaluated without panics or stack overflows, and evaluation
//! terminates.

use cesql::{Expression, MAX_DEPTH, MAX_EXPRESSION_LEN, MapEvent, NoAttributes};
use proptest::prelude::*;

fn event() -> MapEvent {
    MapEvent::new()
        .with("a", "true".to_string())
        .with("b", 5)
        .with("s", "x".repeat(10_000))
}

/// Parses and, if accepted, evaluates in every way, on a thread with a
/// 2 MiB stack (the default for spawned threads, e.g. tokio workers).
fn exercise(src: String) -> Result<(), String> {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || match Expression::parse(&src) {
            Ok(e) => {
                let ev = event();
                let _ = e.evaluate(&ev);
                let _ = e.evaluate(&NoAttributes);
                let _ = e.matches(&ev);
                let _ = e.ast().to_string();
                Ok(())
            }
            Err(err) => Err(err.message().to_owned()),
        })
        .expect("thread")
        .join()
        .expect("no panic")
}

fn too_deep(src: String) {
    let msg = exercise(src).expect_err("rejected");
    assert!(msg.contains("nested too deeply"), "{msg}");
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let n = 5_000;
    too_deep(format!("{}1{}", "(".repeat(n), ")".repeat(n)));
    too_deep(format!("{}TRUE", "NOT ".repeat(n)));
    too_deep(format!("{}1", "- ".repeat(n)));
    too_deep(format!("{}1{}", "ABS(".repeat(n), ")".repeat(n)));
    too_deep(format!("1{}", " + 1".repeat(n)));
    too_deep(format!("a{}", " LIKE 'x'".repeat(n)));
    too_deep(format!("{}a{}", "(a AND ".repeat(n), ")".repeat(n)));
    too_deep(format!("{}a{}", "(a IN (".repeat(n), "))".repeat(n)));
}

#[test]
fn nesting_up_to_the_limit_works() {
    let d = MAX_DEPTH - 2;
    // A parenthesized right operand costs two levels of parser recursion.
    for src in [
        format!("{}a{}", "(a AND ".repeat(d / 2), ")".repeat(d / 2)),
        format!("{}a{}", "a AND (".repeat(d / 2), ")".repeat(d / 2)),
        format!("{}a{}", "((".repeat(d / 2), "))".repeat(d / 2)),
        format!("{}a{}", "ABS(".repeat(d), ")".repeat(d)),
        format!("{}a{}", "CONCAT(a, ".repeat(d), ")".repeat(d)),
        format!("{}a", "NOT ".repeat(d)),
        format!("a{}", " = a".repeat(d)),
        format!("{}a{}", "(a IN (".repeat(d / 2), "))".repeat(d / 2)),
    ] {
        exercise(src).expect("accepted");
    }
}

#[test]
fn long_flat_chains_are_fine() {
    let src = format!("b = 1{}", " OR b = 1".repeat(5_000));
    assert!(src.len() < MAX_EXPRESSION_LEN);
    exercise(src).expect("a flat chain is not deep");
    let src = format!("b IN ({})", vec!["1"; 10_000].join(", "));
    exercise(src).expect("a long set is not deep");
}

#[test]
fn huge_expressions_are_rejected() {
    let src = format!("a = '{}'", "x".repeat(MAX_EXPRESSION_LEN));
    let msg = exercise(src).expect_err("rejected");
    assert!(msg.contains("bytes long"), "{msg}");
}

#[test]
fn costly_patterns_terminate() {
    // A backtracking-heavy LIKE against a 10 kB attribute.
    let src = format!("s LIKE '{}y'", "%_".repeat(50));
    let e = Expression::parse(&src).unwrap();
    assert!(!e.matches(&event()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_text_never_panics(src in "\\PC{0,80}") {
        let _ = exercise(src);
    }

    #[test]
    fn random_cesql_like_text_never_panics(
        src in "[a-z0-9 ()'\"\\\\%_,=<>!+*/-]{0,60}|(NOT |AND |OR |XOR |LIKE |IN |EXISTS |TRUE |[a-z]{1,3} |[0-9]{1,11} |'[a-z%_\\\\]{0,4}' |[(),=<>+*/%-] |ABS\\(|CONCAT\\(|SUBSTRING\\(){0,25}"
    ) {
        let _ = exercise(src);
    }

    #[test]
    fn display_reparses_to_the_same_tree(
        src in "(NOT |AND |OR |XOR |LIKE 'a%' |NOT IN \\(1, a\\) |EXISTS b |TRUE |a |b |-?[0-9]{1,5} |'[a-z\\\\']{0,3}' |[=<>+*/%-] |\\( |\\) |LOWER\\(|, ){1,20}"
    ) {
        if let Ok(e) = Expression::parse(&src) {
            let printed = e.ast().to_string();
            let again = Expression::parse(&printed).unwrap_or_else(|err| panic!("{printed}: {err}"));
            prop_assert_eq!(e.ast(), again.ast());
        }
    }
}

/// The flat evaluation of a logic chain agrees with the explicitly nested,
/// right-associative form it stands for (values and errors).
fn nested(operands: &[&str], ops: &[&str]) -> String {
    match ops.split_first() {
        None => operands[0].to_owned(),
        Some((op, rest)) => format!("({} {op} {})", operands[0], nested(&operands[1..], rest)),
    }
}

proptest! {
    #[test]
    fn flat_logic_chains_match_nested_ones(
        chain in prop::collection::vec(
            (
                prop::sample::select(vec!["AND", "OR", "XOR"]),
                prop::sample::select(vec![
                    "t", "f", "i", "m", "s", "TRUE", "FALSE", "1", "t = t", "NOT f", "m = 1", "i = 1",
                ]),
            ),
            1..7,
        ),
        first in prop::sample::select(vec!["t", "f", "i", "m", "s", "TRUE", "t = t", "NOT i"]),
    ) {
        let event = MapEvent::new()
            .with("t", true)
            .with("f", false)
            .with("i", 1)
            .with("s", "true".to_string());
        let ops: Vec<&str> = chain.iter().map(|(op, _)| *op).collect();
        let mut operands = vec![first];
        operands.extend(chain.iter().map(|(_, e)| *e));
        let mut flat = operands[0].to_owned();
        for (op, e) in ops.iter().zip(&operands[1..]) {
            flat = format!("{flat} {op} {e}");
        }
        let flat_expr = Expression::parse(&flat).unwrap();
        let nested_expr = Expression::parse(&nested(&operands, &ops)).unwrap();
        let a = flat_expr.evaluate(&event);
        let b = nested_expr.evaluate(&event);
        prop_assert_eq!(&a.value, &b.value, "{}", flat);
        let kinds = |e: &cesql::Evaluation<'_>| e.errors.iter().map(|x| x.kind()).collect::<Vec<_>>();
        prop_assert_eq!(kinds(&a), kinds(&b), "{}", flat);
    }
}

/// Literals and the attribute names bound to the same values, for the
/// folding/fast-path differential test.
const LEAVES: [(&str, &str); 9] = [
    ("1", "one"),
    ("0", "zero"),
    ("(-5)", "neg"),
    ("'abc'", "abc"),
    ("'5'", "five"),
    ("'true'", "strue"),
    ("TRUE", "t"),
    ("FALSE", "f"),
    ("''", "empty"),
];

fn leaf_event() -> MapEvent {
    MapEvent::new()
        .with("one", 1)
        .with("zero", 0)
        .with("neg", -5)
        .with("abc", "abc".to_string())
        .with("five", "5".to_string())
        .with("strue", "true".to_string())
        .with("t", true)
        .with("f", false)
        .with("empty", String::new())
}

/// A random expression, twice: with literals (folded at compile time) and
/// with attributes holding the same values (evaluated at run time).
fn twin_expr() -> impl Strategy<Value = (String, String)> {
    let leaf = (0..LEAVES.len()).prop_map(|i| (LEAVES[i].0.to_owned(), LEAVES[i].1.to_owned()));
    leaf.prop_recursive(4, 24, 3, |inner| {
        let bin = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "AND", "OR", "XOR",
        ]);
        let un = prop::sample::select(vec![
            "NOT", "-", "LENGTH", "UPPER", "ABS", "INT", "BOOL", "STRING", "TRIM",
        ]);
        let pat = prop::sample::select(vec!["'a%'", "'_'", "'%'", "'5'", "'tr_e'"]);
        prop_oneof![
            (inner.clone(), bin, inner.clone()).prop_map(|((l1, l2), op, (r1, r2))| (
                format!("({l1} {op} {r1})"),
                format!("({l2} {op} {r2})")
            )),
            (un, inner.clone()).prop_map(|(op, (a, b))| match op {
                "NOT" | "-" => (format!("({op} {a})"), format!("({op} {b})")),
                f => (format!("{f}({a})"), format!("{f}({b})")),
            }),
            (inner.clone(), pat, any::<bool>()).prop_map(|((a, b), p, neg)| {
                let not = if neg { "NOT " } else { "" };
                (
                    format!("({a} {not}LIKE {p})"),
                    format!("({b} {not}LIKE {p})"),
                )
            }),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(
                |((a1, a2), (b1, b2), (c1, c2))| {
                    (
                        format!("({a1} IN ({b1}, {c1}))"),
                        format!("({a2} IN ({b2}, {c2}))"),
                    )
                }
            ),
            (inner.clone(), inner.clone()).prop_map(|((a1, a2), (b1, b2))| {
                (
                    format!("SUBSTRING({a1}, {b1})"),
                    format!("SUBSTRING({a2}, {b2})"),
                )
            }),
            (inner.clone(), inner).prop_map(|((a1, a2), (b1, b2))| {
                (
                    format!("CONCAT_WS({a1}, {b1})"),
                    format!("CONCAT_WS({a2}, {b2})"),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn folding_and_fast_paths_agree_with_runtime_evaluation((folded, dynamic) in twin_expr()) {
        let event = leaf_event();
        let a = Expression::parse(&folded).unwrap();
        let b = Expression::parse(&dynamic).unwrap();
        let ra = a.evaluate(&event);
        let rb = b.evaluate(&event);
        prop_assert_eq!(&ra.value, &rb.value, "{} vs {}", folded, dynamic);
        let kinds = |e: &cesql::Evaluation<'_>| e.errors.iter().map(|x| x.kind()).collect::<Vec<_>>();
        prop_assert_eq!(kinds(&ra), kinds(&rb), "{} vs {}", folded, dynamic);
        prop_assert_eq!(a.matches(&event), ra.passes(), "{}", folded);
        prop_assert_eq!(b.matches(&event), rb.passes(), "{}", dynamic);
    }
}
