//! The protobuf wire format, read in place and written by copying.
//!
//! The core never decodes a request into owned messages: it walks the bytes, borrowing every string
//! and nested message from the request, and rewrites a message only when something in it changes,
//! copying every other field's bytes as they came. Unknown fields (a newer OTLP than ours) therefore
//! survive, and a request that needs no change costs one walk and no allocation.

use prost::encoding::{decode_key, decode_varint, encode_key, encode_varint, WireType};

/// Why bytes are not a message of the expected type; the Python face turns it into protobuf's
/// ``DecodeError`` so that callers see what they saw from the Python parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    pub fn new(reason: impl Into<String>) -> Self {
        DecodeError(reason.into())
    }
}

impl From<prost::DecodeError> for DecodeError {
    fn from(err: prost::DecodeError) -> Self {
        DecodeError(err.to_string())
    }
}

/// One field's value as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    /// A (deprecated) group: only ever an unknown field here, skipped whole.
    Group,
}

/// One field: its number, its value and its bytes on the wire (key included), for copying.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

impl<'a> Field<'a> {
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// The fields of one message, in wire order.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

/// Each length-delimited occurrence of field ``number`` in ``buf``, in wire order.
pub fn each_message<'a>(
    buf: &'a [u8],
    number: u32,
    mut visit: impl FnMut(&'a [u8]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    for field in fields(buf) {
        let field = field?;
        if let (true, Value::Bytes(bytes)) = (field.number == number, field.value) {
            visit(bytes)?;
        }
    }
    Ok(())
}

// Groups nest without length prefixes; a hostile request could nest them without end.
const MAX_GROUP_DEPTH: u32 = 100;

/// A varint; the one-byte case (most tags and lengths in OTLP) inline, the rest by prost.
#[inline(always)]
fn varint(rest: &mut &[u8]) -> Result<u64, DecodeError> {
    match rest.first() {
        Some(&byte) if byte < 0x80 => {
            *rest = &rest[1..];
            Ok(u64::from(byte))
        }
        _ => Ok(decode_varint(rest)?),
    }
}

/// A field's key; one-byte keys (field numbers below 16) inline, the rest (and every error) by prost.
#[inline(always)]
fn key(rest: &mut &[u8]) -> Result<(u32, WireType), DecodeError> {
    if let Some(&byte) = rest.first() {
        let wire_type = match byte & 7 {
            0 => Some(WireType::Varint),
            1 => Some(WireType::SixtyFourBit),
            2 => Some(WireType::LengthDelimited),
            5 => Some(WireType::ThirtyTwoBit),
            _ => None,
        };
        if let (true, Some(wire_type)) = (byte < 0x80 && byte >> 3 != 0, wire_type) {
            *rest = &rest[1..];
            return Ok((u32::from(byte >> 3), wire_type));
        }
    }
    Ok(decode_key(rest)?)
}

