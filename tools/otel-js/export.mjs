// One export from the OpenTelemetry JavaScript SDK to an OTLP/HTTP endpoint, as a new user's app
// sends it: the legacy names and units issue 20 was filed with, through the SDK's own readers,
// processors and exporters (tests/test_js_sdk.py runs it against otel-contract serve).
//
//   node tools/otel-js/export.mjs http://127.0.0.1:4318 proto|json [TIMEOUT_MS]
//
// proto uses @opentelemetry/exporter-*-otlp-proto (application/x-protobuf), json the -otlp-http ones
// (application/json). What the SDK logs through `diag` (a partial_success among it) goes to stderr;
// the exit status is 1 when the SDK logged an error: it reports a failed export only that way.
import { diag, DiagConsoleLogger, DiagLogLevel } from '@opentelemetry/api';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

const EXPORTERS = {
  proto: { metrics: ProtoMetricExporter, traces: ProtoTraceExporter },
  json: { metrics: JsonMetricExporter, traces: JsonTraceExporter },
};

const [endpoint, kind, timeout = '10000'] = process.argv.slice(2);
// Each exporter's bound on one export, retries included (the SDK's default is 10 s).
const timeoutMillis = Number(timeout);
if (!endpoint || !EXPORTERS[kind] || !(timeoutMillis > 0)) {
  console.error('usage: node export.mjs http://HOST:PORT proto|json [TIMEOUT_MS]');
  process.exit(2);
}

// The SDK reports a failed export only to diag.error (its global error handler), never to the
// caller: counted here to set the exit status.
const console_ = new DiagConsoleLogger();
let errors = 0;
diag.setLogger(
  {
    ...Object.fromEntries(['warn', 'info', 'debug', 'verbose'].map((level) => [level, console_[level].bind(console_)])),
    error: (...args) => {
      errors += 1;
      console_.error(...args);
    },
  },
  DiagLogLevel.INFO,
);

const resource = resourceFromAttributes({ 'service.name': 'shop' });
const { metrics: MetricExporter, traces: TraceExporter } = EXPORTERS[kind];
// One export at shutdown, not one a minute: the interval never fires while this runs.
const reader = new PeriodicExportingMetricReader({
  exporter: new MetricExporter({ url: `${endpoint}/v1/metrics`, timeoutMillis }),
  exportIntervalMillis: 3_600_000,
  exportTimeoutMillis: timeoutMillis,
});
const meters = new MeterProvider({ resource, readers: [reader] });
const meter = meters.getMeter('shop');
const duration = meter.createHistogram('http.server.duration', {
  unit: 'ms',
  advice: { explicitBucketBoundaries: [100, 500] },
});
duration.record(250, { 'http.method': 'GET', status_code: '200' });
duration.record(10, { 'http.method': 'GET', status_code: '200', 'user.id': 'u-1' }); // forbidden
meter.createCounter('shop.orders', { unit: '{order}' }).add(2, { status_code: '201' });

const tracers = new TracerProvider({
  resource,
  spanProcessors: [
    new SimpleSpanProcessor({ exporter: new TraceExporter({ url: `${endpoint}/v1/traces`, timeoutMillis }) }),
  ],
});
tracers.getTracer('shop').startSpan('checkout', { attributes: { status_code: '404' } }).end();

await Promise.all([meters.shutdown(), tracers.shutdown()]);
console.log(`export.mjs: ${kind} to ${endpoint}: ${errors ? `${errors} error(s) logged` : 'exported'}`);
process.exit(errors ? 1 : 0);
