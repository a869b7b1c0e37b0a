//! OTLP/JSON into the protobuf wire format: one call per document, so an OTLP/HTTP JSON request costs
//! one pass in Rust instead of a Python object per field (protobuf's ``json_format``).
//!
//! The document is read as a stream (serde_json) and written as it is read, field by field, guided
//! by the very descriptors the Python side parses with (handed over once as a ``FileDescriptorSet``,
//! read with prost-reflect). Nothing is built between the two: a tree of the document (serde_json's
//! ``Value``, prost-reflect's ``DynamicMessage``) took about 50 times the document's size, over
//! 200 MiB for one 4 MiB request, and twice the time.
//!
//! The protobuf JSON mapping (https://protobuf.dev/programming-guides/json/), as ``json_format``
//! reads it: lowerCamelCase or original field names, 64-bit integers as strings or numbers, enums as
//! names or integers, ``NaN``/``Infinity`` as strings, bytes in base64, ``null`` for "not set",
//! unknown fields and enum names ignored. OTLP's one departure: trace and span IDs are hex. A field
//! without presence that holds its default is left out, as protobuf writes it (-0.0 is written: its
//! bits are not zero), so a document in field-number order becomes the bytes Python would serialize.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use prost::encoding::{self, WireType};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The fields OTLP/JSON writes in hex (bytes fields of these names: spans, links, log records,
/// exemplars).
const ID_FIELDS: [&str; 3] = ["trace_id", "span_id", "parent_span_id"];

/// The signals by their numbers, as messages name them.
const NOUNS: [&str; 3] = ["metrics", "traces", "logs"];

/// Base64 as the JSON mapping reads it: the standard or the URL-safe alphabet, padded or not.
const PADDING_EITHER: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING_EITHER);
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_EITHER);

/// How much of a value a message shows, and of serde's own wording: a hostile 4 MiB string must not
/// come back whole in the answer.
const SHOWN: usize = 40;
const SERDE_WORDING: usize = 300;

