"""Benchmark tasks, one module each; a module defines ``TASK`` (see :mod:`condtune.bench.task`)."""
