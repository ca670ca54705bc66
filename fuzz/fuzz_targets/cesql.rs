//! CESQL (`cesql::Expression::parse`) on arbitrary text; what parses is evaluated against a
//! fixed event and against no attributes. Invariants: `matches` is `evaluate(..).passes()`
//! (as documented), a static return type is the type of every result, the fully
//! parenthesised `Display` of the syntax tree parses back to the same tree, and a `sql`
//! filter of the same text decides as the expression does.
//!
//! Input: the expression text (UTF-8).
#![no_main]

use std::sync::LazyLock;

use cesql::{EventAttributes, Expression, Filter, NoAttributes};
use cloudevent::Event;
use libfuzzer_sys::fuzz_target;

static EVENT: LazyLock<Event> = LazyLock::new(spindle_fuzz::sample_event);

fn check_against<E: EventAttributes + ?Sized>(expr: &Expression, event: &E, what: &str) {
    let evaluation = expr.evaluate(event);
    assert_eq!(
        expr.matches(event),
        evaluation.passes(),
        "matches() and evaluate().passes() disagree on {what}: {evaluation:?}"
    );
    if let Some(ty) = expr.return_type() {
        assert_eq!(
            evaluation.value.value_type(),
            ty,
            "the result on {what} is not of the static return type: {evaluation:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Expression::parse(source);
    spindle_fuzz::trace(|| match &parsed {
        Ok(e) => format!("{} => {:?}", e.ast(), e.evaluate(&*EVENT)),
        Err(e) => format!("{e}"),
    });
    let Ok(expr) = parsed else {
        return;
    };
    check_against(&expr, &*EVENT, "the sample event");
    check_against(&expr, &NoAttributes, "no attributes");

    let printed = expr.ast().to_string();
    match Expression::parse(&printed) {
        Ok(again) => assert_eq!(
            again.ast(),
            expr.ast(),
            "Display does not parse back to the same tree: {printed:?}"
        ),
        // Full parenthesisation adds nesting and length: only the limits may refuse it.
        Err(e)
            if e.message().contains("nested too deeply") || e.message().contains("bytes long") => {}
        Err(e) => {
            panic!("Display of a parsed expression does not parse: {e}\n  printed: {printed:?}")
        }
    }

    if let Ok(filter) = Filter::sql(source) {
        assert_eq!(
            filter.matches(&*EVENT),
            expr.matches(&*EVENT),
            "a sql filter and its expression disagree"
        );
    }
});
