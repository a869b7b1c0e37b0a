//! Traces and logs share one shape: resources -> scopes -> records with attributes. They get the
//! resource actions and requirements and the global attribute renames and types (on spans, span
//! events and span links, and on log records).

use crate::attrs;
use crate::edit::{any_change, edit_each, rebuild, Edit, FieldEdits};
use crate::resource;
use crate::schema::{log_record, resource_spans, scope_spans, span, span_event, span_link};
use crate::sink::{Counts, Message, Rule, Sink};
use crate::tables::{Oracle, Tables};
use crate::wire::{fields, DecodeError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Span,
    LogRecord,
}

impl RecordKind {
    pub fn noun(self) -> &'static str {
        match self {
            RecordKind::Span => "span",
            RecordKind::LogRecord => "log record",
        }
    }
}

// ResourceSpans/ResourceLogs and ScopeSpans/ScopeLogs number their fields alike.
const RESOURCE: u32 = resource_spans::RESOURCE;
const SCOPES: u32 = resource_spans::SCOPE_SPANS;
const RECORDS: u32 = scope_spans::SPANS;
const RESOURCES: u32 = 1;

pub struct Run<'t> {
    pub tables: &'t Tables,
    pub env: &'t [Option<String>],
    pub oracle: &'t dyn Oracle,
    pub sink: Sink,
    pub counts: Counts,
    /// A legacy key is framed somewhere in the request: renames apply (the Python engine's rule).
    pub renames_possible: bool,
}

/// The request's new bytes, or None when nothing changed.
pub fn process(
    request: &[u8],
    kind: RecordKind,
    run: &mut Run<'_>,
) -> Result<Option<Vec<u8>>, DecodeError> {
    edit_each(request, RESOURCES, |bytes| {
        resource_records(bytes, kind, run)
    })
}

fn record_count(scope: &[u8]) -> Result<u64, DecodeError> {
    let mut count = 0;
    for field in fields(scope) {
        let field = field?;
        count += u64::from(field.number == RECORDS && field.bytes().is_some());
    }
    Ok(count)
}

fn resource_records(
    bytes: &[u8],
    kind: RecordKind,
    run: &mut Run<'_>,
) -> Result<Edit, DecodeError> {
    let mut resource_bytes: &[u8] = &[];
    let mut has_resource = false;
    let mut scopes: Vec<&[u8]> = Vec::new();
    for field in fields(bytes) {
        let field = field?;
        match (field.number, field.bytes()) {
            (RESOURCE, Some(b)) => {
                resource_bytes = b;
                has_resource = true;
            }
            (SCOPES, Some(b)) => scopes.push(b),
            _ => {}
        }
    }
    let outcome = resource::process(
        resource_bytes,
        run.tables,
        run.env,
        run.oracle,
        &mut run.sink,
    )?;
    if outcome.reject {
        for scope in &scopes {
            let gone = record_count(scope)?;
            run.counts.items += gone;
            run.counts.rejected += gone;
        }
        return Ok(Edit::Drop);
    }
    let tables = run.tables;
    let walk = !((tables.renames.is_empty() || !run.renames_possible) && tables.types.is_empty());
    let mut scope_edits = Vec::with_capacity(scopes.len());
    let mut emptied = 0;
    for scope in &scopes {
        let edit = scope_records(scope, kind, walk, run)?;
        emptied += usize::from(edit == Edit::Drop);
        scope_edits.push(edit);
    }
    if emptied > 0 && emptied == scopes.len() {
        return Ok(Edit::Drop);
    }
    resource::edit(
        bytes,
        &outcome,
        has_resource,
        (RESOURCE, SCOPES),
        scope_edits,
    )
}