/// ``text`` cut to ``limit`` characters, marked when cut.
fn clip(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// A string as JSON writes it, cut.
fn quoted(text: &str) -> String {
    clip(
        &serde_json::Value::String(clip(text, SHOWN)).to_string(),
        SHOWN + 8,
    )
}

/// Why a document is not a request, worded for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub String);

/// What one field holds, as far as reading JSON and writing the wire goes.
#[derive(Debug)]
enum Holds {
    Double,
    Float,
    /// int32, sint32 (zigzag), sfixed32 (fixed)
    I32 {
        zigzag: bool,
        fixed: bool,
    },
    I64 {
        zigzag: bool,
        fixed: bool,
    },
    U32 {
        fixed: bool,
    },
    U64 {
        fixed: bool,
    },
    Bool,
    String,
    Bytes,
    /// A hex trace or span ID.
    Id,
    Enum(HashMap<String, i32>),
    /// Index into ``OtlpJson::messages``.
    Message(usize),
}

#[derive(Debug)]
struct FieldLayout {
    number: u32,
    holds: Holds,
    repeated: bool,
    packed: bool,
    /// Written even when it holds its default (oneof members, ``optional``, messages).
    presence: bool,
}

#[derive(Debug)]
struct MessageLayout {
    fields: Vec<FieldLayout>,
    /// Both spellings of every field's name (JSON name, then the field's own) to its index in ``fields``.
    by_key: HashMap<String, usize>,
}

pub struct OtlpJson {
    /// Per signal (metrics, traces, logs: the order of the ``signal`` numbers everywhere in the core),
    /// the top-level keys that name it: its request's one field, the repeated resources, by its JSON
    /// name first (what messages show), then its own.
    keys: Vec<[String; 2]>,
    /// Every message the requests reach; the requests are the first three, by signal number.
    messages: Vec<MessageLayout>,
}

fn holds(field: &FieldDescriptor, index: &HashMap<String, usize>) -> Holds {
    match field.kind() {
        Kind::Double => Holds::Double,
        Kind::Float => Holds::Float,
        Kind::Int32 => Holds::I32 {
            zigzag: false,
            fixed: false,
        },
        Kind::Sint32 => Holds::I32 {
            zigzag: true,
            fixed: false,
        },
        Kind::Sfixed32 => Holds::I32 {
            zigzag: false,
            fixed: true,
        },
        Kind::Int64 => Holds::I64 {
            zigzag: false,
            fixed: false,
        },
        Kind::Sint64 => Holds::I64 {
            zigzag: true,
            fixed: false,
        },
        Kind::Sfixed64 => Holds::I64 {
            zigzag: false,
            fixed: true,
        },
        Kind::Uint32 => Holds::U32 { fixed: false },
        Kind::Fixed32 => Holds::U32 { fixed: true },
        Kind::Uint64 => Holds::U64 { fixed: false },
        Kind::Fixed64 => Holds::U64 { fixed: true },
        Kind::Bool => Holds::Bool,
        Kind::String => Holds::String,
        Kind::Bytes if ID_FIELDS.contains(&field.name()) => Holds::Id,
        Kind::Bytes => Holds::Bytes,
        Kind::Enum(values) => Holds::Enum(
            values
                .values()
                .map(|v| (v.name().to_owned(), v.number()))
                .collect(),
        ),
        Kind::Message(message) => Holds::Message(index[message.full_name()]),
    }
}

impl OtlpJson {
    /// The reader of the requests named in ``requests`` (metrics, traces, logs), from a serialized
    /// ``FileDescriptorSet`` holding them and everything they import.
    pub fn new(descriptor_set: &[u8], requests: [&str; 3]) -> Result<Self, String> {
        let pool = DescriptorPool::decode(descriptor_set).map_err(|e| e.to_string())?;
        let mut found: Vec<MessageDescriptor> = Vec::new();
        for name in requests {
            let message = pool
                .get_message_by_name(name)
                .ok_or_else(|| format!("no message {name} in the descriptor set"))?;
            found.push(message);
        }
        // Every message the requests reach, the requests first (so their indexes are 0, 1, 2).
        let mut reached = 0;
        while reached < found.len() {
            let children: Vec<MessageDescriptor> = found[reached]
                .fields()
                .filter_map(|f| match f.kind() {
                    Kind::Message(m) => Some(m),
                    _ => None,
                })
                .collect();
            for child in children {
                if !found.iter().any(|m| m.full_name() == child.full_name()) {
                    found.push(child);
                }
            }
            reached += 1;
        }
        let index: HashMap<String, usize> = found
            .iter()
            .enumerate()
            .map(|(i, m)| (m.full_name().to_owned(), i))
            .collect();
        let messages = found
            .iter()
            .map(|message| {
                let mut fields: Vec<FieldDescriptor> = message.fields().collect();
                fields.sort_by_key(FieldDescriptor::number);
                let mut by_key = HashMap::new();
                for (i, field) in fields.iter().enumerate() {
                    by_key.insert(field.json_name().to_owned(), i);
                    by_key.insert(field.name().to_owned(), i);
                }
                let fields = fields
                    .iter()
                    .map(|field| FieldLayout {
                        number: field.number(),
                        holds: holds(field, &index),
                        repeated: field.is_list(),
                        packed: field.is_packed(),
                        presence: field.supports_presence(),
                    })
                    .collect();
                MessageLayout { fields, by_key }
            })
            .collect();
        let mut keys = Vec::with_capacity(3);
        for descriptor in &found[..3] {
            let field = descriptor
                .fields()
                .next()
                .ok_or_else(|| format!("{} has no field", descriptor.full_name()))?;
            keys.push([field.json_name().to_owned(), field.name().to_owned()]);
        }
        Ok(OtlpJson { keys, messages })
    }

    /// ``data`` (one OTLP/JSON document) as the signal it names and the protobuf bytes of its request.
    ///
    /// ``signal`` insists on one; with ``empty`` (and ``signal``) a body of whitespace, or a document
    /// without any signal's key, is an empty request, as an OTLP/HTTP body may be.
    pub fn decode(
        &self,
        data: &[u8],
        signal: Option<usize>,
        empty: bool,
    ) -> Result<(usize, Vec<u8>), JsonError> {
        let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
        if let (true, Some(s)) = (empty, signal) {
            if data.iter().all(u8::is_ascii_whitespace) {
                return Ok((s, Vec::new()));
            }
        }
        let read = Read {
            json: self,
            problem: RefCell::new(None),
            path: RefCell::new(Vec::new()),
        };
        let mut reader = serde_json::Deserializer::from_slice(data);
        let top = Top {
            read: &read,
            signal,
        };
        let outcome = reader
            .deserialize_any(top)
            .and_then(|found| reader.end().map(|()| found));
        let found = match outcome {
            Ok(found) => found,
            Err(error) => return Err(read.explain(&error)),
        };
        match found {
            Some(done) => Ok(done),
            None => match signal {
                Some(s) if empty => Ok((s, Vec::new())),
                _ => {
                    let keys: Vec<&str> = self.keys.iter().map(|k| k[0].as_str()).collect();
                    Err(JsonError(format!(
                        "not an OTLP JSON document: none of the top-level keys {}",
                        keys.join(", ")
                    )))
                }
            },
        }
    }

    /// The signal whose top-level key ``key`` is.
    fn signal_of(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.iter().any(|k| k == key))
    }
}

