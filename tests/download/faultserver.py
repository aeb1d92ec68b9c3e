"""A loopback HTTP server that misbehaves on purpose, for download tests and the benchmark.

Each route serves bytes (in memory or from a file) and can inject one kind of trouble: a list of error statuses
for the first requests (500/503, 429 with Retry-After, 404...), a connection dropped after N body bytes, a lying
Content-Length, slow chunks, redirects, range support on or off, and ETag/Last-Modified validators with If-Range
honoured (or ignored, like a broken server). Every request is logged (path, Range
header, status, body bytes sent) so tests can assert what a client actually transferred.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    data: bytes | None = None
    file: Path | None = None
    content_type: str = "application/octet-stream"
    ranges: bool = True
    statuses: list[int] = field(default_factory=list)  # served (one each) before the body; consumed in order
    retry_after: str | None = None  # sent with 429/503
    drop_after: int | None = None  # close the connection after this many body bytes...
    drops: int = 0  # ...on this many requests
    length_delta: int = 0  # lie in Content-Length by this many bytes (once per `lies`)
    lies: int = 0
    chunk_delay: float = 0.0  # seconds between 64 KiB chunks
    delay: float = 0.0  # seconds before answering (a slow server, or a network round trip)
    redirect: str | None = None  # answer 302 to this location
    etag: str | None = None  # None: derived from the content, as static file servers do
    validators: bool = True  # send ETag and Last-Modified
    if_range: bool = True  # honour If-Range (a mismatch gets the whole file, 200); False: a server that ignores it

    def size(self) -> int:
        return len(self.data) if self.data is not None else self.file.stat().st_size

    def current_etag(self) -> str:
        if self.etag is not None:
            return self.etag
        if self.data is not None:
            return f'"{hashlib.sha1(self.data).hexdigest()[:16]}"'
        st = self.file.stat()
        return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'

    def last_modified(self) -> str:
        stamp = self.file.stat().st_mtime if self.file is not None else 1_700_000_000 + len(self.current_etag())
        return formatdate(stamp, usegmt=True)


@dataclass
class Hit:
    path: str
    range: str | None
    status: int
    sent: int
    auth: str | None = None  # the Authorization header (user:password from the URL arrives as Basic auth)
    query: str = ""
    if_range: str | None = None
    cookie: str | None = None


class FaultServer:
    """``with FaultServer() as srv: srv.add("/a.bin", Route(data=...)); url = srv.url("/a.bin")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.active = 0  # requests being answered right now, and the most at once (per-host limit tests)
        self.max_active = 0
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)

    def hits_for(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def sent(self, path: str) -> int:
        return sum(h.sent for h in self.hits_for(path))


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 drops connections when many clients start at once
    daemon_threads = True


_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_CHUNK = 1 << 16


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_ref: FaultServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _log(self, status: int, sent: int) -> None:
        with self.server_ref.lock:
            path, _, query = self.path.partition("?")
            self.server_ref.hits.append(Hit(path, self.headers.get("Range"), status, sent,
                                            self.headers.get("Authorization"), query, self.headers.get("If-Range"),
                                            self.headers.get("Cookie")))

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self._log(status, 0)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        srv = self.server_ref
        path = self.path.split("?")[0]
        route = srv.routes.get(path)
        if route is None:
            return self._empty(404)
        if route.delay:
            time.sleep(route.delay)
        with srv.lock:
            status = route.statuses.pop(0) if route.statuses else None
        if status is not None:
            extra = {"Retry-After": route.retry_after} if route.retry_after and status in (429, 503) else {}
            return self._empty(status, extra)
        if route.redirect:
            return self._empty(302, {"Location": route.redirect})
        size = route.size()
        start, end, code = 0, size - 1, 200
        match = _RANGE.match(self.headers.get("Range", "")) if route.ranges else None
        if_range = self.headers.get("If-Range")
        if match and if_range and route.if_range and if_range not in (route.current_etag(), route.last_modified()):
            match = None  # the client's copy is of another version: send the whole file
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                extra = {"ETag": route.current_etag(), "Last-Modified": route.last_modified()} if route.validators else {}
                return self._empty(416, {"Content-Range": f"bytes */{size}", **extra})
            code = 206
        length = end - start + 1
        with srv.lock:
            lie = route.length_delta if route.lies > 0 else 0
            route.lies -= 1 if lie else 0
            drop = route.drop_after if route.drops > 0 else None
            route.drops -= 1 if drop is not None else 0
        self.send_response(code)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(length + lie))
        if route.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if route.validators:
            self.send_header("ETag", route.current_etag())
            self.send_header("Last-Modified", route.last_modified())
        self.end_headers()
        if head:
            return self._log(code, 0)
        budget = length if drop is None else min(length, drop)
        with srv.lock:
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
        left = [True]

        def finishing() -> None:
            # counted out before the last chunk goes: a client cannot have finished (and started another
            # request) before that, so a busy machine cannot make the count run high
            if left[0]:
                left[0] = False
                with srv.lock:
                    srv.active -= 1

        try:
            sent = self._body(route, start, budget, finishing)
        finally:
            finishing()
        self._log(code, sent)
        if drop is not None or lie:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _body(self, route: Route, start: int, budget: int, finishing) -> int:  # noqa: ANN001
        sent = 0
        try:
            if route.file is not None and not route.chunk_delay:
                with open(route.file, "rb") as fh:
                    self.wfile.flush()
                    return self.connection.sendfile(fh, offset=start, count=budget) if budget else 0
            with contextlib.ExitStack() as stack:
                view = memoryview(route.data) if route.data is not None else None
                fh = stack.enter_context(open(route.file, "rb")) if view is None else None
                while sent < budget:
                    n = min(_CHUNK, budget - sent)
                    chunk = view[start + sent : start + sent + n] if view is not None else os.pread(fh.fileno(), n, start + sent)
                    if route.chunk_delay and sent:
                        time.sleep(route.chunk_delay)  # between chunks, never after the last one
                    if sent + n >= budget:
                        finishing()
                    self.wfile.write(chunk)
                    sent += n
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return sent
