"""Shared fixtures for the rating tests: a small hand-made task, a store, a live server on
loopback, a tiny HTTP client, and a headless chromium (skipped cleanly when absent)."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
from rate_helpers import CHROMIUM, CHROMIUM_ARGS, Client, task_items

from condtune.io import write_json, write_jsonl
from condtune.rate.server import make_server
from condtune.rate.store import Store
from condtune.rate.task import card_path, load_task


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, (asdict(i) for i in task_items()))
    write_json(card_path(path), {"scale": {"min": -4, "max": 4}, "models": ["tiny"]})
    return path


@pytest.fixture
def store(tmp_path: Path, task_file: Path) -> Store:
    s = Store(tmp_path / "ratings.sqlite")
    s.set_scale(-4, 4)
    s.import_items(load_task(task_file), source=str(task_file))
    return s


@pytest.fixture
def server(store: Store):
    srv = make_server(store, "127.0.0.1", 0)
    srv.start_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def client(server) -> Client:
    return Client(server.port)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium through Playwright; skips when either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; .ci/run does it)")
    exe = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    if not exe:
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it when apt is available)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
    except Exception as exc:  # a broken install must not fail the suite
        pw.stop()
        pytest.skip(f"chromium at {exe} did not start under playwright: {exc}")
    yield b
    b.close()
    pw.stop()
