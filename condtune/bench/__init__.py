"""The comparative benchmark: every method against the same base policy, proxy scorer,
held-out prompts and generation settings, judged by gold raters that are not the proxy.

* :mod:`~condtune.bench.settings`: the typed config, one block per method, and the sweeps that
  make each baseline a frontier;
* :mod:`~condtune.bench.task`: the task interface (data, neutral prompts, what raters read, the
  proxy/gold rating split); one module per task in :mod:`condtune.bench.tasks`;
* :mod:`~condtune.bench.raters`: the proxy, the MiniLM gold rater and the n-gram gold2;
* :mod:`~condtune.bench.methods`: one ``train_<method>`` per method, each one run per seed and
  setting, snapshotted on the way;
* :mod:`~condtune.bench.evaluation`: samples, exact KL of what was sampled, ratings; the data ceiling;
* :mod:`~condtune.bench.store`: results.jsonl + samples/, so reruns resume;
* :mod:`~condtune.bench.stats`: bootstrap intervals over prompts, pooled over seeds;
* :mod:`~condtune.bench.report`: summary.json (fixed schema) and table.md;
* :mod:`~condtune.bench.plots`: the two plots (reward against KL, requested against achieved);
* :mod:`~condtune.bench.runner`: the orchestration.
"""
