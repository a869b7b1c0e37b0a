//! Rewriting a message by copying: every field is copied as it came unless an edit says otherwise.

use crate::wire::{fields, put_bytes, DecodeError, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    Keep,
    Drop,
    /// The new bytes of a length-delimited field's value (a nested message or a string).
    Replace(Vec<u8>),
}

impl Edit {
    pub fn is_keep(&self) -> bool {
        matches!(self, Edit::Keep)
    }
}

/// Edits to the length-delimited occurrences of one field number, in wire order (an occurrence of
/// another wire type is an unknown field to protobuf, and is kept); occurrences past the end are kept.
pub struct FieldEdits<'e> {
    pub number: u32,
    pub edits: &'e [Edit],
}

/// True when any edit changes something.
pub fn any_change(edits: &[Edit]) -> bool {
    edits.iter().any(|edit| !edit.is_keep())
}

/// ``buf`` with the edits applied and ``appended`` (whole fields, key included) at the end.
pub fn rebuild(
    buf: &[u8],
    edits: &[FieldEdits<'_>],
    appended: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    // Room for every replacement up front: growing a copy of a whole request is a copy more.
    let replaced: usize = edits
        .iter()
        .flat_map(|e| e.edits)
        .map(|edit| match edit {
            Edit::Replace(bytes) => bytes.len() + 16,
            _ => 0,
        })
        .sum();
    let mut out = Vec::with_capacity(buf.len() + appended.len() + replaced);
    let mut seen = vec![0usize; edits.len()];
    for field in fields(buf) {
        let field = field?;
        let slot = match field.value {
            Value::Bytes(_) => edits.iter().position(|e| e.number == field.number),
            _ => None,
        };
        let edit = slot.and_then(|slot| {
            let at = seen[slot];
            seen[slot] += 1;
            edits[slot].edits.get(at)
        });
        match edit {
            None | Some(Edit::Keep) => out.extend_from_slice(field.raw),
            Some(Edit::Drop) => {}
            Some(Edit::Replace(bytes)) => put_bytes(&mut out, field.number, bytes),
        }
    }
    out.extend_from_slice(appended);
    Ok(out)
}

/// ``buf`` with each length-delimited occurrence of ``number`` edited by ``edit``, in wire order; None
/// when no edit changed anything (the message goes out as it came).
pub fn edit_each<'a>(
    buf: &'a [u8],
    number: u32,
    mut edit: impl FnMut(&'a [u8]) -> Result<Edit, DecodeError>,
) -> Result<Option<Vec<u8>>, DecodeError> {
    let mut edits = Vec::new();
    for field in fields(buf) {
        let field = field?;
        if let (n, Value::Bytes(bytes)) = (field.number, field.value) {
            if n == number {
                edits.push(edit(bytes)?);
            }
        }
    }
    if !any_change(&edits) {
        return Ok(None);
    }
    Ok(Some(rebuild(
        buf,
        &[FieldEdits {
            number,
            edits: &edits,
        }],
        &[],
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::put_varint;

    #[test]
    fn copies_what_is_not_edited() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, 1, b"a");
        put_varint(&mut buf, 2, 9);
        put_bytes(&mut buf, 1, b"b");
        put_bytes(&mut buf, 1, b"c");
        let edits = [Edit::Replace(b"A".to_vec()), Edit::Drop];
        let out = rebuild(
            &buf,
            &[FieldEdits {
                number: 1,
                edits: &edits,
            }],
            &[],
        )
        .unwrap();
        let mut want = Vec::new();
        put_bytes(&mut want, 1, b"A");
        put_varint(&mut want, 2, 9);
        put_bytes(&mut want, 1, b"c");
        assert_eq!(out, want);
    }
}
