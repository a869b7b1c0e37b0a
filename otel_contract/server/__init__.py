"""The sidecar: OTLP/gRPC receiver -> contract processor -> sending queue -> exporters."""
