"""Webhooks: an organization's endpoints and the signed deliveries of its audit events.

* ``models``: endpoints (URL, event types, enabled, the signing secret
  encrypted at rest with ``app.crypto``), deliveries (one per event and
  endpoint) and their attempts.
* ``guard``: the SSRF guard (resolve once, refuse private and special
  addresses, connect to the address checked, no redirects).
* ``services``: create, edit, rotate, disable and re-enable endpoints; the
  receiver of ``hooks.event_recorded`` that turns every audit event an
  enabled endpoint subscribes to into a delivery job, in the event's
  transaction; resend and replay.
* ``tasks``: the delivery job (Standard Webhooks signing and retry schedule).
* ``views``: the pages (``webhooks:view`` to see, ``webhooks:manage`` to change).
"""
