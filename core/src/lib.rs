//! The compiled core of otel-contract's engine: one call per request, bytes in, bytes out (or
//! "unchanged"), findings aggregated per rule. The Python face is ``otel_contract.engine._native``.

pub mod attrs;
pub mod budgets;
pub mod canonical;
pub mod edit;
pub mod json;
pub mod metrics;
pub mod points;
pub mod records;
pub mod resource;
pub mod series;
// Generated (tools/gen_wire_schema.py): laid out by the generator, not by rustfmt.
#[rustfmt::skip]
pub mod schema;
pub mod select;
pub mod sink;
pub mod tables;
pub mod validate;
pub mod value;
pub mod wire;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString, PyTuple};

use records::{RecordKind, Run};
use sink::{Action, Counts, IdValue, Sink, RULES};
use tables::{
    AliasSpec, Constraint, ExactInt, Factor, MetricSpec, NameRule, Oracle, ResourceAction,
    ResourceActionKind, Tables,
};
use value::{AttrType, Scalar};

create_exception!(
    _core,
    WireError,
    PyValueError,
    "The bytes are not a request of the expected type."
);
create_exception!(
    _core,
    CoreError,
    PyException,
    "The core failed on a request: a bug, never bad input."
);

/// The compiled contract's tables plus the Python objects the core asks (patterns, the oracle).
#[pyclass(frozen, module = "otel_contract._core")]
pub struct Contract {
    tables: Tables,
    patterns: Vec<PyObject>,
    oracle: PyObject,
}

fn scalar_from(value: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    // bool before int: bool is an int subclass in Python.
    if value.is_instance_of::<PyBool>() {
        Ok(Scalar::Bool(value.extract()?))
    } else if value.is_instance_of::<PyInt>() {
        Ok(Scalar::Int(value.extract()?))
    } else if value.is_instance_of::<PyFloat>() {
        Ok(Scalar::Double(value.extract()?))
    } else if value.is_instance_of::<PyString>() {
        Ok(Scalar::Str(value.extract()?))
    } else {
        Ok(Scalar::Other)
    }
}

fn scalar_into(py: Python<'_>, value: &Scalar) -> PyResult<PyObject> {
    Ok(match value {
        Scalar::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
        Scalar::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Scalar::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Scalar::Double(d) => d.into_pyobject(py)?.into_any().unbind(),
        Scalar::Other => py.None(),
        Scalar::Bytes(b) => PyBytes::new(py, b).into_any().unbind(),
    })
}

fn bad(what: &str, value: &str) -> PyErr {
    PyValueError::new_err(format!("unknown {what} {value:?}"))
}

/// ``dict[key]``, extracted; a missing key is a bug in the Python face, said plainly.
fn item<'py, T: FromPyObject<'py>>(dict: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
    dict.get_item(key)?
        .ok_or_else(|| PyValueError::new_err(format!("the core's tables lack {key:?}")))?
        .extract()
}

fn actions_from(actions: HashMap<String, String>) -> PyResult<tables::Map<Action>> {
    let mut out = tables::Map::default();
    for (slug, name) in actions {
        out.insert(
            slug,
            Action::from_name(&name).ok_or_else(|| bad("action", &name))?,
        );
    }
    Ok(out)
}

fn rule_actions(
    actions: HashMap<String, String>,
) -> PyResult<rustc_hash::FxHashMap<sink::Rule, Action>> {
    let by_slug = actions_from(actions)?;
    Ok(RULES
        .iter()
        .filter_map(|rule| by_slug.get(rule.slug()).map(|a| (*rule, *a)))
        .collect())
}

fn types_from(types: HashMap<String, String>) -> PyResult<tables::KeyMap<AttrType>> {
    types
        .into_iter()
        .map(|(key, name)| {
            Ok((
                key.into_bytes().into(),
                AttrType::from_name(&name).ok_or_else(|| bad("type", &name))?,
            ))
        })
        .collect()
}

fn renames_from(renames: HashMap<String, String>) -> tables::KeyMap<String> {
    renames
        .into_iter()
        .map(|(legacy, canonical)| (legacy.into_bytes().into(), canonical))
        .collect()
}

