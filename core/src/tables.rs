//! The compiled contract as the core takes it: built once per contract version by the Python side.

// The contract's own keys: a fast hash without a seed is safe for tables the request cannot grow.
use rustc_hash::FxHashMap as HashMap;

/// The contract's tables keyed by name.
pub type Map<V> = HashMap<String, V>;

/// Tables keyed by attribute key, looked up by the bytes the request holds: a key was checked as
/// UTF-8 once, before the walk, and is not converted again for each lookup.
pub type KeyMap<V> = HashMap<Box<[u8]>, V>;

use crate::sink::{Action, Rule};
use crate::value::{AttrType, Scalar};

/// What only Python can answer exactly: RE2 pattern matches (one regex dialect for the whole
/// project), the rare coercions whose text rules are Python's (Unicode digits, float text), UCUM
/// unit conversion factors, and exact integer scaling by a factor whose terms exceed 64 bits.
pub trait Oracle {
    fn matches(&self, pattern: usize, text: &str) -> bool;
    fn coerce(&self, value: &Scalar, target: AttrType) -> Option<Scalar>;
    fn unit_factor(&self, arrived: &str, target: &str) -> Option<Factor>;
    fn exact_int(&self, value: i64, arrived: &str, target: &str) -> ExactInt;
}

/// The exact factor from one unit to another, as the core applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    /// The numerator and denominator as doubles (correctly rounded, as Python's ``float(int)``).
    pub numerator: f64,
    pub denominator: f64,
    /// The terms themselves when they fit 64 bits (exact integer scaling without Python).
    pub exact: Option<(u64, u64)>,
    pub numerator_is_one: bool,
    pub denominator_is_one: bool,
    /// A term at or beyond 2**1023: Python cannot apply it to a double.
    pub huge: bool,
    /// k when the factor is 2**k (exponential histograms can only be scaled by those).
    pub power_of_two: Option<i64>,
}

impl Factor {
    pub fn is_one(&self) -> bool {
        self.numerator_is_one && self.denominator_is_one
    }

    /// Multiply by the factor with one correctly rounded operation where possible, as the Python
    /// engine does (``x / 1000`` is the correctly rounded ms -> s conversion; ``x * 0.001`` is not).
    pub fn scale(&self, value: f64) -> f64 {
        if self.numerator_is_one {
            value / self.denominator
        } else if self.denominator_is_one {
            value * self.numerator
        } else {
            value * self.numerator / self.denominator
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExactInt {
    Integral(i64),
    BeyondInt64,
    Fractional,
}

/// A contract metric as the hot path reads it (the Python side's ``CompiledMetric``).
#[derive(Debug, Default)]
pub struct MetricSpec {
    pub name: String,
    /// The Metric.data member it must be (its field number), and that member's name.
    pub kind: u32,
    pub kind_name: String,
    pub monotonic: Option<bool>,
    /// The OTLP AggregationTemporality value it must have, and its name.
    pub temporality: Option<(i64, String)>,
    pub unit: Option<String>,
    pub description: String,
    /// "deprecated" or "archived", and what replaces it.
    pub retired: Option<(String, Option<String>)>,
    pub renames: KeyMap<String>,
    pub types: KeyMap<AttrType>,
    pub required: Vec<String>,
    pub forbidden: Vec<String>,
    pub allowed: Vec<(String, Vec<Scalar>)>,
    pub patterns: Vec<(String, usize)>,
    pub actions: HashMap<Rule, Action>,
    pub checks_attributes: bool,
    pub roles: HashMap<String, String>,
    pub max_series: Option<u64>,
}

impl MetricSpec {
    pub fn action(&self, rule: Rule) -> Action {
        self.actions.get(&rule).copied().unwrap_or(Action::Flag)
    }
}

#[derive(Debug)]
pub struct AliasSpec {
    pub metric: usize,
    pub unit: Option<String>,
}

#[derive(Debug)]
pub struct NameRule {
    pub matcher: usize,
    pub pattern: usize,
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

#[derive(Default)]
pub struct Tables {
    pub actions: HashMap<Rule, Action>,
    pub renames: KeyMap<String>,
    pub types: KeyMap<AttrType>,
    pub resource_actions: Vec<ResourceAction>,
    /// In the order the Python side iterates them, so findings come in the same order.
    pub resource_required: Vec<String>,
    pub resource_constraints: Vec<Constraint>,
    pub metrics: Vec<MetricSpec>,
    pub metric_index: HashMap<String, usize>,
    pub aliases: HashMap<String, AliasSpec>,
    /// Compat shims' output names: passed through when they come from the compat scope.
    pub shim_records: HashMap<String, ()>,
    pub shim_scope: String,
    pub metric_pattern: Option<usize>,
    pub name_rules: Vec<NameRule>,
    /// Alias names and legacy attribute keys as protobuf frames them: a request that holds none of
    /// them gets no renames (and no identity tracking), as in the Python engine.
    pub legacy_tokens: Option<LegacyTokens>,
}

/// The search for legacy tokens over a whole request. Every token begins with the same framing byte
/// (a field key, ``\n``), which is everywhere in protobuf: the automaton's own prefilter would stop at
/// each one, so up to the packed searcher's limit a SIMD search (Teddy) on the first bytes runs instead.
pub enum LegacyTokens {
    Packed(aho_corasick::packed::Searcher),
    Automaton(aho_corasick::AhoCorasick),
}

impl LegacyTokens {
    pub fn new(tokens: &[Vec<u8>]) -> Result<Option<LegacyTokens>, aho_corasick::BuildError> {
        if tokens.is_empty() {
            return Ok(None);
        }
        let packed = aho_corasick::packed::Config::new()
            .builder()
            .extend(tokens)
            .build();
        Ok(Some(match packed {
            Some(searcher) => LegacyTokens::Packed(searcher),
            None => LegacyTokens::Automaton(aho_corasick::AhoCorasick::new(tokens)?),
        }))
    }

    pub fn any_in(&self, haystack: &[u8]) -> bool {
        match self {
            LegacyTokens::Packed(searcher) => searcher.find(haystack).is_some(),
            LegacyTokens::Automaton(automaton) => automaton.is_match(haystack),
        }
    }
}

impl Tables {
    pub fn action(&self, rule: Rule) -> Action {
        self.actions.get(&rule).copied().unwrap_or(Action::Flag)
    }

    pub fn renames_possible(&self, request: &[u8]) -> bool {
        self.legacy_tokens
            .as_ref()
            .is_some_and(|tokens| tokens.any_in(request))
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
                crate::value::exact_i64(d) == Some(i)
            }
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_tokens_are_found_by_either_search() {
        let framed = |name: &str| [&[b'\n', name.len() as u8], name.as_bytes()].concat();
        let few: Vec<Vec<u8>> = ["http_status", "status_code"].map(framed).to_vec();
        let many: Vec<Vec<u8>> = (0..300).map(|i| framed(&format!("alias.{i}"))).collect();
        for (tokens, packed) in [(few, true), (many, false)] {
            let search = LegacyTokens::new(&tokens).unwrap().unwrap();
            assert_eq!(matches!(search, LegacyTokens::Packed(_)), packed);
            for (at, token) in tokens.iter().enumerate().step_by(7) {
                let request = [b"\n\x05\n\x03abc".as_slice(), token, b"\x10\x01"].concat();
                assert!(search.any_in(&request), "token {at}");
                assert!(
                    !search.any_in(&request[..request.len() - 3]),
                    "token {at} cut"
                );
            }
            assert!(!search.any_in(b"\n\x0bhttp.status"));
        }
        assert!(LegacyTokens::new(&[]).unwrap().is_none());
    }

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
