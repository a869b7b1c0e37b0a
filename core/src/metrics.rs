//! The metrics engine: resource actions and requirements; per metric, alias -> canonical name with
//! unit conversion, type/temporality/monotonicity; per data point attribute renames and type
//! coercion, attribute rules, invalid values, identity conflicts and cardinality (``series.rs``, per
//! data point). The same order and the same answers as the Python engine
//! (``otel_contract/engine/metrics.py``), which the differential test holds it to.

use std::collections::HashMap;

use crate::attrs::{read_kv, Kv};
use crate::budgets::Budgets;
use crate::edit::{any_change, edit_each, range_in, rebuilt, rebuilt_with_head, Edit};
use crate::points;
use crate::resource;
use crate::schema::{instrumentation_scope, metric, resource_metrics, scope_metrics};
use crate::series::{normalize_point_attributes, points_edits, SeenSet};
use crate::sink::{Counts, Message, Rule, Sink};
use crate::tables::{Factor, MetricSpec, Oracle, Tables};
use crate::value::Scalar;
use crate::wire::{fields, put_bytes, DecodeError, Value};

const RESOURCES: u32 = 1;
const DATA_MEMBERS: [u32; 5] = [
    metric::GAUGE,
    metric::SUM,
    metric::HISTOGRAM,
    metric::EXPONENTIAL_HISTOGRAM,
    metric::SUMMARY,
];
const POINTS: u32 = 1; // Gauge/Sum/Histogram/ExponentialHistogram/Summary.data_points
const TEMPORALITY: u32 = 2; // Sum/Histogram/ExponentialHistogram.aggregation_temporality
const IS_MONOTONIC: u32 = 3; // Sum.is_monotonic

pub struct Run<'t> {
    pub tables: &'t Tables,
    pub env: &'t [Option<String>],
    pub oracle: &'t dyn Oracle,
    pub budgets: Option<&'t Budgets>,
    pub sink: Sink,
    pub counts: Counts,
    pub renames_possible: bool,
    /// Unit factors asked of Python in this request, by (arrived, target).
    pub factors: HashMap<(String, String), Option<Factor>>,
}

/// A metric as read from the wire: its fields, borrowed.
struct MetricView<'a> {
    name: &'a str,
    unit: Option<&'a str>,
    description: &'a str,
    /// The data member (field number) and its message, the last one on the wire.
    data: Option<(u32, &'a [u8])>,
}

fn str_of(bytes: &[u8]) -> &str {
    // Validated UTF-8 before the walk.
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn read_metric(bytes: &[u8]) -> Result<MetricView<'_>, DecodeError> {
    let mut view = MetricView {
        name: "",
        unit: None,
        description: "",
        data: None,
    };
    for field in fields(bytes) {
        let field = field?;
        let Value::Bytes(b) = field.value else {
            continue;
        };
        match field.number {
            metric::NAME => view.name = str_of(b),
            metric::UNIT => view.unit = Some(str_of(b)),
            metric::DESCRIPTION => view.description = str_of(b),
            n if DATA_MEMBERS.contains(&n) => view.data = Some((n, b)),
            _ => {}
        }
    }
    // proto3: an empty unit is no unit.
    view.unit = view.unit.filter(|u| !u.is_empty());
    Ok(view)
}

fn member_name(number: u32) -> &'static str {
    match number {
        metric::GAUGE => "gauge",
        metric::SUM => "sum",
        metric::HISTOGRAM => "histogram",
        metric::EXPONENTIAL_HISTOGRAM => "exponential_histogram",
        metric::SUMMARY => "summary",
        _ => "no data",
    }
}

/// The data points of a data member, in wire order.
fn point_list(data: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut list = Vec::new();
    for field in fields(data) {
        let field = field?;
        if let (POINTS, Value::Bytes(b)) = (field.number, field.value) {
            list.push(b);
        }
    }
    Ok(list)
}

fn point_count(metric_bytes: &[u8]) -> Result<u64, DecodeError> {
    Ok(match read_metric(metric_bytes)?.data {
        Some((_, data)) => point_list(data)?.len() as u64,
        None => 0,
    })
}

/// The last varint of ``number`` in ``bytes`` (proto3 scalars: the last one wins), or 0.
fn last_varint(bytes: &[u8], number: u32) -> Result<u64, DecodeError> {
    let mut found = 0;
    for field in fields(bytes) {
        let field = field?;
        if let (n, Value::Varint(v)) = (field.number, field.value) {
            if n == number {
                found = v;
            }
        }
    }
    Ok(found)
}

