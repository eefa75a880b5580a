"""Diagnostics and experiments behind docs/benchmarks.md; not part of the installed package (see README.md)."""
