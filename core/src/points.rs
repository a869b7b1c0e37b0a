//! Data points: what each metric type's points must satisfy, and how their values convert between
//! units (the Python engine's ``_data_points.py``).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::edit::{put_edited, rebuild, Edit, FieldEdits};
use crate::metrics::Conversion;
use crate::schema::{
    exponential_histogram_data_point as exp, exponential_histogram_data_point_buckets as buckets,
    histogram_data_point as hist, metric, number_data_point as number,
    summary_data_point as summary, summary_data_point_value_at_quantile as quantile,
};
use crate::sink::Message;
use crate::tables::{ExactInt, MetricSpec, Oracle};
use crate::value::Scalar;
use crate::wire::{
    fields, put_bytes, put_fixed64, put_varint, zigzag_decode, zigzag_encode, DecodeError, Value,
};

/// More explicit bounds than any real histogram has: a point with more is invalid.
const MAX_EXPLICIT_BOUNDS: usize = 4096;
/// The OTLP data model's range of exponential histogram scales.
const MIN_SCALE: i64 = -10;
const MAX_SCALE: i64 = 20;
const NO_RECORDED_VALUE: u64 = 1;

fn attributes_field(kind: u32) -> u32 {
    match kind {
        metric::HISTOGRAM => hist::ATTRIBUTES,
        metric::EXPONENTIAL_HISTOGRAM => exp::ATTRIBUTES,
        metric::SUMMARY => summary::ATTRIBUTES,
        _ => number::ATTRIBUTES,
    }
}

/// The KeyValue bytes of a point's attributes, in wire order.
pub fn attribute_list(point: &[u8], kind: u32) -> Result<Vec<&[u8]>, DecodeError> {
    let number = attributes_field(kind);
    let mut list = Vec::new();
    for field in fields(point) {
        let field = field?;
        if let (n, Value::Bytes(b)) = (field.number, field.value) {
            if n == number {
                list.push(b);
            }
        }
    }
    Ok(list)
}

