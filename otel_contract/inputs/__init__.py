"""Inputs: telemetry captured to files, scraped or piped in, read as OTLP export requests.

* ``sources``: the one entry point ``validate`` uses, ``read_inputs``: files, directories, URLs and
  stdin, with progress reporting;
* ``otlp``: OTLP export requests (metrics, traces, logs) as binary protobuf, OTLP/JSON and the
  Collector's JSON lines, read and written;
* ``prometheus``: Prometheus text 0.0.4 and OpenMetrics 1.0 mapped to OTLP per the OpenTelemetry
  compatibility spec (the mapping itself in ``_prom_mapping``), streamed in bounded requests;
* ``scrape``: a live ``/metrics`` URL fetched as Prometheus does, with the Content-Type and
  pod-mapping findings;
* ``counting``: byte counting under the readers, for progress.
"""
