"""Collecting human ratings: sample completions for annotation, rate them on a local web page,
store every answer in SQLite exactly once, export pointwise/pairwise files and a ranking.

    condtune sample --model smollm2-135m --prompts prompts.txt -n 4 --out runs/rating/tasks.jsonl
    condtune rate runs/rating/tasks.jsonl                # http://127.0.0.1:8765/
    condtune rate runs/rating/tasks.jsonl --export       # -> runs/rating/ratings/*.jsonl, ranking.json

Modules: :mod:`~condtune.rate.task` (task files), :mod:`~condtune.rate.store` (SQLite),
:mod:`~condtune.rate.server` and :mod:`~condtune.rate.pages` (the web page),
:mod:`~condtune.rate.elo` (Elo / Bradley-Terry), :mod:`~condtune.rate.export`.
"""