pub fn rebuild_attributes(point: &[u8], kind: u32, edits: &[Edit]) -> Result<Vec<u8>, DecodeError> {
    rebuild(
        point,
        &[FieldEdits {
            number: attributes_field(kind),
            edits,
        }],
        &[],
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Unset,
    Double(f64),
    Int(i64),
}

#[derive(Debug, Default, Clone)]
pub struct Buckets {
    pub present: bool,
    pub offset: i64,
    pub total: u128,
}

/// The fields of one data point the checks and conversions read (proto3: the last value wins).
#[derive(Debug, Default)]
pub struct Point {
    pub flags: u64,
    pub number: Option<Number>,
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub bounds: Vec<f64>,
    pub scale: i64,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive: Buckets,
    pub negative: Buckets,
    pub quantiles: Vec<(f64, f64)>,
}

fn f64_of(v: u64) -> f64 {
    f64::from_bits(v)
}

fn sint32(v: u64) -> i64 {
    // sint32: zigzag over the low 32 bits.
    let low = u64::from(v as u32);
    zigzag_decode(low)
}

/// Values of a repeated fixed64/double field: unpacked occurrences and packed runs alike.
fn fixed64s(value: Value<'_>, out: &mut Vec<u64>) {
    match value {
        Value::Fixed64(v) => out.push(v),
        Value::Bytes(b) => out.extend(
            b.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
        ),
        _ => {}
    }
}

fn varints(value: Value<'_>, total: &mut u128) -> Result<(), DecodeError> {
    match value {
        Value::Varint(v) => *total += u128::from(v),
        Value::Bytes(mut b) => {
            while !b.is_empty() {
                *total += u128::from(prost::encoding::decode_varint(&mut b)?);
            }
        }
        _ => {}
    }
    Ok(())
}

fn read_buckets(bytes: &[u8]) -> Result<Buckets, DecodeError> {
    let mut out = Buckets {
        present: true,
        ..Buckets::default()
    };
    for field in fields(bytes) {
        let field = field?;
        match (field.number, field.value) {
            (buckets::OFFSET, Value::Varint(v)) => out.offset = sint32(v),
            (buckets::BUCKET_COUNTS, value) => varints(value, &mut out.total)?,
            _ => {}
        }
    }
    Ok(out)
}

impl Point {
    /// The point's values read into ``p`` (a buffer reused from point to point: its lists keep their
    /// memory), and its KeyValues' bytes appended to ``attributes``: one walk for both.
    pub fn read_with_attributes<'a>(
        p: &mut Point,
        bytes: &'a [u8],
        kind: u32,
        attributes: &mut Vec<&'a [u8]>,
    ) -> Result<(), DecodeError> {
        p.clear();
        let attributes_number = attributes_field(kind);
        for field in fields(bytes) {
            let field = field?;
            let (n, v) = (field.number, field.value);
            if n == attributes_number {
                if let Value::Bytes(b) = v {
                    attributes.push(b);
                }
                continue;
            }
            match kind {
                metric::GAUGE | metric::SUM => match (n, v) {
                    (number::AS_DOUBLE, Value::Fixed64(x)) => {
                        p.number = Some(Number::Double(f64_of(x)))
                    }
                    (number::AS_INT, Value::Fixed64(x)) => p.number = Some(Number::Int(x as i64)),
                    (number::FLAGS, Value::Varint(x)) => p.flags = u64::from(x as u32),
                    _ => {}
                },
                metric::HISTOGRAM => match (n, v) {
                    (hist::COUNT, Value::Fixed64(x)) => p.count = x,
                    (hist::SUM, Value::Fixed64(x)) => p.sum = Some(f64_of(x)),
                    (hist::MIN, Value::Fixed64(x)) => p.min = Some(f64_of(x)),
                    (hist::MAX, Value::Fixed64(x)) => p.max = Some(f64_of(x)),
                    (hist::BUCKET_COUNTS, v) => fixed64s(v, &mut p.bucket_counts),
                    (hist::EXPLICIT_BOUNDS, Value::Fixed64(x)) => p.bounds.push(f64_of(x)),
                    (hist::EXPLICIT_BOUNDS, Value::Bytes(b)) => p.bounds.extend(
                        b.chunks_exact(8)
                            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))),
                    ),
                    (hist::FLAGS, Value::Varint(x)) => p.flags = u64::from(x as u32),
                    _ => {}
                },
                metric::EXPONENTIAL_HISTOGRAM => match (n, v) {
                    (exp::COUNT, Value::Fixed64(x)) => p.count = x,
                    (exp::SUM, Value::Fixed64(x)) => p.sum = Some(f64_of(x)),
                    (exp::MIN, Value::Fixed64(x)) => p.min = Some(f64_of(x)),
                    (exp::MAX, Value::Fixed64(x)) => p.max = Some(f64_of(x)),
                    (exp::SCALE, Value::Varint(x)) => p.scale = sint32(x),
                    (exp::ZERO_COUNT, Value::Fixed64(x)) => p.zero_count = x,
                    (exp::ZERO_THRESHOLD, Value::Fixed64(x)) => p.zero_threshold = f64_of(x),
                    (exp::POSITIVE, Value::Bytes(b)) => p.positive = read_buckets(b)?,
                    (exp::NEGATIVE, Value::Bytes(b)) => p.negative = read_buckets(b)?,
                    (exp::FLAGS, Value::Varint(x)) => p.flags = u64::from(x as u32),
                    _ => {}
                },
                metric::SUMMARY => match (n, v) {
                    (summary::COUNT, Value::Fixed64(x)) => p.count = x,
                    (summary::SUM, Value::Fixed64(x)) => p.sum = Some(f64_of(x)),
                    (summary::QUANTILE_VALUES, Value::Bytes(b)) => {
                        let (mut q, mut value) = (0.0, 0.0);
                        for inner in fields(b) {
                            let inner = inner?;
                            match (inner.number, inner.value) {
                                (quantile::QUANTILE, Value::Fixed64(x)) => q = f64_of(x),
                                (quantile::VALUE, Value::Fixed64(x)) => value = f64_of(x),
                                _ => {}
                            }
                        }
                        p.quantiles.push((q, value));
                    }
                    (summary::FLAGS, Value::Varint(x)) => p.flags = u64::from(x as u32),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        let mut lists = (
            std::mem::take(&mut self.bucket_counts),
            std::mem::take(&mut self.bounds),
            std::mem::take(&mut self.quantiles),
        );
        lists.0.clear();
        lists.1.clear();
        lists.2.clear();
        *self = Point {
            bucket_counts: lists.0,
            bounds: lists.1,
            quantiles: lists.2,
            ..Point::default()
        };
    }

    pub fn no_recorded_value(&self) -> bool {
        self.flags & NO_RECORDED_VALUE != 0
    }
}

