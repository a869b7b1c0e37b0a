//! Is this what the Python parser (upb) would accept, and can the rewriting walk trust its shape?
//!
//! One pass over the whole request, before the engine looks at any field: strings must be UTF-8
//! (proto3), lengths must fit, packed numbers must be whole, and nesting stops at upb's depth. A
//! request that passes here is one the Python parser accepts; one that fails gets ``DecodeError``.
//!
//! It also tells whether the request is *canonical*: no singular message field and no oneof occurs
//! twice in one message. Protobuf merges such repeats (``gauge{A} sum{} gauge{B}`` is the gauge [B]),
//! which a walk that copies fields as they came cannot express; such requests take another path.

use crate::schema::{Kind, MessageSpec, MESSAGES};
use crate::wire::{fields, DecodeError, Value};

/// upb's default recursion limit: 100 messages below the request.
pub const MAX_DEPTH: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub canonical: bool,
}

pub fn validate(buf: &[u8], message: usize) -> Result<Shape, DecodeError> {
    let mut shape = Shape { canonical: true };
    walk(buf, &MESSAGES[message], 0, &mut shape)?;
    Ok(shape)
}

fn walk(buf: &[u8], spec: &MessageSpec, depth: u32, shape: &mut Shape) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::new("message nested too deeply"));
    }
    // Which singular message fields and oneofs were seen: a second one means a merge.
    let mut seen_fields: u64 = 0;
    let mut seen_oneofs: u64 = 0;
    for field in fields(buf) {
        let field = field?;
        let Some(known) = spec.field(field.number) else {
            continue; // an unknown field: kept as it is, never looked into
        };
        let Value::Bytes(bytes) = field.value else {
            continue; // a number (or a number's field with another wire type: unknown, as upb reads it)
        };
        match known.kind {
            Kind::String => {
                // Most strings are ASCII: told so at a fraction of a full UTF-8 check's cost.
                if !bytes.is_ascii() && std::str::from_utf8(bytes).is_err() {
                    return Err(DecodeError::new(format!(
                        "invalid UTF-8 in a string field of {}",
                        spec.name
                    )));
                }
            }
            Kind::Bytes => {}
            Kind::Message(inner) => {
                walk(bytes, &MESSAGES[inner], depth + 1, shape)?;
                if !known.repeated {
                    let bit = 1u64 << (field.number % 64);
                    shape.canonical &= seen_fields & bit == 0;
                    seen_fields |= bit;
                }
            }
            Kind::Scalar(width) => {
                if !known.repeated {
                    continue; // a length-delimited value for a singular number: an unknown field
                }
                packed(bytes, width)?;
            }
        }
        if known.oneof > 0 {
            let bit = 1u64 << known.oneof;
            shape.canonical &= seen_oneofs & bit == 0;
            seen_oneofs |= bit;
        }
    }
    Ok(())
}

fn packed(mut bytes: &[u8], width: u8) -> Result<(), DecodeError> {
    if width > 0 {
        return if bytes.len() % usize::from(width) == 0 {
            Ok(())
        } else {
            Err(DecodeError::new(
                "packed field of a length that is no whole number of values",
            ))
        };
    }
    while !bytes.is_empty() {
        prost::encoding::decode_varint(&mut bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{self, LOGS_REQUEST, METRICS_REQUEST};
    use crate::wire::{nest, put_bytes};

    #[test]
    fn invalid_utf8_in_any_string_is_an_error() {
        let mut record = Vec::new();
        put_bytes(&mut record, schema::log_record::SEVERITY_TEXT, b"\xff\xfe");
        let request = nest(&[1, 2, 2], &record);
        assert!(validate(&request, LOGS_REQUEST).is_err());
        let mut fine = Vec::new();
        put_bytes(&mut fine, schema::log_record::SEVERITY_TEXT, "é".as_bytes());
        assert_eq!(
            validate(&nest(&[1, 2, 2], &fine), LOGS_REQUEST),
            Ok(Shape { canonical: true })
        );
    }

    #[test]
    fn depth_stops_where_upb_stops() {
        // request > resource_logs > scope_logs > log_record > body, then (array > any value) x n
        let request = |n: usize| {
            let mut value = Vec::new();
            put_bytes(&mut value, schema::any_value::STRING_VALUE, b"x");
            for _ in 0..n {
                value = nest(
                    &[schema::any_value::ARRAY_VALUE, schema::array_value::VALUES],
                    &value,
                );
            }
            nest(&[1, 2, 2, schema::log_record::BODY], &value)
        };
        assert!(validate(&request(48), LOGS_REQUEST).is_ok());
        assert!(validate(&request(49), LOGS_REQUEST).is_err());
    }

    #[test]
    fn repeated_singular_messages_and_oneofs_are_not_canonical() {
        let gauge = nest(&[schema::metric::GAUGE], &[]);
        let sum = nest(&[schema::metric::SUM], &[]);
        let metric = |data: &[&[u8]]| nest(&[1, 2, 2], &data.concat());
        assert!(
            validate(&metric(&[&gauge]), METRICS_REQUEST)
                .unwrap()
                .canonical
        );
        assert!(
            !validate(&metric(&[&gauge, &sum]), METRICS_REQUEST)
                .unwrap()
                .canonical
        );
        assert!(
            !validate(&metric(&[&gauge, &gauge]), METRICS_REQUEST)
                .unwrap()
                .canonical
        );
    }
}
