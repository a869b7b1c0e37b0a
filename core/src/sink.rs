//! Findings of one request, aggregated as the Python side reports them: one entry per (rule, metric,
//! attribute), counting occurrences and keeping the first occurrence's message, in first-seen order.

use std::collections::HashMap;

use crate::value::Scalar;

/// The telemetry rules the core reports, named by their catalog slugs (``otel_contract.rules``).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    MissingResourceAttribute,
    ResourceAttributeValue,
    IdentityConflict,
    AttributeValue,
    UnknownMetric,
    MetricName,
    DeprecatedMetric,
    TypeMismatch,
    UnitMismatch,
    MissingAttribute,
    ForbiddenAttribute,
    Cardinality,
    InvalidDataPoint,
}

pub const RULES: [Rule; 13] = [
    Rule::MissingResourceAttribute,
    Rule::ResourceAttributeValue,
    Rule::IdentityConflict,
    Rule::AttributeValue,
    Rule::UnknownMetric,
    Rule::MetricName,
    Rule::DeprecatedMetric,
    Rule::TypeMismatch,
    Rule::UnitMismatch,
    Rule::MissingAttribute,
    Rule::ForbiddenAttribute,
    Rule::Cardinality,
    Rule::InvalidDataPoint,
];

impl Rule {
    pub fn slug(self) -> &'static str {
        match self {
            Rule::MissingResourceAttribute => "missing-resource-attribute",
            Rule::ResourceAttributeValue => "resource-attribute-value",
            Rule::IdentityConflict => "identity-conflict",
            Rule::AttributeValue => "attribute-value",
            Rule::UnknownMetric => "unknown-metric",
            Rule::MetricName => "metric-name",
            Rule::DeprecatedMetric => "deprecated-metric",
            Rule::TypeMismatch => "type-mismatch",
            Rule::UnitMismatch => "unit-mismatch",
            Rule::MissingAttribute => "missing-attribute",
            Rule::ForbiddenAttribute => "forbidden-attribute",
            Rule::Cardinality => "cardinality",
            Rule::InvalidDataPoint => "invalid-data-point",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reject,
    Flag,
    Ignore,
}

impl Action {
    pub fn from_name(name: &str) -> Option<Action> {
        match name {
            "reject" => Some(Action::Reject),
            "flag" => Some(Action::Flag),
            "ignore" => Some(Action::Ignore),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::Flag => "flag",
            Action::Ignore => "ignore",
        }
    }
}

/// A message as a template name and its arguments: the Python side formats it (``repr`` of values
/// included), once per finding, not once per occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub template: &'static str,
    pub prefix: Option<String>,
    pub args: Vec<Scalar>,
    /// A series identity (sorted attribute pairs), for the identity-conflict message.
    pub identity: Option<Vec<(String, IdValue)>>,
}

impl Message {
    pub fn new(template: &'static str, args: Vec<Scalar>) -> Message {
        Message {
            template,
            prefix: None,
            args,
            identity: None,
        }
    }
}

/// An attribute's value in a series identity: a scalar, or a non-scalar value's serialized bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum IdValue {
    Scalar(Scalar),
    Raw(Vec<u8>),
}

#[derive(Debug)]
pub struct Entry {
    pub rule: Rule,
    pub metric: Option<String>,
    pub attribute: Option<String>,
    pub message: Message,
    pub count: u64,
    pub action: Action,
}

/// What one request's walk counted: items (data points, spans or log records) received, removed by a
/// reject action, removed as duplicates by an identity conflict (metrics only).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub items: u64,
    pub rejected: u64,
    pub merged: u64,
}

type Key = (Rule, Option<String>, Option<String>);

pub struct Sink {
    audit: bool,
    entries: Vec<Entry>,
    index: HashMap<Key, usize>,
    /// Findings recorded (not ignored): tells whether a check found anything.
    pub reported: u64,
}

impl Sink {
    pub fn new(audit: bool) -> Sink {
        Sink {
            audit,
            entries: Vec::new(),
            index: HashMap::new(),
            reported: 0,
        }
    }

    /// Record a finding; true when the data it is about must be rejected. ``message`` is built only
    /// for the first occurrence of its key.
    pub fn report(
        &mut self,
        rule: Rule,
        action: Action,
        metric: Option<&str>,
        attribute: Option<&str>,
        count: u64,
        message: impl FnOnce() -> Message,
    ) -> bool {
        if action == Action::Ignore {
            return false;
        }
        self.reported += 1;
        let rejects = action == Action::Reject && !self.audit;
        let key = (
            rule,
            metric.map(str::to_owned),
            attribute.map(str::to_owned),
        );
        if let Some(&at) = self.index.get(&key) {
            self.entries[at].count += count;
        } else {
            self.index.insert(key.clone(), self.entries.len());
            self.entries.push(Entry {
                rule,
                metric: key.1,
                attribute: key.2,
                message: message(),
                count,
                action: if rejects {
                    Action::Reject
                } else {
                    Action::Flag
                },
            });
        }
        rejects
    }

    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }
}
