"""A reverse proxy on 127.0.0.1 that breaks chosen requests on their way to a real server.

The quetz tests put it in front of a real quetz: every request is relayed unchanged unless a
scripted fault matches its method and path.  Kinds of fault:
  "status"  answer `status` without relaying (the server never sees the request)
  "lost"    relay, let the server do the work, then answer `status` (the real answer is lost)
  "reset"   relay, let the server do the work, then reset the connection with no answer
  "damage"  relay the request with one byte of its body flipped (bytes damaged in transit)
Each fault fires `times` times.  `log` holds (method, path, status) of what the client saw, 0 for a
reset.
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KINDS = ("status", "lost", "reset", "damage")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "host", "content-length"}


@dataclasses.dataclass
class ProxyFault:
    method: str
    path: str  # a regular expression searched in the request path (query included)
    kind: str = "status"
    status: int = 503
    times: int = 1


class FaultProxy:
    """`with FaultProxy(upstream_url) as proxy:` → proxy.url relays to upstream_url."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: list[ProxyFault] = []
        self.log: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, method: str, path: str, kind: str = "status", status: int = 503, times: int = 1) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: one of {KINDS}")
        with self._lock:
            self.faults.append(ProxyFault(method, path, kind, status, times))

    def take(self, method: str, path: str) -> ProxyFault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.log.append((method, path, status))


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._relay()

        do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = proxy.take(self.command, self.path)
            if fault and fault.kind == "status":
                self._answer(fault.status, {"Content-Type": "application/json"}, b'{"detail": "injected fault"}')
                return
            if fault and fault.kind == "damage" and body:
                middle = len(body) // 2
                body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
            status, headers, payload = self._forward(body)
            if fault and fault.kind == "reset":
                proxy.record(self.command, self.path, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if fault and fault.kind == "lost":
                status, headers, payload = fault.status, {"Content-Type": "application/json"}, b'{"detail": "lost"}'
            self._answer(status, headers, payload)

        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body if body else None, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
                return answer.status, kept, payload
            finally:
                upstream.close()

        def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            proxy.record(self.command, self.path, status)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

    return Relay
