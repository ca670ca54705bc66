//! The type checker / compiler: turns the syntax tree into evaluation nodes.
//!
//! It resolves functions by name and arity, decides how each `=` compares
//! (by the static type of its right operand, spec §3.7), compiles LIKE
//! patterns, picks fast paths, and folds every sub-expression that does not
//! read the event into a constant (keeping the errors it raises). Errors that
//! folding finds are reported as diagnostics: they happen whenever that part
//! of the expression is evaluated.

use crate::ast::{BinaryOp, Expr, LogicOp, UnaryOp};
use crate::cast;
use crate::error::EvalError;
use crate::eval::{EqMode, Node};
use crate::functions;
use crate::like::LikePattern;
use crate::value::{NoAttributes, Type, Value};

/// Compiles `expr`, appending compile-time diagnostics to `diagnostics`.
pub(crate) fn compile(expr: &Expr, diagnostics: &mut Vec<EvalError>) -> Node {
    let node = match expr {
        Expr::Literal(v) => return Node::Const(v.clone()),
        Expr::Attribute(name) => return Node::Attr(name.as_str().into()),
        Expr::Exists(name) => return Node::Exists(name.as_str().into()),
        Expr::Unary { op, operand } => {
            let operand = Box::new(compile(operand, diagnostics));
            match op {
                UnaryOp::Not => Node::Not(operand),
                UnaryOp::Neg => Node::Neg(operand),
            }
        }
        Expr::Binary { op, left, right } => {
            let l = compile(left, diagnostics);
            let r = compile(right, diagnostics);
            match op {
                BinaryOp::Eq | BinaryOp::NotEq => {
                    let negate = *op == BinaryOp::NotEq;
                    match (&l, &r) {
                        (Node::Attr(name), Node::Const(Value::String(lit))) => Node::AttrEqStr {
                            name: name.clone(),
                            literal: lit.as_ref().into(),
                            negate,
                        },
                        _ => Node::Equal {
                            mode: r.static_type().map_or(EqMode::Dynamic, EqMode::Typed),
                            negate,
                            operands: Box::new((l, r)),
                        },
                    }
                }
                BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                    Node::Order(*op, Box::new((l, r)))
                }
                _ => {
                    if matches!(op, BinaryOp::Div | BinaryOp::Mod) && divides_by_zero(&r) {
                        diagnostics.push(EvalError::Math {
                            message: "division by zero",
                        });
                    }
                    Node::Arith(*op, Box::new((l, r)))
                }
            }
        }
        Expr::Logic { first, rest } => {
            let first = compile(first, diagnostics);
            let rest: Vec<(LogicOp, Node)> = rest
                .iter()
                .map(|(op, e)| (*op, compile(e, diagnostics)))
                .collect();
            let boolean = |n: &Node| n.static_type() == Some(Type::Boolean);
            let same_op = |op| rest.iter().all(|(o, _)| *o == op);
            let all_boolean = boolean(&first) && rest.iter().all(|(_, n)| boolean(n));
            let uniform = if same_op(LogicOp::And) {
                Some(LogicOp::And)
            } else if same_op(LogicOp::Or) {
                Some(LogicOp::Or)
            } else {
                None
            };
            match uniform.filter(|_| all_boolean) {
                // Associative and short-circuiting alike: evaluate flat.
                Some(op) => {
                    let operands: Vec<Node> = std::iter::once(first)
                        .chain(rest.into_iter().map(|(_, n)| n))
                        .collect();
                    if op == LogicOp::And {
                        Node::AllOf(operands)
                    } else {
                        Node::AnyOf(operands)
                    }
                }
                None => Node::Logic {
                    first: Box::new(first),
                    rest,
                },
            }
        }
        Expr::Like {
            operand,
            pattern,
            negated,
        } => match compile(operand, diagnostics) {
            Node::Attr(name) => Node::AttrLike {
                name,
                pattern: LikePattern::new(pattern),
                negated: *negated,
            },
            operand => Node::Like {
                operand: Box::new(operand),
                pattern: LikePattern::new(pattern),
                negated: *negated,
            },
        },
        Expr::In {
            operand,
            set,
            negated,
        } => Node::In {
            operand: Box::new(compile(operand, diagnostics)),
            set: set.iter().map(|e| compile(e, diagnostics)).collect(),
            negated: *negated,
        },
        Expr::Call { name, args } => match functions::resolve(name, args.len()) {
            Some(f) => Node::Call(f, args.iter().map(|e| compile(e, diagnostics)).collect()),
            None => {
                // Still check the arguments, for their diagnostics.
                for a in args {
                    compile(a, diagnostics);
                }
                let err = EvalError::MissingFunction {
                    name: name.clone(),
                    arity: args.len(),
                };
                diagnostics.push(err.clone());
                return Node::MissingFunction {
                    name: name.as_str().into(),
                    arity: args.len(),
                };
            }
        },
    };
    fold(node, diagnostics)
}

