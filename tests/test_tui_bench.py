"""A tiny run of ``bench/bench_tui.py`` so the benchmark keeps working (figures not checked)."""

from __future__ import annotations

import pytest

from bench.bench_tui import run


async def test_the_benchmark_runs_and_measures(capsys: pytest.CaptureFixture[str]) -> None:
    probe = await run(
        tokens=160, rate=800.0, panes=2, windows=[100], size=(100, 30), latency_tokens=400
    )
    assert probe.costs[100].tokens > 0
    assert probe.handled_latencies and probe.painted_latencies
    out = capsys.readouterr().out
    assert "key → painted" in out and "reply length" in out
