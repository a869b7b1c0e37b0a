//! A repeated KeyValue field: legacy keys renamed, typed values coerced (metric data points, spans,
//! span events and links, log records). The same rules as the Python engine's
//! ``normalize_attributes``: when a legacy key and its canonical key are both present the canonical
//! one is kept (``identity-conflict``); a value that does not convert is ``attribute-value``.

use std::collections::HashSet;

use crate::edit::Edit;
use crate::schema::key_value;
use crate::sink::{Message, Rule};
use crate::tables::{KeyMap, Oracle};
use crate::value::{self, AttrType, Scalar};
use crate::wire::{fields, put_bytes, DecodeError, Value};

/// One KeyValue as read from the wire.
#[derive(Debug, Clone, Copy)]
pub struct Kv<'a> {
    /// The key's bytes (UTF-8, checked before the walk: ``key_str`` reads them as text).
    pub key: &'a [u8],
    /// The AnyValue's bytes (empty when the value is absent).
    pub value: &'a [u8],
}

pub fn read_kv(bytes: &[u8]) -> Result<Kv<'_>, DecodeError> {
    let mut kv = Kv {
        key: &[],
        value: &[],
    };
    for field in fields(bytes) {
        let field = field?;
        match (field.number, field.value) {
            (key_value::KEY, Value::Bytes(b)) => kv.key = b,
            (key_value::VALUE, Value::Bytes(b)) => kv.value = b,
            _ => {}
        }
    }
    Ok(kv)
}

/// A key as text: its bytes were checked as UTF-8 before the walk.
pub fn key_str(key: &[u8]) -> &str {
    std::str::from_utf8(key).unwrap_or_default()
}