fn problem(template: &'static str, args: Vec<Scalar>) -> Message {
    Message::new(template, args)
}

fn big(value: u128) -> Scalar {
    // Totals of 64-bit counts outgrow any int type Python's side would take: shown as their digits.
    Scalar::Str(value.to_string())
}

/// Why the point is invalid for the metric's type, or None.
pub fn check(point: &Point, spec: &MetricSpec) -> Option<Message> {
    match spec.kind {
        metric::GAUGE | metric::SUM => {
            let counter = spec.kind == metric::SUM && spec.monotonic != Some(false);
            let (invalid, shown) = match point.number.unwrap_or(Number::Unset) {
                Number::Double(d) => (d.is_nan() || d < 0.0, Scalar::Double(d)),
                Number::Int(i) => (i < 0, Scalar::Int(i)),
                Number::Unset => (false, Scalar::Int(0)),
            };
            (counter && invalid).then(|| problem("point.counter", vec![shown]))
        }
        metric::HISTOGRAM => {
            if point.bounds.len() > MAX_EXPLICIT_BOUNDS {
                return Some(problem(
                    "point.too_many_bounds",
                    vec![Scalar::Int(point.bounds.len() as i64)],
                ));
            }
            if !point.bucket_counts.is_empty() {
                if point.bucket_counts.len() != point.bounds.len() + 1 {
                    return Some(problem(
                        "point.bucket_counts",
                        vec![
                            Scalar::Int(point.bucket_counts.len() as i64),
                            Scalar::Int(point.bounds.len() as i64),
                        ],
                    ));
                }
                let total: u128 = point.bucket_counts.iter().map(|&c| u128::from(c)).sum();
                if total != u128::from(point.count) {
                    return Some(problem(
                        "point.bucket_total",
                        vec![big(total), big(u128::from(point.count))],
                    ));
                }
                if !point.bounds.windows(2).all(|w| w[0] < w[1]) {
                    return Some(problem("point.bounds_order", vec![]));
                }
            }
            point
                .sum
                .is_some_and(f64::is_nan)
                .then(|| problem("point.histogram_nan", vec![]))
        }
        metric::EXPONENTIAL_HISTOGRAM => {
            if let Some(problem) = scale_problem(point) {
                return Some(problem);
            }
            let total = u128::from(point.zero_count) + point.positive.total + point.negative.total;
            if total != u128::from(point.count) {
                return Some(problem(
                    "point.exponential_total",
                    vec![big(total), big(u128::from(point.count))],
                ));
            }
            point
                .sum
                .is_some_and(f64::is_nan)
                .then(|| problem("point.histogram_nan", vec![]))
        }
        metric::SUMMARY => {
            let mut previous = f64::NEG_INFINITY;
            for &(q, value) in &point.quantiles {
                if !(0.0..=1.0).contains(&q) {
                    return Some(problem("point.quantile_range", vec![Scalar::Double(q)]));
                }
                if value < previous {
                    return Some(problem("point.quantile_order", vec![]));
                }
                previous = value;
            }
            point
                .sum
                .unwrap_or(0.0)
                .is_nan()
                .then(|| problem("point.summary_nan", vec![]))
        }
        _ => None,
    }
}

fn scale_problem(point: &Point) -> Option<Message> {
    (!(MIN_SCALE..=MAX_SCALE).contains(&point.scale))
        .then(|| problem("point.scale", vec![Scalar::Int(point.scale)]))
}

/// Why converting ``values`` would make one infinite; checked before the point changes.
fn overflow(
    values: impl IntoIterator<Item = f64>,
    conversion: &Conversion,
    unit: &str,
) -> Option<Message> {
    if conversion.factor.numerator_is_one {
        return None; // only a multiplication can make a finite double infinite
    }
    values
        .into_iter()
        .find(|v| conversion.factor.scale(*v).is_infinite() && !v.is_infinite())
        .map(|v| {
            problem(
                "convert.double",
                vec![Scalar::Double(v), Scalar::Str(unit.to_owned())],
            )
        })
}

