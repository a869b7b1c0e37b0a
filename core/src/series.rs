//! A metric's data points: attribute renames and coercion, the attribute rules, value checks and
//! conversions (``points.rs``), series identities (conflicts after renames) and cardinality budgets.
//! ``metrics.rs`` walks the request down to each metric and hands its points here.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::attrs::{self, key_str, read_kv, Kv};
use crate::budgets::Prehashed;
use crate::edit::{any_change, Edit};
use crate::metrics::{quoted, Conversion, Run};
use crate::points::{self, Point};
use crate::sink::{IdValue, Message, Rule};
use crate::tables::{KeyMap, MetricSpec};
use crate::value::{self, Scalar, ScalarRef};
use crate::wire::DecodeError;

/// One attribute value of a series identity, equal where Python's ``==`` is (``True == 1 == 1.0``;
/// NaN equals nothing, so each NaN gets its own number).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum IdKey<'a> {
    Int(i64),
    Double(u64),
    Nan(u64),
    /// A string's bytes: validated as UTF-8 before the walk, and equal where the strings are.
    Str(Cow<'a, [u8]>),
    Raw(Cow<'a, [u8]>),
}

/// A series identity: its attributes sorted by key, borrowed from the request where possible.
pub(crate) type Identity<'a> = Vec<(Cow<'a, [u8]>, IdKey<'a>)>;

/// The identities seen for one canonical metric in one resource, found by their keyed hash (random
/// per process: the request cannot choose colliding ones), which each point computes once for this
/// set and the budgets alike. Identities are stored back to back, not one allocation each.
#[derive(Default)]
pub(crate) struct SeenSet<'a> {
    pairs: Identity<'a>,
    /// The first identity of each hash: its range in ``pairs``.
    first: HashMap<u64, (usize, usize), BuildHasherDefault<Prehashed>>,
    /// Further identities whose hash an earlier one has (a 64-bit keyed hash: practically never).
    more: Vec<(u64, usize, usize)>,
    /// The hash for a request without budgets (with budgets, theirs).
    hasher: ahash::RandomState,
}

impl<'a> SeenSet<'a> {
    /// True when ``identity`` (hashed ``hash``) was seen before; otherwise it is recorded (moved out of
    /// ``identity``).
    fn seen_or_insert(&mut self, hash: u64, identity: &mut Identity<'a>) -> bool {
        let pairs = &self.pairs;
        let same = |start: usize, end: usize| pairs[start..end] == identity[..];
        let first = self.first.get(&hash).copied();
        if let Some((start, end)) = first {
            if same(start, end)
                || self
                    .more
                    .iter()
                    .any(|&(h, start, end)| h == hash && same(start, end))
            {
                return true;
            }
        }
        let start = self.pairs.len();
        self.pairs.append(identity);
        let end = self.pairs.len();
        if first.is_some() {
            self.more.push((hash, start, end));
        } else {
            self.first.insert(hash, (start, end));
        }
        false
    }
}

/// attrs::normalize with the metric's reporter: messages prefixed with its name, findings under it;
/// the edits go to ``edits``, true when the point must go.
#[allow(clippy::too_many_arguments)]
pub(crate) fn normalize_point_attributes(
    kvs: &[&[u8]],
    parsed: &[Kv<'_>],
    renames: &KeyMap<String>,
    types: &KeyMap<crate::value::AttrType>,
    metric: &str,
    spec: Option<&MetricSpec>,
    run: &mut Run<'_>,
    edits: &mut Vec<Edit>,
) -> Result<bool, DecodeError> {
    let tables = run.tables;
    let sink = &mut run.sink;
    let mut report = |rule: Rule, attribute: &str, message: Message| {
        let action = spec.map_or_else(|| tables.action(rule), |s| s.action(rule));
        sink.report(rule, action, Some(metric), Some(attribute), 1, || Message {
            prefix: Some(metric.to_owned()),
            ..message
        })
    };
    attrs::normalize_parsed(kvs, parsed, renames, types, run.oracle, &mut report, edits)
}

fn id_key<'a>(value: &Cow<'a, [u8]>) -> IdKey<'a> {
    match value {
        Cow::Borrowed(bytes) => id_key_of(bytes),
        Cow::Owned(bytes) => id_key_of(bytes).into_owned(),
    }
}

