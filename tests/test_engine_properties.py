"""Properties of the engine on generated requests: normalization is idempotent, points balance."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_contract import load_contract
from otel_contract.engine import CardinalityState, EngineOptions, process_metrics
from otel_contract.otlp import count_items

from .conftest import CONTRACTS, TODAY
from .otlp_builders import GOOD_RESOURCE, counter, gauge, histogram, hpoint, metrics_request

ECOMMERCE = load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY)

_keys = st.sampled_from(["http.method", "http_status", "status_code", "http.status_code", "user.id", "http.route"])
_values = st.one_of(
    st.sampled_from(["GET", "POST", "BREW", "200", "503", "x"]), st.integers(100, 599), st.sampled_from([1.5, True])
)
_attributes = st.dictionaries(_keys, _values, max_size=5)
_number = st.one_of(st.floats(-5, 1e6, allow_nan=False), st.just(float("nan")))


@st.composite
def _metric(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["histogram", "counter", "gauge"]))
    n = draw(st.integers(0, 4))
    if kind == "histogram":
        name, unit = draw(
            st.sampled_from(
                [
                    ("http_server_duration_seconds", "s"),
                    ("http.server.duration", "ms"),
                    ("http_server_duration_seconds", "By"),
                ]
            )
        )
        points = [
            hpoint(draw(_attributes), [1.0, 10.0], counts, draw(_number))
            for counts in draw(st.lists(st.lists(st.integers(0, 3), min_size=3, max_size=3), min_size=n, max_size=n))
        ]
        return histogram(name, points, unit=unit)
    points = [(draw(_attributes), draw(_number)) for _ in range(n)]
    if kind == "counter":
        return counter(
            draw(st.sampled_from(["http_requests_total", "http.server.request.count", "jobs_total"])), points
        )
    return gauge(draw(st.sampled_from(["http_requests_total", "queue_depth", "Bad.Name"])), points)


_requests = st.builds(
    lambda metrics, resource: metrics_request(*metrics, resource=resource),
    st.lists(_metric(), max_size=4),
    st.sampled_from([GOOD_RESOURCE, {"service.name": "checkout", "http_status": "x"}, {}]),
)


def _points(request: Any) -> int:
    return count_items(request)[1]


_settings = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(_requests, st.booleans())
def test_normalization_is_idempotent(request: Any, audit: bool) -> None:
    options = EngineOptions(audit=audit)
    once = process_metrics(request.SerializeToString(), ECOMMERCE, options=options)
    twice = process_metrics(once.to_bytes(), ECOMMERCE, options=options)
    assert not twice.changed
    assert twice.to_bytes() == once.to_bytes()
    assert twice.rejected == 0 and twice.merged == 0


@_settings
@given(_requests, st.booleans())
def test_data_points_balance(request: Any, audit: bool) -> None:
    outcome = process_metrics(request, ECOMMERCE, state=CardinalityState(), options=EngineOptions(audit=audit))
    assert outcome.items == _points(request)
    assert outcome.items == outcome.forwarded + outcome.rejected + outcome.merged
    assert _points(outcome.request) == outcome.forwarded
    if audit:
        assert outcome.rejected == 0
    if outcome.rejected or outcome.merged:
        assert outcome.findings, "points were dropped without a finding"
