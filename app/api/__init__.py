"""The JSON API (``/api/v1/`` on an organization's host) and its API keys.

An adapter over the product areas: it calls their services, with the same
permission checks as their pages, and adds what programs need (keys,
problem+json errors, cursors, idempotent POSTs, ETags, rate limits, an
OpenAPI document). It sits in its own layer between the wiring and the
product areas (pyproject's import-linter contract): it may import them,
nothing but the wiring imports it.
"""
