"""Inputs: telemetry captured to files, read back for checking (and written, for fixtures and tools).

``otel_contract.inputs.otlp`` reads and writes OTLP export requests (metrics, traces, logs) as
binary protobuf, OTLP/JSON and the OpenTelemetry Collector's JSON lines.
"""
