"""Rating write latency with 8 concurrent writers, p50 and p95, SQLite (WAL, one file) against
PostgreSQL on loopback, against the 20 ms p95 target on both.

Each writer is a process of its own (as eight raters' apps would be) with its own store; after a
barrier, each adds ratings through ``store.ratings.add_rating`` (one committed ``INSERT``, what a
rating key does) as fast as it can for ``--seconds``, timing each call. PostgreSQL is a throw-away
server this script starts itself (``initdb`` + ``pg_ctl`` on 127.0.0.1, as the tests do, with its
default durability: ``fsync`` and ``synchronous_commit`` on), unless ``--url`` names one.

    .venv/bin/python bench/bench_store.py [--seconds S] [--writers N] [--url postgresql://…]

Exits 1 when a p95 misses the target.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kurabe.store.store import Store  # noqa: E402
from personas import Persona  # noqa: E402

TARGET_P95_MS = 20.0
PERSONA = Persona(id="anime-fan", title="大のアニメファン", system="あなたは大のアニメファンです。")


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


def prepare(target: str, writers: int) -> list[int]:
    """One session per writer with one reply to rate; the reply ids."""
    reply_ids = []
    with Store(target) as store:
        for worker in range(writers):
            session_id = store.sessions.create(PERSONA, rater=f"rater{worker}")
            pane = store.sessions.add_pane(
                session_id, 0, "A", profile_name="p", backend="b", model="m", settings={}
            )
            turn = store.replies.add_turn(session_id, 0, "ねえ、アニメ好きなの？")
            reply_id, _ = store.replies.start_reply(turn, pane)
            reply_ids.append(reply_id)
    return reply_ids


def writer(target: str, reply_id: int, worker: int, seconds: float, barrier: Any, out: Any) -> None:
    latencies: list[float] = []
    with Store(target) as store:
        store.ratings.ratings(1)  # connected and warm before the clock starts
        barrier.wait()
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            start = time.perf_counter()
            store.ratings.add_rating(
                reply_id,
                score=1 + n % 5,
                tags=["too-long"] if n % 3 == 0 else [],
                note="",
                rater=f"rater{worker}",
                blind=False,
            )
            latencies.append((time.perf_counter() - start) * 1000.0)
            n += 1
    out.put(latencies)


def measure(target: str, writers: int, seconds: float) -> dict[str, float]:
    reply_ids = prepare(target, writers)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    out = context.Queue()
    processes = [
        context.Process(target=writer, args=(target, reply_ids[i], i, seconds, barrier, out))
        for i in range(writers)
    ]
    for process in processes:
        process.start()
    latencies = sorted(value for _ in processes for value in out.get(timeout=seconds + 120))
    for process in processes:
        process.join()
    with Store(target) as store:
        row = store.database.query_one("SELECT COUNT(*) FROM ratings")
        stored = int(row[0]) if row else 0
    if stored != len(latencies):
        raise SystemExit(f"{target}: {len(latencies)} ratings written, {stored} stored")
    return {
        "writes": float(len(latencies)),
        "per_s": len(latencies) / seconds,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 0.95),
        "max": latencies[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--url", help="a PostgreSQL database to use instead of a throw-away one")
    options = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite (WAL)"] = measure(
            str(Path(tmp) / "bench.sqlite3"), options.writers, options.seconds
        )
    if options.url:
        results["PostgreSQL"] = measure(options.url, options.writers, options.seconds)
    else:
        from tests.postgres_support import PostgresServer, find_bin_dir

        bin_dir = find_bin_dir()
        if bin_dir is None:
            print("PostgreSQL server binaries not found: sudo apt-get install postgresql")
            return 1
        server = PostgresServer(bin_dir)
        server.init(durable=True)
        server.start()
        try:
            results["PostgreSQL (loopback)"] = measure(
                server.create_database(), options.writers, options.seconds
            )
        finally:
            server.cleanup()

    print(
        f"rating writes, {options.writers} concurrent writers (processes), "
        f"{options.seconds:g} s each; target p95 <= {TARGET_P95_MS:g} ms"
    )
    print(f"{'engine':<24}{'writes':>8}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    missed = False
    for name, figures in results.items():
        verdict = "ok" if figures["p95"] <= TARGET_P95_MS else "MISSED"
        missed = missed or verdict != "ok"
        print(
            f"{name:<24}{figures['writes']:>8.0f}{figures['per_s']:>9.0f}{figures['p50']:>9.2f}"
            f"{figures['p95']:>9.2f}{figures['max']:>9.1f}  {verdict}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
