//! OTLP/JSON into the protobuf wire format: one call per document, so an OTLP/HTTP JSON request costs
//! a parse in Rust instead of a Python object per field (protobuf's ``json_format``).
//!
//! The protobuf JSON mapping is prost-reflect's, over the very descriptors the Python side parses
//! with (handed over once as a ``FileDescriptorSet``): lowerCamelCase or original field names, 64-bit
//! integers as strings or numbers, enums as names or integers, unknown fields ignored. Two things are
//! this module's own: trace and span IDs, which OTLP writes in hex where the mapping has base64, and
//! the wire encoding of the result (``OtlpJson::encode``: the bytes the Python side would serialize,
//! in time linear in the request).

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use prost::encoding::{self, WireType};
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor,
    ReflectMessage, Value as Field,
};
use serde_json::Value;

/// The fields OTLP/JSON writes in hex (bytes fields of these names: spans, links, log records,
/// exemplars).
const ID_FIELDS: [&str; 3] = ["trace_id", "span_id", "parent_span_id"];

/// The signals by their numbers, as messages name them.
const NOUNS: [&str; 3] = ["metrics", "traces", "logs"];

/// Why a document is not a request, worded for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub String);

/// One signal's request type and the top-level keys that name it.
struct Root {
    message: MessageDescriptor,
    /// The JSON name first (what messages show), then the field's own name.
    keys: [String; 2],
}

pub struct OtlpJson {
    /// Metrics, traces, logs: the order of the ``signal`` numbers everywhere in the core.
    roots: Vec<Root>,
    /// Full names of the message types that can hold an ID somewhere below them: only these are walked.
    id_holders: HashSet<String>,
    /// Every message type's fields in the order the wire format writes them: by number.
    layouts: HashMap<String, Vec<FieldDescriptor>>,
}

fn is_id(field: &FieldDescriptor) -> bool {
    matches!(field.kind(), Kind::Bytes) && ID_FIELDS.contains(&field.name())
}

fn child(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    match field.kind() {
        Kind::Message(message) => Some(message),
        _ => None,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Number(_) => "a number",
        Value::Object(_) => "an object",
    }
}

fn field_of(message: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_json_name(key)
        .or_else(|| message.get_field_by_name(key))
}

/// An ID that is not hex: where it is (built as the error unwinds) and what it was.
struct BadId {
    path: Vec<String>,
    value: String,
}

impl OtlpJson {
    /// The decoder for the requests named in ``requests`` (metrics, traces, logs), from a serialized
    /// ``FileDescriptorSet`` holding them and everything they import.
    pub fn new(descriptor_set: &[u8], requests: [&str; 3]) -> Result<Self, String> {
        let pool = DescriptorPool::decode(descriptor_set).map_err(|e| e.to_string())?;
        let mut roots = Vec::with_capacity(3);
        for name in requests {
            let message = pool
                .get_message_by_name(name)
                .ok_or_else(|| format!("no message {name} in the descriptor set"))?;
            let field = message
                .fields()
                .next()
                .ok_or_else(|| format!("{name} has no field"))?;
            let keys = [field.json_name().to_owned(), field.name().to_owned()];
            roots.push(Root { message, keys });
        }
        // A fixpoint over the messages the requests reach, since messages nest recursively.
        let mut reachable: Vec<MessageDescriptor> = Vec::new();
        let mut pending: Vec<MessageDescriptor> = roots.iter().map(|r| r.message.clone()).collect();
        while let Some(message) = pending.pop() {
            if reachable
                .iter()
                .any(|m| m.full_name() == message.full_name())
            {
                continue;
            }
            pending.extend(message.fields().filter_map(|f| child(&f)));
            reachable.push(message);
        }
        let mut id_holders: HashSet<String> = reachable
            .iter()
            .filter(|m| m.fields().any(|f| is_id(&f)))
            .map(|m| m.full_name().to_owned())
            .collect();
        loop {
            let grown: Vec<String> = reachable
                .iter()
                .filter(|m| !id_holders.contains(m.full_name()))
                .filter(|m| {
                    m.fields()
                        .filter_map(|f| child(&f))
                        .any(|c| id_holders.contains(c.full_name()))
                })
                .map(|m| m.full_name().to_owned())
                .collect();
            if grown.is_empty() {
                break;
            }
            id_holders.extend(grown);
        }
        let layouts = reachable
            .iter()
            .map(|m| {
                let mut fields: Vec<FieldDescriptor> = m.fields().collect();
                fields.sort_by_key(FieldDescriptor::number);
                (m.full_name().to_owned(), fields)
            })
            .collect();
        Ok(OtlpJson {
            roots,
            id_holders,
            layouts,
        })
    }

