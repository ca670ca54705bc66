//! The syntax tree of a parsed expression.
//!
//! Public so tools can inspect or pretty-print expressions; evaluation uses a
//! compiled form (see `check.rs`).

use std::fmt;

use crate::value::Value;

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `NOT x`: Boolean negation.
    Not,
    /// `-x`: Integer negation.
    Neg,
}

/// A binary arithmetic or comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `*`
    Mul,
    /// `/` (truncating)
    Div,
    /// `%` (sign of the dividend)
    Mod,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `=`
    Eq,
    /// `!=` or `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl BinaryOp {
    /// The operator's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
        }
    }
}

/// A logical connective. AND, OR and XOR share one precedence level and
/// associate to the right (CESQLParser.g4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicOp {
    /// `AND` (short-circuit)
    And,
    /// `OR` (short-circuit)
    Or,
    /// `XOR`
    Xor,
}

impl LogicOp {
    /// The operator's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            LogicOp::And => "AND",
            LogicOp::Or => "OR",
            LogicOp::Xor => "XOR",
        }
    }
}

/// An expression node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A literal value.
    Literal(Value<'static>),
    /// A reference to an event attribute (lower-cased name).
    Attribute(String),
    /// `EXISTS name`.
    Exists(String),
    /// `NOT x` or `-x`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// An arithmetic or comparison operation.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// A chain `first op1 x1 op2 x2 ...` of logical operators, meaning
    /// `first op1 (x1 op2 (x2 ...))` (right associative).
    ///
    /// Kept flat so that long chains do not make a deep tree.
    Logic {
        /// The first operand.
        first: Box<Expr>,
        /// The following operators and operands, in order.
        rest: Vec<(LogicOp, Expr)>,
    },
    /// `x [NOT] LIKE 'pattern'`.
    Like {
        /// The value matched.
        operand: Box<Expr>,
        /// The pattern (string literal, unescaped as a string literal; LIKE
        /// escapes still in place).
        pattern: String,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `x [NOT] IN (y1, y2, ...)`.
    In {
        /// The value looked for.
        operand: Box<Expr>,
        /// The set (at least one element).
        set: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// A function call (upper-cased name).
    Call {
        /// The function name.
        name: String,
        /// The arguments.
        args: Vec<Expr>,
    },
}

/// Writes a string literal that the parser reads back as `s`.
fn write_str_literal(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    f.write_str(&s.replace('\\', "\\\\").replace('\'', "''"))?;
    f.write_str("'")
}

impl fmt::Display for Expr {
    /// Writes the expression fully parenthesized, in a form that parses back
    /// to the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(Value::String(s)) => write_str_literal(f, s),
            Expr::Literal(Value::Integer(i)) => write!(f, "{i}"),
            Expr::Literal(Value::Boolean(b)) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            Expr::Attribute(name) => f.write_str(name),
            Expr::Exists(name) => write!(f, "(EXISTS {name})"),
            Expr::Unary { op, operand } => match op {
                UnaryOp::Not => write!(f, "(NOT {operand})"),
                // `- 5` would read back as the literal -5: keep a negated number a negation.
                UnaryOp::Neg => match operand.as_ref() {
                    Expr::Literal(Value::Integer(i)) if *i >= 0 => write!(f, "(- ({operand}))"),
                    _ => write!(f, "(- {operand})"),
                },
            },
            Expr::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Logic { first, rest } => {
                write!(f, "({first}")?;
                for (op, e) in rest {
                    write!(f, " {} {e}", op.keyword())?;
                }
                f.write_str(")")
            }
            Expr::Like {
                operand,
                pattern,
                negated,
            } => {
                write!(f, "({operand} {}LIKE ", if *negated { "NOT " } else { "" })?;
                write_str_literal(f, pattern)?;
                f.write_str(")")
            }
            Expr::In {
                operand,
                set,
                negated,
            } => {
                write!(f, "({operand} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, e) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("))")
            }
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                for (i, e) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
        }
    }
}
