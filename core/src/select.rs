//! The metrics a request's derived series read (compat shims, smoothed signals), cut out of it.
//!
//! Those stay in Python, which reads a request only as parsed protobuf objects: handing them the
//! whole request would parse every point of it for the few metrics they read. This copies out just
//! the metrics with one of the wanted names, each under its own resource and scope (every other field
//! of those copied as it came), so that what Python parses is what it reads; a request with none of
//! them costs one walk that skips every metric by its length.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rustc_hash::FxHashSet;

use crate::edit::{edit_each, Edit};
use crate::wire::{each_message, fields, DecodeError, Value};

// ExportMetricsServiceRequest.resource_metrics, ResourceMetrics.scope_metrics, ScopeMetrics.metrics,
// Metric.name.
const RESOURCE_METRICS: u32 = 1;
const SCOPE_METRICS: u32 = 2;
const METRICS: u32 = 2;
const NAME: u32 = 1;

/// What a message keeps of its wanted parts.
#[derive(Debug, PartialEq)]
enum Kept {
    Nothing,
    All,
    Part(Vec<u8>),
}

/// ``buf`` with only the occurrences of field ``number`` that ``keep`` keeps something of; Nothing
/// when it keeps none of them.
fn keep_each<'a>(
    buf: &'a [u8],
    number: u32,
    mut keep: impl FnMut(&'a [u8]) -> Result<Kept, DecodeError>,
) -> Result<Kept, DecodeError> {
    let mut any = false;
    let rebuilt = edit_each(buf, number, |bytes| {
        let edit = match keep(bytes)? {
            Kept::Nothing => Edit::Drop,
            Kept::All => Edit::Keep,
            Kept::Part(bytes) => Edit::Replace(bytes),
        };
        any |= !matches!(edit, Edit::Drop);
        Ok(edit)
    })?;
    Ok(match (any, rebuilt) {
        (false, _) => Kept::Nothing,
        (true, None) => Kept::All,
        (true, Some(part)) => Kept::Part(part),
    })
}

/// The metric's name as protobuf reads it: the last occurrence wins.
fn metric_name(metric: &[u8]) -> Result<&[u8], DecodeError> {
    let mut name: &[u8] = b"";
    for field in fields(metric) {
        let field = field?;
        if let (NAME, Value::Bytes(bytes)) = (field.number, field.value) {
            name = bytes;
        }
    }
    Ok(name)
}

fn select(request: &[u8], names: &FxHashSet<Vec<u8>>) -> Result<Kept, DecodeError> {
    keep_each(request, RESOURCE_METRICS, |resource| {
        keep_each(resource, SCOPE_METRICS, |scope| {
            keep_each(scope, METRICS, |metric| {
                Ok(if names.contains(metric_name(metric)?) {
                    Kept::All
                } else {
                    Kept::Nothing
                })
            })
        })
    })
}

/// Which of ``names`` the request's metrics have, added to ``found``; a metric's body is skipped
/// by its length.
fn present<'a>(
    request: &'a [u8],
    names: &FxHashSet<Vec<u8>>,
    found: &mut FxHashSet<&'a [u8]>,
) -> Result<(), DecodeError> {
    each_message(request, RESOURCE_METRICS, |resource| {
        each_message(resource, SCOPE_METRICS, |scope| {
            each_message(scope, METRICS, |metric| {
                let name = metric_name(metric)?;
                if names.contains(name) {
                    found.insert(name);
                }
                Ok(())
            })
        })
    })
}

/// A set of metric names and the cut of a request down to them.
#[pyclass(module = "otel_contract._core", frozen)]
pub struct MetricSelection {
    names: FxHashSet<Vec<u8>>,
}

#[pymethods]
impl MetricSelection {
    #[new]
    fn new(names: Vec<String>) -> Self {
        MetricSelection {
            names: names.into_iter().map(String::into_bytes).collect(),
        }
    }

