"""The local rating web server (stdlib ``http.server``, one thread per request).

Routes
  ``GET  /``                          start page: name + mode
  ``GET  /rate?rater=NAME&mode=M``    the next item (``score``) or pair (``ab``) for this rater
  ``POST /rate``                      one answer; 303 back to ``GET /rate`` on success
  ``GET  /api/progress?rater=&mode=`` progress as JSON

Safety: binds to 127.0.0.1 unless told otherwise, and then also refuses foreign ``Host``
headers (DNS rebinding). A post must carry the page's token, an HMAC of (rater, mode,
target) under a secret kept in the database, so another site cannot forge one and a rater
can only answer what was served. Bad posts get 400/403/404/411/413/415, a repeat gets 409,
and none of them changes anything. Pages are served with a strict Content-Security-Policy.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import json
import logging
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from condtune.config import ConfigError
from condtune.rate import pages
from condtune.rate.pages import PageText
from condtune.rate.store import RatingError, Store, check_rater

log = logging.getLogger("condtune.rate")

MODES = ("score", "ab")
POST_FIELDS = {"rater", "mode", "target", "value", "token"}
MAX_BODY = 16 * 1024
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
"""a client that disconnects before its answer is written: not an error of the server"""


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_token(secret: bytes, *, rater: str, mode: str, target: str) -> str:
    msg = "\x00".join((rater, mode, target)).encode("utf-8")
    return hmac.new(secret, msg, "sha256").hexdigest()[:40]


class RatingServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the store, the page wording and the token secret."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, store: Store, host: str = "127.0.0.1", port: int = 8765, *, text: PageText = PageText()):
        self.store, self.text, self.secret = store, text, store.secret
        self.scale = store.scale
        super().__init__((host, port), Handler)
        self.port = self.server_address[1]
        self.allowed_hosts = (
            {f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")} if is_loopback(host) else None
        )

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}/"

    def start_in_thread(self, poll_interval: float = 0.05) -> threading.Thread:
        """Serve from a daemon thread (tests, notebooks); stop with ``shutdown()``."""
        thread = threading.Thread(target=self.serve_forever, args=(poll_interval,), name="condtune-rate", daemon=True)
        thread.start()
        return thread


class Handler(BaseHTTPRequestHandler):
    server: RatingServer
    server_version = "condtune-rate/1"
    timeout = 30  # seconds per socket read: a stalled client cannot hold a thread forever

    # ------------------------------------------------------------------ plumbing
    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(
        self,
        status: int,
        body: str,
        ctype: str = "text/html; charset=utf-8",
        nonce: str = "",
        extra: dict | None = None,
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        )
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, err: HTTPError) -> None:
        nonce = secrets.token_urlsafe(12)
        reason = HTTPStatus(err.status).phrase
        if "application/json" in self.headers.get("Accept", ""):
            self._send(err.status, json.dumps({"error": err.message, "status": err.status}), "application/json")
        else:
            self._send(err.status, pages.error_page(err.status, reason, err.message, nonce=nonce), nonce=nonce)

    def _check_host(self) -> None:
        allowed = self.server.allowed_hosts
        if allowed is not None and self.headers.get("Host", "") not in allowed:
            raise HTTPError(421, f"unexpected Host header {self.headers.get('Host')!r}; use {self.server.url}")

    def _query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    def _dispatch(self, routes: dict) -> None:
        try:
            self._check_host()
            route = routes.get(urlsplit(self.path).path)
            if route is None:
                raise HTTPError(404, f"no page at {urlsplit(self.path).path}")
            route()
        except CLIENT_GONE:
            raise  # nobody to answer (handle_one_request drops it quietly)
        except HTTPError as err:
            self._error(err)
        except RatingError as err:
            self._error(HTTPError(err.status, str(err)))
        except Exception:  # never leak a traceback to the page; keep serving
            log.exception("error while handling %s %s", self.command, self.path)
            self._error(HTTPError(500, "internal error (see the server log)"))

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except CLIENT_GONE:  # the browser closed the tab or the connection mid-answer: nothing to report
            self.close_connection = True
            log.debug("%s went away mid-request", self.address_string())

    def do_GET(self) -> None:
        self._dispatch({"/": self.home, "/rate": self.rate_page, "/api/progress": self.api_progress})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self._dispatch({"/rate": self.rate_post})

    # ------------------------------------------------------------------ pages
    def _rater_mode(self, q: dict[str, str]) -> tuple[str, str]:
        mode = q.get("mode", "score")
        if mode not in MODES:
            raise HTTPError(400, f"mode must be one of {list(MODES)}, got {mode!r}")
        return check_rater(q.get("rater", "")), mode

    def home(self) -> None:
        store, nonce = self.server.store, secrets.token_urlsafe(12)
        p_score, p_ab = store.progress("", "score"), store.progress("", "ab")
        body = pages.home_page(
            p_score.total, p_ab.total, store.raters(), scale=self.server.scale, text=self.server.text, nonce=nonce
        )
        self._send(200, body, nonce=nonce)

    def rate_page(self) -> None:
        q = self._query()
        try:
            rater, mode = self._rater_mode(q)
        except RatingError as err:  # a bad name typed on the start page: show it there
            nonce, store = secrets.token_urlsafe(12), self.server.store
            body = pages.home_page(
                store.progress("", "score").total,
                store.progress("", "ab").total,
                store.raters(),
                scale=self.server.scale,
                text=self.server.text,
                nonce=nonce,
                error=str(err),
            )
            return self._send(400, body, nonce=nonce)
        store, text, nonce, saved = (
            self.server.store,
            self.server.text,
            secrets.token_urlsafe(12),
            q.get("saved") == "1",
        )
        progress = store.progress(rater, mode)
        if mode == "score":
            item = store.next_item(rater)
            if item is not None:
                token = page_token(self.server.secret, rater=rater, mode=mode, target=item.item_id)
                return self._send(
                    200,
                    pages.score_page(
                        item,
                        rater,
                        scale=self.server.scale,
                        token=token,
                        progress=progress,
                        text=text,
                        saved=saved,
                        nonce=nonce,
                    ),
                    nonce=nonce,
                )
        else:
            pair = store.next_pair(rater)
            if pair is not None:
                token = page_token(self.server.secret, rater=rater, mode=mode, target=str(pair.pair_id))
                return self._send(
                    200,
                    pages.ab_page(pair, rater, token=token, progress=progress, text=text, saved=saved, nonce=nonce),
                    nonce=nonce,
                )
        self._send(200, pages.done_page(rater, mode, progress=progress, text=text, nonce=nonce), nonce=nonce)

    def api_progress(self) -> None:
        rater, mode = self._rater_mode(self._query())
        self._send(200, json.dumps(self.server.store.progress(rater, mode)._asdict()), "application/json")

    # ------------------------------------------------------------------ posts
    def _form(self) -> dict[str, str]:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise HTTPError(
                415, f"expected a form post (application/x-www-form-urlencoded), got {ctype or 'no content type'!r}"
            )
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise HTTPError(411, "a Content-Length header is required")
        if int(length) > MAX_BODY:
            raise HTTPError(413, f"form too large ({length} bytes; at most {MAX_BODY})")
        raw = self.rfile.read(int(length))
        try:
            fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPError(400, f"malformed form body: {exc}") from None
        unknown, missing = set(fields) - POST_FIELDS, POST_FIELDS - set(fields)
        repeated = sorted(k for k, v in fields.items() if len(v) != 1)
        if unknown or missing or repeated:
            raise HTTPError(
                400,
                f"form fields must be exactly {sorted(POST_FIELDS)} once each "
                f"(missing {sorted(missing)}, unknown {sorted(unknown)}, repeated {repeated})",
            )
        return {k: v[0] for k, v in fields.items()}

    def _check_origin(self) -> None:
        origin = self.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != self.headers.get("Host", ""):
            raise HTTPError(403, f"cross-origin post from {origin!r} refused")

    def rate_post(self) -> None:
        self._check_origin()
        form = self._form()
        rater, mode = self._rater_mode(form)
        target, value = form["target"], form["value"]
        expected = page_token(self.server.secret, rater=rater, mode=mode, target=target)
        if not hmac.compare_digest(expected, form["token"]):
            raise HTTPError(403, "missing or wrong page token: reload the rating page and try again")
        store = self.server.store
        if mode == "score":
            score = None if value == "skip" else _parse_int(value, "value")
            row = store.add_score(rater, target, None if score is None else float(score))
        else:
            row = store.add_comparison(rater, _parse_int(target, "target"), value)
        log.info("saved #%d: %s %s %s = %s", row, rater, mode, target, value)
        location = "/rate?" + urlencode({"rater": rater, "mode": mode, "saved": "1"})
        self._send(303, f'<a href="{pages.h(location)}">next</a>', extra={"Location": location})


def _parse_int(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise HTTPError(400, f"{field} must be an integer, got {value!r}") from None


def make_server(
    store: Store, host: str = "127.0.0.1", port: int = 8765, *, text: PageText = PageText()
) -> RatingServer:
    """Bind (port 0 picks a free port); call ``serve_forever()`` or ``start_in_thread()``. A port in
    use or an address this machine does not have is a :class:`~condtune.config.ConfigError`."""
    if not is_loopback(host):
        log.warning("binding to %s: anyone who can reach this address can rate and read the task", host)
    try:
        return RatingServer(store, host, port, text=text)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port={port}: already in use on {host} (another `condtune rate`?); stop it, or pick another "
                "port= (port=0: any free one)"
            ) from None
        raise ConfigError(f"host={host} port={port}: cannot serve there ({exc.strerror or exc})") from None
