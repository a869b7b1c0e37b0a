//! Rewriting a message by copying: every field is copied as it came unless an edit says otherwise.
//!
//! A message rewritten below the request is not copied at each level on its way up: its edit says how
//! to rebuild it from its own bytes (``Edit::Rebuild``), with its size known, and the request is
//! written once, at the end, each kept field copied once from the bytes that arrived.

use std::ops::Range;

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

use crate::wire::{each_message, fields, put_bytes, DecodeError, Field, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    Keep,
    Drop,
    /// The new bytes of a length-delimited field's value (a nested message or a string).
    Replace(Vec<u8>),
    /// A nested message rebuilt from its own bytes when its parent is written.
    Rebuild(Box<Rebuild>),
}

impl Edit {
    pub fn is_keep(&self) -> bool {
        matches!(self, Edit::Keep)
    }
}

/// How to write a message anew from its bytes: ``head`` first (whole fields), then ``moved`` (a field
/// of its own, moved to the front and edited), then its fields as they came, less the length-delimited
/// occurrences of the numbers in ``skip`` and with ``fields``' edits applied, then ``appended``.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rebuild {
    head: Vec<u8>,
    moved: Option<(u32, Range<usize>, Edit)>,
    skip: Vec<u32>,
    fields: Vec<(u32, Vec<Edit>)>,
    appended: Vec<u8>,
    /// The size of the message written.
    len: usize,
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

