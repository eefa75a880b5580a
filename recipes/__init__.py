"""Worked recipes on condtune's Python API (not installed; run from a clone)."""
