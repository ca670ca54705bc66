//! The cast table of spec §3.7.
//!
//! Every supported cast has one meaning, with two deliberate twists that the
//! conformance kit requires: an *implicit* Integer → Boolean cast (e.g.
//! `NOT 10`) is a CastError yielding `false`, while the explicit `BOOL(10)`
//! is `true`; and Boolean → Integer is allowed implicitly (`5 + TRUE` is 6).
//! A failed cast yields the zero value of the target type plus a CastError,
//! and the operator goes on with that value.

use std::borrow::Cow;

use crate::error::EvalError;
use crate::value::{Type, Value};

/// Parses a base-10 32-bit integer with an optional sign, nothing else (no
/// blanks).
pub(crate) fn parse_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok()
}

fn cast_error(v: &Value<'_>, to: Type) -> EvalError {
    EvalError::Cast {
        from: v.value_type(),
        to,
        value: v.to_string(),
    }
}

/// Casts to Integer (implicit and explicit casts agree).
pub(crate) fn to_int(v: &Value<'_>, errors: &mut Vec<EvalError>) -> i32 {
    match v {
        Value::Integer(i) => *i,
        Value::Boolean(b) => i32::from(*b),
        Value::String(s) => parse_int(s).unwrap_or_else(|| {
            errors.push(cast_error(v, Type::Integer));
            0
        }),
    }
}

/// Casts to Boolean. `explicit` is true for `BOOL(x)`, the only way to turn
/// an Integer into a Boolean.
pub(crate) fn to_bool(v: &Value<'_>, explicit: bool, errors: &mut Vec<EvalError>) -> bool {
    match v {
        Value::Boolean(b) => *b,
        Value::Integer(i) if explicit => *i != 0,
        Value::String(s) if s.eq_ignore_ascii_case("true") => true,
        Value::String(s) if s.eq_ignore_ascii_case("false") => false,
        _ => {
            errors.push(cast_error(v, Type::Boolean));
            false
        }
    }
}

/// Casts to String (always succeeds).
pub(crate) fn to_string(v: Value<'_>) -> Cow<'_, str> {
    match v {
        Value::String(s) => s,
        Value::Integer(i) => Cow::Owned(i.to_string()),
        Value::Boolean(b) => Cow::Borrowed(if b { "true" } else { "false" }),
    }
}

/// Casts `v` to `to` (implicitly).
pub(crate) fn to_type<'a>(v: Value<'a>, to: Type, errors: &mut Vec<EvalError>) -> Value<'a> {
    match to {
        Type::Integer => Value::Integer(to_int(&v, errors)),
        Type::Boolean => Value::Boolean(to_bool(&v, false, errors)),
        Type::String => Value::String(to_string(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_to_integer() {
        let mut e = Vec::new();
        assert_eq!(to_int(&Value::from("42"), &mut e), 42);
        assert_eq!(to_int(&Value::from("+7"), &mut e), 7);
        assert_eq!(to_int(&Value::from("-2147483648"), &mut e), i32::MIN);
        assert!(e.is_empty());
        for bad in [
            "",
            "-",
            "+",
            " 1",
            "1 ",
            "2147483648",
            "1.0",
            "0x1",
            "abc",
            "--1",
        ] {
            let mut e = Vec::new();
            assert_eq!(to_int(&Value::from(bad), &mut e), 0, "{bad:?}");
            assert_eq!(e.len(), 1, "{bad:?}");
        }
    }

    #[test]
    fn boolean_casts() {
        let mut e = Vec::new();
        assert!(to_bool(&Value::from("TrUe"), false, &mut e));
        assert!(!to_bool(&Value::from("FALSE"), false, &mut e));
        assert_eq!(to_int(&Value::Boolean(true), &mut e), 1);
        assert!(to_bool(&Value::Integer(-50), true, &mut e));
        assert!(!to_bool(&Value::Integer(0), true, &mut e));
        assert!(e.is_empty());
        assert!(
            !to_bool(&Value::Integer(10), false, &mut e),
            "implicit int→bool fails"
        );
        assert!(!to_bool(&Value::from("yes"), true, &mut e));
        assert_eq!(e.len(), 2);
        assert!(matches!(
            &e[0],
            EvalError::Cast {
                from: Type::Integer,
                to: Type::Boolean,
                ..
            }
        ));
    }

    #[test]
    fn string_casts() {
        assert_eq!(to_string(Value::Integer(-1)), "-1");
        assert_eq!(to_string(Value::Boolean(false)), "false");
        let mut e = Vec::new();
        assert_eq!(
            to_type(Value::from("5"), Type::Integer, &mut e),
            Value::Integer(5)
        );
        assert_eq!(
            to_type(Value::Integer(5), Type::String, &mut e),
            Value::from("5")
        );
    }
}
