"""`condtune rate` killed with SIGKILL (kill -9, no chance to clean up) while raters are posting:
every answer the server acknowledged (303) is in the database exactly once, the database passes
SQLite's integrity check, and a restarted server carries on: it never serves a rater an item they
have answered, and a replayed post of an answered item is refused (409)."""

from __future__ import annotations

import http.client
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlencode

from condtune.io import write_json, write_jsonl
from condtune.rate.task import TaskItem, card_path, make_item_id

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = [f"Review {i}:" for i in range(8)]
COMPLETIONS = ["Lovely.", "Dull.", "Fine, I guess.", "Awful!"]


def _task(tmp_path: Path) -> Path:
    items = [
        TaskItem(make_item_id("m", p, sample_index=j, completion=c), p, c, "m", j)
        for p in PROMPTS
        for j, c in enumerate(COMPLETIONS)
    ]  # 32 items, 48 pairs
    path = write_jsonl(tmp_path / "tasks.jsonl", (asdict(i) for i in items))
    write_json(card_path(path), {"scale": {"min": -4, "max": 4}})
    return path


def _start(task: Path, db: Path) -> tuple[subprocess.Popen, int]:
    code = "import sys; from condtune.commands.rate import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code, str(task), f"db={db}", "port=0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for _ in range(50):  # the banner comes within a few lines
        line = proc.stdout.readline()
        if line.startswith("rating page: "):
            return proc, int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
    proc.kill()
    raise AssertionError(f"no banner: {proc.communicate()[0]}")


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        headers = {"Host": f"127.0.0.1:{port}"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        con.request(method, path, body=body, headers=headers)
        resp = con.getresponse()
        return resp.status, resp.read().decode("utf-8")
    finally:
        con.close()


def _form(port: int, rater: str, mode: str) -> dict | None:
    status, body = _request(port, "GET", "/rate?" + urlencode({"rater": rater, "mode": mode}))
    assert status == 200, body
    if 'id="done"' in body:
        return None
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', body))


def _post(port: int, form: dict) -> int:
    return _request(port, "POST", "/rate", urlencode(form).encode())[0]


def _rater(port, name, mode, acked, stop) -> None:
    """Answer as fast as the server allows until the server dies; record what it acknowledged."""
    step = 0
    while not stop.is_set():
        try:
            form = _form(port, name, mode)
            if form is None:
                return
            value = str(step % 9 - 4) if mode == "score" else ("left", "right", "tie")[step % 3]
            if _post(port, {**form, "value": value}) == 303:
                acked.append((form["target"], value, form))
        except (OSError, http.client.HTTPException):
            return  # the server is gone
        step += 1


def test_kill_9_mid_rating_loses_and_duplicates_nothing(tmp_path):
    task, db = _task(tmp_path), tmp_path / "tasks.ratings.sqlite"
    proc, port = _start(task, db)
    raters = {"ann": "score", "bob": "score", "cy": "ab"}
    acked: dict[str, list] = {name: [] for name in raters}
    stop = threading.Event()
    threads = [threading.Thread(target=_rater, args=(port, n, m, acked[n], stop)) for n, m in raters.items()]
    try:
        for t in threads:
            t.start()
        while sum(map(len, acked.values())) < 12 and proc.poll() is None and any(t.is_alive() for t in threads):
            threads[0].join(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-stream: posts are in flight
        proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert proc.returncode == -signal.SIGKILL and sum(map(len, acked.values())) >= 12

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    scores = con.execute("SELECT rater, item_id, score FROM scores").fetchall()
    pairs = con.execute("SELECT rater, pair_id, choice FROM comparisons").fetchall()
    con.close()
    stored = {(r, i, str(int(s))) for r, i, s in scores} | {(r, str(p), c) for r, p, c in pairs}
    for name, answers in acked.items():
        for target, value, _ in answers:  # every acknowledged answer survived the kill
            assert (name, target, value) in stored, (name, target, value)
        # at most the one answer in flight at the kill is stored without its acknowledgement
        assert len([s for s in stored if s[0] == name]) - len(answers) in (0, 1)
    assert len(scores) == len({(r, i) for r, i, _ in scores}) and len(pairs) == len({(r, p) for r, p, _ in pairs})

    proc, port = _start(task, db)  # restarted on the same database
    try:
        done = {(r, t) for r, t, _ in stored}
        for name, mode in raters.items():
            form = _form(port, name, mode)
            assert form is not None and (name, form["target"]) not in done  # carries on, never repeats
        _, value, form = acked["ann"][0]
        assert _post(port, {**form, "value": value}) == 409  # the same post again, after the restart: a duplicate
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in out
