"""The comparative benchmark: every method against the same base policy, proxy scorer,
held-out prompts and generation settings, judged by a gold rater that is not the proxy.

* :mod:`condtune.bench.checkpoints`: the :class:`Checkpoint` record every trainer returns, and
  a trl callback that snapshots a run at chosen steps with its cost so far;
* :mod:`condtune.bench.metrics`: sampling with token ids, exact token-level KL(pi || pi_ref),
  the best-of-n KL bound, per-sample rewards;
* :mod:`condtune.bench.runner`: data, scorers, one ``train_<method>`` per method, the shared
  evaluation over checkpoints, and the resumable results store;
* :mod:`condtune.bench.report`: results.jsonl -> results.csv, table.md and the two plots.
"""