/// One reading's state: the reason for a failure in the document's content, worded here (serde's own
/// errors, for JSON that is not JSON, carry its line and column instead), and where it was, built as
/// the failure unwinds so the happy path builds none.
struct Read<'a> {
    json: &'a OtlpJson,
    problem: RefCell<Option<String>>,
    path: RefCell<Vec<String>>,
}

impl Read<'_> {
    fn fail<E: de::Error>(&self, problem: String) -> E {
        let error = E::custom(&problem);
        *self.problem.borrow_mut() = Some(problem);
        error
    }

    fn at(&self, step: String) {
        self.path.borrow_mut().push(step);
    }

    fn explain(&self, error: &serde_json::Error) -> JsonError {
        // Steps were recorded innermost first; an index joins its key without a dot.
        let mut path = String::new();
        for step in self.path.borrow().iter().rev() {
            if !path.is_empty() && !step.starts_with('[') {
                path.push('.');
            }
            path.push_str(step);
        }
        let problem = self.problem.borrow().clone();
        let wording = clip(&error.to_string(), SERDE_WORDING);
        match problem {
            // The top level's own wording (the document is not a request of the signal asked for).
            Some(problem) if path.is_empty() => JsonError(problem),
            Some(problem) => JsonError(format!("{path}: {problem}")),
            // serde_json's limit on nesting (the stack is the reader's): valid JSON, but too deep.
            None if wording.starts_with("recursion limit exceeded") => JsonError(format!(
                "nested too deeply: over 128 levels of JSON ({wording})"
            )),
            None if error.is_syntax() || error.is_eof() || error.is_io() => {
                JsonError(format!("invalid JSON: {wording}"))
            }
            None if path.is_empty() => JsonError(format!("invalid OTLP JSON: {wording}")),
            None => JsonError(format!("{path}: {wording}")),
        }
    }
}

