"""Hostile requests to the rating page beyond those of tests/rate/test_rate_server.py: broken or
lying request framing, methods and paths it does not serve, oversized or malformed lines, bodies
that are not UTF-8, numbers that are not scores, and a client that stalls mid-body. Each gets a
4xx/5xx answer (or none, for what is not HTTP), stores nothing, leaves no traceback, and the
server goes on answering everyone else."""

from __future__ import annotations

import logging
import re
import socket
import threading
from urllib.parse import urlencode

import pytest

from condtune.rate.server import make_server, page_token
from condtune.rate.store import Store
from condtune.rate.task import TaskItem, make_item_id

FORM = "Content-Type: application/x-www-form-urlencoded\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    items = [
        TaskItem(make_item_id("m", "Review:", sample_index=j, completion=c), "Review:", c, "m", j)
        for j, c in enumerate(["Good.", "Bad."])
    ]
    store = Store(tmp_path_factory.mktemp("hostile") / "r.sqlite")
    store.set_scale(-4, 4)
    store.import_items(items)
    srv = make_server(store, "127.0.0.1", 0)
    handler, old = srv.RequestHandlerClass, srv.RequestHandlerClass.timeout
    handler.timeout = 3  # per socket read: the stalled-client case waits this long, not 30 s
    srv.start_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()
    handler.timeout = old


def _raw(port: int, data: bytes, wait: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(wait)
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def _status(response: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response) or re.search(rb"Error code: (\d{3})", response)
    return int(m.group(1)) if m else None


def _post_form(server) -> str:
    """A well-formed score post for ann (a real token): the requests below each break one thing about it."""
    item = server.store.next_item("ann").item_id
    token = page_token(server.secret, rater="ann", mode="score", target=item)
    return urlencode({"rater": "ann", "mode": "score", "target": item, "token": token})


HOSTILE = {
    # request framing
    "POST without Content-Length": (lambda h, f: f"POST /rate HTTP/1.1\r\n{h}{FORM}\r\n{f}&value=1", 411),
    "negative Content-Length": (lambda h, f: f"POST /rate HTTP/1.1\r\n{h}{FORM}Content-Length: -5\r\n\r\n", 411),
    "Content-Length not a number": (lambda h, f: f"POST /rate HTTP/1.1\r\n{h}{FORM}Content-Length: ten\r\n\r\n", 411),
    "header line of 70 kB": (lambda h, f: f"GET / HTTP/1.1\r\n{h}X-Junk: {'a' * 70000}\r\n\r\n", 431),
    "no Host header": (lambda h, f: "GET / HTTP/1.1\r\n\r\n", 421),
    "TLS handshake bytes on the HTTP port": (
        lambda h, f: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n",
        400,
    ),
    # methods and paths it does not serve
    "PUT": (lambda h, f: f"PUT /rate HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n", 501),
    "DELETE": (lambda h, f: f"DELETE /rate HTTP/1.1\r\n{h}\r\n", 501),
    "path traversal": (lambda h, f: f"GET /../../etc/passwd HTTP/1.1\r\n{h}\r\n", 404),
    "encoded path traversal": (lambda h, f: f"GET /static/..%2f..%2fetc%2fpasswd HTTP/1.1\r\n{h}\r\n", 404),
    # query strings
    "rater name of 10 kB": (lambda h, f: f"GET /rate?rater={'a' * 10000}&mode=score HTTP/1.1\r\n{h}\r\n", 400),
    "NUL byte in the rater name": (lambda h, f: f"GET /rate?rater=a%00b&mode=score HTTP/1.1\r\n{h}\r\n", 400),
    "mode that is a path": (lambda h, f: f"GET /rate?rater=ann&mode=..%2F..%2Fx HTTP/1.1\r\n{h}\r\n", 400),
    "progress API for a bad name": (
        lambda h, f: f"GET /api/progress?rater=%3Cx%3E&mode=score HTTP/1.1\r\n{h}\r\n",
        400,
    ),
    "progress API without a rater": (lambda h, f: f"GET /api/progress HTTP/1.1\r\n{h}\r\n", 400),
    # bodies
    "form body not UTF-8": (lambda h, f: _with_body(h, f + "&value=%ff%fe"), 400),
    "score 1e9": (lambda h, f: _with_body(h, f + "&value=1e9"), 400),
    "score nan": (lambda h, f: _with_body(h, f + "&value=nan"), 400),
    "score inf": (lambda h, f: _with_body(h, f + "&value=inf"), 400),
    "score -0.5": (lambda h, f: _with_body(h, f + "&value=-0.5"), 400),
}


def _with_body(host: str, body: str) -> str:
    return f"POST /rate HTTP/1.1\r\n{host}{FORM}Content-Length: {len(body.encode())}\r\n\r\n{body}"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_request_is_refused_and_changes_nothing(server, name, capfd, caplog):
    build, status = HOSTILE[name]
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    with caplog.at_level(logging.WARNING, logger="condtune.rate"):
        response = _raw(server.port, build(host, _post_form(server)).encode("latin-1"))
    assert _status(response) == status, response[:300]
    assert server.store.score_rows() == [] and server.store.comparison_rows() == []
    assert "Traceback" not in capfd.readouterr().err + caplog.text
    ok = _raw(server.port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode())
    assert _status(ok) == 200  # still serving


def test_a_stalled_client_blocks_no_one(server, capfd):
    """Content-Length says 100 bytes, 7 arrive, the client waits: others are served meanwhile, and the
    stalled connection is dropped after the server's read timeout with nothing stored."""
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    stalled = {}
    t = threading.Thread(
        target=lambda: stalled.update(
            r=_raw(server.port, f"POST /rate HTTP/1.1\r\n{host}{FORM}Content-Length: 100\r\n\r\nrater=a".encode(), 30)
        )
    )
    t.start()
    try:
        ok = _raw(server.port, f"GET / HTTP/1.1\r\n{host}Connection: close\r\n\r\n".encode())
        assert _status(ok) == 200
    finally:
        t.join(timeout=40)
    assert not t.is_alive() and server.store.score_rows() == []
    assert "Traceback" not in capfd.readouterr().err
