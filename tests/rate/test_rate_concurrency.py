"""Several raters posting at once over loopback: every answer is stored exactly once."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

from rate_helpers import Client

RATERS = [("r0", "score"), ("r1", "score"), ("r2", "score"), ("r3", "ab"), ("r4", "ab"), ("r5", "score")]
MAX_STEPS = 12  # 9 items / 9 pairs each: a bounded loop


def _rater(port: int, name: str, mode: str, start: threading.Barrier) -> tuple[list, list]:
    """Answer everything; every answer is posted twice at the same moment. Returns (answers, statuses)."""
    client, answers, statuses = Client(port), [], []
    start.wait(timeout=20)
    for step in range(MAX_STEPS):
        form = client.page_form(name, mode)
        if form is None:
            break
        value = str(step % 9 - 4) if mode == "score" else ("left", "right", "tie", "skip")[step % 4]
        twice = threading.Barrier(2)

        def post(twice=twice, form=form, value=value) -> int:
            twice.wait(timeout=20)
            return client.post({**form, "value": value})[0]

        with ThreadPoolExecutor(2) as pool:
            codes = sorted(f.result() for f in [pool.submit(post), pool.submit(post)])
        statuses.append(codes)
        answers.append((form["target"], value))
    return answers, statuses


def test_concurrent_raters_exactly_once(server, store):
    start = threading.Barrier(len(RATERS))
    with ThreadPoolExecutor(len(RATERS)) as pool:
        futures = {name: pool.submit(_rater, server.port, name, mode, start) for name, mode in RATERS}
        results = {name: f.result(timeout=120) for name, f in futures.items()}

    for name, _mode in RATERS:
        answers, statuses = results[name]
        assert len(answers) == 9, (name, answers)  # finished within the bounded loop
        assert all(codes == [303, 409] for codes in statuses), (name, statuses)  # one stored, one refused
        assert len({t for t, _ in answers}) == 9  # never served the same thing twice

    con = sqlite3.connect(store.path)
    score_rows = con.execute("SELECT rater, item_id, score FROM scores").fetchall()
    ab_rows = con.execute("SELECT rater, pair_id, choice FROM comparisons").fetchall()
    con.close()
    n_score = sum(mode == "score" for _, mode in RATERS)
    assert len(score_rows) == 9 * n_score and len(set((r, i) for r, i, _ in score_rows)) == len(score_rows)
    assert len(ab_rows) == 9 * (len(RATERS) - n_score)
    for name, mode in RATERS:
        expected = {(t, v) for t, v in results[name][0]}
        if mode == "score":
            stored = {(i, "skip" if s is None else str(int(s))) for r, i, s in score_rows if r == name}
        else:
            stored = {(str(p), c) for r, p, c in ab_rows if r == name}
        assert stored == expected, name