fn json_type(unexpected: &de::Unexpected<'_>) -> &'static str {
    match unexpected {
        de::Unexpected::Seq => "an array",
        de::Unexpected::Str(_) => "a string",
        de::Unexpected::Bool(_) => "a boolean",
        de::Unexpected::Unit => "null",
        de::Unexpected::Map => "an object",
        _ => "a number",
    }
}

/// A key, borrowed from the input unless it had escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// The top level: an object whose one known key names the signal; the request is the resources under it.
struct Top<'r, 'a> {
    read: &'r Read<'a>,
    signal: Option<usize>,
}

impl Top<'_, '_> {
    fn not_an_object<E: de::Error>(
        self,
        found: de::Unexpected<'_>,
    ) -> Result<Option<(usize, Vec<u8>)>, E> {
        Err(self.read.fail(format!(
            "not an OTLP JSON document: expected an object, found {}",
            json_type(&found)
        )))
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = Option<(usize, Vec<u8>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OTLP JSON document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let json = self.read.json;
        let mut found: Option<(usize, Vec<u8>)> = None;
        // Another signal's key, when one is asked for: an unknown field, unless the wanted key never comes.
        let mut other: Option<usize> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            let Some(signal) = json.signal_of(&key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if self.signal.is_some_and(|wanted| wanted != signal) {
                other.get_or_insert(signal);
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let mut out = match found.take() {
                Some((earlier, out)) if earlier == signal => out,
                Some((earlier, _)) => {
                    return Err(self.read.fail(format!(
                        "ambiguous OTLP JSON document: both {} and {}",
                        json.keys[earlier][0], json.keys[signal][0]
                    )))
                }
                None => Vec::new(),
            };
            // The request of signal N is message N; its one field holds the resources.
            let field = &json.messages[signal].fields[0];
            map.next_value_seed(FieldSeed {
                read: self.read,
                field,
                out: &mut out,
            })
            .inspect_err(|_| self.read.at(key.into_owned()))?;
            found = Some((signal, out));
        }
        if let (None, Some(wanted), Some(signal)) = (&found, self.signal, other) {
            return Err(self.read.fail(format!(
                "expected an OTLP {} document, found {}",
                NOUNS[wanted], json.keys[signal][0]
            )));
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        self.not_an_object(de::Unexpected::Seq)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Str(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Unit)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Signed(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Float(v))
    }
}

/// A message's fields, written as they come: the bytes of the message (without key or length).
struct MessageSeed<'r, 'a> {
    read: &'r Read<'a>,
    message: usize,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_, '_> {
    type Value = Option<Vec<u8>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_, '_> {
    /// None for JSON null: not set.
    type Value = Option<Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let layout = &self.read.json.messages[self.message];
        let mut out = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let Some(&index) = layout.by_key.get(key.as_ref()) else {
                map.next_value::<IgnoredAny>()?; // unknown: ignored, as OTLP receivers must
                continue;
            };
            map.next_value_seed(FieldSeed {
                read: self.read,
                field: &layout.fields[index],
                out: &mut out,
            })
            .inspect_err(|_| self.read.at(key.into_owned()))?;
        }
        Ok(Some(out))
    }
}

/// One field's JSON value (a list for a repeated field), written with its key into ``out``.
struct FieldSeed<'r, 'a, 'o> {
    read: &'r Read<'a>,
    field: &'r FieldLayout,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.field.repeated {
            deserializer.deserialize_any(self)
        } else {
            let value = ValueSeed {
                read: self.read,
                field: self.field,
            }
            .deserialize(deserializer)?;
            if let Some(value) = value {
                if self.field.presence || !value.is_default() {
                    value.write(self.field, self.out);
                }
            }
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let field = self.field;
        let mut packed = Vec::new();
        let mut index = 0usize;
        loop {
            let item = seq
                .next_element_seed(ValueSeed {
                    read: self.read,
                    field,
                })
                .inspect_err(|_| self.read.at(format!("[{index}]")))?;
            let Some(item) = item else { break };
            match item {
                // null in a list: protobuf has no such element; json_format refuses it too.
                None => {
                    self.read.at(format!("[{index}]"));
                    return Err(self.read.fail("null is not a value of a list".into()));
                }
                Some(value) if field.packed => value.write_bare(&mut packed),
                Some(value) => value.write(field, self.out),
            }
            index += 1;
        }
        if field.packed && index > 0 {
            encoding::encode_key(field.number, WireType::LengthDelimited, self.out);
            encoding::encode_varint(packed.len() as u64, self.out);
            self.out.extend_from_slice(&packed);
        }
        Ok(())
    }
}