    /// The serialized request holding only the metrics of ``payload`` (a serialized
    /// ExportMetricsServiceRequest) with a selected name, with their resources and scopes; None when
    /// it has none. Bytes the walk cannot read come back whole, for the parser to judge.
    fn select<'py>(
        &self,
        py: Python<'py>,
        payload: &Bound<'py, PyBytes>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let bytes = payload.as_bytes();
        let kept = py.allow_threads(|| crate::guarded(|| select(bytes, &self.names)))?;
        Ok(match kept {
            Ok(Kept::Nothing) => None,
            Ok(Kept::Part(cut)) => Some(PyBytes::new(py, &cut)),
            Ok(Kept::All) | Err(_) => Some(payload.clone()),
        })
    }

    /// The selected names that metrics of ``payload`` have, sorted; as far as the bytes can be read.
    fn present(&self, py: Python<'_>, payload: &[u8]) -> PyResult<Vec<String>> {
        let found = py.allow_threads(|| {
            crate::guarded(|| {
                let mut found = FxHashSet::default();
                // The payload is the core's own output; were it unreadable further on, the names
                // before that point are still present.
                let _readable = present(payload, &self.names, &mut found);
                let mut names: Vec<String> = found
                    .into_iter()
                    .map(|name| String::from_utf8_lossy(name).into_owned())
                    .collect();
                names.sort_unstable();
                names
            })
        })?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{put_bytes, put_varint};

    fn metric(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, NAME, name.as_bytes());
        put_bytes(&mut out, 5, b"\x0a\x00"); // gauge { data_points {} }
        out
    }

    fn scope(scope_name: &str, metrics: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, &{
            let mut s = Vec::new();
            put_bytes(&mut s, 1, scope_name.as_bytes());
            s
        });
        for name in metrics {
            put_bytes(&mut out, METRICS, &metric(name));
        }
        put_bytes(&mut out, 3, b"https://schema");
        out
    }

    fn resource(id: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, &{
            let mut r = Vec::new();
            put_varint(&mut r, 2, id); // dropped_attributes_count: tells resources apart
            r
        });
        for scope in scopes {
            put_bytes(&mut out, SCOPE_METRICS, scope);
        }
        out
    }

    fn request(resources: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for resource in resources {
            put_bytes(&mut out, RESOURCE_METRICS, resource);
        }
        out
    }

    fn names(names: &[&str]) -> FxHashSet<Vec<u8>> {
        names.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    #[test]
    fn keeps_the_wanted_metrics_with_their_resource_and_scope() {
        let whole = request(&[
            resource(1, &[scope("a", &["x", "cpu"]), scope("b", &["y"])]),
            resource(2, &[scope("c", &["z"])]),
            resource(3, &[scope("d", &["cpu", "disk"])]),
        ]);
        let want = request(&[
            resource(1, &[scope("a", &["cpu"])]),
            resource(3, &[scope("d", &["cpu", "disk"])]),
        ]);
        assert_eq!(
            select(&whole, &names(&["cpu", "disk"])).unwrap(),
            Kept::Part(want)
        );
    }

    #[test]
    fn present_names_the_wanted_metrics_the_request_has() {
        let whole = request(&[
            resource(1, &[scope("a", &["x", "cpu"]), scope("b", &["cpu"])]),
            resource(2, &[scope("c", &["z"])]),
        ]);
        let mut found = FxHashSet::default();
        present(&whole, &names(&["cpu", "disk", "z"]), &mut found).unwrap();
        let mut found: Vec<&[u8]> = found.into_iter().collect();
        found.sort_unstable();
        assert_eq!(found, vec![b"cpu".as_slice(), b"z".as_slice()]);
    }

    #[test]
    fn nothing_wanted_is_nothing_and_all_wanted_is_all() {
        let whole = request(&[resource(1, &[scope("a", &["x", "y"])])]);
        assert_eq!(select(&whole, &names(&["cpu"])).unwrap(), Kept::Nothing);
        assert_eq!(select(b"", &names(&["cpu"])).unwrap(), Kept::Nothing);
        assert_eq!(select(&whole, &names(&["x", "y"])).unwrap(), Kept::All);
    }

    #[test]
    fn the_last_name_of_a_metric_is_its_name() {
        let mut twice = metric("cpu");
        put_bytes(&mut twice, NAME, b"x");
        let mut scope = Vec::new();
        put_bytes(&mut scope, METRICS, &twice);
        let whole = request(&[resource(1, &[scope])]);
        assert_eq!(select(&whole, &names(&["cpu"])).unwrap(), Kept::Nothing);
        assert_eq!(select(&whole, &names(&["x"])).unwrap(), Kept::All);
    }

    #[test]
    fn unreadable_bytes_are_an_error_not_a_panic() {
        let whole = request(&[resource(1, &[scope("a", &["cpu"])])]);
        for cut in 1..whole.len() {
            let _ = select(&whole[..cut], &names(&["cpu"]));
        }
        assert!(select(&whole[..whole.len() - 1], &names(&["cpu"])).is_err());
    }
}
