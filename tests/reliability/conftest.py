"""Fixtures of the reliability tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def old_scorer(tmp_path):
    """An output folder that already holds a (stand-in) trained scorer: a refused run must leave it alone."""
    out = tmp_path / "scorer"
    out.mkdir()
    (out / "scorer.json").write_text('{"trained": true}\n')
    return out