/// One value of a field, read: ready to be written.
enum Scalar {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// A string, bytes or a message.
    Delimited(Vec<u8>),
}

impl Scalar {
    fn is_default(&self) -> bool {
        match self {
            Scalar::Varint(v) | Scalar::Fixed64(v) => *v == 0,
            Scalar::Fixed32(v) => *v == 0,
            Scalar::Delimited(v) => v.is_empty(),
        }
    }

    fn write(self, field: &FieldLayout, out: &mut Vec<u8>) {
        let wire = match self {
            Scalar::Varint(_) => WireType::Varint,
            Scalar::Fixed64(_) => WireType::SixtyFourBit,
            Scalar::Fixed32(_) => WireType::ThirtyTwoBit,
            Scalar::Delimited(_) => WireType::LengthDelimited,
        };
        encoding::encode_key(field.number, wire, out);
        self.write_bare(out);
    }

    fn write_bare(self, out: &mut Vec<u8>) {
        match self {
            Scalar::Varint(v) => encoding::encode_varint(v, out),
            Scalar::Fixed64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::Fixed32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::Delimited(v) => {
                encoding::encode_varint(v.len() as u64, out);
                out.extend_from_slice(&v);
            }
        }
    }
}

/// One value of ``field`` (an element, for a repeated field); None for JSON null.
struct ValueSeed<'r, 'a> {
    read: &'r Read<'a>,
    field: &'r FieldLayout,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Option<Scalar>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if let Holds::Message(message) = self.field.holds {
            let read = self.read;
            return Ok(MessageSeed { read, message }
                .deserialize(deserializer)?
                .map(Scalar::Delimited));
        }
        deserializer.deserialize_any(self)
    }
}

/// A whole number held by a double, as json_format reads one (above 2^53 it may not be the number
/// written); beyond 2^64 it is out of every field's range, which i128 still tells.
fn integral(v: f64) -> Option<i128> {
    (v.fract() == 0.0 && v.is_finite() && v.abs() < 2f64.powi(100)).then_some(v as i128)
}

/// A number written as a string: decimal digits (exactly, with a sign), else a JSON number such as
/// "1e3" or "5.0" (the protobuf JSON mapping allows either; Go's protojson reads both).
fn number_text(text: &str) -> Option<f64> {
    let numeric = |b: u8| b.is_ascii_digit() || b"+-.eE".contains(&b);
    if text.is_empty() || !text.bytes().all(numeric) {
        return None; // Rust would also read "inf" and "nan"
    }
    text.parse().ok()
}

fn integer_text(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 30 {
        return integral(number_text(text)?);
    }
    text.parse().ok()
}

impl ValueSeed<'_, '_> {
    fn wrong<E: de::Error>(&self, found: String) -> E {
        let expected = match &self.field.holds {
            Holds::Double | Holds::Float => "a number",
            Holds::I32 { .. } | Holds::I64 { .. } | Holds::U32 { .. } | Holds::U64 { .. } => {
                "an integer"
            }
            Holds::Bool => "true or false",
            Holds::String | Holds::Bytes => "a string",
            Holds::Id => return self.read.fail(format!("not a hex ID: {found}")),
            Holds::Enum(_) => "an enum name or number",
            Holds::Message(_) => "an object",
        };
        self.read
            .fail(format!("expected {expected}, found {found}"))
    }

