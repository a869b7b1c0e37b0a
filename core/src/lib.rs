//! The compiled core of otel-contract's engine: one call per request, bytes in, bytes out (or
//! "unchanged"), findings aggregated per rule. The Python face is ``otel_contract.engine._native``.

pub mod attrs;
pub mod edit;
pub mod records;
pub mod resource;
// Generated (tools/gen_wire_schema.py): laid out by the generator, not by rustfmt.
#[rustfmt::skip]
pub mod schema;
pub mod sink;
pub mod tables;
pub mod validate;
pub mod value;
pub mod wire;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString, PyTuple};

use records::{Counts, RecordKind, Run};
use sink::{Action, Sink, RULES};
use tables::{Constraint, Oracle, ResourceAction, ResourceActionKind, Tables};
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

/// The compiled contract's tables plus the Python objects the core asks (patterns, coercions).
#[pyclass(frozen, module = "otel_contract._core")]
pub struct Contract {
    tables: Tables,
    patterns: Vec<PyObject>,
    coerce: PyObject,
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
    })
}

fn bad(what: &str, value: &str) -> PyErr {
    PyValueError::new_err(format!("unknown {what} {value:?}"))
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
    /// Built once per contract version by ``otel_contract.engine._native``; see there for each table.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        actions: HashMap<String, String>,
        renames: HashMap<String, String>,
        types: HashMap<String, String>,
        resource_actions: Vec<ActionRow<'_>>,
        resource_required: Vec<String>,
        resource_constraints: Vec<ConstraintRow<'_>>,
        patterns: Vec<PyObject>,
        coerce: PyObject,
    ) -> PyResult<Self> {
        let mut tables = Tables::default();
        for rule in RULES {
            if let Some(name) = actions.get(rule.slug()) {
                tables.actions.insert(
                    rule,
                    Action::from_name(name).ok_or_else(|| bad("action", name))?,
                );
            }
        }
        tables.renames = renames.into_iter().collect();
        for (key, name) in types {
            tables.types.insert(
                key,
                AttrType::from_name(&name).ok_or_else(|| bad("type", &name))?,
            );
        }
        for (kind, key, from_attribute, from_env, value) in resource_actions {
            tables.resource_actions.push(ResourceAction {
                kind: ResourceActionKind::from_name(&kind)
                    .ok_or_else(|| bad("resource action", &kind))?,
                key,
                from_attribute,
                from_env,
                value: value.map(|v| scalar_from(&v)).transpose()?,
            });
        }
        tables.resource_required = resource_required;
        for (key, allowed, pattern) in resource_constraints {
            let allowed = allowed
                .map(|values| values.iter().map(scalar_from).collect::<PyResult<Vec<_>>>())
                .transpose()?;
            tables.resource_constraints.push(Constraint {
                key,
                allowed,
                pattern,
            });
        }
        Ok(Contract {
            tables,
            patterns,
            coerce,
        })
    }
}

struct PyOracle<'a, 'py> {
    py: Python<'py>,
    contract: &'a Contract,
}

impl Oracle for PyOracle<'_, '_> {
    fn matches(&self, pattern: usize, text: &str) -> bool {
        let Some(pattern) = self.contract.patterns.get(pattern) else {
            return false;
        };
        pattern
            .bind(self.py)
            .call_method1("matches", (text,))
            .and_then(|result| result.is_truthy())
            .unwrap_or(false)
    }

    fn coerce(&self, value: &Scalar, target: AttrType) -> Option<Scalar> {
        let current = scalar_into(self.py, value).ok()?;
        let result = self
            .contract
            .coerce
            .bind(self.py)
            .call1((current, target.name()))
            .ok()?;
        if result.is_none() {
            None
        } else {
            scalar_from(&result).ok()
        }
    }
}

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

/// (new bytes or None when unchanged, findings, items, rejected).
type RecordsOutcome<'py> = (Option<Bound<'py, PyBytes>>, Vec<FindingRow>, u64, u64);

/// Normalize one traces (``signal`` 1) or logs (2) request.
///
/// Returns None when the request is not canonical (protobuf would merge repeated singular messages;
/// the caller takes the Python path), else (new bytes or None when unchanged, findings, items,
/// rejected). Findings: (slug, metric, attribute, count, action, template, prefix, args).
#[pyfunction]
#[pyo3(signature = (contract, signal, payload, env, audit))]
fn process_records<'py>(
    py: Python<'py>,
    contract: &Contract,
    signal: u8,
    payload: &[u8],
    env: Vec<Option<String>>,
    audit: bool,
) -> PyResult<Option<RecordsOutcome<'py>>> {
    let (kind, root) = match signal {
        1 => (RecordKind::Span, schema::TRACES_REQUEST),
        2 => (RecordKind::LogRecord, schema::LOGS_REQUEST),
        _ => return Err(PyValueError::new_err(format!("no records signal {signal}"))),
    };
    let oracle = PyOracle { py, contract };
    // A panic is a bug in the core: it becomes CoreError, which the pipeline's engine-error policy
    // handles, instead of unwinding into the interpreter.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let shape = validate::validate(payload, root)?;
        if !shape.canonical {
            return Ok(None);
        }
        let mut run = Run {
            tables: &contract.tables,
            env: &env,
            oracle: &oracle,
            sink: Sink::new(audit),
            counts: Counts::default(),
        };
        let rewritten = records::process(payload, kind, &mut run)?;
        Ok(Some((rewritten, run.sink.into_entries(), run.counts)))
    }))
    .map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        CoreError::new_err(why)
    })?
    .map_err(|err: wire::DecodeError| WireError::new_err(err.0))?;
    let Some((rewritten, entries, counts)) = outcome else {
        return Ok(None);
    };
    let mut findings = Vec::with_capacity(entries.len());
    for entry in entries {
        let args: Vec<PyObject> = entry
            .message
            .args
            .iter()
            .map(|a| scalar_into(py, a))
            .collect::<PyResult<_>>()?;
        findings.push((
            entry.rule.slug(),
            entry.metric,
            entry.attribute,
            entry.count,
            entry.action.name(),
            entry.message.template,
            entry.message.prefix,
            PyTuple::new(py, args)?.unbind(),
        ));
    }
    Ok(Some((
        rewritten.map(|b| PyBytes::new(py, &b)),
        findings,
        counts.items,
        counts.rejected,
    )))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Contract>()?;
    m.add_function(wrap_pyfunction!(process_records, m)?)?;
    m.add("WireError", m.py().get_type::<WireError>())?;
    m.add("CoreError", m.py().get_type::<CoreError>())?;
    Ok(())
}
