"""Helpers shared by the rating tests (imported as ``rate_helpers``; pytest puts this folder on sys.path)."""

from __future__ import annotations

import http.client
import os
import re
from urllib.parse import urlencode

from condtune.rate.task import TaskItem, make_item_id

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
PROMPTS = ["Movie review: The plot was", "Tweet: Monday again,", 'Review: <b>bold</b> & "quoted"']
COMPLETIONS = [
    ["wonderful and moving.", "dull, I fell asleep.", XSS],
    ["coffee saves the day!", "ugh. rain and delays.", "fine, I guess."],
    ["an odd mix.", "great fun & games.", "'single' \"double\" </textarea>"],
]
CHROMIUM = os.environ.get("CONDTUNE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def task_items(model: str = "tiny", prompts=PROMPTS, completions=COMPLETIONS) -> list[TaskItem]:
    return [
        TaskItem(make_item_id(model, p, sample_index=j, completion=c), p, c, model, j)
        for p, cs in zip(prompts, completions)
        for j, c in enumerate(cs)
    ]


class Client:
    """A minimal HTTP client that sets exactly the headers it is given."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            hdrs = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            con.request(method, path, body=body, headers=hdrs)
            resp = con.getresponse()
            return resp.status, resp.read().decode("utf-8"), dict(resp.getheaders())
        finally:
            con.close()

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, fields: dict | list, headers: dict | None = None, path: str = "/rate"):
        body = urlencode(fields).encode()
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", path, body=body, headers=hdrs)

    def page_form(self, rater: str, mode: str) -> dict | None:
        """The hidden fields of the rating form served to ``rater`` (None when all done)."""
        status, body, _ = self.get("/rate?" + urlencode({"rater": rater, "mode": mode}))
        assert status == 200, body
        if 'id="done"' in body:
            return None
        return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', body))
