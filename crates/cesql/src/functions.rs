//! The built-in functions (spec §3.5), resolved by name and arity when an
//! expression is compiled.

use std::borrow::Cow;

use crate::cast;
use crate::error::EvalError;
use crate::value::{Type, Value};

/// A built-in function, chosen at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    Length,
    Concat,
    ConcatWs,
    Lower,
    Upper,
    Trim,
    Left,
    Right,
    Substring,
    Abs,
    Int,
    Bool,
    String,
}

/// Finds the function `name` (upper case) taking `arity` arguments.
pub(crate) fn resolve(name: &str, arity: usize) -> Option<Builtin> {
    use Builtin::*;
    Some(match (name, arity) {
        ("LENGTH", 1) => Length,
        ("CONCAT", _) => Concat,
        ("CONCAT_WS", n) if n >= 1 => ConcatWs,
        ("LOWER", 1) => Lower,
        ("UPPER", 1) => Upper,
        ("TRIM", 1) => Trim,
        ("LEFT", 2) => Left,
        ("RIGHT", 2) => Right,
        ("SUBSTRING", 2 | 3) => Substring,
        ("ABS", 1) => Abs,
        ("INT", 1) => Int,
        ("BOOL", 1) => Bool,
        ("STRING", 1) => String,
        _ => return None,
    })
}

impl Builtin {
    /// The function's name, for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Builtin::Length => "LENGTH",
            Builtin::Concat => "CONCAT",
            Builtin::ConcatWs => "CONCAT_WS",
            Builtin::Lower => "LOWER",
            Builtin::Upper => "UPPER",
            Builtin::Trim => "TRIM",
            Builtin::Left => "LEFT",
            Builtin::Right => "RIGHT",
            Builtin::Substring => "SUBSTRING",
            Builtin::Abs => "ABS",
            Builtin::Int => "INT",
            Builtin::Bool => "BOOL",
            Builtin::String => "STRING",
        }
    }

    /// The type the function returns.
    pub(crate) fn return_type(self) -> Type {
        match self {
            Builtin::Length | Builtin::Abs | Builtin::Int => Type::Integer,
            Builtin::Bool => Type::Boolean,
            _ => Type::String,
        }
    }

    /// The type argument `i` is implicitly cast to; `None` for the cast
    /// functions, which convert explicitly.
    pub(crate) fn param(self, i: usize) -> Option<Type> {
        match self {
            Builtin::Int | Builtin::Bool | Builtin::String => None,
            Builtin::Abs => Some(Type::Integer),
            Builtin::Left | Builtin::Right | Builtin::Substring if i > 0 => Some(Type::Integer),
            _ => Some(Type::String),
        }
    }

    /// Applies the function to its evaluated arguments (not yet cast).
    pub(crate) fn call<'a>(self, args: Vec<Value<'a>>, errors: &mut Vec<EvalError>) -> Value<'a> {
        let mut args: Vec<Value<'a>> = args
            .into_iter()
            .enumerate()
            .map(|(i, v)| match self.param(i) {
                Some(t) => cast::to_type(v, t, errors),
                None => v,
            })
            .collect();
        let int =
            |args: &[Value<'a>], i: usize| args.get(i).and_then(Value::as_integer).unwrap_or(0);
        let mut take_str = |i: usize| match args.get_mut(i) {
            Some(Value::String(s)) => std::mem::take(s),
            _ => Cow::Borrowed(""),
        };
        match self {
            Builtin::Length => {
                let n = take_str(0).chars().count();
                Value::Integer(i32::try_from(n).unwrap_or(i32::MAX))
            }
            Builtin::Concat => {
                let mut out = String::new();
                for v in &args {
                    out.push_str(v.as_str().unwrap_or(""));
                }
                Value::String(Cow::Owned(out))
            }
            Builtin::ConcatWs => {
                let sep = args.first().and_then(Value::as_str).unwrap_or("");
                let mut out = String::new();
                for (i, v) in args.iter().skip(1).enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    out.push_str(v.as_str().unwrap_or(""));
                }
                Value::String(Cow::Owned(out))
            }
            Builtin::Lower => Value::String(Cow::Owned(take_str(0).to_lowercase())),
            Builtin::Upper => Value::String(Cow::Owned(take_str(0).to_uppercase())),
            Builtin::Trim => Value::String(map_str(take_str(0), str::trim)),
            Builtin::Left | Builtin::Right => {
                let s = take_str(0);
                let n = int(&args, 1);
                if n < 0 {
                    errors.push(self.error("the length must not be negative"));
                    return Value::String(s);
                }
                let len = s.chars().count();
                let n = (n as usize).min(len);
                let start = if self == Builtin::Left { 0 } else { len - n };
                Value::String(char_slice(s, start, n))
            }
            Builtin::Substring => {
                let s = take_str(0);
                let pos = i64::from(int(&args, 1));
                let len = s.chars().count() as i64;
                let count = if args.len() > 2 {
                    i64::from(int(&args, 2))
                } else {
                    i64::MAX
                };
                if pos > len || pos < -len {
                    errors.push(self.error("the position is outside the string"));
                    return Value::String(Cow::Borrowed(""));
                }
                if count < 0 {
                    errors.push(self.error("the length must not be negative"));
                    return Value::String(Cow::Borrowed(""));
                }
                if pos == 0 {
                    return Value::String(Cow::Borrowed(""));
                }
                let start = if pos > 0 { pos - 1 } else { len + pos };
                let count = count.min(len - start);
                Value::String(char_slice(s, start as usize, count as usize))
            }
            Builtin::Abs => {
                let x = int(&args, 0);
                match x.checked_abs() {
                    Some(v) => Value::Integer(v),
                    None => {
                        errors.push(EvalError::Math {
                            message: "ABS(-2147483648) overflows 32 bits",
                        });
                        Value::Integer(i32::MAX)
                    }
                }
            }
            Builtin::Int => Value::Integer(args.first().map_or(0, |v| cast::to_int(v, errors))),
            Builtin::Bool => {
                Value::Boolean(args.first().is_some_and(|v| cast::to_bool(v, true, errors)))
            }
            Builtin::String => Value::String(cast::to_string(
                args.pop().unwrap_or(Value::String(Cow::Borrowed(""))),
            )),
        }
    }

    fn error(self, message: &'static str) -> EvalError {
        EvalError::FunctionEvaluation {
            function: self.name(),
            message,
        }
    }
}

