"""A real DNS server on loopback for the domain tests (dnslib), answering TXT
questions from a dict the test edits while it runs."""

from __future__ import annotations

import threading

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.conftest import free_port


class _Resolver(BaseResolver):
    def __init__(self, zone: DnsZone):
        self.zone = zone

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        if self.zone.silent:
            return None  # no answer at all: the client times out
        with self.zone.lock:
            texts = list(self.zone.txt.get(qname, ()))
            exists = qname in self.zone.txt or qname in self.zone.names
        if request.q.qtype == QTYPE.TXT and texts:
            for t in texts:
                reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(t), ttl=0))
        elif not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        self.zone.questions.append((qname, QTYPE[request.q.qtype]))
        return reply


class DnsZone:
    """``txt[name] = [values]``; ``names`` exist without TXT (NOERROR, no answer);
    ``silent`` makes the server drop every question."""

    def __init__(self):
        self.txt: dict[str, list[str]] = {}
        self.names: set[str] = set()
        self.silent = False
        self.questions: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.server = DNSServer(
            _Resolver(self), port=self.port, address="127.0.0.1", logger=DNSLogger(log="-request,-reply,-truncated")
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, value: str) -> None:
        with self.lock:
            self.txt.setdefault(name, []).append(value)

    def clear(self) -> None:
        with self.lock:
            self.txt.clear()
            self.names.clear()
            self.questions.clear()
            self.silent = False

    def start(self) -> DnsZone:
        self.server.start_thread()
        return self

    def stop(self) -> None:
        self.server.stop()