fn id_key_of(bytes: &[u8]) -> IdKey<'_> {
    match value::scalar_bytes(bytes) {
        ScalarRef::Str(s) => IdKey::Str(Cow::Borrowed(s)),
        ScalarRef::Bool(b) => IdKey::Int(i64::from(b)),
        ScalarRef::Int(i) => IdKey::Int(i),
        ScalarRef::Double(d) if d.is_nan() => IdKey::Nan(0), // numbered by the caller: NaN equals nothing
        ScalarRef::Double(d) => value::exact_i64(d).map_or(IdKey::Double(d.to_bits()), IdKey::Int),
        ScalarRef::Other => IdKey::Raw(Cow::Borrowed(bytes)),
    }
}

impl IdKey<'_> {
    fn into_owned(self) -> IdKey<'static> {
        match self {
            IdKey::Int(i) => IdKey::Int(i),
            IdKey::Double(d) => IdKey::Double(d),
            IdKey::Nan(n) => IdKey::Nan(n),
            IdKey::Str(s) => IdKey::Str(Cow::Owned(s.into_owned())),
            IdKey::Raw(r) => IdKey::Raw(Cow::Owned(r.into_owned())),
        }
    }
}

/// A point's attributes: key and AnyValue bytes.
type Values<'a> = Vec<(Cow<'a, [u8]>, Cow<'a, [u8]>)>;

/// Keeps the last value of each key, in the order keys first appear (few attributes: a scan; many: a
/// map), in place.
fn keep_last_values(values: &mut Values<'_>) {
    if values.len() <= 16 {
        let mut kept = 0;
        for i in 0..values.len() {
            match (0..kept).find(|&j| values[j].0 == values[i].0) {
                Some(j) => values[j].1 = std::mem::take(&mut values[i].1),
                None => {
                    values.swap(kept, i);
                    kept += 1;
                }
            }
        }
        values.truncate(kept);
        return;
    }
    let mut out: Values<'_> = Vec::with_capacity(values.len());
    let mut at: HashMap<Cow<'_, [u8]>, usize> = HashMap::with_capacity(values.len());
    for (key, value) in values.drain(..) {
        match at.get(&key) {
            Some(&i) => out[i].1 = value,
            None => {
                at.insert(key.clone(), out.len());
                out.push((key, value));
            }
        }
    }
    *values = out;
}

fn id_value(value: &[u8]) -> IdValue {
    match value::scalar(value) {
        Scalar::Other => IdValue::Raw(value.to_vec()),
        scalar => IdValue::Scalar(scalar),
    }
}

