"""Runs: many scenarios replayed across the same models as one command (``kurabe run``), at the
speed the endpoints allow.

- :mod:`kurabe.runs.endpoints`: what an endpoint is (a base_url or the provider's API, with a
  hash of its key; a local model file) and its adaptive concurrency limit (lowered on a 429,
  raised again after successes);
- :mod:`kurabe.runs.attempts`: the one retry layer: each reply as attempts, a fresh request each
  time, within a bounded budget, every attempt recorded;
- :mod:`kurabe.runs.progress`: the live display and the plain lines;
- :mod:`kurabe.runs.runner`: the run itself: a bounded pool of sessions, resumable.
"""