impl<'a> Fields<'a> {
    // Every walk's inner loop: inlined into each, so that a field is read without a call.
    #[inline(always)]
    fn next_field(&mut self) -> Result<Field<'a>, DecodeError> {
        let start = self.pos;
        let mut rest = &self.buf[self.pos..];
        let total = rest.len();
        let (number, wire_type) = key(&mut rest)?;
        let value = match wire_type {
            WireType::Varint => Value::Varint(varint(&mut rest)?),
            WireType::SixtyFourBit => {
                let bytes: [u8; 8] = take(&mut rest, 8)?.try_into().expect("8 bytes");
                Value::Fixed64(u64::from_le_bytes(bytes))
            }
            WireType::ThirtyTwoBit => {
                let bytes: [u8; 4] = take(&mut rest, 4)?.try_into().expect("4 bytes");
                Value::Fixed32(u32::from_le_bytes(bytes))
            }
            WireType::LengthDelimited => {
                let len = varint(&mut rest)?;
                let len = usize::try_from(len)
                    .map_err(|_| DecodeError::new("length beyond the address space"))?;
                Value::Bytes(take(&mut rest, len)?)
            }
            WireType::StartGroup => {
                skip_group(&mut rest, number, 0)?;
                Value::Group
            }
            WireType::EndGroup => return Err(DecodeError::new("unexpected end group")),
        };
        self.pos = start + (total - rest.len());
        Ok(Field {
            number,
            value,
            raw: &self.buf[start..self.pos],
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, DecodeError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let field = self.next_field();
        if field.is_err() {
            self.pos = self.buf.len(); // one error ends the walk
        }
        Some(field)
    }
}

#[inline(always)]
fn take<'a>(rest: &mut &'a [u8], len: usize) -> Result<&'a [u8], DecodeError> {
    if rest.len() < len {
        return Err(DecodeError::new("truncated message"));
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

fn skip_group(rest: &mut &[u8], number: u32, depth: u32) -> Result<(), DecodeError> {
    if depth >= MAX_GROUP_DEPTH {
        return Err(DecodeError::new("groups nested too deeply"));
    }
    loop {
        if rest.is_empty() {
            return Err(DecodeError::new("truncated group"));
        }
        let (inner, wire_type) = decode_key(rest)?;
        match wire_type {
            WireType::Varint => {
                decode_varint(rest)?;
            }
            WireType::SixtyFourBit => {
                take(rest, 8)?;
            }
            WireType::ThirtyTwoBit => {
                take(rest, 4)?;
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(rest)?)
                    .map_err(|_| DecodeError::new("length beyond the address space"))?;
                take(rest, len)?;
            }
            WireType::StartGroup => skip_group(rest, inner, depth + 1)?,
            WireType::EndGroup => {
                return if inner == number {
                    Ok(())
                } else {
                    Err(DecodeError::new("mismatched end group"))
                };
            }
        }
    }
}

/// Appends a length-delimited field: key, length, bytes.
pub fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

pub fn put_varint(out: &mut Vec<u8>, number: u32, value: u64) {
    encode_key(number, WireType::Varint, out);
    encode_varint(value, out);
}

pub fn put_fixed64(out: &mut Vec<u8>, number: u32, value: u64) {
    encode_key(number, WireType::SixtyFourBit, out);
    out.extend_from_slice(&value.to_le_bytes());
}

/// The zigzag encoding of sint32/sint64 fields.
pub fn zigzag_decode(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

pub fn zigzag_encode(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// ``inner`` wrapped in a message per field number, outermost first: a request down to the message
/// a test is about.
#[cfg(test)]
pub fn nest(numbers: &[u32], inner: &[u8]) -> Vec<u8> {
    numbers.iter().rev().fold(inner.to_vec(), |acc, &n| {
        let mut out = Vec::new();
        put_bytes(&mut out, n, &acc);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type_and_keeps_raw_bytes() {
        let mut buf = Vec::new();
        put_varint(&mut buf, 1, 300);
        put_bytes(&mut buf, 2, b"abc");
        put_fixed64(&mut buf, 3, 7);
        let read: Vec<_> = fields(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].value, Value::Varint(300));
        assert_eq!(read[1].bytes(), Some(&b"abc"[..]));
        assert_eq!(read[2].value, Value::Fixed64(7));
        let joined: Vec<u8> = read.iter().flat_map(|f| f.raw.iter().copied()).collect();
        assert_eq!(joined, buf);
    }

    #[test]
    fn truncated_and_absurd_lengths_are_errors_not_panics() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, 1, b"abcdef");
        for cut in 0..buf.len() {
            let all: Result<Vec<_>, _> = fields(&buf[..cut]).collect();
            assert!(cut == 0 || all.is_err(), "cut at {cut}");
        }
        let absurd = [
            0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(fields(&absurd).next().unwrap().is_err());
    }

    #[test]
    fn groups_are_skipped_and_bounded() {
        // field 5 start group, field 1 varint 1, field 5 end group, then field 2 varint 2
        let buf = [0x2b, 0x08, 0x01, 0x2c, 0x10, 0x02];
        let read: Vec<_> = fields(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(read[0].value, Value::Group);
        assert_eq!(read[1].value, Value::Varint(2));
        let deep: Vec<u8> = std::iter::repeat(0x2b).take(200).collect();
        assert!(fields(&deep).next().unwrap().is_err());
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -300] {
            assert_eq!(zigzag_decode(zigzag_encode(v)), v);
        }
    }
}