fn metric_from(spec: &Bound<'_, PyDict>) -> PyResult<MetricSpec> {
    let allowed: Vec<(String, Vec<Bound<'_, PyAny>>)> = item(spec, "allowed")?;
    Ok(MetricSpec {
        name: item(spec, "name")?,
        kind: item(spec, "kind")?,
        kind_name: item(spec, "kind_name")?,
        monotonic: item(spec, "monotonic")?,
        temporality: item(spec, "temporality")?,
        unit: item(spec, "unit")?,
        description: item(spec, "description")?,
        retired: item(spec, "retired")?,
        renames: renames_from(item(spec, "renames")?),
        types: types_from(item(spec, "types")?)?,
        required: item(spec, "required")?,
        forbidden: item(spec, "forbidden")?,
        allowed: allowed
            .into_iter()
            .map(|(key, values)| {
                Ok((
                    key,
                    values
                        .iter()
                        .map(scalar_from)
                        .collect::<PyResult<Vec<_>>>()?,
                ))
            })
            .collect::<PyResult<_>>()?,
        patterns: item(spec, "patterns")?,
        actions: rule_actions(item(spec, "actions")?)?,
        checks_attributes: item(spec, "checks_attributes")?,
        roles: item::<HashMap<String, String>>(spec, "roles")?
            .into_iter()
            .collect(),
        max_series: item(spec, "max_series")?,
    })
}

type ActionRow<'py> = (
    String,
    String,
    Option<String>,
    bool,
    Option<Bound<'py, PyAny>>,
);
type ConstraintRow<'py> = (String, Option<Vec<Bound<'py, PyAny>>>, Option<usize>);

#[pymethods]
impl Contract {
    /// Built once per contract version by ``otel_contract.engine._native``, which documents each
    /// table; ``oracle`` answers what only Python can (``coerce``, ``unit_factor``, ``exact_int``),
    /// ``patterns`` are the contract's RE2 patterns, by the indexes the tables use.
    #[new]
    fn new(
        tables: &Bound<'_, PyDict>,
        patterns: Vec<PyObject>,
        oracle: PyObject,
    ) -> PyResult<Self> {
        let mut out = Tables {
            actions: rule_actions(item(tables, "actions")?)?,
            ..Tables::default()
        };
        out.renames = renames_from(item(tables, "renames")?);
        out.types = types_from(item(tables, "types")?)?;
        for (kind, key, from_attribute, from_env, value) in
            item::<Vec<ActionRow<'_>>>(tables, "resource_actions")?
        {
            out.resource_actions.push(ResourceAction {
                kind: ResourceActionKind::from_name(&kind)
                    .ok_or_else(|| bad("resource action", &kind))?,
                key,
                from_attribute,
                from_env,
                value: value.map(|v| scalar_from(&v)).transpose()?,
            });
        }
        out.resource_required = item(tables, "resource_required")?;
        for (key, allowed, pattern) in
            item::<Vec<ConstraintRow<'_>>>(tables, "resource_constraints")?
        {
            let allowed = allowed
                .map(|values| values.iter().map(scalar_from).collect::<PyResult<Vec<_>>>())
                .transpose()?;
            out.resource_constraints.push(Constraint {
                key,
                allowed,
                pattern,
            });
        }
        for spec in item::<Vec<Bound<'_, PyDict>>>(tables, "metrics")? {
            let spec = metric_from(&spec)?;
            out.metric_index
                .insert(spec.name.clone(), out.metrics.len());
            out.metrics.push(spec);
        }
        for (alias, metric, unit) in
            item::<Vec<(String, String, Option<String>)>>(tables, "aliases")?
        {
            let metric = *out
                .metric_index
                .get(&metric)
                .ok_or_else(|| bad("alias target", &metric))?;
            out.aliases.insert(alias, AliasSpec { metric, unit });
        }
        out.shim_records = item::<Vec<String>>(tables, "shim_records")?
            .into_iter()
            .map(|n| (n, ()))
            .collect();
        out.shim_scope = item(tables, "shim_scope")?;
        out.metric_pattern = item(tables, "metric_pattern")?;
        out.name_rules = item::<Vec<(usize, usize)>>(tables, "name_rules")?
            .into_iter()
            .map(|(matcher, pattern)| NameRule { matcher, pattern })
            .collect();
        let tokens: Vec<Vec<u8>> = item(tables, "legacy_tokens")?;
        out.legacy_tokens = tables::LegacyTokens::new(&tokens)
            .map_err(|err| PyValueError::new_err(format!("legacy tokens: {err}")))?;
        Ok(Contract {
            tables: out,
            patterns,
            oracle,
        })
    }
}

/// Series budgets kept across requests (the sidecar's ``CardinalityState`` holds one).
#[pyclass(frozen, module = "otel_contract._core")]
pub struct Budgets {
    inner: budgets::Budgets,
}