/// The point converted to the contract's unit (its attributes edited as given), or why it cannot be
/// (an integer beyond int64, a finite value beyond the double range), in which case it stays as it came.
pub fn convert(
    bytes: &[u8],
    point: &Point,
    kind: u32,
    conversion: &Conversion,
    unit: &str,
    attribute_edits: Option<&[Edit]>,
    oracle: &dyn Oracle,
) -> Result<Result<Vec<u8>, Message>, DecodeError> {
    let factor = &conversion.factor;
    let statistics = || [point.sum, point.min, point.max].into_iter().flatten();
    // Field numbers this conversion rewrites: dropped from the copy, appended anew.
    let mut replaced: Vec<u32> = Vec::with_capacity(4);
    // Room for every value a conversion writes (fixed64 fields, packed bounds, quantiles).
    let mut appended = Vec::with_capacity(64 + 8 * point.bounds.len() + 24 * point.quantiles.len());
    match kind {
        metric::GAUGE | metric::SUM => {
            let value = match point.number.unwrap_or(Number::Unset) {
                Number::Int(i) => {
                    let exact = match factor.exact {
                        Some((num, den)) => {
                            let product = i128::from(i) * i128::from(num);
                            if product % i128::from(den) == 0 {
                                let q = product / i128::from(den);
                                i64::try_from(q).map_or(ExactInt::BeyondInt64, ExactInt::Integral)
                            } else {
                                ExactInt::Fractional
                            }
                        }
                        None => oracle.exact_int(i, &conversion.arrived, &conversion.target),
                    };
                    match exact {
                        ExactInt::Integral(q) => {
                            replaced.extend([number::AS_INT, number::AS_DOUBLE]);
                            put_fixed64(&mut appended, number::AS_INT, q as u64);
                            None
                        }
                        ExactInt::BeyondInt64 => {
                            return Ok(Err(problem(
                                "convert.int64",
                                vec![Scalar::Int(i), Scalar::Str(unit.to_owned())],
                            )))
                        }
                        ExactInt::Fractional => Some(i as f64),
                    }
                }
                Number::Double(d) => Some(d),
                Number::Unset => Some(0.0),
            };
            if let Some(value) = value {
                if let Some(problem) = overflow([value], conversion, unit) {
                    return Ok(Err(problem));
                }
                replaced.extend([number::AS_INT, number::AS_DOUBLE]);
                put_fixed64(
                    &mut appended,
                    number::AS_DOUBLE,
                    factor.scale(value).to_bits(),
                );
            }
        }
        metric::HISTOGRAM => {
            if let Some(problem) = overflow(
                statistics().chain(point.bounds.iter().copied()),
                conversion,
                unit,
            ) {
                return Ok(Err(problem));
            }
            put_statistics(
                point,
                factor,
                [hist::SUM, hist::MIN, hist::MAX],
                &mut replaced,
                &mut appended,
            );
            replaced.push(hist::EXPLICIT_BOUNDS);
            if !point.bounds.is_empty() {
                let packed: Vec<u8> = point
                    .bounds
                    .iter()
                    .flat_map(|b| factor.scale(*b).to_bits().to_le_bytes())
                    .collect();
                put_bytes(&mut appended, hist::EXPLICIT_BOUNDS, &packed);
            }
        }
        metric::SUMMARY => {
            let values = [point.sum.unwrap_or(0.0)]
                .into_iter()
                .chain(point.quantiles.iter().map(|q| q.1));
            if let Some(problem) = overflow(values, conversion, unit) {
                return Ok(Err(problem));
            }
            replaced.extend([summary::SUM, summary::QUANTILE_VALUES]);
            let sum = factor.scale(point.sum.unwrap_or(0.0));
            if sum.to_bits() != 0 {
                put_fixed64(&mut appended, summary::SUM, sum.to_bits());
            }
            for field in fields(bytes) {
                let field = field?;
                if let (summary::QUANTILE_VALUES, Value::Bytes(b)) = (field.number, field.value) {
                    put_bytes(
                        &mut appended,
                        summary::QUANTILE_VALUES,
                        &scale_quantile(b, factor)?,
                    );
                }
            }
        }
        metric::EXPONENTIAL_HISTOGRAM => {
            if let Some(problem) = scale_problem(point) {
                return Ok(Err(problem));
            }
            // Multiplying every value by 2**k moves every bucket by k * 2**scale indexes.
            let step = factor.power_of_two.unwrap_or(0);
            let shift = if point.scale >= 0 {
                step << point.scale
            } else {
                step.div_euclid(1 << -point.scale)
            };
            let offsets = [point.positive.offset + shift, point.negative.offset + shift];
            if !offsets
                .iter()
                .all(|o| i64::from(i32::MIN) <= *o && *o <= i64::from(i32::MAX))
            {
                return Ok(Err(problem(
                    "convert.offsets",
                    vec![Scalar::Str(unit.to_owned())],
                )));
            }
            if let Some(problem) =
                overflow(statistics().chain([point.zero_threshold]), conversion, unit)
            {
                return Ok(Err(problem));
            }
            replaced.extend([exp::POSITIVE, exp::NEGATIVE, exp::ZERO_THRESHOLD]);
            for (number, offset) in [(exp::POSITIVE, offsets[0]), (exp::NEGATIVE, offsets[1])] {
                let mut original: &[u8] = &[];
                for field in fields(bytes) {
                    let field = field?;
                    if let (n, Value::Bytes(b)) = (field.number, field.value) {
                        if n == number {
                            original = b;
                        }
                    }
                }
                put_bytes(&mut appended, number, &with_offset(original, offset)?);
            }
            put_statistics(
                point,
                factor,
                [exp::SUM, exp::MIN, exp::MAX],
                &mut replaced,
                &mut appended,
            );
            let threshold = factor.scale(point.zero_threshold);
            if threshold.to_bits() != 0 {
                put_fixed64(&mut appended, exp::ZERO_THRESHOLD, threshold.to_bits());
            }
        }
        _ => {}
    }
    let attributes = attributes_field(kind);
    let mut out = Vec::with_capacity(bytes.len() + appended.len());
    let mut at = 0;
    for field in fields(bytes) {
        let field = field?;
        if field.number == attributes && field.bytes().is_some() {
            let edit = attribute_edits.and_then(|edits| edits.get(at));
            at += 1;
            put_edited(&mut out, &field, edit)?;
        } else if !replaced.contains(&field.number) {
            out.extend_from_slice(field.raw);
        }
    }
    out.extend_from_slice(&appended);
    Ok(Ok(out))
}

