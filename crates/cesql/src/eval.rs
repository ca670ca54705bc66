//! The compiled form of an expression and its evaluation.
//!
//! Error semantics (spec §3.2, §3.3, and the conformance kit): a node that
//! raises an error itself (a failed cast of its operand, division by zero, a
//! function's domain error) still computes its result with the substitute
//! value. A node one of whose operands raised an error does not compute: it
//! yields the zero value of its own return type. So `missing * 5` is `0`,
//! `1 / missing` is `0` without a MathError, `NOT missing` is `false`, and an
//! error anywhere makes the enclosing predicate `false`. AND and OR
//! short-circuit, so errors in skipped operands never happen.

use crate::ast::{BinaryOp, LogicOp};
use crate::cast;
use crate::error::EvalError;
use crate::functions::Builtin;
use crate::like::LikePattern;
use crate::value::{EventAttributes, Type, Value};

/// How `=` and `!=` compare: by the type of the right operand (spec §3.7),
/// known statically or only at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EqMode {
    Typed(Type),
    Dynamic,
}

/// A compiled expression node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A constant (literal or folded), without errors.
    Const(Value<'static>),
    /// A folded constant that raises errors whenever it is evaluated.
    ConstErr(Value<'static>, Vec<EvalError>),
    /// An attribute; its type is only known at run time.
    Attr(Box<str>),
    /// `EXISTS name`.
    Exists(Box<str>),
    Not(Box<Node>),
    Neg(Box<Node>),
    /// `* / % + -`.
    Arith(BinaryOp, Box<(Node, Node)>),
    /// `=`/`!=` (`negate` for `!=`).
    Equal {
        mode: EqMode,
        negate: bool,
        operands: Box<(Node, Node)>,
    },
    /// `attribute = 'literal'` / `!=`: the hot path of filters.
    AttrEqStr {
        name: Box<str>,
        literal: Box<str>,
        negate: bool,
    },
    /// `< <= > >=` on Integers.
    Order(BinaryOp, Box<(Node, Node)>),
    /// `a AND b AND ...` over Boolean operands: the common filter shape.
    AllOf(Vec<Node>),
    /// `a OR b OR ...` over Boolean operands.
    AnyOf(Vec<Node>),
    /// A right-associative chain of AND/OR/XOR.
    Logic {
        first: Box<Node>,
        rest: Vec<(LogicOp, Node)>,
    },
    Like {
        operand: Box<Node>,
        pattern: LikePattern,
        negated: bool,
    },
    /// `attribute [NOT] LIKE 'pattern'`: the other hot path of filters.
    AttrLike {
        name: Box<str>,
        pattern: LikePattern,
        negated: bool,
    },
    In {
        operand: Box<Node>,
        set: Vec<Node>,
        negated: bool,
    },
    Call(Builtin, Vec<Node>),
    /// A call that cannot be dispatched: `false` and a MissingFunctionError.
    MissingFunction {
        name: Box<str>,
        arity: usize,
    },
}

impl Node {
    /// The static type of the node's value; `None` when it depends on the
    /// event (a bare attribute).
    pub(crate) fn static_type(&self) -> Option<Type> {
        match self {
            Node::Const(v) | Node::ConstErr(v, _) => Some(v.value_type()),
            Node::Attr(_) => None,
            Node::Neg(_) | Node::Arith(..) => Some(Type::Integer),
            Node::Call(f, _) => Some(f.return_type()),
            Node::Exists(_)
            | Node::Not(_)
            | Node::Equal { .. }
            | Node::AttrEqStr { .. }
            | Node::Order(..)
            | Node::Logic { .. }
            | Node::AllOf(_)
            | Node::AnyOf(_)
            | Node::AttrLike { .. }
            | Node::Like { .. }
            | Node::In { .. }
            | Node::MissingFunction { .. } => Some(Type::Boolean),
        }
    }

    /// Whether the node's value never depends on the event.
    pub(crate) fn is_const(&self) -> bool {
        matches!(self, Node::Const(_) | Node::ConstErr(..))
    }

    /// Evaluates the node. Errors are appended to `errors`.
    pub(crate) fn eval<'a, E: EventAttributes + ?Sized>(
        &'a self,
        event: &'a E,
        errors: &mut Vec<EvalError>,
    ) -> Value<'a> {
        match self {
            Node::Const(v) => v.borrowed(),
            Node::ConstErr(v, errs) => {
                errors.extend(errs.iter().cloned());
                v.borrowed()
            }
            Node::Attr(name) => match event.attribute(name) {
                Some(v) => v,
                None => {
                    errors.push(missing(name));
                    // The type cannot be known: Boolean (spec §3.2).
                    Value::Boolean(false)
                }
            },
            Node::Neg(operand) => {
                let mark = errors.len();
                let v = operand.eval(event, errors);
                if errors.len() > mark {
                    return Value::Integer(0);
                }
                let i = cast::to_int(&v, errors);
                Value::Integer(i.checked_neg().unwrap_or_else(|| {
                    errors.push(overflow());
                    i32::MAX
                }))
            }
            Node::Arith(op, operands) => {
                let mark = errors.len();
                let l = operands.0.eval(event, errors);
                let r = operands.1.eval(event, errors);
                if errors.len() > mark {
                    return Value::Integer(0);
                }
                let l = cast::to_int(&l, errors);
                let r = cast::to_int(&r, errors);
                Value::Integer(arith(*op, l, r, errors))
            }
            Node::Call(f, args) => {
                let mark = errors.len();
                let values: Vec<Value<'a>> = args.iter().map(|a| a.eval(event, errors)).collect();
                if errors.len() > mark {
                    return f.return_type().zero();
                }
                f.call(values, errors)
            }
            _ => Value::Boolean(self.eval_bool(event, errors)),
        }
    }

    /// Evaluates a node whose static type is Boolean.
    pub(crate) fn eval_bool<E: EventAttributes + ?Sized>(
        &self,
        event: &E,
        errors: &mut Vec<EvalError>,
    ) -> bool {
        match self {
            Node::Const(Value::Boolean(b)) => *b,
            Node::AttrEqStr {
                name,
                literal,
                negate,
            } => match event.attribute(name) {
                Some(v) => v.with_canonical_str(|s| s == &**literal) != *negate,
                None => {
                    errors.push(missing(name));
                    false
                }
            },
            Node::Exists(name) => event.has_attribute(name),
            Node::Not(operand) => {
                let mark = errors.len();
                let v = operand.eval(event, errors);
                if errors.len() > mark {
                    return false;
                }
                !cast::to_bool(&v, false, errors)
            }
            Node::Equal {
                mode,
                negate,
                operands,
            } => {
                let mark = errors.len();
                let l = operands.0.eval(event, errors);
                let r = operands.1.eval(event, errors);
                if errors.len() > mark {
                    return false;
                }
                let to = match mode {
                    EqMode::Typed(t) => *t,
                    EqMode::Dynamic => r.value_type(),
                };
                equal(l, &r, to, errors) != *negate
            }
            Node::Order(op, operands) => {
                let mark = errors.len();
                let l = operands.0.eval(event, errors);
                let r = operands.1.eval(event, errors);
                if errors.len() > mark {
                    return false;
                }
                let l = cast::to_int(&l, errors);
                let r = cast::to_int(&r, errors);
                match op {
                    BinaryOp::Lt => l < r,
                    BinaryOp::Le => l <= r,
                    BinaryOp::Gt => l > r,
                    _ => l >= r,
                }
            }
            Node::AllOf(operands) => {
                let mark = errors.len();
                for operand in operands {
                    if !operand.eval_bool(event, errors) || errors.len() > mark {
                        return false;
                    }
                }
                true
            }
            Node::AnyOf(operands) => {
                let mark = errors.len();
                for operand in operands {
                    let b = operand.eval_bool(event, errors);
                    if errors.len() > mark {
                        return false;
                    }
                    if b {
                        return true;
                    }
                }
                false
            }
            Node::AttrLike {
                name,
                pattern,
                negated,
            } => match event.attribute(name) {
                Some(v) => v.with_canonical_str(|s| pattern.matches(s)) != *negated,
                None => {
                    errors.push(missing(name));
                    false
                }
            },
            Node::Logic { first, rest } => eval_logic(first, rest, event, errors),
            Node::Like {
                operand,
                pattern,
                negated,
            } => {
                let mark = errors.len();
                let v = operand.eval(event, errors);
                if errors.len() > mark {
                    return false;
                }
                v.with_canonical_str(|s| pattern.matches(s)) != *negated
            }
            Node::In {
                operand,
                set,
                negated,
            } => {
                let mark = errors.len();
                let x = operand.eval(event, errors);
                if errors.len() > mark {
                    return false;
                }
                let to = x.value_type();
                for element in set {
                    let mark = errors.len();
                    let y = element.eval(event, errors);
                    if errors.len() > mark {
                        return false;
                    }
                    // The left operand's type is the target (spec §3.7).
                    if equal(y, &x, to, errors) {
                        return !*negated;
                    }
                }
                *negated
            }
            Node::MissingFunction { name, arity } => {
                errors.push(EvalError::MissingFunction {
                    name: name.to_string(),
                    arity: *arity,
                });
                false
            }
            // Other nodes are not statically Boolean; evaluate and cast.
            other => {
                let mark = errors.len();
                let v = other.eval(event, errors);
                if errors.len() > mark {
                    return false;
                }
                cast::to_bool(&v, false, errors)
            }
        }
    }
}

