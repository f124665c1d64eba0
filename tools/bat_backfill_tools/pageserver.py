"""A local stand-in for bringatrailer.com: serves listing pages from memory or a folder."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    drop_connection: bool = False  # close the socket without an answer


class PageServer:
    """Paths -> replies; `hits` counts requests per path. Runs in a daemon thread."""

    def __init__(self, routes: Mapping[str, Reply | str] | None = None) -> None:
        self.routes: dict[str, Reply] = {}
        self.hits: dict[str, int] = {}
        self._once: dict[str, list[Reply]] = {}
        # Called with each request path before it is answered (fault injection in tests).
        self.on_request: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        for path, reply in (routes or {}).items():
            self.set(path, reply)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes; with Nagle on, the body waits for
            # the client's delayed ACK (tens of milliseconds per page on loopback).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                server._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client hanging up (timeouts, dropped connections in tests) is expected.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def set(self, path: str, reply: Reply | str) -> None:
        if isinstance(reply, str):
            reply = Reply(200, reply.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"})
        with self._lock:
            self.routes[path] = reply

    def fail_first(self, path: str, *replies: Reply) -> None:
        """Answer the next requests for `path` with `replies`, then as routed."""
        with self._lock:
            self._once.setdefault(path, []).extend(replies)

    def set_listing(self, slug: str, reply: Reply | str) -> None:
        self.set(f"/listing/{slug}/", reply)

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path
        if self.on_request is not None:
            self.on_request(path)
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            queued = self._once.get(path)
            reply: Reply | None
            if queued:
                reply = queued.pop(0)
            else:
                reply = self.routes.get(path) or self.routes.get(path.split("?", 1)[0])
        if reply is None:
            reply = Reply(
                404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"}
            )
        if reply.delay_seconds:
            time.sleep(reply.delay_seconds)
        if reply.drop_connection:
            request.close_connection = True
            request.connection.close()
            return
        request.send_response(reply.status)
        headers = {"Content-Type": "text/html; charset=utf-8", **reply.headers}
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(reply.body)))
        request.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            request.wfile.write(reply.body)

    def start(self) -> PageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> PageServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_folder(folder: Path) -> PageServer:
    """Every NAME.html in `folder` as /listing/NAME/ (a folder of saved real pages)."""
    server = PageServer()
    for page in sorted(folder.glob("*.html")):
        slug = page.stem.removesuffix(".browser-save")
        server.set_listing(slug, page.read_text(encoding="utf-8", errors="replace"))
    return server