#[pymethods]
impl Budgets {
    #[new]
    fn new(max_tracked_series: u64) -> Self {
        Budgets {
            inner: budgets::Budgets::new(max_tracked_series),
        }
    }

    fn admit(&self, metric: &str, series: u64, budget: u64) -> bool {
        self.inner.admit(metric, series, budget)
    }

    fn series_count(&self, metric: &str) -> u64 {
        self.inner.series_count(metric)
    }

    #[getter]
    fn tracked(&self) -> u64 {
        self.inner.tracked()
    }

    #[pyo3(signature = (metric=None))]
    fn forget(&self, metric: Option<&str>) {
        self.inner.forget(metric);
    }
}

/// The Python side's answers, asked with the GIL taken back: the walk itself runs without it.
struct PyOracle<'a> {
    contract: &'a Contract,
    /// This request's pattern answers by pattern and text. Attribute values repeat from point to
    /// point (that is what keeps series bounded), and taking the GIL to ask RE2 costs about a
    /// microsecond and a half each time: asked once per distinct value instead, a 700-point request
    /// with two patterned attributes costs 0.3 ms instead of 5.5. Bounded, as is everything a
    /// sender controls: long texts are not kept, and the memo stops growing at its size.
    matched: Mutex<PatternMemo>,
}

#[derive(Default)]
struct PatternMemo {
    by_pattern: Vec<HashMap<Box<str>, bool>>,
    entries: usize,
}

/// The pattern memo's bounds per request: texts longer than this are asked every time...
const MEMO_MAX_TEXT: usize = 256;
/// ...and no more than this many answers are kept.
const MEMO_MAX_ENTRIES: usize = 4096;

impl PyOracle<'_> {
    /// ``oracle.method(*args)`` converted by ``convert``; None for None or for an exception (the oracle
    /// is the project's own Python: an exception there is a bug, answered as "cannot").
    fn ask<R>(
        &self,
        method: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
        convert: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> Option<R>,
    ) -> Option<R> {
        Python::with_gil(|py| {
            let args = args(py).ok()?;
            let result = self
                .contract
                .oracle
                .bind(py)
                .call_method1(method, args)
                .ok()?;
            if result.is_none() {
                None
            } else {
                convert(&result)
            }
        })
    }
}

impl Oracle for PyOracle<'_> {
    fn matches(&self, pattern: usize, text: &str) -> bool {
        let Some(compiled) = self.contract.patterns.get(pattern) else {
            return false;
        };
        let memo = text.len() <= MEMO_MAX_TEXT;
        if memo {
            let known = self
                .matched
                .lock()
                .ok()
                .and_then(|m| m.by_pattern.get(pattern)?.get(text).copied());
            if let Some(answer) = known {
                return answer;
            }
        }
        let answer = Python::with_gil(|py| {
            compiled
                .bind(py)
                .call_method1("matches", (text,))
                .and_then(|r| r.is_truthy())
                .unwrap_or(false)
        });
        if memo {
            if let Ok(mut memo) = self.matched.lock() {
                if memo.entries < MEMO_MAX_ENTRIES {
                    if memo.by_pattern.len() <= pattern {
                        memo.by_pattern.resize_with(pattern + 1, HashMap::new);
                    }
                    memo.by_pattern[pattern].insert(text.into(), answer);
                    memo.entries += 1;
                }
            }
        }
        answer
    }

    fn coerce(&self, value: &Scalar, target: AttrType) -> Option<Scalar> {
        self.ask(
            "coerce",
            |py| {
                PyTuple::new(
                    py,
                    [
                        scalar_into(py, value)?,
                        target.name().into_pyobject(py)?.into_any().unbind(),
                    ],
                )
            },
            |result| scalar_from(result).ok(),
        )
    }

    fn unit_factor(&self, arrived: &str, target: &str) -> Option<Factor> {
        type Answer = (f64, f64, Option<(u64, u64)>, bool, bool, bool, Option<i64>);
        let answer: Answer = self.ask(
            "unit_factor",
            |py| PyTuple::new(py, [arrived, target]),
            |result| result.extract().ok(),
        )?;
        let (
            numerator,
            denominator,
            exact,
            numerator_is_one,
            denominator_is_one,
            huge,
            power_of_two,
        ) = answer;
        Some(Factor {
            numerator,
            denominator,
            exact,
            numerator_is_one,
            denominator_is_one,
            huge,
            power_of_two,
        })
    }

    fn exact_int(&self, value: i64, arrived: &str, target: &str) -> ExactInt {
        let answer: Option<Option<i64>> = self.ask(
            "exact_int",
            |py| {
                PyTuple::new(
                    py,
                    [
                        value.into_pyobject(py)?.into_any().unbind(),
                        arrived.into_pyobject(py)?.into_any().unbind(),
                        target.into_pyobject(py)?.into_any().unbind(),
                    ],
                )
            },
            |result| Some(result.extract::<i64>().ok()),
        );
        match answer {
            None => ExactInt::Fractional,
            Some(Some(q)) => ExactInt::Integral(q),
            Some(None) => ExactInt::BeyondInt64,
        }
    }
}