fn put_statistics(
    point: &Point,
    factor: &crate::tables::Factor,
    numbers: [u32; 3],
    replaced: &mut Vec<u32>,
    out: &mut Vec<u8>,
) {
    for (value, number) in [point.sum, point.min, point.max].into_iter().zip(numbers) {
        if let Some(value) = value {
            replaced.push(number);
            put_fixed64(out, number, factor.scale(value).to_bits());
        }
    }
}

fn scale_quantile(bytes: &[u8], factor: &crate::tables::Factor) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut value = 0.0;
    for field in fields(bytes) {
        let field = field?;
        match (field.number, field.value) {
            (quantile::VALUE, Value::Fixed64(v)) => value = f64_of(v),
            _ => out.extend_from_slice(field.raw),
        }
    }
    let scaled = factor.scale(value);
    if scaled.to_bits() != 0 {
        put_fixed64(&mut out, quantile::VALUE, scaled.to_bits());
    }
    Ok(out)
}

fn with_offset(bytes: &[u8], offset: i64) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(bytes.len() + 6);
    for field in fields(bytes) {
        let field = field?;
        if !(field.number == buckets::OFFSET && matches!(field.value, Value::Varint(_))) {
            out.extend_from_slice(field.raw);
        }
    }
    if offset != 0 {
        // sint32 on the wire: zigzag of the 32-bit value.
        put_varint(
            &mut out,
            buckets::OFFSET,
            zigzag_encode(offset) & 0xffff_ffff,
        );
    }
    Ok(out)
}

/// A process-wide number for each NaN attribute value: NaN equals nothing, not even across requests.
pub fn next_nan() -> u64 {
    static NANS: AtomicU64 = AtomicU64::new(0);
    NANS.fetch_add(1, Ordering::Relaxed)
}
