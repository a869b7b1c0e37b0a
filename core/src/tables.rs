//! The compiled contract as the core takes it: built once per contract version by the Python side.

// The contract's own keys: a fast hash without a seed is safe for tables the request cannot grow.
use rustc_hash::FxHashMap as HashMap;

use crate::sink::{Action, Rule};
use crate::value::{AttrType, Scalar};

/// What only Python can answer exactly: RE2 pattern matches (one regex dialect for the whole
/// project) and the rare coercions whose text rules are Python's (Unicode digits, float text).
pub trait Oracle {
    fn matches(&self, pattern: usize, text: &str) -> bool;
    fn coerce(&self, value: &Scalar, target: AttrType) -> Option<Scalar>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceActionKind {
    Insert,
    Update,
    Upsert,
    Delete,
    Rename,
}

impl ResourceActionKind {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "insert" => Self::Insert,
            "update" => Self::Update,
            "upsert" => Self::Upsert,
            "delete" => Self::Delete,
            "rename" => Self::Rename,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ResourceAction {
    pub kind: ResourceActionKind,
    pub key: String,
    pub from_attribute: Option<String>,
    pub from_env: bool,
    pub value: Option<Scalar>,
}

#[derive(Debug, Clone)]
pub struct Constraint {
    pub key: String,
    pub allowed: Option<Vec<Scalar>>,
    pub pattern: Option<usize>,
}

#[derive(Debug, Default)]
pub struct Tables {
    pub actions: HashMap<Rule, Action>,
    pub renames: HashMap<String, String>,
    pub types: HashMap<String, AttrType>,
    pub resource_actions: Vec<ResourceAction>,
    /// In the order the Python side iterates them, so findings come in the same order.
    pub resource_required: Vec<String>,
    pub resource_constraints: Vec<Constraint>,
}

impl Tables {
    pub fn action(&self, rule: Rule) -> Action {
        self.actions.get(&rule).copied().unwrap_or(Action::Flag)
    }
}

/// Python's ``==`` between two scalars: ``True == 1 == 1.0``, NaN equals nothing, exact across int
/// and float.
pub fn py_eq(a: &Scalar, b: &Scalar) -> bool {
    fn number(s: &Scalar) -> Option<Result<i64, f64>> {
        match s {
            Scalar::Bool(b) => Some(Ok(i64::from(*b))),
            Scalar::Int(i) => Some(Ok(*i)),
            Scalar::Double(d) => Some(Err(*d)),
            _ => None,
        }
    }
    match (a, b) {
        (Scalar::Str(x), Scalar::Str(y)) => x == y,
        _ => match (number(a), number(b)) {
            (Some(Ok(x)), Some(Ok(y))) => x == y,
            (Some(Err(x)), Some(Err(y))) => x == y,
            (Some(Ok(i)), Some(Err(d))) | (Some(Err(d)), Some(Ok(i))) => {
                d.is_finite() && d.fract() == 0.0 && d.abs() < 1e19 && (d as i128) == i128::from(i)
            }
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_equality() {
        assert!(py_eq(&Scalar::Bool(true), &Scalar::Int(1)));
        assert!(py_eq(&Scalar::Int(2), &Scalar::Double(2.0)));
        assert!(!py_eq(
            &Scalar::Int(9007199254740993),
            &Scalar::Double(9007199254740992.0)
        ));
        assert!(!py_eq(&Scalar::Double(f64::NAN), &Scalar::Double(f64::NAN)));
        assert!(!py_eq(&Scalar::Str("1".into()), &Scalar::Int(1)));
    }
}