/// (slug, metric, attribute, count, action, template, prefix, args)
type FindingRow = (
    &'static str,
    Option<String>,
    Option<String>,
    u64,
    &'static str,
    &'static str,
    Option<String>,
    Py<PyTuple>,
);

/// (new bytes or None when unchanged, findings, items, rejected, merged).
type Answer<'py> = (Option<Bound<'py, PyBytes>>, Vec<FindingRow>, u64, u64, u64);

struct Outcome {
    rewritten: Option<Vec<u8>>,
    entries: Vec<sink::Entry>,
    counts: Counts,
}

fn request_schema(signal: u8) -> usize {
    match signal {
        0 => schema::METRICS_REQUEST,
        1 => schema::TRACES_REQUEST,
        _ => schema::LOGS_REQUEST,
    }
}

fn run_request(
    contract: &Contract,
    oracle: &PyOracle<'_>,
    signal: u8,
    payload: &[u8],
    env: &[Option<String>],
    audit: bool,
    budgets: Option<&budgets::Budgets>,
) -> Result<Outcome, wire::DecodeError> {
    let tables = &contract.tables;
    let root = request_schema(signal);
    // Whether renames apply is read off the bytes that arrived, as the Python engine reads it.
    let renames_possible = tables.renames_possible(payload);
    // A request protobuf would merge is walked as protobuf reads it; when nothing in it changes, the
    // bytes that arrived are forwarded (they read the same).
    let canonical;
    let payload = if validate::validate(payload, root)?.canonical {
        payload
    } else {
        canonical = canonical::canonicalize(payload, root)?;
        canonical.as_slice()
    };
    if signal == 0 {
        let mut run = metrics::Run {
            tables,
            env,
            oracle,
            budgets,
            sink: Sink::new(audit),
            counts: Counts::default(),
            renames_possible,
            factors: HashMap::new(),
        };
        let rewritten = metrics::process(payload, &mut run)?;
        return Ok(Outcome {
            rewritten,
            entries: run.sink.into_entries(),
            counts: run.counts,
        });
    }
    let kind = if signal == 1 {
        RecordKind::Span
    } else {
        RecordKind::LogRecord
    };
    let mut run = Run {
        tables,
        env,
        oracle,
        sink: Sink::new(audit),
        counts: Counts::default(),
        renames_possible,
    };
    let rewritten = records::process(payload, kind, &mut run)?;
    Ok(Outcome {
        rewritten,
        entries: run.sink.into_entries(),
        counts: run.counts,
    })
}

fn finding_row(py: Python<'_>, entry: sink::Entry) -> PyResult<FindingRow> {
    let mut args: Vec<PyObject> = entry
        .message
        .args
        .iter()
        .map(|a| scalar_into(py, a))
        .collect::<PyResult<_>>()?;
    if let Some(identity) = &entry.message.identity {
        let mut pairs = Vec::with_capacity(identity.len());
        for (key, value) in identity {
            let value = match value {
                IdValue::Scalar(s) => scalar_into(py, s)?,
                IdValue::Raw(b) => PyBytes::new(py, b).into_any().unbind(),
            };
            pairs.push(
                PyTuple::new(py, [key.into_pyobject(py)?.into_any().unbind(), value])?
                    .into_any()
                    .unbind(),
            );
        }
        args.push(PyTuple::new(py, pairs)?.into_any().unbind());
    }
    Ok((
        entry.rule.slug(),
        entry.metric,
        entry.attribute,
        entry.count,
        entry.action.name(),
        entry.message.template,
        entry.message.prefix,
        PyTuple::new(py, args)?.unbind(),
    ))
}

/// ``work``'s result, or CoreError when it panics: a panic is a bug in the core, which the pipeline's
/// engine-error policy handles (reject and count, or forward), instead of unwinding into the interpreter.
pub(crate) fn guarded<T>(work: impl FnOnce() -> T) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        CoreError::new_err(format!("the compiled core failed: {why}"))
    })
}