/// The keys of one attribute list, as a set: a scan over a list of the few most have, a hash set for
/// more (keys the request chose: a hasher with a per-process seed, so no request can make them collide).
enum KeySet<'a> {
    Few(Vec<&'a [u8]>),
    Many(HashSet<&'a [u8]>),
}

impl<'a> KeySet<'a> {
    fn of(parsed: &[Kv<'a>]) -> KeySet<'a> {
        if parsed.len() > 16 {
            return KeySet::Many(parsed.iter().map(|kv| kv.key).collect());
        }
        let mut few = Vec::with_capacity(parsed.len() + 1);
        for kv in parsed {
            if !few.contains(&kv.key) {
                few.push(kv.key);
            }
        }
        KeySet::Few(few)
    }

    fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeySet::Few(few) => few.contains(&key),
            KeySet::Many(many) => many.contains(key),
        }
    }

    fn remove(&mut self, key: &[u8]) {
        match self {
            KeySet::Few(few) => few.retain(|k| *k != key),
            KeySet::Many(many) => {
                many.remove(key);
            }
        }
    }

    fn insert(&mut self, key: &'a [u8]) {
        match self {
            KeySet::Few(few) if !few.contains(&key) => few.push(key),
            KeySet::Few(_) => {}
            KeySet::Many(many) => {
                many.insert(key);
            }
        }
    }
}

/// The KeyValue ``bytes`` with its key and/or value replaced, every other field copied.
pub fn rewrite_kv(
    bytes: &[u8],
    key: Option<&str>,
    value: Option<&[u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    if let Some(key) = key {
        put_bytes(&mut out, key_value::KEY, key.as_bytes());
    }
    if let Some(value) = value {
        put_bytes(&mut out, key_value::VALUE, value);
    }
    for field in fields(bytes) {
        let field = field?;
        // A key or value of another wire type is an unknown field to protobuf: kept as one.
        let replaced = field.bytes().is_some()
            && ((field.number == key_value::KEY && key.is_some())
                || (field.number == key_value::VALUE && value.is_some()));
        if !replaced {
            out.extend_from_slice(field.raw);
        }
    }
    Ok(out)
}

/// The members of ``value`` that hold each type, to tell a value that needs no coercion.
fn has_type(value: &[u8], wanted: AttrType) -> bool {
    value::member(value).0 == wanted.member()
}

/// The edits to each KeyValue occurrence (``kvs``, in wire order) and whether the record must go.
/// ``report(rule, attribute, message)`` returns true when the data must be rejected.
pub fn normalize(
    kvs: &[&[u8]],
    renames: &KeyMap<String>,
    types: &KeyMap<AttrType>,
    oracle: &dyn Oracle,
    report: &mut dyn FnMut(Rule, &str, Message) -> bool,
) -> Result<(Vec<Edit>, bool), DecodeError> {
    if renames.is_empty() && types.is_empty() {
        return Ok((vec![Edit::Keep; kvs.len()], false));
    }
    let parsed: Vec<Kv<'_>> = kvs.iter().map(|b| read_kv(b)).collect::<Result<_, _>>()?;
    let mut edits = Vec::new();
    let reject = normalize_parsed(kvs, &parsed, renames, types, oracle, report, &mut edits)?;
    Ok((edits, reject))
}

/// ``normalize`` for KeyValues the caller has read already (``parsed``, aligned with ``kvs``), its
/// edits written to ``edits`` (a buffer the caller reuses from point to point); true when the record
/// must go.
pub fn normalize_parsed(
    kvs: &[&[u8]],
    parsed: &[Kv<'_>],
    renames: &KeyMap<String>,
    types: &KeyMap<AttrType>,
    oracle: &dyn Oracle,
    report: &mut dyn FnMut(Rule, &str, Message) -> bool,
    edits: &mut Vec<Edit>,
) -> Result<bool, DecodeError> {
    edits.clear();
    edits.extend(kvs.iter().map(|_| Edit::Keep));
    let mut reject = false;
    if renames.is_empty() && types.is_empty() {
        return Ok(reject);
    }
    let mut present: Option<KeySet<'_>> = None;
    for (index, kv) in parsed.iter().enumerate() {
        let mut key: &[u8] = kv.key;
        let mut new_key: Option<&str> = None;
        if let Some(target) = renames.get(key) {
            let present = present.get_or_insert_with(|| KeySet::of(parsed));
            if present.contains(target.as_bytes()) {
                edits[index] = Edit::Drop;
                let (legacy, canonical) = (key_str(key).to_owned(), target.clone());
                reject |= report(
                    Rule::IdentityConflict,
                    target,
                    Message::new(
                        "attribute.both_present",
                        vec![Scalar::Str(legacy), Scalar::Str(canonical)],
                    ),
                );
                continue;
            }
            present.remove(key);
            present.insert(target.as_bytes());
            key = target.as_bytes();
            new_key = Some(target);
        }
        let mut new_value: Option<Vec<u8>> = None;
        if let Some(&wanted) = types.get(key) {
            if !has_type(kv.value, wanted) {
                let current = value::scalar(kv.value);
                let converted = match current {
                    Scalar::Other => None,
                    _ => value::coerce_fast(&current, wanted)
                        .unwrap_or_else(|_| oracle.coerce(&current, wanted)),
                };
                match converted {
                    None => {
                        let shown = current.clone();
                        let key = key_str(key);
                        reject |= report(
                            Rule::AttributeValue,
                            key,
                            Message::new(
                                "attribute.not_convertible",
                                vec![
                                    Scalar::Str(key.to_owned()),
                                    Scalar::Str(wanted.name().into()),
                                    shown,
                                ],
                            ),
                        );
                    }
                    Some(new) => new_value = Some(value::set(kv.value, &new)),
                }
            }
        }
        if new_key.is_some() || new_value.is_some() {
            edits[index] = Edit::Replace(rewrite_kv(kvs[index], new_key, new_value.as_deref())?);
        }
    }
    Ok(reject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_keys_are_the_set_many_keys_are() {
        let kv = |key: &'static str| Kv {
            key: key.as_bytes(),
            value: &[],
        };
        let keys = [kv("a"), kv("b"), kv("a"), kv("c")];
        let many: Vec<Kv<'_>> = keys.iter().cycle().take(20).copied().collect();
        let mut few = KeySet::of(&keys);
        let mut hashed = KeySet::of(&many);
        assert!(matches!(few, KeySet::Few(_)) && matches!(hashed, KeySet::Many(_)));
        for set in [&mut few, &mut hashed] {
            set.remove(b"a");
            assert!(!set.contains(b"a"), "a key given twice goes at once");
            set.insert(b"d");
            set.insert(b"d");
            set.remove(b"d");
            assert!(!set.contains(b"d") && set.contains(b"b") && set.contains(b"c"));
        }
    }
}