    fn integer<E: de::Error>(
        &self,
        value: i128,
        shown: impl fmt::Display,
    ) -> Result<Option<Scalar>, E> {
        let out_of_range = || self.read.fail(format!("{shown} is out of range"));
        let scalar = match &self.field.holds {
            Holds::I32 { zigzag, fixed } => {
                let v = i32::try_from(value).map_err(|_| out_of_range())?;
                match (zigzag, fixed) {
                    (_, true) => Scalar::Fixed32(v as u32),
                    (true, _) => Scalar::Varint(u64::from(((v << 1) ^ (v >> 31)) as u32)),
                    _ => Scalar::Varint(i64::from(v) as u64),
                }
            }
            Holds::I64 { zigzag, fixed } => {
                let v = i64::try_from(value).map_err(|_| out_of_range())?;
                match (zigzag, fixed) {
                    (_, true) => Scalar::Fixed64(v as u64),
                    (true, _) => Scalar::Varint(((v << 1) ^ (v >> 63)) as u64),
                    _ => Scalar::Varint(v as u64),
                }
            }
            Holds::U32 { fixed } => {
                let v = u32::try_from(value).map_err(|_| out_of_range())?;
                if *fixed {
                    Scalar::Fixed32(v)
                } else {
                    Scalar::Varint(u64::from(v))
                }
            }
            Holds::U64 { fixed } => {
                let v = u64::try_from(value).map_err(|_| out_of_range())?;
                if *fixed {
                    Scalar::Fixed64(v)
                } else {
                    Scalar::Varint(v)
                }
            }
            Holds::Enum(_) => {
                Scalar::Varint(i32::try_from(value).map_err(|_| out_of_range())? as i64 as u64)
            }
            Holds::Double => Scalar::Fixed64((value as f64).to_bits()),
            Holds::Float => Scalar::Fixed32((value as f32).to_bits()),
            _ => return Err(self.wrong(format!("{shown}"))),
        };
        Ok(Some(scalar))
    }

    fn float<E: de::Error>(&self, value: f64) -> Result<Option<Scalar>, E> {
        match self.field.holds {
            Holds::Double => Ok(Some(Scalar::Fixed64(value.to_bits()))),
            Holds::Float => Ok(Some(Scalar::Fixed32((value as f32).to_bits()))),
            _ => match integral(value) {
                Some(v) => self.integer(v, value),
                None => Err(self.wrong(format!("{value}"))),
            },
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Option<Scalar>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        match self.field.holds {
            Holds::Bool => Ok(Some(Scalar::Varint(u64::from(v)))),
            _ => Err(self.wrong(format!("{v}"))),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.integer(i128::from(v), v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.integer(i128::from(v), v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.float(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let quoted = || quoted(v);
        match &self.field.holds {
            Holds::String => Ok(Some(Scalar::Delimited(v.as_bytes().to_vec()))),
            Holds::Bytes => BASE64
                .decode(v)
                .or_else(|_| BASE64_URL.decode(v))
                .map(|bytes| Some(Scalar::Delimited(bytes)))
                .map_err(|_| self.read.fail(format!("not base64: {}", quoted()))),
            Holds::Id => decode_hex(v)
                .map(|bytes| Some(Scalar::Delimited(bytes)))
                .ok_or_else(|| self.wrong(quoted())),
            // A name (an unknown one is ignored, as json_format does), or a number written as a string.
            Holds::Enum(names) => match (names.get(v), integer_text(v)) {
                (Some(&n), _) => Ok(Some(Scalar::Varint(i64::from(n) as u64))),
                (None, Some(n)) => self.integer(n, quoted()),
                (None, None) => Ok(None),
            },
            Holds::Double | Holds::Float => {
                let value = match v {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    text => number_text(text).ok_or_else(|| self.wrong(quoted()))?,
                };
                self.float(value)
            }
            Holds::Bool => Err(self.wrong(quoted())),
            _ => match integer_text(v) {
                Some(value) => self.integer(value, quoted()),
                None => Err(self.wrong(quoted())),
            },
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("an array".into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("an object".into()))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            Some((high * 16 + low) as u8)
        })
        .collect()
}
