"""Benchmarks for leanguard: the rule engine and the running service, each beside a baseline.

``make bench`` (``python -m bench``) runs every part; ``python -m bench rules`` or
``python -m bench service`` runs one. Every figure is measured in the run that prints it, next
to a baseline measured the same way in the same run, and compared with its budget. Verdicts
(PASS/MISS) are informational: the exit code is 0 unless a benchmark itself breaks.

- ``rules`` (:mod:`bench.evaluation`): ``rules.evaluate(item, rules.preset())`` on realistic
  Jira epics from ``bench/fixtures`` beside ``json.loads`` of the same payload; one core.
  ``--profile`` prints a cProfile of every variant (it is printed anyway for those that miss).
- ``service`` (:mod:`bench.service`): ``leanguard serve`` under gunicorn on PostgreSQL and
  Redis beside a bare Flask app (:mod:`bench.baseline_app`), rq workers writing to a local fake
  Jira (:mod:`bench.fake_jira`), load from :mod:`bench.loadgen`; all on 127.0.0.1. It creates
  and drops the database ``leanguard_bench`` and flushes its Redis database before and after.
  ``LEANGUARD_BENCH_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``,
  the server to create the database on) and ``LEANGUARD_BENCH_REDIS_URL`` (default
  ``redis://127.0.0.1:6379/14``; database 0 is refused) say where; ``--logs DIR`` keeps the
  output of every process it starts.
"""