/// The edit of each field of ``buf`` in wire order (None: copied as it came), as ``edits`` say.
fn each_edit<'b, 'e>(
    buf: &'b [u8],
    edits: impl Fn(usize) -> (u32, &'e [Edit]) + 'e,
    count: usize,
    mut visit: impl FnMut(Field<'b>, Option<&'e Edit>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut seen = [0usize; 4];
    let mut seen_more = vec![0usize; count.saturating_sub(seen.len())];
    for field in fields(buf) {
        let field = field?;
        let slot = match field.value {
            Value::Bytes(_) => (0..count).find(|&slot| edits(slot).0 == field.number),
            _ => None,
        };
        let edit = slot.and_then(|slot| {
            let at = if slot < seen.len() {
                &mut seen[slot]
            } else {
                &mut seen_more[slot - seen.len()]
            };
            let edit = edits(slot).1.get(*at);
            *at += 1;
            edit
        });
        visit(field, edit)?;
    }
    Ok(())
}

/// The size of ``field`` as ``edit`` leaves it.
fn edited_len(field: &Field<'_>, edit: Option<&Edit>) -> usize {
    match edit {
        None | Some(Edit::Keep) => field.raw.len(),
        Some(Edit::Drop) => 0,
        Some(Edit::Replace(bytes)) => delimited_len(field.number, bytes.len()),
        Some(Edit::Rebuild(rebuild)) => delimited_len(field.number, rebuild.len),
    }
}

fn delimited_len(number: u32, len: usize) -> usize {
    key_len(number) + encoded_len_varint(len as u64) + len
}

/// Writes ``field`` as ``edit`` leaves it.
pub fn put_edited(
    out: &mut Vec<u8>,
    field: &Field<'_>,
    edit: Option<&Edit>,
) -> Result<(), DecodeError> {
    match edit {
        None | Some(Edit::Keep) => out.extend_from_slice(field.raw),
        Some(Edit::Drop) => {}
        Some(Edit::Replace(bytes)) => put_bytes(out, field.number, bytes),
        Some(Edit::Rebuild(rebuild)) => put_rebuilt(
            out,
            field.number,
            field.bytes().unwrap_or_default(),
            rebuild,
        )?,
    }
    Ok(())
}

fn put_rebuilt(
    out: &mut Vec<u8>,
    number: u32,
    source: &[u8],
    rebuild: &Rebuild,
) -> Result<(), DecodeError> {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(rebuild.len as u64, out);
    rebuild.write(source, out)
}

impl Rebuild {
    /// The rebuild of ``buf``, its size computed (one walk over its own fields, not its contents).
    fn new(
        buf: &[u8],
        head: Vec<u8>,
        moved: Option<(u32, Range<usize>, Edit)>,
        skip: Vec<u32>,
        fields: Vec<(u32, Vec<Edit>)>,
        appended: Vec<u8>,
    ) -> Result<Rebuild, DecodeError> {
        let mut rebuild = Rebuild {
            head,
            moved,
            skip,
            fields,
            appended,
            len: 0,
        };
        let mut len = rebuild.head.len() + rebuild.appended.len();
        if let Some((number, range, edit)) = &rebuild.moved {
            len += match edit {
                Edit::Replace(bytes) => delimited_len(*number, bytes.len()),
                Edit::Rebuild(inner) => delimited_len(*number, inner.len),
                Edit::Keep => delimited_len(*number, range.len()),
                Edit::Drop => 0,
            };
        }
        rebuild.walk(buf, |field, edit| {
            len += edited_len(&field, edit);
            Ok(())
        })?;
        rebuild.len = len;
        Ok(rebuild)
    }

    fn walk<'b, 's>(
        &'s self,
        buf: &'b [u8],
        mut visit: impl FnMut(Field<'b>, Option<&'s Edit>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let skip = &self.skip;
        each_edit(
            buf,
            |slot| (self.fields[slot].0, self.fields[slot].1.as_slice()),
            self.fields.len(),
            |field, edit| {
                if field.bytes().is_some() && skip.contains(&field.number) {
                    Ok(())
                } else {
                    visit(field, edit)
                }
            },
        )
    }

    /// ``buf`` rewritten as this rebuild says, appended to ``out``.
    fn write(&self, buf: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        out.extend_from_slice(&self.head);
        if let Some((number, range, edit)) = &self.moved {
            let source = buf.get(range.clone()).unwrap_or_default();
            match edit {
                Edit::Replace(bytes) => put_bytes(out, *number, bytes),
                Edit::Rebuild(inner) => put_rebuilt(out, *number, source, inner)?,
                Edit::Keep => put_bytes(out, *number, source),
                Edit::Drop => {}
            }
        }
        self.walk(buf, |field, edit| put_edited(out, &field, edit))?;
        out.extend_from_slice(&self.appended);
        Ok(())
    }
}

/// Where ``part`` (a slice of ``whole``) lies in ``whole``.
pub fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

/// ``buf`` with the edits applied and ``appended`` (whole fields, key included) at the end, written now.
pub fn rebuild(
    buf: &[u8],
    edits: &[FieldEdits<'_>],
    appended: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    let lookup = |slot: usize| (edits[slot].number, edits[slot].edits);
    // Its size first: one allocation, no copy while growing.
    let mut len = appended.len();
    each_edit(buf, lookup, edits.len(), |field, edit| {
        len += edited_len(&field, edit);
        Ok(())
    })?;
    let mut out = Vec::with_capacity(len);
    each_edit(buf, lookup, edits.len(), |field, edit| {
        put_edited(&mut out, &field, edit)
    })?;
    out.extend_from_slice(appended);
    Ok(out)
}

/// ``buf`` with the edits applied and ``appended`` at the end, written when its parent is.
pub fn rebuilt(
    buf: &[u8],
    edits: Vec<(u32, Vec<Edit>)>,
    appended: Vec<u8>,
) -> Result<Edit, DecodeError> {
    Ok(Edit::Rebuild(Box::new(Rebuild::new(
        buf,
        Vec::new(),
        None,
        Vec::new(),
        edits,
        appended,
    )?)))
}

/// ``buf`` with ``head`` (whole fields) and then the field ``moved`` (its number, where its value lies
/// in ``buf``, its edit) at the front, the length-delimited occurrences of ``skip`` left out, written
/// when its parent is.
pub fn rebuilt_with_head(
    buf: &[u8],
    head: Vec<u8>,
    moved: Option<(u32, Range<usize>, Edit)>,
    skip: Vec<u32>,
) -> Result<Edit, DecodeError> {
    Ok(Edit::Rebuild(Box::new(Rebuild::new(
        buf,
        head,
        moved,
        skip,
        Vec::new(),
        Vec::new(),
    )?)))
}

/// ``buf`` with each length-delimited occurrence of ``number`` edited by ``edit``, in wire order; None
/// when no edit changed anything (the message goes out as it came). Written now: this is the request.
pub fn edit_each<'a>(
    buf: &'a [u8],
    number: u32,
    mut edit: impl FnMut(&'a [u8]) -> Result<Edit, DecodeError>,
) -> Result<Option<Vec<u8>>, DecodeError> {
    let mut edits = Vec::new();
    each_message(buf, number, |bytes| {
        edits.push(edit(bytes)?);
        Ok(())
    })?;
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

    #[test]
    fn a_nested_rebuild_writes_what_copying_at_each_level_writes() {
        // outer { 1: inner { 1: "a", 2: 9, 1: "b" }, 3: 7, 1: inner' }
        let mut inner = Vec::new();
        put_bytes(&mut inner, 1, b"a");
        put_varint(&mut inner, 2, 9);
        put_bytes(&mut inner, 1, b"b");
        let mut outer = Vec::new();
        put_bytes(&mut outer, 1, &inner);
        put_varint(&mut outer, 3, 7);
        put_bytes(&mut outer, 1, b"\x0a\x01c");
        let inner_edits = || vec![Edit::Replace(b"longer than a".to_vec()), Edit::Drop];
        let eager_inner = rebuild(
            &inner,
            &[FieldEdits {
                number: 1,
                edits: &inner_edits(),
            }],
            b"\x10\x05",
        )
        .unwrap();
        let eager = rebuild(
            &outer,
            &[FieldEdits {
                number: 1,
                edits: &[Edit::Replace(eager_inner)],
            }],
            &[],
        )
        .unwrap();
        let lazy_inner = rebuilt(&inner, vec![(1, inner_edits())], b"\x10\x05".to_vec()).unwrap();
        let lazy = rebuild(
            &outer,
            &[FieldEdits {
                number: 1,
                edits: &[lazy_inner],
            }],
            &[],
        )
        .unwrap();
        assert_eq!(lazy, eager);
        // A field moved to the front, after a head, its other occurrences left out.
        let moved = rebuilt_with_head(
            &outer,
            b"\x22\x00".to_vec(),
            Some((1, range_in(&outer, &outer[2..2 + inner.len()]), Edit::Keep)),
            vec![1],
        )
        .unwrap();
        let mut container = outer.clone();
        put_bytes(&mut container, 5, &outer);
        let written = rebuild(
            &container,
            &[FieldEdits {
                number: 5,
                edits: &[moved],
            }],
            &[],
        )
        .unwrap();
        let mut want_moved = b"\x22\x00".to_vec();
        put_bytes(&mut want_moved, 1, &inner);
        put_varint(&mut want_moved, 3, 7);
        let mut want = outer.clone();
        put_bytes(&mut want, 5, &want_moved);
        assert_eq!(written, want);
    }
}
