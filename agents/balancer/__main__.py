"""Entry point: ``python -m agents.balancer``."""

from .cli import main

raise SystemExit(main())