pub(crate) fn points_edits<'a>(
    points: &[&'a [u8]],
    kind: u32,
    spec: &MetricSpec,
    conversion: Option<&Conversion>,
    unit: &str,
    mut seen: Option<&mut SeenSet<'a>>,
    run: &mut Run<'_>,
) -> Result<Vec<Edit>, DecodeError> {
    let name = spec.name.as_str();
    let empty = KeyMap::default();
    let renames = if run.renames_possible {
        &spec.renames
    } else {
        &empty
    };
    let budget = run.budgets.and(spec.max_series);
    let track_identity = seen.is_some() || budget.is_some();
    let mut edits = Vec::with_capacity(points.len());
    // Reused from point to point (they borrow from the request, which outlives the loop), so that a
    // point allocates nothing unless it changes.
    let mut kvs: Vec<&'a [u8]> = Vec::new();
    let mut parsed: Vec<Kv<'a>> = Vec::new();
    let mut kv_edits: Vec<Edit> = Vec::new();
    let mut point = Point::default();
    let mut last: Values<'a> = Vec::new();
    let mut identity: Identity<'a> = Vec::new();
    for point_bytes in points {
        kvs.clear();
        Point::read_with_attributes(&mut point, point_bytes, kind, &mut kvs)?;
        parsed.clear();
        for kv in &kvs {
            parsed.push(read_kv(kv)?);
        }
        let mut reject = normalize_point_attributes(
            &kvs,
            &parsed,
            renames,
            &spec.types,
            name,
            Some(spec),
            run,
            &mut kv_edits,
        )?;
        // The point's attributes after renames, in order: borrowed from the request where they came
        // as they are, owned where this run rewrote them.
        last.clear();
        for (kv, edit) in parsed.iter().zip(&kv_edits) {
            match edit {
                Edit::Keep => last.push((Cow::Borrowed(kv.key), Cow::Borrowed(kv.value))),
                Edit::Drop => {}
                Edit::Rebuild(_) => unreachable!("a KeyValue's new bytes are given whole"),
                Edit::Replace(new) => {
                    let new = read_kv(new)?;
                    last.push((Cow::Owned(new.key.to_vec()), Cow::Owned(new.value.to_vec())));
                }
            }
        }
        // A key given twice counts once, with its last value (a dict built from the list).
        keep_last_values(&mut last);
        if spec.checks_attributes {
            reject |= check_attributes(spec, &last, run);
        }
        identity.clear();
        if track_identity {
            identity.extend(last.iter().map(|(k, v)| {
                let key = match id_key(v) {
                    IdKey::Nan(_) => IdKey::Nan(points::next_nan()),
                    other => other,
                };
                (k.clone(), key)
            }));
            identity.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        // One hash per point, for the seen set and the budgets alike.
        let hash = track_identity.then(|| match (run.budgets, seen.as_deref()) {
            (Some(budgets), _) => budgets.hash(&identity),
            (None, Some(seen)) => seen.hasher.hash_one(&identity),
            (None, None) => 0,
        });
        let mut invalid = false;
        if !point.no_recorded_value() {
            if let Some(problem) = points::check(&point, spec) {
                invalid = true;
                reject |= report_point(run, spec, Rule::InvalidDataPoint, None, problem);
            }
        }
        if let (Some(seen), Some(hash)) = (seen.as_deref_mut(), hash) {
            if seen.seen_or_insert(hash, &mut identity) {
                let shown: Vec<(String, IdValue)> = {
                    let mut pairs: Vec<(String, IdValue)> = last
                        .iter()
                        .map(|(k, v)| (key_str(k).to_owned(), id_value(v)))
                        .collect();
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                    pairs
                };
                let message = Message {
                    identity: Some(shown),
                    ..Message::new("metric.identity", vec![])
                };
                report_point(run, spec, Rule::IdentityConflict, None, message);
                run.counts.merged += 1;
                edits.push(Edit::Drop);
                continue;
            }
        }
        if let (Some(budget), Some(budgets), Some(series)) = (budget, run.budgets, hash) {
            if !budgets.admit(name, series, budget) {
                let message = Message::new("metric.cardinality", vec![Scalar::Int(budget as i64)]);
                reject |= report_point(run, spec, Rule::Cardinality, None, message);
            }
        }
        if reject {
            run.counts.rejected += 1;
            edits.push(Edit::Drop);
            continue;
        }
        let attributes_edit = any_change(&kv_edits).then_some(kv_edits.as_slice());
        match conversion {
            None => edits.push(match attributes_edit {
                Some(kv_edits) => {
                    Edit::Replace(points::rebuild_attributes(point_bytes, kind, kv_edits)?)
                }
                None => Edit::Keep,
            }),
            Some(conversion) => match points::convert(
                point_bytes,
                &point,
                kind,
                conversion,
                unit,
                attributes_edit,
                run.oracle,
            )? {
                Ok(converted) => edits.push(Edit::Replace(converted)),
                Err(problem) => {
                    // A point that cannot be converted stays as it came; invalid unless already reported so.
                    let rejects =
                        !invalid && report_point(run, spec, Rule::InvalidDataPoint, None, problem);
                    if rejects {
                        run.counts.rejected += 1;
                        edits.push(Edit::Drop);
                    } else {
                        edits.push(match attributes_edit {
                            Some(kv_edits) => Edit::Replace(points::rebuild_attributes(
                                point_bytes,
                                kind,
                                kv_edits,
                            )?),
                            None => Edit::Keep,
                        });
                    }
                }
            },
        }
    }
    Ok(edits)
}

type Attributes<'a> = [(Cow<'a, [u8]>, Cow<'a, [u8]>)];

fn lookup<'p>(present: &'p Attributes<'_>, key: &str) -> Option<&'p [u8]> {
    present
        .iter()
        .find(|(k, _)| k.as_ref() == key.as_bytes())
        .map(|(_, v)| v.as_ref())
}

/// A finding about one data point of ``spec``'s metric: its message prefixed with the metric's name,
/// as every point-level message is. True when the point must be rejected.
fn report_point(
    run: &mut Run<'_>,
    spec: &MetricSpec,
    rule: Rule,
    attribute: Option<&str>,
    message: Message,
) -> bool {
    let name = spec.name.as_str();
    run.sink
        .report(rule, spec.action(rule), Some(name), attribute, 1, || {
            Message {
                prefix: Some(name.to_owned()),
                ..message
            }
        })
}

fn check_attributes(spec: &MetricSpec, present: &Attributes<'_>, run: &mut Run<'_>) -> bool {
    let mut reject = false;
    let report = |run: &mut Run<'_>, rule: Rule, attribute: &str, message: Message| {
        report_point(run, spec, rule, Some(attribute), message)
    };
    for key in &spec.required {
        if lookup(present, key).is_none() {
            let role = spec.roles.get(key).map_or(Scalar::Other, |r| quoted(r));
            reject |= report(
                run,
                Rule::MissingAttribute,
                key,
                Message::new("metric.missing", vec![quoted(key), role]),
            );
        }
    }
    for key in &spec.forbidden {
        if lookup(present, key).is_some() {
            reject |= report(
                run,
                Rule::ForbiddenAttribute,
                key,
                Message::new("metric.forbidden", vec![quoted(key)]),
            );
        }
    }
    for (key, allowed) in &spec.allowed {
        if let Some(value) = lookup(present, key) {
            // Compared where the value lies: no string copied per point.
            let any_eq = |found: Scalar| allowed.iter().any(|a| crate::tables::py_eq(a, &found));
            let ok = match value::scalar_bytes(value) {
                ScalarRef::Str(text) => allowed
                    .iter()
                    .any(|a| matches!(a, Scalar::Str(s) if s.as_bytes() == text)),
                ScalarRef::Other => false,
                ScalarRef::Bool(b) => any_eq(Scalar::Bool(b)),
                ScalarRef::Int(i) => any_eq(Scalar::Int(i)),
                ScalarRef::Double(d) => any_eq(Scalar::Double(d)),
            };
            if !ok {
                let shown = id_value(value);
                let args = vec![quoted(key), scalar_or_raw(shown)];
                reject |= report(
                    run,
                    Rule::AttributeValue,
                    key,
                    Message::new("metric.not_allowed", args),
                );
            }
        }
    }
    for (key, pattern) in &spec.patterns {
        if let Some(value) = lookup(present, key) {
            let found = value::scalar(value);
            let ok = matches!(&found, Scalar::Str(text) if run.oracle.matches(*pattern, text));
            if !ok {
                let args = vec![
                    quoted(key),
                    scalar_or_raw(id_value(value)),
                    Scalar::Int(*pattern as i64),
                ];
                reject |= report(
                    run,
                    Rule::AttributeValue,
                    key,
                    Message::new("metric.no_match", args),
                );
            }
        }
    }
    reject
}

/// A value for a message: the scalar, or a non-scalar's bytes (Python shows them as ``b'...'``).
fn scalar_or_raw(value: IdValue) -> Scalar {
    match value {
        IdValue::Scalar(s) => s,
        IdValue::Raw(bytes) => Scalar::Bytes(bytes),
    }
}
