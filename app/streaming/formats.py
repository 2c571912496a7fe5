"""What a batch looks like on the wire, per kind of destination.

Every kind carries the same event objects: the audit export's JSON shape
(``app.auditlog.services.event_json``) plus ``seq``, the event's place in the
organization's sealed log (strictly increasing along a stream). A batch is
the events of seal sequences ``(after, through]``; its id,
``batch_<stream>_<after+1>_<through>``, depends only on the stream and that
range, so a batch sent again after a crash carries the same id.

* ``https``: ``POST <url>``, ``Content-Type: application/x-ndjson``, one
  event per line; signed per Standard Webhooks exactly as webhooks are
  (``webhook-id`` = the batch id, ``webhook-timestamp``,
  ``webhook-signature``), plus ``tenantry-stream-id``, ``tenantry-batch-first``
  and ``tenantry-batch-last`` (seq of the first and last event).
* ``splunk_hec``: ``POST <url>/services/collector/event``,
  ``Authorization: Splunk <token>``, concatenated JSON objects
  ``{"time", "host", "source", "sourcetype", "event"}`` (HEC's batch form).
* ``datadog``: ``POST <url>/api/v2/logs``, ``DD-API-KEY: <key>``, a JSON
  array of ``{"ddsource", "ddtags", "hostname", "service", "message",
  "timestamp", "tenantry"}`` (``message``: the event as JSON text, which
  Datadog parses into attributes; ``tenantry``: the same as an object).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from standardwebhooks import Webhook

SOURCE = "tenantry"
SOURCETYPE = "tenantry:audit"
SERVICE = "tenantry-audit"
SPLUNK_PATH = "/services/collector/event"
DATADOG_PATH = "/api/v2/logs"


@dataclass(frozen=True)
class Request:
    url: str
    body: str
    headers: dict[str, str]


def batch_id(stream_id, after: int, through: int) -> str:
    """The batch's id: the same for every send of the events ``(after, through]`` of this stream."""
    return f"batch_{stream_id.hex}_{after + 1}_{through}"


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def with_path(url: str, path: str) -> str:
    """``url`` ending in ``path`` (added unless the URL already ends with it)."""
    parts = urlsplit(url)
    base = parts.path.rstrip("/")
    if not base.endswith(path):
        base += path
    return urlunsplit((parts.scheme, parts.netloc, base, parts.query, ""))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def build(
    kind: str, url: str, secret: str, stream_id, after: int, through: int, events: list[dict], host: str, when: datetime
) -> Request:
    """The request that sends ``events`` (the batch ``(after, through]``) to a
    destination of ``kind``; ``secret`` is the signing secret (https) or the
    token (Splunk, Datadog); ``host`` the organization's host (Splunk's
    ``host``, Datadog's ``hostname``)."""
    bid = batch_id(stream_id, after, through)
    if kind == "https":
        body = "".join(_dumps(e) + "\n" for e in events)
        headers = {
            "content-type": "application/x-ndjson",
            "webhook-id": bid,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(secret).sign(bid, when, body),
            "tenantry-stream-id": str(stream_id),
            "tenantry-batch-first": str(events[0]["seq"]) if events else "",
            "tenantry-batch-last": str(events[-1]["seq"]) if events else "",
        }
        return Request(url, body, headers)
    if kind == "splunk_hec":
        body = "".join(
            _dumps(
                {
                    "time": _epoch(e["occurred_at"]),
                    "host": host,
                    "source": SOURCE,
                    "sourcetype": SOURCETYPE,
                    "event": e,
                }
            )
            for e in events
        )
        headers = {
            "content-type": "application/json",
            "authorization": f"Splunk {secret}",
            "x-splunk-request-channel": str(stream_id),
            "tenantry-batch-id": bid,
        }
        return Request(with_path(url, SPLUNK_PATH), body, headers)
    if kind == "datadog":
        body = _dumps(
            [
                {
                    "ddsource": SOURCE,
                    "ddtags": f"tenantry_host:{host},action:{e['action']}",
                    "hostname": host,
                    "service": SERVICE,
                    "message": _dumps(e),
                    "timestamp": int(_epoch(e["occurred_at"]) * 1000),
                    "tenantry": e,
                }
                for e in events
            ]
        )
        headers = {"content-type": "application/json", "dd-api-key": secret, "tenantry-batch-id": bid}
        return Request(with_path(url, DATADOG_PATH), body, headers)
    raise ValueError(f"unknown stream kind {kind!r}")
