"""``python -m otel_contract`` runs the command line."""

from otel_contract.cli import main

raise SystemExit(main())
