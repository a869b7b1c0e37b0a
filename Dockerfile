# syntax=docker/dockerfile:1
# otel-contract sidecar image.
#   docker build -t otel-contract:dev .
#   docker run --rm -v "$PWD/pipelines/sidecar.yaml:/etc/otel-contract/pipeline.yaml:ro" ... otel-contract:dev
# The pipeline config is not baked in: mount it at /etc/otel-contract/pipeline.yaml (or pass other args),
# the Kubernetes manifests in pipelines/k8s/ do that with ConfigMaps.

ARG PYTHON_IMAGE=python:3.11-slim

ARG RUST_IMAGE=rust:1-slim-bookworm

# --- build: a virtualenv with the package, its compiled core and its pinned dependencies ------------
FROM ${RUST_IMAGE} AS rust
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH
# The core (core/, Rust) is built from source: the toolchain from the Rust image, a C linker from Debian.
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/otel-contract
WORKDIR /src
# Metadata and lock first, so the dependency layer is reused until they change.
COPY pyproject.toml requirements.lock README.md ./
COPY core ./core
COPY otel_contract ./otel_contract
RUN /opt/otel-contract/bin/pip install -c requirements.lock .

# --- runtime: the virtualenv only, non-root ----------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/otel-contract/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# uid/gid 10001: matches runAsUser in pipelines/k8s/deployment.yaml. The queue directory exists and is
# owned by it, so a volume mounted there (docker volume, emptyDir, PVC) is writable.
RUN groupadd --system --gid 10001 otel-contract \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin otel-contract \
 && install -d -o 10001 -g 10001 /etc/otel-contract /var/lib/otel-contract /var/lib/otel-contract/queue
COPY --from=build /opt/otel-contract /opt/otel-contract
USER 10001:10001
# 4317: OTLP/gRPC receiver (also grpc.health.v1); 4318: OTLP/HTTP receiver; 8888: /metrics, /healthz, /readyz.
EXPOSE 4317 4318 8888
# SIGTERM: stop accepting, drain the sending queue for shutdown.drain_timeout, exit 0.
STOPSIGNAL SIGTERM
# Docker/Compose only (Kubernetes ignores HEALTHCHECK and uses the probes). Needs telemetry.prometheus
# on 127.0.0.1:8888 or 0.0.0.0:8888 (the default is 127.0.0.1:8888).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8888/healthz', timeout=2)"]
ENTRYPOINT ["otel-contract"]
CMD ["serve", "--config", "/etc/otel-contract/pipeline.yaml"]