fn scope_records(
    scope: &[u8],
    kind: RecordKind,
    walk: bool,
    run: &mut Run<'_>,
) -> Result<Edit, DecodeError> {
    let mut edits = Vec::new();
    for field in fields(scope) {
        let field = field?;
        let (RECORDS, Some(record)) = (field.number, field.bytes()) else {
            continue;
        };
        run.counts.items += 1;
        if !walk {
            continue;
        }
        let (edit, reject) = record_edit(record, kind, run)?;
        if reject {
            run.counts.rejected += 1;
            edits.push(Edit::Drop);
        } else {
            edits.push(edit);
        }
    }
    let records = edits.len();
    if !any_change(&edits) {
        return Ok(Edit::Keep);
    }
    if records > 0 && edits.iter().all(|e| *e == Edit::Drop) {
        return Ok(Edit::Drop); // emptied by this run (a scope that arrived empty is left alone)
    }
    Ok(Edit::Replace(rebuild(
        scope,
        &[FieldEdits {
            number: RECORDS,
            edits: &edits,
        }],
        &[],
    )?))
}

/// The attribute lists of one record, in the order the Python engine reads them: a span's own, then
/// each event's, then each link's.
fn record_edit(
    record: &[u8],
    kind: RecordKind,
    run: &mut Run<'_>,
) -> Result<(Edit, bool), DecodeError> {
    let own = match kind {
        RecordKind::Span => span::ATTRIBUTES,
        RecordKind::LogRecord => log_record::ATTRIBUTES,
    };
    let mut kvs = Vec::new();
    let mut events = Vec::new();
    let mut links = Vec::new();
    for field in fields(record) {
        let field = field?;
        let Some(bytes) = field.bytes() else { continue };
        match (kind, field.number) {
            (_, n) if n == own => kvs.push(bytes),
            (RecordKind::Span, span::EVENTS) => events.push(bytes),
            (RecordKind::Span, span::LINKS) => links.push(bytes),
            _ => {}
        }
    }
    let mut reject = false;
    let (own_edits, rejected) = normalize_list(&kvs, kind, run)?;
    reject |= rejected;
    let mut nested =
        |items: &[&[u8]], number: u32, run: &mut Run<'_>| -> Result<Vec<Edit>, DecodeError> {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let list: Vec<&[u8]> = fields(item)
                    .filter_map(|f| f.ok())
                    .filter(|f| f.number == number)
                    .filter_map(|f| f.bytes())
                    .collect();
                let (edits, rejected) = normalize_list(&list, kind, run)?;
                reject |= rejected;
                out.push(if any_change(&edits) {
                    Edit::Replace(rebuild(
                        item,
                        &[FieldEdits {
                            number,
                            edits: &edits,
                        }],
                        &[],
                    )?)
                } else {
                    Edit::Keep
                });
            }
            Ok(out)
        };
    let event_edits = nested(&events, span_event::ATTRIBUTES, run)?;
    let link_edits = nested(&links, span_link::ATTRIBUTES, run)?;
    if !(any_change(&own_edits) || any_change(&event_edits) || any_change(&link_edits)) {
        return Ok((Edit::Keep, reject));
    }
    let rebuilt = rebuild(
        record,
        &[
            FieldEdits {
                number: own,
                edits: &own_edits,
            },
            FieldEdits {
                number: span::EVENTS,
                edits: if kind == RecordKind::Span {
                    &event_edits
                } else {
                    &[]
                },
            },
            FieldEdits {
                number: span::LINKS,
                edits: if kind == RecordKind::Span {
                    &link_edits
                } else {
                    &[]
                },
            },
        ],
        &[],
    )?;
    Ok((Edit::Replace(rebuilt), reject))
}

fn normalize_list(
    kvs: &[&[u8]],
    kind: RecordKind,
    run: &mut Run<'_>,
) -> Result<(Vec<Edit>, bool), DecodeError> {
    let tables = run.tables;
    let sink = &mut run.sink;
    let mut report = |rule: Rule, attribute: &str, message: Message| {
        let action = tables.action(rule);
        sink.report(rule, action, None, Some(attribute), 1, || Message {
            prefix: Some(kind.noun().to_owned()),
            ..message
        })
    };
    let empty = crate::tables::KeyMap::default();
    let renames = if run.renames_possible {
        &tables.renames
    } else {
        &empty
    };
    attrs::normalize(kvs, renames, &tables.types, run.oracle, &mut report)
}
