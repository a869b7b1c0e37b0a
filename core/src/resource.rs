//! Resource attributes: the contract's actions (the Collector's resource processor semantics), then
//! its requirements. The same code serves metrics, traces and logs.

use crate::attrs::read_kv;
use crate::edit::{any_change, rebuilt, Edit};
use crate::schema::{key_value, resource};
use crate::sink::{Message, Rule, Sink};
use crate::tables::{py_eq, Oracle, ResourceActionKind, Tables};
use crate::value::{self, Scalar};
use crate::wire::{fields, put_bytes, DecodeError};

struct Attr {
    key: String,
    /// The AnyValue's bytes; None when the KeyValue has no value field (kept absent unless set).
    value: Option<Vec<u8>>,
    /// The KeyValue's other fields, copied.
    rest: Vec<u8>,
}

fn index(attrs: &[Attr], key: &str) -> Option<usize> {
    attrs.iter().position(|a| a.key == key)
}

/// Applies one action in place; true when it changed something.
fn apply(
    action: &crate::tables::ResourceAction,
    env_value: Option<&str>,
    attrs: &mut Vec<Attr>,
) -> bool {
    let at = index(attrs, &action.key);
    match action.kind {
        ResourceActionKind::Delete => match at {
            Some(at) => {
                attrs.remove(at);
                true
            }
            None => false,
        },
        ResourceActionKind::Rename => {
            let Some(source) = index(attrs, action.from_attribute.as_deref().unwrap_or_default())
            else {
                return false;
            };
            if at.is_none() {
                attrs[source].key = action.key.clone();
            } else {
                attrs.remove(source); // the canonical key is already there: it wins
            }
            true
        }
        kind => {
            if (kind == ResourceActionKind::Insert && at.is_some())
                || (kind == ResourceActionKind::Update && at.is_none())
            {
                return false;
            }
            let new_value = if let Some(from) = &action.from_attribute {
                let Some(source) = index(attrs, from) else {
                    return false;
                };
                // An absent value reads as the empty AnyValue, as protobuf reads it.
                let copied = attrs[source].value.clone().unwrap_or_default();
                if at.is_some_and(|at| {
                    attrs[at].value.as_deref().unwrap_or_default() == copied.as_slice()
                }) {
                    return false;
                }
                copied
            } else {
                let new = if action.from_env {
                    match env_value {
                        Some(text) => Scalar::Str(text.to_owned()),
                        None => return false, // unset environment variable: the action is skipped
                    }
                } else {
                    match &action.value {
                        Some(v) => v.clone(),
                        None => return false,
                    }
                };
                if let Some(at) = at {
                    let current = value::scalar(attrs[at].value.as_deref().unwrap_or_default());
                    // Python: equal and of the same type; Scalar's == is false across variants.
                    if current == new {
                        return false;
                    }
                }
                // Setting a member of the value that is there keeps its unknown fields, as protobuf does.
                match at {
                    Some(at) => value::set(attrs[at].value.as_deref().unwrap_or_default(), &new),
                    None => value::encode(&new),
                }
            };
            match at {
                Some(at) => attrs[at].value = Some(new_value),
                None => attrs.push(Attr {
                    key: action.key.clone(),
                    value: Some(new_value),
                    rest: Vec::new(),
                }),
            }
            true
        }
    }
}

/// The outcome for one resource: its new bytes when an action changed it, and whether to reject.
pub struct ResourceOutcome {
    pub rewritten: Option<Vec<u8>>,
    pub reject: bool,
}