/// Whether a divisor is a constant that is zero as an Integer.
fn divides_by_zero(divisor: &Node) -> bool {
    match divisor {
        Node::Const(v) => {
            let mut scratch = Vec::new();
            cast::to_int(v, &mut scratch) == 0 && scratch.is_empty()
        }
        _ => false,
    }
}

/// Replaces a node whose operands are all constant by its value.
fn fold(node: Node, diagnostics: &mut Vec<EvalError>) -> Node {
    let foldable = match &node {
        Node::Not(o) | Node::Neg(o) => o.is_const(),
        Node::Arith(_, ops) | Node::Order(_, ops) => ops.0.is_const() && ops.1.is_const(),
        Node::Equal { operands, .. } => operands.0.is_const() && operands.1.is_const(),
        Node::Logic { first, rest } => first.is_const() && rest.iter().all(|(_, n)| n.is_const()),
        Node::AllOf(operands) | Node::AnyOf(operands) => operands.iter().all(Node::is_const),
        Node::Like { operand, .. } => operand.is_const(),
        Node::In { operand, set, .. } => operand.is_const() && set.iter().all(Node::is_const),
        Node::Call(_, args) => args.iter().all(Node::is_const),
        _ => false,
    };
    if !foldable {
        return node;
    }
    let mut errors = Vec::new();
    let value = node.eval(&NoAttributes, &mut errors).into_owned();
    if errors.is_empty() {
        Node::Const(value)
    } else {
        // Report each error once, where it first arises.
        for e in &errors {
            if !diagnostics.contains(e) {
                diagnostics.push(e.clone());
            }
        }
        Node::ConstErr(value, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn compiled(s: &str) -> (Node, Vec<EvalError>) {
        let mut d = Vec::new();
        let n = compile(&parse(s).unwrap(), &mut d);
        (n, d)
    }

    #[test]
    fn folds_constants() {
        assert!(matches!(
            compiled("1 + 2 * 3").0,
            Node::Const(Value::Integer(7))
        ));
        assert!(matches!(
            compiled("LOWER('AB') = 'ab'").0,
            Node::Const(Value::Boolean(true))
        ));
        assert!(matches!(compiled("a = 1 + 1").0, Node::Equal { .. }));
        let (n, d) = compiled("1 / 0");
        assert!(matches!(n, Node::ConstErr(Value::Integer(0), _)));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn short_circuit_folding_drops_skipped_errors() {
        let (n, _) = compiled("FALSE AND 1 / 0 = 1");
        assert!(matches!(n, Node::Const(Value::Boolean(false))));
    }

    #[test]
    fn resolves_functions_and_reports_missing_ones() {
        assert!(matches!(compiled("LENGTH(a)").0, Node::Call(..)));
        let (n, d) = compiled("NOPE(a)");
        assert!(matches!(n, Node::MissingFunction { .. }));
        assert_eq!(d[0].to_string(), "no function NOPE with 1 argument(s)");
        let (_, d) = compiled("a AND CONCAT_WS()");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn flattens_uniform_boolean_chains() {
        match compiled("a = 'x' AND b LIKE 'y%' AND EXISTS c").0 {
            Node::AllOf(ops) => {
                assert!(matches!(ops[0], Node::AttrEqStr { .. }));
                assert!(matches!(ops[1], Node::AttrLike { .. }));
                assert_eq!(ops.len(), 3);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(compiled("a = 1 OR b = 2").0, Node::AnyOf(_)));
        // Dynamic operands need the cast to Boolean of the general chain.
        assert!(matches!(compiled("a OR b").0, Node::Logic { .. }));
        assert!(matches!(
            compiled("a = 1 OR b = 2 AND c = 3").0,
            Node::Logic { .. }
        ));
        assert!(matches!(compiled("UPPER(a) LIKE 'X'").0, Node::Like { .. }));
    }

    #[test]
    fn picks_equality_modes() {
        assert!(matches!(
            compiled("a = 'x'").0,
            Node::AttrEqStr { negate: false, .. }
        ));
        assert!(matches!(
            compiled("a <> 'x'").0,
            Node::AttrEqStr { negate: true, .. }
        ));
        assert!(matches!(
            compiled("a = 1").0,
            Node::Equal {
                mode: EqMode::Typed(crate::Type::Integer),
                ..
            }
        ));
        assert!(matches!(
            compiled("'1' = a").0,
            Node::Equal {
                mode: EqMode::Dynamic,
                ..
            }
        ));
    }
}
