"""A real webhook receiver on loopback for the tests (and the benchmark):
an HTTP server on its own thread that keeps every request it is sent and
answers as told (a status, garbage, a hang, a closed connection)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    """``mode``: ``ok`` (200), ``status`` (``status``), ``garbage`` (not
    HTTP), ``hang`` (accepts, never answers), ``close`` (closes at once),
    ``redirect`` (302 to ``location``), ``big`` (200 with a 5 KB body);
    ``delay``: seconds to wait before answering."""

    port: int = 0
    mode: str = "ok"
    status: int = 200
    location: str = "http://127.0.0.1:9/"
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    # Called with each request once it is kept, before the answer (tests
    # that act at a given moment: kill the sender mid-request...).
    on_request: Callable[[Received], None] | None = None
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                receiver.requests.append(got)
                if receiver.on_request is not None:
                    receiver.on_request(got)
                mode = receiver.mode
                if receiver.delay:
                    time.sleep(receiver.delay)
                if mode == "garbage":
                    self.wfile.write(b"\x00\xffthis is not HTTP at all\r\n\r\n")
                    self.close_connection = True
                    return
                if mode == "hang":
                    time.sleep(5)
                    self.close_connection = True
                    return
                if mode == "close":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                status = 302 if mode == "redirect" else (receiver.status if mode == "status" else 200)
                payload = b"x" * 5000 if mode == "big" else b'{"ok":true}'
                self.send_response(status)
                if mode == "redirect":
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def ids(self) -> list[str]:
        return [r.headers.get("webhook-id") for r in self.requests]
