//! OTLP attribute values (``AnyValue``): read as scalars, written, coerced to a contract type.

use crate::schema::any_value;
use crate::wire::{fields, put_bytes, put_fixed64, put_varint, Value};

/// An attribute value as the contract sees it: a scalar, or ``Other`` (empty, array, kvlist, bytes).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Other,
    /// Only in finding messages: a non-scalar value's serialized bytes (Python shows ``b'...'``).
    Bytes(Vec<u8>),
}

/// The contract's attribute types, in the order the Python side numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Int,
    Double,
    Bool,
}

impl AttrType {
    pub fn from_name(name: &str) -> Option<AttrType> {
        match name {
            "string" => Some(AttrType::String),
            "int" => Some(AttrType::Int),
            "double" => Some(AttrType::Double),
            "bool" => Some(AttrType::Bool),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Int => "int",
            AttrType::Double => "double",
            AttrType::Bool => "bool",
        }
    }

    /// The AnyValue oneof member that holds a value of this type.
    pub fn member(self) -> u32 {
        match self {
            AttrType::String => any_value::STRING_VALUE,
            AttrType::Int => any_value::INT_VALUE,
            AttrType::Double => any_value::DOUBLE_VALUE,
            AttrType::Bool => any_value::BOOL_VALUE,
        }
    }
}

/// The AnyValue's set oneof member (the last one on the wire, as protobuf reads it) and its value.
pub fn member(bytes: &[u8]) -> (u32, Option<Value<'_>>) {
    let mut found = (0, None);
    // The request was validated before the walk: reading cannot fail here.
    for field in fields(bytes).flatten() {
        let expected = match field.number {
            any_value::BOOL_VALUE | any_value::INT_VALUE | any_value::STRING_VALUE_STRINDEX => {
                matches!(field.value, Value::Varint(_))
            }
            any_value::DOUBLE_VALUE => matches!(field.value, Value::Fixed64(_)),
            any_value::STRING_VALUE
            | any_value::ARRAY_VALUE
            | any_value::KVLIST_VALUE
            | any_value::BYTES_VALUE => {
                matches!(field.value, Value::Bytes(_))
            }
            _ => false,
        };
        if expected {
            found = (field.number, Some(field.value));
        }
    }
    found
}

/// A scalar borrowed from the request: what the hot path compares and hashes without allocating.
/// ``S`` is a string's type: its bytes where they are only compared (no UTF-8 check again), or ``&str``.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarRef<S> {
    Str(S),
    Bool(bool),
    Int(i64),
    Double(f64),
    Other,
}

/// The AnyValue's scalar, a string as its bytes (validated as UTF-8 before the walk).
pub fn scalar_bytes(bytes: &[u8]) -> ScalarRef<&[u8]> {
    match member(bytes) {
        (any_value::STRING_VALUE, Some(Value::Bytes(b))) => ScalarRef::Str(b),
        (any_value::BOOL_VALUE, Some(Value::Varint(v))) => ScalarRef::Bool(v != 0),
        (any_value::INT_VALUE, Some(Value::Varint(v))) => ScalarRef::Int(v as i64),
        (any_value::DOUBLE_VALUE, Some(Value::Fixed64(v))) => ScalarRef::Double(f64::from_bits(v)),
        _ => ScalarRef::Other,
    }
}

pub fn scalar_ref(bytes: &[u8]) -> ScalarRef<&str> {
    match scalar_bytes(bytes) {
        // Strings were validated as UTF-8 before the walk.
        ScalarRef::Str(b) => ScalarRef::Str(std::str::from_utf8(b).unwrap_or_default()),
        ScalarRef::Bool(b) => ScalarRef::Bool(b),
        ScalarRef::Int(i) => ScalarRef::Int(i),
        ScalarRef::Double(d) => ScalarRef::Double(d),
        ScalarRef::Other => ScalarRef::Other,
    }
}

pub fn scalar(bytes: &[u8]) -> Scalar {
    match scalar_ref(bytes) {
        ScalarRef::Str(s) => Scalar::Str(s.to_owned()),
        ScalarRef::Bool(b) => Scalar::Bool(b),
        ScalarRef::Int(i) => Scalar::Int(i),
        ScalarRef::Double(d) => Scalar::Double(d),
        ScalarRef::Other => Scalar::Other,
    }
}

/// ``old`` (an AnyValue) set to ``new``, as protobuf sets a oneof member: the other members go, its
/// unknown fields stay (a newer OTLP's, or a member's occurrence of another wire type).
pub fn set(old: &[u8], new: &Scalar) -> Vec<u8> {
    let mut out = encode(new);
    let spec = &crate::schema::MESSAGES[crate::schema::ANY_VALUE];
    // The request was validated before the walk: reading cannot fail here.
    for field in fields(old).flatten() {
        let member = spec
            .field(field.number)
            .is_some_and(|k| crate::canonical::is_member(k, &field));
        if !member {
            out.extend_from_slice(field.raw);
        }
    }
    out
}