fn scope_name(scope: &[u8]) -> Result<&str, DecodeError> {
    let mut name = "";
    for field in fields(scope) {
        let field = field?;
        if let (scope_metrics::SCOPE, Value::Bytes(b)) = (field.number, field.value) {
            for inner in fields(b) {
                let inner = inner?;
                if let (instrumentation_scope::NAME, Value::Bytes(n)) = (inner.number, inner.value)
                {
                    name = str_of(n);
                }
            }
        }
    }
    Ok(name)
}

fn scope_metric_list(scope: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut list = Vec::new();
    for field in fields(scope) {
        let field = field?;
        if let (scope_metrics::METRICS, Value::Bytes(b)) = (field.number, field.value) {
            list.push(b);
        }
    }
    Ok(list)
}

/// The request's new bytes, or None when nothing changed.
pub fn process(request: &[u8], run: &mut Run<'_>) -> Result<Option<Vec<u8>>, DecodeError> {
    edit_each(request, RESOURCES, |bytes| {
        resource_metrics_edit(bytes, run)
    })
}

fn resource_metrics_edit(bytes: &[u8], run: &mut Run<'_>) -> Result<Edit, DecodeError> {
    let tables = run.tables;
    let mut resource_bytes: &[u8] = &[];
    let mut has_resource = false;
    let mut scopes: Vec<&[u8]> = Vec::new();
    for field in fields(bytes) {
        let field = field?;
        match (field.number, field.value) {
            (resource_metrics::RESOURCE, Value::Bytes(b)) => {
                resource_bytes = b;
                has_resource = true;
            }
            (resource_metrics::SCOPE_METRICS, Value::Bytes(b)) => scopes.push(b),
            _ => {}
        }
    }
    let scope_names: Vec<&str> = scopes
        .iter()
        .map(|s| scope_name(s))
        .collect::<Result<_, _>>()?;
    let scope_lists: Vec<Vec<&[u8]>> = scopes
        .iter()
        .map(|s| scope_metric_list(s))
        .collect::<Result<_, _>>()?;
    let views: Vec<Vec<MetricView<'_>>> = scope_lists
        .iter()
        .map(|list| {
            list.iter()
                .map(|m| read_metric(m))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let from_shims = |scope: usize| scope_names[scope] == tables.shim_scope;
    // Only compat shims' series, from their scope: what a sidecar upstream appended, passed as is.
    let shim_output = !scopes.is_empty()
        && (0..scopes.len()).all(|s| {
            from_shims(s)
                && views[s]
                    .iter()
                    .all(|m| tables.shim_records.contains_key(m.name))
        });
    if shim_output {
        for list in &scope_lists {
            for m in list {
                run.counts.items += point_count(m)?;
            }
        }
        return Ok(Edit::Keep);
    }
    let outcome = resource::process(resource_bytes, tables, run.env, run.oracle, &mut run.sink)?;
    if outcome.reject {
        for list in &scope_lists {
            for m in list {
                let points = point_count(m)?;
                run.counts.items += points;
                run.counts.rejected += points;
            }
        }
        return Ok(Edit::Drop);
    }
    // Canonical-named metrics first, so that their series win identity conflicts with aliases.
    let mut entries: Vec<(usize, usize)> = (0..scopes.len())
        .flat_map(|s| (0..views[s].len()).map(move |m| (s, m)))
        .collect();
    entries.sort_by_key(|&(s, m)| tables.aliases.contains_key(views[s][m].name));
    let canonical = |name: &str| -> String {
        match tables.aliases.get(name) {
            Some(alias) => tables.metrics[alias.metric].name.clone(),
            None => name.to_owned(),
        }
    };
    let names: Vec<String> = entries
        .iter()
        .map(|&(s, m)| canonical(views[s][m].name))
        .collect();
    let mut occurrences: HashMap<&str, usize> = HashMap::new();
    for name in &names {
        *occurrences.entry(name.as_str()).or_default() += 1;
    }
    let mut seen: HashMap<String, SeenSet<'_>> = HashMap::new();
    let mut metric_edits: Vec<Vec<Edit>> =
        views.iter().map(|v| vec![Edit::Keep; v.len()]).collect();
    let mut dropped_from: Vec<bool> = vec![false; scopes.len()];
    for (&(s, m), name) in entries.iter().zip(&names) {
        let view = &views[s][m];
        if tables.shim_records.contains_key(view.name) && from_shims(s) {
            run.counts.items += point_count(scope_lists[s][m])?;
            continue;
        }
        let track = run.renames_possible || occurrences[name.as_str()] > 1;
        let seen_set = if track {
            Some(seen.entry(name.clone()).or_default())
        } else {
            None
        };
        let edit = metric_edit(scope_lists[s][m], view, seen_set, run)?;
        if edit == Edit::Drop {
            dropped_from[s] = true;
        }
        metric_edits[s][m] = edit;
    }
    // Scopes this run emptied go; a scope that arrived empty stays.
    let mut scope_edits = Vec::with_capacity(scopes.len());
    let mut remaining = 0;
    for s in 0..scopes.len() {
        let emptied = dropped_from[s] && metric_edits[s].iter().all(|e| *e == Edit::Drop);
        if emptied {
            scope_edits.push(Edit::Drop);
        } else {
            remaining += 1;
            scope_edits.push(if any_change(&metric_edits[s]) {
                rebuilt(
                    scopes[s],
                    vec![(scope_metrics::METRICS, std::mem::take(&mut metric_edits[s]))],
                    Vec::new(),
                )?
            } else {
                Edit::Keep
            });
        }
    }
    if dropped_from.iter().any(|d| *d) && remaining == 0 {
        return Ok(Edit::Drop);
    }
    resource::edit(
        bytes,
        &outcome,
        has_resource,
        (resource_metrics::RESOURCE, resource_metrics::SCOPE_METRICS),
        scope_edits,
    )
}

pub(crate) fn quoted(text: &str) -> Scalar {
    Scalar::Str(text.to_owned())
}

/// Normalize and validate one metric: its edit (Drop when the whole metric goes).
fn metric_edit<'a>(
    bytes: &'a [u8],
    view: &MetricView<'a>,
    seen: Option<&mut SeenSet<'a>>,
    run: &mut Run<'_>,
) -> Result<Edit, DecodeError> {
    let tables = run.tables;
    let (index, alias) = match tables.metric_index.get(view.name) {
        Some(&i) => (Some(i), None),
        None => match tables.aliases.get(view.name) {
            Some(alias) => (Some(alias.metric), Some(alias)),
            None => (None, None),
        },
    };
    let points = match view.data {
        Some((_, data)) => point_list(data)?,
        None => Vec::new(),
    };
    let count = points.len() as u64;
    run.counts.items += count;
    let Some(index) = index else {
        return unknown_metric(bytes, view, &points, run);
    };
    let spec = &tables.metrics[index];
    let canonical = spec.name.as_str();
    let renamed = alias.is_some();
    // An alias is renamed; a retired metric only reported. Both are deprecated-metric.
    let deprecated = if renamed {
        Some(Message::new(
            "metric.alias",
            vec![quoted(view.name), quoted(canonical)],
        ))
    } else {
        spec.retired.as_ref().map(|(stability, replaced_by)| {
            let replacement = replaced_by.as_deref().map_or(Scalar::Other, quoted);
            Message::new(
                "metric.retired",
                vec![quoted(canonical), quoted(stability), replacement],
            )
        })
    };
    if let Some(message) = deprecated {
        let action = spec.action(Rule::DeprecatedMetric);
        run.sink.report(
            Rule::DeprecatedMetric,
            action,
            Some(canonical),
            None,
            count,
            || message,
        );
    }
    if let Some(problem) = type_problem(view, spec)? {
        let reject = run.sink.report(
            Rule::TypeMismatch,
            spec.action(Rule::TypeMismatch),
            Some(canonical),
            None,
            count,
            || problem,
        );
        if reject {
            run.counts.rejected += count;
            return Ok(Edit::Drop);
        }
        // A flagged type mismatch is forwarded as it came, unconverted and unchecked (but renamed).
        return metric_rewrite(bytes, renamed.then_some(canonical), None, None, None);
    }
    let Some(factor) = unit(
        view,
        spec,
        alias.and_then(|a| a.unit.as_deref()),
        count,
        run,
    ) else {
        run.counts.rejected += count;
        return Ok(Edit::Drop);
    };
    // A unit that could not be converted but is only flagged leaves unit and description as they came.
    let converted = matches!(factor, UnitOutcome::Factor(_));
    let new_unit = match &spec.unit {
        Some(unit) if converted && view.unit.unwrap_or_default() != unit.as_str() => {
            Some(unit.as_str())
        }
        _ => None,
    };
    let new_description = (converted
        && alias.is_some()
        && !spec.description.is_empty()
        && view.description != spec.description)
        .then_some(spec.description.as_str());
    let (kind, data) = view.data.expect("a metric whose type matched has data");
    let point_edits = match factor {
        UnitOutcome::Flagged => points_edits(&points, kind, spec, None, "", seen, run)?,
        UnitOutcome::Factor(factor) => {
            let arrived = view
                .unit
                .or(alias.and_then(|a| a.unit.as_deref()))
                .unwrap_or_default()
                .to_owned();
            let target = spec.unit.clone().unwrap_or_default();
            let conversion = (!factor.is_one()).then_some(Conversion {
                factor,
                arrived,
                target,
            });
            points_edits(
                &points,
                kind,
                spec,
                conversion.as_ref(),
                spec.unit.as_deref().unwrap_or_default(),
                seen,
                run,
            )?
        }
    };
    let kept = point_edits.iter().filter(|e| **e != Edit::Drop).count();
    if count > 0 && kept == 0 {
        return Ok(Edit::Drop);
    }
    let data_edit = if any_change(&point_edits) {
        Some((
            kind,
            data,
            rebuilt(data, vec![(POINTS, point_edits)], Vec::new())?,
        ))
    } else {
        None
    };
    metric_rewrite(
        bytes,
        renamed.then_some(canonical),
        new_unit,
        new_description,
        data_edit,
    )
}

/// What the unit step decided: no conversion possible but only flagged (the metric goes on as it
/// came), or the factor to apply (possibly 1).
enum UnitOutcome {
    Flagged,
    Factor(Factor),
}

pub struct Conversion {
    pub factor: Factor,
    pub arrived: String,
    pub target: String,
}

fn one() -> Factor {
    Factor {
        numerator: 1.0,
        denominator: 1.0,
        exact: Some((1, 1)),
        numerator_is_one: true,
        denominator_is_one: true,
        huge: false,
        power_of_two: Some(0),
    }
}

/// The factor for the metric's values, or None when it is rejected for a unit that cannot be converted.
fn unit(
    view: &MetricView<'_>,
    spec: &MetricSpec,
    alias_unit: Option<&str>,
    count: u64,
    run: &mut Run<'_>,
) -> Option<UnitOutcome> {
    let arrived = view.unit.or(alias_unit);
    let (Some(target), Some(arrived)) = (spec.unit.as_deref(), arrived) else {
        return Some(UnitOutcome::Factor(one()));
    };
    if arrived == target {
        return Some(UnitOutcome::Factor(one()));
    }
    let key = (arrived.to_owned(), target.to_owned());
    let factor = match run.factors.get(&key) {
        Some(f) => f.clone(),
        None => {
            let f = run.oracle.unit_factor(arrived, target);
            run.factors.insert(key, f.clone());
            f
        }
    };
    let mut why = "";
    let usable = match factor {
        None => None,
        Some(f) if f.huge => {
            why = " (the factor is beyond the range of a double)";
            None
        }
        Some(f)
            if view.data.map(|d| d.0) == Some(metric::EXPONENTIAL_HISTOGRAM)
                && !f.is_one()
                && f.power_of_two.is_none() =>
        {
            why = " on an exponential histogram (only powers of two can)";
            None
        }
        Some(f) => Some(f),
    };
    match usable {
        Some(f) => Some(UnitOutcome::Factor(f)),
        None => {
            let args = vec![
                quoted(&spec.name),
                quoted(arrived),
                quoted(target),
                quoted(why),
            ];
            let reject = run.sink.report(
                Rule::UnitMismatch,
                spec.action(Rule::UnitMismatch),
                Some(&spec.name),
                None,
                count,
                || Message::new("metric.unit_mismatch", args),
            );
            if reject {
                None
            } else {
                Some(UnitOutcome::Flagged)
            }
        }
    }
}

fn type_problem(view: &MetricView<'_>, spec: &MetricSpec) -> Result<Option<Message>, DecodeError> {
    let kind = view.data.map(|d| d.0);
    if kind != Some(spec.kind) {
        let got = kind.map_or("no data", member_name);
        return Ok(Some(Message::new(
            "metric.type",
            vec![quoted(&spec.name), quoted(&spec.kind_name), quoted(got)],
        )));
    }
    let (kind, data) = view.data.expect("checked above");
    if kind == metric::SUM {
        if let Some(monotonic) = spec.monotonic {
            if (last_varint(data, IS_MONOTONIC)? != 0) != monotonic {
                return Ok(Some(Message::new(
                    "metric.monotonic",
                    vec![quoted(&spec.name), Scalar::Bool(monotonic)],
                )));
            }
        }
    }
    if let Some((wanted, wanted_name)) = &spec.temporality {
        if matches!(
            kind,
            metric::SUM | metric::HISTOGRAM | metric::EXPONENTIAL_HISTOGRAM
        ) {
            // An enum is an int32 on the wire: the low 32 bits, signed.
            let got = i64::from(last_varint(data, TEMPORALITY)? as u32 as i32);
            if got != *wanted {
                return Ok(Some(Message::new(
                    "metric.temporality",
                    vec![quoted(&spec.name), quoted(wanted_name), Scalar::Int(got)],
                )));
            }
        }
    }
    Ok(None)
}

/// The metric with its name, unit, description and data member (its number, its bytes in the
/// metric's, their edit) replaced where given, these first.
fn metric_rewrite(
    bytes: &[u8],
    name: Option<&str>,
    unit: Option<&str>,
    description: Option<&str>,
    data: Option<(u32, &[u8], Edit)>,
) -> Result<Edit, DecodeError> {
    if name.is_none() && unit.is_none() && description.is_none() && data.is_none() {
        return Ok(Edit::Keep);
    }
    let mut head = Vec::new();
    let mut skip = Vec::new();
    for (number, text) in [
        (metric::NAME, name),
        (metric::DESCRIPTION, description),
        (metric::UNIT, unit),
    ] {
        if let Some(text) = text {
            skip.push(number);
            if !text.is_empty() {
                put_bytes(&mut head, number, text.as_bytes());
            }
        }
    }
    let moved = data.map(|(number, old, edit)| {
        skip.push(number);
        (number, range_in(bytes, old), edit)
    });
    rebuilt_with_head(bytes, head, moved, skip)
}

fn unknown_metric(
    bytes: &[u8],
    view: &MetricView<'_>,
    points: &[&[u8]],
    run: &mut Run<'_>,
) -> Result<Edit, DecodeError> {
    let tables = run.tables;
    let name = view.name;
    let count = points.len() as u64;
    let mut reject = run.sink.report(
        Rule::UnknownMetric,
        tables.action(Rule::UnknownMetric),
        Some(name),
        None,
        count,
        || Message::new("metric.unknown", vec![quoted(name)]),
    );
    reject |= check_name(name, count, run);
    if reject {
        run.counts.rejected += count;
        return Ok(Edit::Drop);
    }
    let empty = crate::tables::KeyMap::default();
    let renames = if run.renames_possible {
        &tables.renames
    } else {
        &empty
    };
    if renames.is_empty() && tables.types.is_empty() {
        return Ok(Edit::Keep);
    }
    let mut edits = Vec::with_capacity(points.len());
    let mut kv_edits = Vec::new();
    for point in points {
        let kvs = points::attribute_list(point, view.data.map_or(0, |d| d.0))?;
        let parsed: Vec<Kv<'_>> = kvs.iter().map(|b| read_kv(b)).collect::<Result<_, _>>()?;
        normalize_point_attributes(
            &kvs,
            &parsed,
            renames,
            &tables.types,
            name,
            None,
            run,
            &mut kv_edits,
        )?;
        edits.push(if any_change(&kv_edits) {
            Edit::Replace(points::rebuild_attributes(
                point,
                view.data.map_or(0, |d| d.0),
                &kv_edits,
            )?)
        } else {
            Edit::Keep
        });
    }
    if !any_change(&edits) {
        return Ok(Edit::Keep);
    }
    let (kind, data) = view.data.expect("points come from a data member");
    let new_data = rebuilt(data, vec![(POINTS, edits)], Vec::new())?;
    metric_rewrite(bytes, None, None, None, Some((kind, data, new_data)))
}

fn check_name(name: &str, count: u64, run: &mut Run<'_>) -> bool {
    let tables = run.tables;
    let action = tables.action(Rule::MetricName);
    let mut reject = false;
    if let Some(pattern) = tables.metric_pattern {
        if !run.oracle.matches(pattern, name) {
            reject |= run
                .sink
                .report(Rule::MetricName, action, Some(name), None, count, || {
                    Message::new("metric.name_pattern", vec![quoted(name)])
                });
        }
    }
    for (index, rule) in tables.name_rules.iter().enumerate() {
        if run.oracle.matches(rule.matcher, name) && !run.oracle.matches(rule.pattern, name) {
            reject |= run
                .sink
                .report(Rule::MetricName, action, Some(name), None, count, || {
                    Message::new(
                        "metric.name_rule",
                        vec![quoted(name), Scalar::Int(index as i64)],
                    )
                });
        }
    }
    reject
}