    /// The top-level keys of every signal, for messages.
    fn key(&self, signal: usize) -> &str {
        &self.roots[signal].keys[0]
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
        let mut document: Value =
            serde_json::from_slice(data).map_err(|e| JsonError(format!("invalid JSON: {e}")))?;
        let Value::Object(top) = &document else {
            return Err(JsonError(format!(
                "not an OTLP JSON document: expected an object, found {}",
                json_type(&document)
            )));
        };
        let present: Vec<usize> = (0..self.roots.len())
            .filter(|&s| self.roots[s].keys.iter().any(|k| top.contains_key(k)))
            .collect();
        let signal = match (signal, present.as_slice()) {
            (Some(s), []) if empty => return Ok((s, Vec::new())),
            (_, []) => {
                let keys: Vec<&str> = (0..self.roots.len()).map(|s| self.key(s)).collect();
                return Err(JsonError(format!(
                    "not an OTLP JSON document: none of the top-level keys {}",
                    keys.join(", ")
                )));
            }
            (None, [one]) => *one,
            (None, several) => {
                let found: Vec<&str> = several.iter().map(|&s| self.key(s)).collect();
                return Err(JsonError(format!(
                    "ambiguous OTLP JSON document: both {}",
                    found.join(" and ")
                )));
            }
            (Some(s), found) if !found.contains(&s) => {
                return Err(JsonError(format!(
                    "expected an OTLP {} document, found {}",
                    NOUNS[s],
                    self.key(found[0])
                )));
            }
            (Some(s), _) => s,
        };
        let root = &self.roots[signal].message;
        if let Err(bad) = self.ids_to_base64(&mut document, root) {
            let shown = if bad.value.chars().count() <= 40 {
                bad.value
            } else {
                bad.value.chars().take(37).collect::<String>() + "..."
            };
            return Err(JsonError(format!(
                "{}: not a hex ID: {shown}",
                bad.path.join(".")
            )));
        }
        let options = DeserializeOptions::new().deny_unknown_fields(false);
        // Tracking the path costs on every field, so it is done only to word an error, by reading again.
        let message =
            match DynamicMessage::deserialize_with_options(root.clone(), &document, &options) {
                Ok(message) => message,
                Err(_) => return Err(self.locate(document, root, signal, &options)),
            };
        let mut out = Vec::with_capacity(data.len());
        self.encode(&message, &mut out)?;
        Ok((signal, out))
    }

    /// Why ``document`` does not map onto ``root``, with where: the second reading, with the path tracked.
    fn locate(
        &self,
        document: Value,
        root: &MessageDescriptor,
        signal: usize,
        options: &DeserializeOptions,
    ) -> JsonError {
        let noun = NOUNS[signal];
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(document, &mut track);
        match DynamicMessage::deserialize_with_options(root.clone(), tracked, options) {
            Ok(_) => JsonError(format!("invalid OTLP {noun} JSON")),
            Err(e) => match track.path().to_string().as_str() {
                "." => JsonError(format!("invalid OTLP {noun} JSON: {e}")),
                path => JsonError(format!("invalid OTLP {noun} JSON: {path}: {e}")),
            },
        }
    }

    /// Rewrites every hex ID under ``node`` (a ``message``) as base64, the protobuf JSON mapping's
    /// spelling of bytes; subtrees that cannot hold an ID are not walked.
    fn ids_to_base64(&self, node: &mut Value, message: &MessageDescriptor) -> Result<(), BadId> {
        let Value::Object(fields) = node else {
            return Ok(()); // wrong shapes are the mapping's to report, with its wording
        };
        for (key, value) in fields.iter_mut() {
            let Some(field) = field_of(message, key) else {
                continue;
            };
            let at = |mut bad: BadId, index: Option<usize>| {
                bad.path.insert(
                    0,
                    match index {
                        Some(i) => format!("{key}[{i}]"),
                        None => key.clone(),
                    },
                );
                bad
            };
            if is_id(&field) {
                hex_to_base64(value).map_err(|shown| {
                    at(
                        BadId {
                            path: Vec::new(),
                            value: shown,
                        },
                        None,
                    )
                })?;
            } else if let Some(inner) =
                child(&field).filter(|c| self.id_holders.contains(c.full_name()))
            {
                match value {
                    Value::Array(items) => {
                        for (index, item) in items.iter_mut().enumerate() {
                            self.ids_to_base64(item, &inner)
                                .map_err(|bad| at(bad, Some(index)))?;
                        }
                    }
                    other => self
                        .ids_to_base64(other, &inner)
                        .map_err(|bad| at(bad, None))?,
                }
            }
        }
        Ok(())
    }
}

