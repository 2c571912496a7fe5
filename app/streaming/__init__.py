"""Audit streaming: an organization's sealed audit events, sent in seal order
to its security tools (entitlement ``audit_streaming``, permission ``audit:stream``).

* ``models``: streams (kind, URL, secret or token encrypted, cursor).
* ``formats``: the wire formats (HTTPS NDJSON signed per Standard Webhooks,
  Splunk HEC, Datadog logs) and the deterministic batch id.
* ``delivery``: the job (one batch at a time per stream under a lock, the
  cursor moved only after a 2xx, retries with backoff, auto-disable).
* ``services`` / ``views``: the pages.
* ``tasks``: the periodic sweep that kicks streams with new sealed events.
"""
