"""HTTP-level behaviour and safety of the rating server (no browser needed)."""

from __future__ import annotations

import html
from urllib.parse import urlencode

import pytest
from rate_helpers import XSS

from condtune.rate.server import make_server, page_token


def _counts(store):
    return len(store.score_rows()), len(store.comparison_rows())


def test_binds_loopback_by_default(server):
    assert server.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")


def test_home_and_headers(client):
    status, body, headers = client.get("/")
    assert status == 200 and "9 completions" in body and "9 A/B pairs" in body
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp and "form-action 'self'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"


def test_model_text_is_escaped(client, store):
    # walk alice through every item; the page holding the XSS completion shows it as text
    found = False
    for _ in range(9):
        status, body, _ = client.get("/rate?rater=alice&mode=score")
        assert "<script>window" not in body and "<img src=x" not in body and "<b>bold</b>" not in body
        if html.escape(XSS, quote=True) in body:
            found = True
        form = client.page_form("alice", "score")
        assert client.post({**form, "value": "0"})[0] == 303
    assert found


def test_post_roundtrip_redirects_and_saves(client, store):
    form = client.page_form("alice", "score")
    status, _, headers = client.post({**form, "value": "3"})
    assert status == 303 and headers["Location"] == "/rate?rater=alice&mode=score&saved=1"
    assert [(r["item_id"], r["score"]) for r in store.score_rows()] == [(form["target"], 3.0)]
    status, body, _ = client.get(headers["Location"])
    assert 'id="saved"' in body and "1 / 9 items done by you" in body


def test_duplicate_post_is_409_and_changes_nothing(client, store):
    form = client.page_form("alice", "score")
    assert client.post({**form, "value": "2"})[0] == 303
    status, body, _ = client.post({**form, "value": "-3"})
    assert status == 409 and "already rated" in body
    assert [r["score"] for r in store.score_rows()] == [2.0]


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"token": "0" * 40}, 403, "page token"),
        ({"token": ""}, 403, "page token"),
        ({"value": "9"}, 400, "integer from -4 to 4"),
        ({"value": "good"}, 400, "value must be an integer"),
        ({"mode": "stars"}, 400, "mode must be one of"),
        ({"rater": "<x>"}, 400, "rater name"),
        ({"rater": "mallory"}, 403, "page token"),  # alice's token does not work for another rater
    ],
)
def test_bad_posts_are_4xx_and_change_nothing(client, store, change, status, message):
    form = client.page_form("alice", "score")
    got, body, _ = client.post({**form, "value": "1", **change})
    assert got == status and message in html.unescape(body)
    assert _counts(store) == (0, 0)


def test_form_shape_is_checked(client, store):
    form = {**client.page_form("alice", "score"), "value": "1"}
    missing = {k: v for k, v in form.items() if k != "token"}
    assert client.post(missing)[0] == 400
    assert client.post({**form, "extra": "1"})[0] == 400
    assert client.post(list(form.items()) + [("value", "2")])[0] == 400  # a repeated field
    body = urlencode(form).encode()
    assert client.request("POST", "/rate", body, {"Content-Type": "text/plain"})[0] == 415
    assert (
        client.request("POST", "/rate", b"x" * 20000, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 413
    )
    assert client.request("POST", "/rate", b"%zz&&", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 400
    assert client.post(form, path="/")[0] == 404
    assert client.post(form, headers={"Origin": "http://evil.example"})[0] == 403
    assert client.post(form, headers={"Host": "evil.example:80"})[0] == 421
    assert _counts(store) == (0, 0)
    assert client.post(form)[0] == 303 and _counts(store) == (1, 0)


def test_unknown_item_with_a_valid_token_is_404(client, store, server):
    token = page_token(server.secret, rater="alice", mode="score", target="nope")
    status, body, _ = client.post({"rater": "alice", "mode": "score", "target": "nope", "value": "1", "token": token})
    assert status == 404 and "no item" in body and _counts(store) == (0, 0)


def test_ab_mode_posts(client, store):
    form = client.page_form("bob", "ab")
    assert client.post({**form, "value": "both"})[0] == 400
    assert client.post({**form, "value": "left"})[0] == 303
    assert client.post({**form, "value": "right"})[0] == 409
    row = store.comparison_rows()[0]
    assert row["choice"] == "left" and row["rater"] == "bob" and str(row["pair_id"]) == form["target"]
    # a score-mode token cannot be replayed as an A/B answer
    sform = client.page_form("bob", "score")
    assert client.post({**sform, "mode": "ab", "target": form["target"], "value": "tie"})[0] == 403


def test_done_page_and_progress_api(client, store):
    for _ in range(9):
        form = client.page_form("dave", "score")
        assert client.post({**form, "value": "skip"})[0] == 303
    assert client.page_form("dave", "score") is None
    status, body, _ = client.get("/api/progress?rater=dave&mode=score")
    assert status == 200 and '"done": 9' in body and '"ratings": 0' in body


def test_bad_name_on_start_page_is_400_with_message(client):
    status, body, _ = client.get("/rate?rater=%3Cscript%3E&mode=score")
    assert status == 400 and 'id="error"' in body and "<script>" not in body


def test_other_host_is_allowed_when_bound_wide(store):
    srv = make_server(store, "0.0.0.0", 0)
    try:
        assert srv.allowed_hosts is None
    finally:
        srv.server_close()
