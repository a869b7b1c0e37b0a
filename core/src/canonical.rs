//! A request as protobuf reads it, written so that a copying walk can trust its shape.
//!
//! Protobuf *merges* a singular message field that occurs twice in one message (the occurrences'
//! bytes concatenated are the merged message), and keeps only the last member of a oneof: a later
//! member clears an earlier one, so ``gauge{A} sum{} gauge{B}`` is the gauge [B]. Real senders never
//! write these, but anyone who can reach the receiver can; the engine's walk copies fields as they
//! came, so such a request is first rewritten here into the one message protobuf reads, with every
//! other field (unknown ones included) kept in place.

use crate::schema::{FieldSpec, Kind, MessageSpec, MESSAGES};
use crate::wire::{fields, put_bytes, DecodeError, Field, Value};

/// Whether ``field`` is an occurrence of ``known`` as protobuf reads it (another wire type makes it
/// an unknown field, which touches no member).
pub fn is_member(known: &FieldSpec, field: &Field<'_>) -> bool {
    matches!(
        (known.kind, field.value),
        (
            Kind::String | Kind::Bytes | Kind::Message(_),
            Value::Bytes(_)
        ) | (Kind::Scalar(8), Value::Fixed64(_))
            | (Kind::Scalar(4), Value::Fixed32(_))
            | (Kind::Scalar(0), Value::Varint(_))
    )
}

/// ``buf`` (a message of type ``message``) rewritten as protobuf reads it, recursively.
pub fn canonicalize(buf: &[u8], message: usize) -> Result<Vec<u8>, DecodeError> {
    let spec: &MessageSpec = &MESSAGES[message];
    let all: Vec<Field<'_>> = fields(buf).collect::<Result<_, _>>()?;
    let known = |f: &Field<'_>| spec.field(f.number).filter(|k| is_member(k, f));
    // Per oneof group: its last member's field number, and where that member's final run starts
    // (after the last occurrence of any other member of the group).
    let mut last_member: [Option<(u32, usize)>; 64] = [None; 64];
    for (index, field) in all.iter().enumerate() {
        if let Some(k) = known(field) {
            if k.oneof > 0 {
                let group = usize::from(k.oneof) % 64;
                let run_start = match last_member[group] {
                    Some((number, start)) if number == field.number => start,
                    _ => index,
                };
                last_member[group] = Some((field.number, run_start));
            }
        }
    }
    let mut out = Vec::with_capacity(buf.len());
    let mut merged: Vec<u32> = Vec::new();
    for (index, field) in all.iter().enumerate() {
        let Some(k) = known(field) else {
            out.extend_from_slice(field.raw);
            continue;
        };
        let in_final_run = match k.oneof {
            0 => true,
            group => last_member[usize::from(group) % 64]
                .is_some_and(|(number, start)| number == field.number && index >= start),
        };
        if !in_final_run {
            continue; // cleared by a later member of its oneof
        }
        match (k.kind, k.repeated) {
            (Kind::Message(inner), true) => {
                put_bytes(
                    &mut out,
                    field.number,
                    &canonicalize(field.bytes().unwrap_or_default(), inner)?,
                );
            }
            (Kind::Message(inner), false) => {
                // Every occurrence (of the final run, for a oneof member) merged at the first one.
                if merged.contains(&field.number) {
                    continue;
                }
                merged.push(field.number);
                let mut joined = Vec::new();
                for later in &all[index..] {
                    if later.number == field.number && is_member(k, later) {
                        joined.extend_from_slice(later.bytes().unwrap_or_default());
                    }
                }
                put_bytes(&mut out, field.number, &canonicalize(&joined, inner)?);
            }
            _ if k.oneof > 0 && !k.repeated => {
                // A scalar member: its last occurrence is the value.
                let last = all
                    .iter()
                    .rposition(|f| f.number == field.number && is_member(k, f));
                if last == Some(index) {
                    out.extend_from_slice(field.raw);
                }
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{gauge, metric, number_data_point, METRICS_REQUEST};
    use crate::validate::validate;
    use crate::wire::{nest, put_fixed64};

    fn point(value: u64) -> Vec<u8> {
        let mut p = Vec::new();
        put_fixed64(&mut p, number_data_point::AS_DOUBLE, value);
        nest(&[gauge::DATA_POINTS], &p)
    }

    #[test]
    fn a_later_oneof_member_clears_the_earlier_and_repeats_merge() {
        // gauge{A} sum{} gauge{B} gauge{C}: protobuf reads the gauge [B, C].
        let mut data = Vec::new();
        put_bytes(&mut data, metric::GAUGE, &point(1));
        put_bytes(&mut data, metric::SUM, &[]);
        put_bytes(&mut data, metric::GAUGE, &point(2));
        put_bytes(&mut data, metric::GAUGE, &point(3));
        let request = nest(&[1, 2, 2], &data);
        assert!(!validate(&request, METRICS_REQUEST).unwrap().canonical);
        let canonical = canonicalize(&request, METRICS_REQUEST).unwrap();
        assert!(validate(&canonical, METRICS_REQUEST).unwrap().canonical);
        let mut want = Vec::new();
        put_bytes(&mut want, metric::GAUGE, &[point(2), point(3)].concat());
        assert_eq!(canonical, nest(&[1, 2, 2], &want));
    }
}