/// A hex ID as base64; JSON null stays null ("not set", as for any field). The error is the value as
/// JSON writes it.
fn hex_to_base64(value: &mut Value) -> Result<(), String> {
    match value {
        Value::Null => Ok(()),
        Value::String(text) => {
            let bytes = decode_hex(text).ok_or_else(|| Value::String(text.clone()).to_string())?;
            *text = STANDARD.encode(bytes);
            Ok(())
        }
        other => Err(other.to_string()),
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

impl OtlpJson {
    /// ``message`` in the protobuf wire format, as the Python side serializes it: field by field in
    /// number order, a field without presence left out when it holds its default (-0.0 is written,
    /// its bits are not zero). prost-reflect's own encoder does neither the -0.0 nor the speed: it asks
    /// every nested message for its length at each level above it, which made the cost grow with the
    /// depth of a request (about 1 ms of a 2 ms decode of 100 points of OTLP metrics).
    fn encode(&self, message: &DynamicMessage, out: &mut Vec<u8>) -> Result<(), JsonError> {
        let descriptor = message.descriptor();
        let Some(fields) = self.layouts.get(descriptor.full_name()) else {
            return Err(JsonError(format!(
                "{}: a message this reader does not know",
                descriptor.full_name()
            )));
        };
        for field in fields {
            if field.supports_presence() && !message.has_field(field) {
                continue;
            }
            let value = message.get_field(field);
            if !field.supports_presence() && is_default(&value) {
                continue;
            }
            let number = field.number();
            match value.as_ref() {
                Field::List(items) if field.is_packed() => {
                    let mut packed = Vec::with_capacity(items.len() * 8);
                    for item in items {
                        scalar(field, item, &mut packed)?;
                    }
                    encoding::encode_key(number, WireType::LengthDelimited, out);
                    encoding::encode_varint(packed.len() as u64, out);
                    out.extend_from_slice(&packed);
                }
                Field::List(items) => {
                    for item in items {
                        self.one(field, item, out)?;
                    }
                }
                other => self.one(field, other, out)?,
            }
        }
        Ok(())
    }

    /// One value of ``field`` with its key: a nested message is written to a buffer of its own first,
    /// so its length is known once.
    fn one(
        &self,
        field: &FieldDescriptor,
        value: &Field,
        out: &mut Vec<u8>,
    ) -> Result<(), JsonError> {
        let number = field.number();
        match value {
            Field::Message(inner) => {
                let mut nested = Vec::new();
                self.encode(inner, &mut nested)?;
                encoding::encode_key(number, WireType::LengthDelimited, out);
                encoding::encode_varint(nested.len() as u64, out);
                out.extend_from_slice(&nested);
            }
            Field::String(text) => encoding::string::encode(number, text, out),
            Field::Bytes(bytes) => encoding::bytes::encode(number, bytes, out),
            other => {
                let wire = match field.kind() {
                    Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => WireType::SixtyFourBit,
                    Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => WireType::ThirtyTwoBit,
                    _ => WireType::Varint,
                };
                encoding::encode_key(number, wire, out);
                scalar(field, other, out)?;
            }
        }
        Ok(())
    }
}

fn is_default(value: &Field) -> bool {
    match value {
        Field::Bool(v) => !v,
        Field::I32(v) | Field::EnumNumber(v) => *v == 0,
        Field::I64(v) => *v == 0,
        Field::U32(v) => *v == 0,
        Field::U64(v) => *v == 0,
        // -0.0 is not the default: proto3 writes it (its bits are not zero).
        Field::F32(v) => v.to_bits() == 0,
        Field::F64(v) => v.to_bits() == 0,
        Field::String(v) => v.is_empty(),
        Field::Bytes(v) => v.is_empty(),
        Field::List(v) => v.is_empty(),
        Field::Map(v) => v.is_empty(),
        Field::Message(_) => false,
    }
}

/// A number, bool or enum of ``field`` without its key (as a packed list lays them out).
fn scalar(field: &FieldDescriptor, value: &Field, out: &mut Vec<u8>) -> Result<(), JsonError> {
    match (field.kind(), value) {
        (Kind::Bool, Field::Bool(v)) => encoding::encode_varint(u64::from(*v), out),
        (Kind::Int32 | Kind::Enum(_), Field::I32(v) | Field::EnumNumber(v)) => {
            encoding::encode_varint(*v as i64 as u64, out)
        }
        (Kind::Sint32, Field::I32(v)) => {
            encoding::encode_varint(u64::from(((v << 1) ^ (v >> 31)) as u32), out)
        }
        (Kind::Sfixed32, Field::I32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Kind::Int64, Field::I64(v)) => encoding::encode_varint(*v as u64, out),
        (Kind::Sint64, Field::I64(v)) => {
            encoding::encode_varint(((v << 1) ^ (v >> 63)) as u64, out)
        }
        (Kind::Sfixed64, Field::I64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Kind::Uint32, Field::U32(v)) => encoding::encode_varint(u64::from(*v), out),
        (Kind::Fixed32, Field::U32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Kind::Uint64, Field::U64(v)) => encoding::encode_varint(*v, out),
        (Kind::Fixed64, Field::U64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Kind::Float, Field::F32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Kind::Double, Field::F64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (kind, _) => {
            // Not reachable from OTLP's messages (no maps, no groups): said, never guessed.
            return Err(JsonError(format!(
                "{}: a {kind:?} field this reader cannot write",
                field.full_name()
            )));
        }
    }
    Ok(())
}