fn missing(name: &str) -> EvalError {
    EvalError::MissingAttribute {
        name: name.to_owned(),
    }
}

fn overflow() -> EvalError {
    EvalError::Math {
        message: "integer overflow (result outside 32 bits)",
    }
}

/// 32-bit arithmetic: overflow saturates and raises a MathError (like
/// `ABS(-2147483648)` in the spec); division by zero yields 0 and a
/// MathError; division truncates, the remainder takes the dividend's sign.
pub(crate) fn arith(op: BinaryOp, l: i32, r: i32, errors: &mut Vec<EvalError>) -> i32 {
    if matches!(op, BinaryOp::Div | BinaryOp::Mod) && r == 0 {
        errors.push(EvalError::Math {
            message: "division by zero",
        });
        return 0;
    }
    let wide = match op {
        BinaryOp::Mul => i64::from(l) * i64::from(r),
        BinaryOp::Div => i64::from(l) / i64::from(r),
        BinaryOp::Mod => i64::from(l) % i64::from(r),
        BinaryOp::Add => i64::from(l) + i64::from(r),
        _ => i64::from(l) - i64::from(r),
    };
    i32::try_from(wide).unwrap_or_else(|_| {
        errors.push(overflow());
        if wide > 0 { i32::MAX } else { i32::MIN }
    })
}

