"""The rating page in a real headless chromium (Debian's, driven by Playwright).

Skipped, with the reason, when playwright or /usr/bin/chromium is missing. Set
CONDTUNE_SCREENSHOT=path.png to keep a screenshot of the score page.
"""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from rate_helpers import XSS

from condtune.rate.export import export

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors


def _start(page, server, name: str, mode: str) -> None:
    page.goto(server.url)
    page.fill("#name", name)
    if mode == "ab":
        page.check("#mode-ab")
    with page.expect_navigation():
        page.click("#start")


def _target(page) -> str:
    return page.get_attribute('input[name="target"]', "value")


def test_score_mode_keyboard_mouse_and_escaping(page, server, store, tmp_path):
    _start(page, server, "alice", "score")
    assert page.inner_text("#rater") == "alice" and "0 / 9 items" in page.inner_text("#progress")
    if os.environ.get("CONDTUNE_SCREENSHOT"):
        page.screenshot(path=os.environ["CONDTUNE_SCREENSHOT"], full_page=True)
    sent, saw_xss = {}, False
    for step in range(9):
        target = _target(page)
        if page.inner_text(".completion") == XSS:
            saw_xss = True  # the markup shows as text ...
        key, value = [("9", 4.0), ("1", -4.0), ("5", 0.0), ("s", None)][step % 4]
        with page.expect_navigation():
            if step == 2:
                page.click("#score-0")  # the mouse works as well as the keys
            else:
                page.keyboard.press(key)
        sent[target] = value
        assert page.is_visible("#saved") or page.is_visible("#done")
    assert saw_xss and page.evaluate("window.__pwned") is None  # ... and never runs
    assert page.is_visible("#done") and "9 / 9 items" in page.inner_text("#progress")

    con = sqlite3.connect(store.path)
    rows = dict(con.execute("SELECT item_id, score FROM scores WHERE rater='alice'").fetchall())
    con.close()
    assert rows == sent

    res = export(store, tmp_path / "ratings")
    points = [json.loads(line) for line in res.pointwise.read_text().splitlines()]
    assert len(points) == sum(v is not None for v in sent.values())
    assert all(set(p) == {"item_id", "prompt", "completion", "score", "rater"} for p in points)
    assert {p["item_id"]: p["score"] for p in points} == {k: v for k, v in sent.items() if v is not None}


def test_ab_mode_two_raters(page, server, store, tmp_path):
    keys = {"a": "left", "ArrowRight": "right", "t": "tie", "s": "skip", "ArrowLeft": "left", "b": "right"}
    sent = {}
    for rater in ("bob", "carol"):
        _start(page, server, rater, "ab")
        for _step, (key, choice) in enumerate(list(keys.items())[: 4 if rater == "bob" else 6]):
            left = page.inner_text(".completion.a")
            target = _target(page)
            with page.expect_navigation():
                page.keyboard.press(key)
            sent[(rater, target)] = (choice, left)
        assert f"{4 if rater == 'bob' else 6} / 9 pairs" in page.inner_text("#progress")

    con = sqlite3.connect(store.path)
    rows = con.execute(
        "SELECT c.rater, c.pair_id, c.choice, i.completion FROM comparisons c JOIN items i ON i.item_id = c.left_id"
    ).fetchall()
    con.close()
    assert {(r, str(p)): (c, left) for r, p, c, left in rows} == sent

    res = export(store, tmp_path / "ratings")
    pairs = [json.loads(line) for line in res.pairwise.read_text().splitlines()]
    decided = [(k, v) for k, v in sent.items() if v[0] in ("left", "right")]
    assert len(pairs) == len(decided) and {p["rater"] for p in pairs} == {"bob", "carol"}
    ranking = json.loads(res.ranking.read_text())
    assert ranking["ties"] == 2 and ranking["skips"] == 2  # one tie and one skip each
    assert res.counts["pairwise"] == len(decided)