/// Panics inside the boundary every request crosses: the test that a panic becomes CoreError and the
/// process goes on.
#[pyfunction]
fn _panic_at_the_boundary() -> PyResult<()> {
    guarded(|| panic!("a deliberate panic"))
}

/// Normalize and validate one request of ``signal`` (0 metrics, 1 traces, 2 logs).
///
/// Returns (new bytes or None when unchanged, findings, items, rejected, merged). Findings: (slug, metric, attribute, count, action, template, prefix, args).
/// Raises WireError for bytes that are not such a request, CoreError for a bug in the core.
#[pyfunction]
#[pyo3(signature = (contract, signal, payload, env, audit, budgets=None))]
fn process<'py>(
    py: Python<'py>,
    contract: &Contract,
    signal: u8,
    payload: &[u8],
    env: Vec<Option<String>>,
    audit: bool,
    budgets: Option<&Budgets>,
) -> PyResult<Answer<'py>> {
    if signal > 2 {
        return Err(PyValueError::new_err(format!("no signal {signal}")));
    }
    let oracle = PyOracle {
        contract,
        matched: Mutex::default(),
    };
    let budgets = budgets.map(|b| &b.inner);
    // The walk holds no Python object: other threads (the sidecar's receivers and exporters) run
    // meanwhile; the oracle takes the GIL back for its rare questions.
    let outcome = py
        .allow_threads(|| {
            guarded(|| run_request(contract, &oracle, signal, payload, &env, audit, budgets))
        })?
        .map_err(|err| WireError::new_err(err.0))?;
    let findings = outcome
        .entries
        .into_iter()
        .map(|e| finding_row(py, e))
        .collect::<PyResult<_>>()?;
    Ok((
        outcome.rewritten.map(|b| PyBytes::new(py, &b)),
        findings,
        outcome.counts.items,
        outcome.counts.rejected,
        outcome.counts.merged,
    ))
}

/// Raise WireError unless ``payload`` is a request of ``signal`` that the Python parser accepts:
/// what a capture reader needs to know, at a fraction of the cost of the parse.
#[pyfunction]
fn check(py: Python<'_>, signal: u8, payload: &[u8]) -> PyResult<()> {
    if signal > 2 {
        return Err(PyValueError::new_err(format!("no signal {signal}")));
    }
    py.allow_threads(|| guarded(|| validate::validate(payload, request_schema(signal))))?
        .map(|_| ())
        .map_err(|err| WireError::new_err(err.0))
}

/// OTLP/JSON documents into protobuf requests (``json::OtlpJson``), over the descriptors Python hands
/// over once.
#[pyclass(frozen, module = "otel_contract._core")]
pub struct OtlpJson {
    inner: json::OtlpJson,
}

#[pymethods]
impl OtlpJson {
    #[new]
    fn new(descriptor_set: &[u8], metrics: &str, traces: &str, logs: &str) -> PyResult<Self> {
        json::OtlpJson::new(descriptor_set, [metrics, traces, logs])
            .map(|inner| OtlpJson { inner })
            .map_err(PyValueError::new_err)
    }

    /// (signal, the request's protobuf bytes) of one OTLP/JSON document; WireError says why not.
    #[pyo3(signature = (data, signal=None, empty=false))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        signal: Option<u8>,
        empty: bool,
    ) -> PyResult<(u8, Bound<'py, PyBytes>)> {
        if signal.is_some_and(|s| s > 2) {
            return Err(PyValueError::new_err(format!("no signal {signal:?}")));
        }
        let decoded = py.allow_threads(|| {
            guarded(|| self.inner.decode(data, signal.map(usize::from), empty))
        })?;
        match decoded {
            Ok((found, payload)) => Ok((found as u8, PyBytes::new(py, &payload))),
            Err(err) => Err(WireError::new_err(err.0)),
        }
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Contract>()?;
    m.add_class::<Budgets>()?;
    m.add_class::<select::MetricSelection>()?;
    m.add_class::<OtlpJson>()?;
    m.add_function(wrap_pyfunction!(process, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_at_the_boundary, m)?)?;
    m.add("WireError", m.py().get_type::<WireError>())?;
    m.add("CoreError", m.py().get_type::<CoreError>())?;
    // The slugs the core can report, for the test that holds them to the rule catalog (rules.py).
    m.add(
        "RULES",
        RULES.iter().map(|rule| rule.slug()).collect::<Vec<_>>(),
    )?;
    Ok(())
}