/// Compares `l` (cast to `to`) with `r` (already of type `to`, or cast
/// too).
fn equal(l: Value<'_>, r: &Value<'_>, to: Type, errors: &mut Vec<EvalError>) -> bool {
    match to {
        Type::String => {
            let r = match r {
                Value::String(s) => s,
                other => return other.with_canonical_str(|rs| l.with_canonical_str(|ls| ls == rs)),
            };
            l.with_canonical_str(|ls| ls == &**r)
        }
        Type::Integer => cast::to_int(&l, errors) == cast::to_int(r, errors),
        Type::Boolean => cast::to_bool(&l, false, errors) == cast::to_bool(r, false, errors),
    }
}

/// Evaluates `first op1 (x1 op2 (x2 ...))` iteratively, left to right, with
/// short-circuit AND/OR, exactly as the nested form would.
///
/// Node `i` of the chain is `x_i op_i (rest)` (the last node holds the last
/// two operands). An error raised inside an operand is fatal to every node
/// enclosing it, hence to the chain: `false`, at once. The cast of an
/// operand's value to Boolean belongs to its node, which goes on computing
/// with `false`: for the outermost node that value stands; for an inner node
/// the failure is an operand error of the node above, so the chain goes on
/// (raising what the nested form would raise) but ends `false`.
fn eval_logic<E: EventAttributes + ?Sized>(
    first: &Node,
    rest: &[(LogicOp, Node)],
    event: &E,
    errors: &mut Vec<EvalError>,
) -> bool {
    let k = rest.len();
    // XOR parity accumulated from the enclosing nodes.
    let mut flip = false;
    // An inner node raised a cast error: the chain's value is `false`.
    let mut poisoned = false;
    for i in 0..=k {
        let operand = if i == 0 { first } else { &rest[i - 1].1 };
        let mark = errors.len();
        let b = if operand.static_type() == Some(Type::Boolean) {
            let b = operand.eval_bool(event, errors);
            if errors.len() > mark {
                return false;
            }
            b
        } else {
            let v = operand.eval(event, errors);
            if errors.len() > mark {
                return false;
            }
            let b = cast::to_bool(&v, false, errors);
            if errors.len() > mark && i.min(k.saturating_sub(1)) > 0 {
                poisoned = true;
            }
            b
        };
        let result = if i == k {
            Some(b != flip)
        } else {
            match rest[i].0 {
                LogicOp::And if !b => Some(flip),
                LogicOp::Or if b => Some(!flip),
                LogicOp::Xor => {
                    flip ^= b;
                    None
                }
                _ => None,
            }
        };
        if let Some(r) = result {
            return r && !poisoned;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::NoAttributes;

    #[test]
    fn arithmetic_edges() {
        let mut e = Vec::new();
        assert_eq!(arith(BinaryOp::Div, 5, 3, &mut e), 1);
        assert_eq!(arith(BinaryOp::Div, -5, 3, &mut e), -1);
        assert_eq!(arith(BinaryOp::Mod, -5, 3, &mut e), -2);
        assert_eq!(arith(BinaryOp::Mod, 5, -3, &mut e), 2);
        assert_eq!(arith(BinaryOp::Mod, i32::MIN, -1, &mut e), 0);
        assert!(e.is_empty());
        assert_eq!(arith(BinaryOp::Add, i32::MAX, 1, &mut e), i32::MAX);
        assert_eq!(arith(BinaryOp::Sub, i32::MIN, 1, &mut e), i32::MIN);
        assert_eq!(arith(BinaryOp::Mul, 65536, -65536, &mut e), i32::MIN);
        assert_eq!(arith(BinaryOp::Div, i32::MIN, -1, &mut e), i32::MAX);
        assert_eq!(e.len(), 4);
        assert_eq!(arith(BinaryOp::Div, 1, 0, &mut e), 0);
        assert_eq!(e.len(), 5);
    }

    #[test]
    fn missing_function_node() {
        let n = Node::MissingFunction {
            name: "F".into(),
            arity: 2,
        };
        let mut e = Vec::new();
        assert_eq!(n.eval(&NoAttributes, &mut e), Value::Boolean(false));
        assert_eq!(e[0].to_string(), "no function F with 2 argument(s)");
    }
}