/// The AnyValue message holding ``value`` (``Other`` encodes as the empty AnyValue).
pub fn encode(value: &Scalar) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Scalar::Str(s) => put_bytes(&mut out, any_value::STRING_VALUE, s.as_bytes()),
        Scalar::Bool(b) => put_varint(&mut out, any_value::BOOL_VALUE, u64::from(*b)),
        Scalar::Int(i) => put_varint(&mut out, any_value::INT_VALUE, *i as u64),
        Scalar::Double(d) => put_fixed64(&mut out, any_value::DOUBLE_VALUE, d.to_bits()),
        Scalar::Other | Scalar::Bytes(_) => {}
    }
    out
}

/// ``d`` as an int64 when it is one exactly (Python: ``d.is_integer()`` and within int64), else None.
pub fn exact_i64(d: f64) -> Option<i64> {
    (d.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&d))
        .then_some(d as i64)
}

/// The conversion's text rules are Python's (Unicode digits, underscores, float text): ask Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedsPython;

/// ``current`` as ``target`` where Rust can tell exactly what Python's conversion gives; ``Err(NeedsPython)``
/// where only Python can (Unicode digits, underscores, float text), which the caller asks it.
pub fn coerce_fast(current: &Scalar, target: AttrType) -> Result<Option<Scalar>, NeedsPython> {
    match (target, current) {
        (AttrType::Int, Scalar::Str(s)) => {
            // Python strips Unicode whitespace and reads Unicode digits and underscores: any such text
            // goes to Python; plain ASCII with spaces is read here.
            if !s.is_ascii() || s.contains('_') || s.bytes().any(|b| b < b' ' || b == 0x7f) {
                return Err(NeedsPython);
            }
            let text = s.trim_matches(' ');
            let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(None);
            }
            Ok(text.parse::<i64>().ok().map(Scalar::Int))
        }
        (AttrType::Int, Scalar::Double(d)) => {
            // Python: int(d) when d.is_integer(), kept only within int64.
            Ok(exact_i64(*d).map(Scalar::Int))
        }
        (AttrType::Double, Scalar::Int(i)) => Ok(Some(Scalar::Double(*i as f64))),
        (AttrType::Double, Scalar::Str(s)) => {
            let simple = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
                && s.bytes().any(|b| b.is_ascii_digit());
            if !simple {
                return Err(NeedsPython);
            }
            Ok(s.parse::<f64>().ok().map(Scalar::Double))
        }
        (AttrType::Bool, Scalar::Str(s)) => {
            if !s.is_ascii() {
                return Ok(None);
            }
            let lower = s.to_ascii_lowercase();
            Ok(match lower.as_str() {
                "true" => Some(Scalar::Bool(true)),
                "false" => Some(Scalar::Bool(false)),
                _ => None,
            })
        }
        (AttrType::String, Scalar::Bool(b)) => {
            Ok(Some(Scalar::Str(if *b { "true" } else { "false" }.into())))
        }
        (AttrType::String, Scalar::Int(i)) => Ok(Some(Scalar::Str(i.to_string()))),
        (AttrType::String, Scalar::Double(_)) => Err(NeedsPython), // Python's float repr
        (_, Scalar::Other) => Ok(None),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_member_wins() {
        let mut bytes = encode(&Scalar::Str("a".into()));
        bytes.extend(encode(&Scalar::Int(-5)));
        assert_eq!(scalar(&bytes), Scalar::Int(-5));
        assert_eq!(scalar(&[]), Scalar::Other);
    }

    #[test]
    fn fast_coercions_and_their_limits() {
        let s = |t: &str| Scalar::Str(t.into());
        assert_eq!(
            coerce_fast(&s(" 42 "), AttrType::Int),
            Ok(Some(Scalar::Int(42)))
        );
        assert_eq!(
            coerce_fast(&s("-7"), AttrType::Int),
            Ok(Some(Scalar::Int(-7)))
        );
        assert_eq!(coerce_fast(&s("4x"), AttrType::Int), Ok(None));
        assert_eq!(
            coerce_fast(&s("99999999999999999999"), AttrType::Int),
            Ok(None)
        );
        assert_eq!(coerce_fast(&s("1_000"), AttrType::Int), Err(NeedsPython));
        assert_eq!(coerce_fast(&s("٣"), AttrType::Int), Err(NeedsPython));
        assert_eq!(
            coerce_fast(&Scalar::Double(3.0), AttrType::Int),
            Ok(Some(Scalar::Int(3)))
        );
        assert_eq!(coerce_fast(&Scalar::Double(3.5), AttrType::Int), Ok(None));
        assert_eq!(
            coerce_fast(&Scalar::Double(9.3e18), AttrType::Int),
            Ok(None)
        );
        assert_eq!(
            coerce_fast(&s("TRUE"), AttrType::Bool),
            Ok(Some(Scalar::Bool(true)))
        );
        assert_eq!(
            coerce_fast(&s("1.5"), AttrType::Double),
            Ok(Some(Scalar::Double(1.5)))
        );
        assert_eq!(coerce_fast(&s("inf"), AttrType::Double), Err(NeedsPython));
        assert_eq!(
            coerce_fast(&Scalar::Bool(true), AttrType::String),
            Ok(Some(s("true")))
        );
        assert_eq!(coerce_fast(&Scalar::Bool(true), AttrType::Int), Ok(None));
    }
}
