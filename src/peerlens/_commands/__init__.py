"""CLI command modules, one per area. Each exposes ``register(app)``; only :mod:`peerlens.cli`
imports them. Core sub-packages never import from here."""