/// Applies a sub-slicing function, keeping a borrowed string borrowed.
fn map_str<'a>(s: Cow<'a, str>, f: impl for<'x> Fn(&'x str) -> &'x str) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(f(b)),
        Cow::Owned(o) => Cow::Owned(f(&o).to_owned()),
    }
}

/// The `count` characters of `s` starting at character `start`.
fn char_slice(s: Cow<'_, str>, start: usize, count: usize) -> Cow<'_, str> {
    let byte_at = |s: &str, n: usize| s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    let from = byte_at(&s, start);
    let to = from + byte_at(&s[from..], count);
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(&b[from..to]),
        Cow::Owned(o) => Cow::Owned(o[from..to].to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Vec<Value<'static>>) -> (Value<'static>, Vec<EvalError>) {
        let f = resolve(name, args.len()).expect("function exists");
        let mut errors = Vec::new();
        let v = f.call(args, &mut errors).into_owned();
        (v, errors)
    }

    fn s(x: &str) -> Value<'static> {
        Value::String(Cow::Owned(x.to_owned()))
    }

    #[test]
    fn resolution_checks_arity() {
        assert_eq!(resolve("CONCAT", 0), Some(Builtin::Concat));
        assert_eq!(resolve("CONCAT_WS", 0), None);
        assert_eq!(resolve("SUBSTRING", 1), None);
        assert_eq!(resolve("SUBSTRING", 4), None);
        assert_eq!(resolve("LENGTH", 2), None);
        assert_eq!(resolve("NOPE", 1), None);
    }

    #[test]
    fn string_functions() {
        assert_eq!(call("LENGTH", vec![s("héllo")]).0, Value::Integer(5));
        assert_eq!(
            call("LENGTH", vec![Value::Boolean(true)]).0,
            Value::Integer(4)
        );
        assert_eq!(
            call(
                "CONCAT",
                vec![s("a"), Value::Integer(1), Value::Boolean(false)]
            )
            .0,
            s("a1false")
        );
        assert_eq!(
            call("CONCAT_WS", vec![s(", "), s("a"), s("b")]).0,
            s("a, b")
        );
        assert_eq!(call("CONCAT_WS", vec![s(",")]).0, s(""));
        assert_eq!(call("LOWER", vec![s("AbÉ")]).0, s("abé"));
        assert_eq!(call("UPPER", vec![s("abé")]).0, s("ABÉ"));
        assert_eq!(call("TRIM", vec![s("\u{2003} a b \t\n")]).0, s("a b"));
    }

    #[test]
    fn left_right() {
        assert_eq!(call("LEFT", vec![s("héllo"), Value::Integer(2)]).0, s("hé"));
        assert_eq!(
            call("RIGHT", vec![s("héllo"), Value::Integer(4)]).0,
            s("éllo")
        );
        assert_eq!(call("LEFT", vec![s("abc"), Value::Integer(10)]).0, s("abc"));
        assert_eq!(call("RIGHT", vec![s("abc"), Value::Integer(0)]).0, s(""));
        let (v, e) = call("LEFT", vec![s("abc"), Value::Integer(-1)]);
        assert_eq!((v, e.len()), (s("abc"), 1));
        let (v, e) = call("RIGHT", vec![s("abc"), s("x")]);
        assert_eq!(v, s(""));
        assert_eq!(e[0].kind(), crate::ErrorKind::Cast);
    }

    #[test]
    fn substring() {
        let sub = |x: &str, p: i32, l: Option<i32>| {
            let mut args = vec![s(x), Value::Integer(p)];
            if let Some(l) = l {
                args.push(Value::Integer(l));
            }
            call("SUBSTRING", args)
        };
        assert_eq!(sub("abcdef", 1, None).0, s("abcdef"));
        assert_eq!(sub("Quadratically", 5, None).0, s("ratically"));
        assert_eq!(sub("Sakila", -3, None).0, s("ila"));
        assert_eq!(sub("Sakila", -5, Some(3)).0, s("aki"));
        assert_eq!(sub("abcdef", 2, Some(4)).0, s("bcde"));
        assert_eq!(sub("abcdef", 6, Some(100)).0, s("f"));
        assert_eq!(sub("héllo", 2, Some(1)).0, s("é"));
        assert_eq!(sub("abc", 0, Some(1)), (s(""), vec![]));
        for (p, l) in [
            (10, None),
            (-10, None),
            (7, Some(1)),
            (1, Some(-1)),
            (0, Some(-1)),
        ] {
            let (v, e) = sub("abcdef", p, l);
            assert_eq!(v, s(""));
            assert_eq!(e.len(), 1, "{p} {l:?}");
            assert_eq!(e[0].kind(), crate::ErrorKind::FunctionEvaluation);
        }
        assert_eq!(sub("", 0, None), (s(""), vec![]));
    }

    #[test]
    fn abs_and_casts() {
        assert_eq!(call("ABS", vec![Value::Integer(-3)]).0, Value::Integer(3));
        let (v, e) = call("ABS", vec![Value::Integer(i32::MIN)]);
        assert_eq!(v, Value::Integer(i32::MAX));
        assert_eq!(e[0].kind(), crate::ErrorKind::Math);
        assert_eq!(call("INT", vec![Value::Boolean(true)]).0, Value::Integer(1));
        assert_eq!(call("INT", vec![s("-12")]).0, Value::Integer(-12));
        assert_eq!(
            call("BOOL", vec![Value::Integer(-50)]).0,
            Value::Boolean(true)
        );
        assert_eq!(call("BOOL", vec![s("False")]).0, Value::Boolean(false));
        assert_eq!(call("STRING", vec![Value::Integer(-1)]).0, s("-1"));
        let (v, e) = call("INT", vec![s("ABC")]);
        assert_eq!(
            (v, e[0].kind()),
            (Value::Integer(0), crate::ErrorKind::Cast)
        );
    }
}
