"""Crafted OTLP metrics requests that got past the contract or cost far more than their size (issue 16).

Some cannot be written with protobuf's builders, which always serialize a message canonically; they
are assembled here from serialized fragments, as protobuf's wire format allows (a message's fields may
come in any order and repeat, and a message may be split in parts that the parser merges).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, ResourceMetrics, ScopeMetrics

from .otlp_builders import CUMULATIVE, GOOD_RESOURCE, attrs, counter, histogram, hpoint, metrics_request

GOOD = {"http.method": "GET", "http.status_code": 200}
INT64_MAX = 2**63 - 1

# A contract (tests/sidecar_harness.shop_contract's ``extra``) with the metrics the shop lacks: an
# exponential histogram with a power-of-two alias, and a gauge with a tight series budget.
SHOP_EXTRA = """\
  - name: payload_size_bytes
    type: exponential_histogram
    unit: By
    aliases: [{name: payload.size, unit: KiBy}]
  - name: queue_depth
    type: gauge
    unit: '{item}'
    attributes: {optional: [queue], forbidden: [user.id]}
    max_series: 1
"""


def legacy_durations() -> dict[str, Any]:
    """ecommerce's legacy histogram in ms: a clean point and one with the forbidden ``user.id``."""
    return histogram(
        "http.server.duration",
        [
            hpoint(GOOD, [100.0, 500.0], [1, 1, 0], 350.0),
            hpoint({**GOOD, "user.id": "u-1"}, [100.0, 500.0], [1, 0, 0], 50.0),
        ],
        unit="ms",
    )


@dataclass(frozen=True)
class OutOfRange:
    """A request to ``contracts/ecommerce.yaml`` whose one hostile value used to make the engine raise."""

    payload: bytes
    rule: str  # the finding it gives now
    rejected: int  # points rejected in all: the user.id one, and the hostile one when its rule rejects


def out_of_range_requests() -> dict[str, OutOfRange]:
    unknown_temporality = histogram(
        "http.server.duration", [hpoint({"http.method": "POST", "http.status_code": 201}, [1.0], [1, 0], 0.5)], "ms", 5
    )
    status_beyond_int64 = histogram(
        "http.server.duration", [hpoint({"http.method": "PUT", "status_code": "9" * 20}, [1.0], [1, 0], 0.5)], "ms"
    )
    # Hours to seconds multiplies by 3600: 2**62 h is beyond int64 in s.
    conversion_beyond_int64 = {
        "name": "system_disk_io_time_seconds_total",
        "unit": "h",
        "sum": {
            "aggregationTemporality": CUMULATIVE,
            "isMonotonic": True,
            "dataPoints": [{"attributes": attrs({"device": "sda"}), "asInt": str(2**62), "timeUnixNano": "1"}],
        },
    }
    return {
        "aggregation temporality 5": OutOfRange(_request(unknown_temporality), "type-mismatch", 2),
        "status_code beyond int64": OutOfRange(_request(status_beyond_int64), "attribute-value", 1),
        "conversion beyond int64": OutOfRange(_request(conversion_beyond_int64), "invalid-data-point", 2),
    }


def _request(hostile: dict[str, Any]) -> bytes:
    return metrics_request(legacy_durations(), hostile).SerializeToString()


def _number(member: str) -> int:
    return int(Metric.DESCRIPTOR.fields_by_name[member].number)


def _length_delimited(number: int, payload: bytes) -> bytes:
    """Field ``number`` holding ``payload`` as protobuf encodes a message or bytes field."""
    encoded = bytearray()
    for value in (number << 3 | 2, len(payload)):
        while True:
            byte, value = value & 0x7F, value >> 7
            encoded.append(byte | (0x80 if value else 0))
            if not value:
                break
    return bytes(encoded) + payload


def _serialized_metric(metric: dict[str, Any]) -> bytes:
    serialized: bytes = metrics_request(metric).resource_metrics[0].scope_metrics[0].metrics[0].SerializeToString()
    return serialized


def spliced_metric(first: dict[str, Any], last: dict[str, Any], between: str) -> bytes:
    """One request with one Metric encoded as ``first``'s fields, an empty ``between`` member of the data
    oneof, then ``last``'s data member. Protobuf parses the oneof as "the last member wins": the metric
    is ``last``'s data alone, under ``first``'s name and unit, whatever ``first``'s points were."""
    (member,) = (key for key in last if key not in ("name", "unit"))
    tail = Metric()
    tail.ParseFromString(_serialized_metric(last))
    only_data = Metric()
    getattr(only_data, member).CopyFrom(getattr(tail, member))
    metric = _serialized_metric(first) + _length_delimited(_number(between), b"") + only_data.SerializeToString()
    return request_of_metric_bytes([metric], metrics_request(resource=GOOD_RESOURCE).resource_metrics[0])


def request_of_metric_bytes(metrics: list[bytes], template: ResourceMetrics) -> bytes:
    """A request of one resource and scope (``template``'s) holding these serialized Metrics as they are."""
    metrics_field = ScopeMetrics.DESCRIPTOR.fields_by_name["metrics"].number
    scope = ScopeMetrics(scope=template.scope_metrics[0].scope).SerializeToString()
    scope += b"".join(_length_delimited(metrics_field, metric) for metric in metrics)
    resource = ResourceMetrics(resource=template.resource).SerializeToString()
    resource += _length_delimited(ResourceMetrics.DESCRIPTOR.fields_by_name["scope_metrics"].number, scope)
    return _length_delimited(ExportMetricsServiceRequest.DESCRIPTOR.fields_by_name["resource_metrics"].number, resource)


def histogram_with_bounds(bounds: Iterable[float]) -> bytes:
    """The shop's histogram with one point with these explicit bounds and matching (zero) bucket counts."""
    point = hpoint({"http.method": "GET"}, [], [0], 0.0)
    request = metrics_request(histogram("http_server_duration_seconds", [point]), resource={"service.name": "shop"})
    built = request.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    built.explicit_bounds.extend(bounds)  # a protobuf list, not JSON: tests build hundreds of these
    built.bucket_counts.extend([0] * len(built.explicit_bounds))
    serialized: bytes = request.SerializeToString()
    return serialized


def exponential_point(scale: int, *, flags: int = 0, offset: int = 0) -> bytes:
    """``payload.size`` (KiBy, an alias of By: converting shifts buckets by 10 * 2**scale) with one point."""
    point = {
        "scale": scale,
        "count": "2",
        "zeroCount": "1",
        "positive": {"offset": offset, "bucketCounts": ["1"]},
        "timeUnixNano": "1",
        "flags": flags,
    }
    metric = {
        "name": "payload.size",
        "unit": "KiBy",
        "exponentialHistogram": {"aggregationTemporality": CUMULATIVE, "dataPoints": [point]},
    }
    return metrics_request(metric, resource={"service.name": "shop"}).SerializeToString()


def orders(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The shop's ``orders_total`` counter with one point per attribute set."""
    return counter("orders_total", [(attributes, 1.0) for attributes in points], unit="{order}")