/// ``bytes``: the Resource message (empty when the request has none). ``env``: the value of each
/// action's environment variable, aligned with ``tables.resource_actions``.
pub fn process(
    bytes: &[u8],
    tables: &Tables,
    env: &[Option<String>],
    oracle: &dyn Oracle,
    sink: &mut Sink,
) -> Result<ResourceOutcome, DecodeError> {
    let mut rewritten = None;
    let mut attrs: Option<Vec<Attr>> = None;
    if !tables.resource_actions.is_empty() {
        let mut list = read_attrs(bytes)?;
        let mut changed = false;
        for (action, env_value) in tables.resource_actions.iter().zip(env) {
            changed |= apply(action, env_value.as_deref(), &mut list);
        }
        if changed {
            rewritten = Some(encode(bytes, &list)?);
        }
        attrs = Some(list);
    }
    let mut reject = false;
    if !tables.resource_required.is_empty() || !tables.resource_constraints.is_empty() {
        let list = match attrs {
            Some(list) => list,
            None => read_attrs(bytes)?,
        };
        // The last value of a repeated key wins, as in a dict built from the list.
        let value_of = |key: &str| {
            list.iter()
                .rev()
                .find(|a| a.key == key)
                .map(|a| a.value.as_deref().unwrap_or_default())
        };
        for key in &tables.resource_required {
            if value_of(key).is_none() {
                reject |= sink.report(
                    Rule::MissingResourceAttribute,
                    tables.action(Rule::MissingResourceAttribute),
                    None,
                    Some(key),
                    1,
                    || Message::new("resource.missing", vec![Scalar::Str(key.clone())]),
                );
            }
        }
        for constraint in &tables.resource_constraints {
            let Some(bytes) = value_of(&constraint.key) else {
                continue;
            };
            let found = value::scalar(bytes);
            let template = if let Some(allowed) = &constraint.allowed {
                (!allowed.iter().any(|a| py_eq(a, &found))).then_some("resource.not_allowed")
            } else if let Some(pattern) = constraint.pattern {
                let matches = matches!(&found, Scalar::Str(text) if oracle.matches(pattern, text));
                (!matches).then_some("resource.no_match")
            } else {
                None
            };
            if let Some(template) = template {
                let key = constraint.key.clone();
                reject |= sink.report(
                    Rule::ResourceAttributeValue,
                    tables.action(Rule::ResourceAttributeValue),
                    None,
                    Some(&constraint.key),
                    1,
                    || Message::new(template, vec![Scalar::Str(key), found]),
                );
            }
        }
    }
    Ok(ResourceOutcome { rewritten, reject })
}

fn read_attrs(bytes: &[u8]) -> Result<Vec<Attr>, DecodeError> {
    let mut list = Vec::new();
    for field in fields(bytes) {
        let field = field?;
        if field.number != resource::ATTRIBUTES {
            continue;
        }
        let Some(kv_bytes) = field.bytes() else {
            continue;
        };
        let kv = read_kv(kv_bytes)?;
        let mut rest = Vec::new();
        let mut has_value = false;
        for inner in fields(kv_bytes) {
            let inner = inner?;
            // A key or value of another wire type is an unknown field to protobuf: kept as one.
            match (inner.number, inner.bytes().is_some()) {
                (key_value::KEY, true) => {}
                (key_value::VALUE, true) => has_value = true,
                _ => rest.extend_from_slice(inner.raw),
            }
        }
        let value = has_value.then(|| kv.value.to_vec());
        list.push(Attr {
            key: crate::attrs::key_str(kv.key).to_owned(),
            value,
            rest,
        });
    }
    Ok(list)
}

/// The Resource with ``attrs`` as its attributes, its other fields copied.
fn encode(bytes: &[u8], attrs: &[Attr]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(bytes.len() + 32);
    for attr in attrs {
        let mut kv = Vec::with_capacity(
            attr.key.len() + attr.value.as_ref().map_or(0, Vec::len) + attr.rest.len() + 6,
        );
        put_bytes(&mut kv, key_value::KEY, attr.key.as_bytes());
        if let Some(value) = &attr.value {
            put_bytes(&mut kv, key_value::VALUE, value);
        }
        kv.extend_from_slice(&attr.rest);
        put_bytes(&mut out, resource::ATTRIBUTES, &kv);
    }
    for field in fields(bytes) {
        let field = field?;
        if field.number != resource::ATTRIBUTES {
            out.extend_from_slice(field.raw);
        }
    }
    Ok(out)
}

/// A ResourceMetrics/ResourceSpans/ResourceLogs message (``bytes``) with its resource replaced by what
/// the actions made of it (added when it had none) and its scopes edited; Keep when neither changed.
/// ``fields``: the numbers of its resource and scopes fields.
pub fn edit(
    bytes: &[u8],
    outcome: &ResourceOutcome,
    has_resource: bool,
    fields: (u32, u32),
    scope_edits: Vec<Edit>,
) -> Result<Edit, DecodeError> {
    let (resource_field, scopes_field) = fields;
    let resource_edit = match &outcome.rewritten {
        Some(new) if has_resource => vec![Edit::Replace(new.clone())],
        _ => vec![],
    };
    let mut appended = Vec::new();
    if let (Some(new), false) = (&outcome.rewritten, has_resource) {
        put_bytes(&mut appended, resource_field, new);
    }
    if !any_change(&scope_edits) && resource_edit.is_empty() && appended.is_empty() {
        return Ok(Edit::Keep);
    }
    rebuilt(
        bytes,
        vec![(resource_field, resource_edit), (scopes_field, scope_edits)],
        appended,
    )
}
