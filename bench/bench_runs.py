"""Benchmark ``kurabe run`` against what its endpoints can serve, side by side in one process.

Rows (target in brackets; the script exits 1 when any is missed, and a row whose reference is not
built is skipped with a message, never faked):

1. a loopback OpenAI-wire server of known capacity C (at most C streams at once, a fixed time per
   chunk), 80 two-turn questions × 2 models: the ideal wall time (total stream time ÷ C) ÷
   kurabe's wall time, at C = 1, 4 and 16 [≥ 0.9]; and with the server answering 429 with
   ``Retry-After`` above C = 4 (kurabe's limit set to 8, so it must come down): the same ratio
   [≥ 0.8], every reply complete;
2. llama-server ``--parallel 4`` on the embedded Gemma: a run's aggregate tokens/s ÷ four
   concurrent clients sending the same requests directly [≥ 0.9];
3. the local engine: 8 questions on two local profiles on one file, as one run: aggregate
   tokens/s ÷ what three panes of one session reach together, replaying the same questions
   [≥ 1.0].

Usage: python bench/bench_runs.py [--only 1,2,3] [--questions N] [--chunk-s S]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.profiles import EMBEDDED_MODEL, EMBEDDED_N_CTX, ModelProfile, Sampling
from kurabe.runs.attempts import RetryPolicy
from kurabe.runs.runner import RunSettings, start_run
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn
from tests.wire_servers import RecordedRequest, Reply, WireServer, openai_stream

KEY_ENV = "KURABE_BENCH_KEY"
PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。返信は短くカジュアルに。",
    char_name="オタク",
    register="casual",
)
CHUNKS = 10


def questions(count: int, turns: int = 2) -> list[Scenario]:
    return [
        Scenario(
            id=f"bench-q{i}",
            title=f"質問{i}",
            persona="anime-fan",
            turns=tuple(
                Turn(f"質問{i}の{j + 1}つ目: 好きなアニメを教えて。") for j in range(turns)
            ),
        )
        for i in range(count)
    ]


class Row:
    def __init__(self, name: str, ratio: float | None, target: float, detail: str) -> None:
        self.name, self.ratio, self.target, self.detail = name, ratio, target, detail

    @property
    def ok(self) -> bool:
        return self.ratio is None or self.ratio >= self.target

    def line(self) -> str:
        if self.ratio is None:
            return f"{self.name}: skipped ({self.detail})"
        mark = "ok" if self.ok else "MISSED"
        return f"{self.name}: {self.ratio:.3f} (target ≥ {self.target}) {mark} — {self.detail}"


# -- 1: a loopback server of known capacity ------------------------------------------------------


class FixedStream:
    """Every request answered with the same stream: CHUNKS text chunks, ``chunk_s`` apart."""

    def __init__(self, chunk_s: float) -> None:
        self.chunk_s = chunk_s

    def __call__(self, request: RecordedRequest, number: int) -> Reply:
        model = request.body["model"]
        texts = [f"答え{i}。" for i in range(CHUNKS)]
        return openai_stream(texts, interval_s=self.chunk_s, model=model)


def _serve(chunk_s: float, capacity: int | None, refuse: bool, pipe: Connection) -> None:
    """The server's own process (as a real server is): its origin up the pipe, then its
    figures when asked."""
    server = WireServer("bench")
    server.responder = FixedStream(chunk_s)
    server.capacity = capacity
    if refuse:
        server.over_capacity, server.retry_after = "429", "0.05"
    server.start()
    pipe.send(server.origin)
    pipe.recv()
    pipe.send((server.peak, server.refused, server.stream_seconds))
    server.stop()


@contextmanager
def server_process(
    chunk_s: float, capacity: int | None = None, refuse: bool = False
) -> Iterator[tuple[str, Connection]]:
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(chunk_s, capacity, refuse, theirs), daemon=True
    )
    process.start()
    try:
        yield ours.recv(), ours
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


def server_figures(pipe: Connection) -> tuple[int, int, float]:
    """(peak at once, refused, total stream seconds) of a server process; it stops after
    answering."""
    pipe.send("figures")
    peak, refused, seconds = pipe.recv()
    return int(peak), int(refused), float(seconds)


async def capacity_row(
    capacity: int, count: int, chunk_s: float, *, refuse: bool = False
) -> tuple[float, int, int, float]:
    """(wall, refused, peak, total stream seconds at the server) for one run against a server
    of ``capacity``."""
    with server_process(chunk_s, capacity, refuse) as (origin, pipe):
        limit = capacity * 2 if refuse else capacity
        profiles = [
            ModelProfile(
                name=model,
                backend="openai",
                model=model,
                base_url=f"{origin}/v1",
                api_key_env=KEY_ENV,
                concurrency=limit,
            )
            for model in ("bench-a", "bench-b")
        ]
        with tempfile.TemporaryDirectory() as folder:
            store = Store(Path(folder) / "bench.sqlite3")
            settings = RunSettings(
                models="bench-a,bench-b",
                policy=RetryPolicy(retries=20, backoff_s=0.02),
            )
            pairs = [(q, PERSONA) for q in questions(count)]
            started = time.perf_counter()
            run_id = await start_run(store, pairs, profiles, settings)
            wall = time.perf_counter() - started
            figures = store.runs.figures(run_id)
            store.close()
        peak, refused, seconds = server_figures(pipe)
    streams = count * 2 * 2
    if figures.replies_ok != streams:
        raise RuntimeError(f"only {figures.replies_ok} of {streams} replies completed")
    return wall, refused, peak, seconds


async def measured_stream_s(chunk_s: float) -> float:
    """How long one stream takes end to end on this machine, alone (the server's real pace)."""
    import json
    import urllib.request

    def once(origin: str) -> float:
        body = json.dumps({"model": "p", "messages": [{"role": "user", "content": "x"}]})
        request = urllib.request.Request(
            f"{origin}/v1/chat/completions",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        return time.perf_counter() - started

    with server_process(chunk_s) as (origin, pipe):
        times = [await asyncio.to_thread(once, origin) for _ in range(7)]
        server_figures(pipe)
    return sorted(times)[len(times) // 2]


async def rows_capacity(count: int, chunk_s: float, capacities: Sequence[int]) -> list[Row]:
    """The ideal is the streams' total time at the server ÷ C (what C streams at once can do);
    the time of one stream alone, × streams ÷ C, is printed beside it."""
    rows = []
    alone_s = await measured_stream_s(chunk_s)
    streams = count * 4
    for capacity in capacities:
        wall, _, peak, seconds = await capacity_row(capacity, count, chunk_s)
        ideal = seconds / capacity
        rows.append(
            Row(
                f"1. capacity C={capacity}",
                ideal / wall,
                0.9,
                f"wall {wall:.1f} s, ideal {ideal:.1f} s ({streams} streams, "
                f"{seconds / streams:.3f} s each at the server; {alone_s:.3f} s alone: "
                f"{alone_s * streams / capacity / wall:.2f}), server's peak {peak} at once",
            )
        )
    wall, refused, peak, seconds = await capacity_row(4, count, chunk_s, refuse=True)
    ideal = seconds / 4
    rows.append(
        Row(
            "1. 429 above C=4 (limit starts at 8)",
            ideal / wall,
            0.8,
            f"wall {wall:.1f} s, ideal {ideal:.1f} s ({alone_s * streams / 4 / wall:.2f} by one"
            f" stream alone), {refused} requests refused and retried",
        )
    )
    return rows


# -- 2: llama-server --parallel 4 ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server(binary: Path, gguf: Path, parallel: int, log: Path) -> Iterator[str]:
    import urllib.request

    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    command = [
        str(binary), "--model", str(gguf), "--alias", "gemma", "--host", "127.0.0.1",
        "--port", str(port), "--ctx-size", str(EMBEDDED_N_CTX * parallel),
        "--parallel", str(parallel), "--threads", str(max(1, (os.cpu_count() or 2))),
    ]  # fmt: skip
    # Threads that sleep when idle: on a shared machine llama.cpp's spinning ones swing wildly
    # (see the README's Benchmarks); both sides of the row use this one server anyway.
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{origin}/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"llama-server did not start: {log.read_text()[-1000:]}")
                time.sleep(0.2)
            yield origin
        finally:
            process.terminate()
            process.wait(timeout=20)


SERVER_SAMPLING = Sampling(max_tokens=32, temperature=0.7, seed=1)


async def direct_clients(origin: str, prompts: Sequence[str], clients: int) -> tuple[int, float]:
    """(completion tokens, wall) for ``clients`` concurrent clients sending ``prompts``."""
    from openai import AsyncOpenAI

    # the SDK retries a kept-alive connection the server had closed (llama-server does)
    client = AsyncOpenAI(base_url=f"{origin}/v1", api_key="none", max_retries=2)
    queue = list(prompts)
    tokens = 0

    async def worker() -> None:
        nonlocal tokens
        while queue:
            prompt = queue.pop()
            stream = await client.chat.completions.create(
                model="gemma",
                messages=[
                    {"role": "system", "content": PERSONA.system},
                    {"role": "user", "content": prompt},
                ],
                stream=True,
                stream_options={"include_usage": True},
                max_tokens=SERVER_SAMPLING.max_tokens,
                temperature=SERVER_SAMPLING.temperature,
                seed=SERVER_SAMPLING.seed,
            )
            async for chunk in stream:
                if chunk.usage is not None:
                    tokens += chunk.usage.completion_tokens

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - started
    await client.close()
    return tokens, wall


def run_tokens(store: Store, run_id: int) -> int:
    row = store.database.query_one(
        "SELECT COALESCE(SUM(r.completion_tokens), 0) FROM replies r"
        " JOIN turns t ON t.id = r.turn_id JOIN sessions s ON s.id = t.session_id"
        " WHERE s.run_id = ? AND r.status = 'complete'",
        (run_id,),
    )
    return int(row[0]) if row else 0


async def row_llama_server(count: int) -> Row:
    from backends.embedded import embedded_model_path
    from tests.llama_server_support import llama_server_binary

    binary = llama_server_binary()
    gguf = embedded_model_path()
    if binary is None:
        return Row(
            "2. llama-server --parallel 4", None, 0.9, "llama-server not built: make llama-tools"
        )
    if not gguf.exists():
        return Row("2. llama-server --parallel 4", None, 0.9, "the embedded Gemma is not present")
    one_turn = questions(count, turns=1)
    prompts = [q.turns[0].text for q in one_turn]
    with (
        tempfile.TemporaryDirectory() as folder,
        llama_server(binary, gguf, 4, Path(folder) / "server.log") as origin,
    ):
        await direct_clients(origin, prompts[:4], 4)  # warm up
        direct_tokens, direct_wall = await direct_clients(origin, prompts, 4)
        profile = ModelProfile(
            name="gemma-server",
            backend="openai",
            model="gemma",
            base_url=f"{origin}/v1",
            api_key_env=KEY_ENV,
            concurrency=4,
            sampling=SERVER_SAMPLING,
            examples_as="none",
        )
        store = Store(Path(folder) / "bench.sqlite3")
        started = time.perf_counter()
        run_id = await start_run(
            store, [(q, PERSONA) for q in one_turn], [profile], RunSettings("gemma-server")
        )
        run_wall = time.perf_counter() - started
        tokens = run_tokens(store, run_id)
        store.close()
    direct = direct_tokens / direct_wall
    ours = tokens / run_wall
    return Row(
        "2. llama-server --parallel 4",
        ours / direct,
        0.9,
        f"run {ours:.1f} tok/s ({tokens} tokens), four direct clients {direct:.1f} tok/s "
        f"({direct_tokens} tokens)",
    )


# -- 3: the local engine -------------------------------------------------------------------------


LOCAL_SAMPLING = Sampling(max_tokens=32, temperature=0.7, seed=1)


def local_profile(name: str, fmt: str) -> ModelProfile:
    return ModelProfile(
        name=name,
        backend="llama_cpp",
        model=EMBEDDED_MODEL,
        prompt_format=fmt,
        n_ctx=EMBEDDED_N_CTX,
        sampling=LOCAL_SAMPLING,
    )


async def row_local(count: int) -> Row:
    from backends.embedded import embedded_model_path
    from backends.llama_cpp_backend import unload_all_models
    from kurabe.session.replay import run_replay

    if not embedded_model_path().exists():
        return Row("3. local engine", None, 1.0, "the embedded Gemma is not present")
    items = questions(count, turns=1)
    three = [
        local_profile("gemma-a", "gguf"),
        local_profile("gemma-b", "transcript"),
        local_profile("gemma-c", "llama2-sys"),
    ]
    two = three[:2]
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.sqlite3")
        # today: one session of three panes on the file, the questions one after another
        started = time.perf_counter()
        ids: list[int] = []
        for scenario in items:
            ids += await run_replay(store, scenario, PERSONA, three)
        session_wall = time.perf_counter() - started
        row = store.database.query_one(
            "SELECT COALESCE(SUM(completion_tokens), 0) FROM replies WHERE status = 'complete'"
        )
        session_tokens = int(row[0]) if row else 0
        unload_all_models()
        started = time.perf_counter()
        run_id = await start_run(store, [(q, PERSONA) for q in items], two, RunSettings("a,b"))
        run_wall = time.perf_counter() - started
        tokens = run_tokens(store, run_id)
        store.close()
        unload_all_models()
    before = session_tokens / session_wall
    ours = tokens / run_wall
    return Row(
        "3. local engine, two profiles on one file as a run",
        ours / before,
        1.0,
        f"run {ours:.1f} tok/s ({tokens} tokens in {run_wall:.1f} s), three panes of one "
        f"session {before:.1f} tok/s ({session_tokens} tokens in {session_wall:.1f} s)",
    )


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="1,2,3", help="rows to run (1,2,3)")
    parser.add_argument("--questions", type=int, default=80, help="questions of row 1 (80)")
    parser.add_argument("--chunk-s", type=float, default=0.02, help="seconds per chunk (0.02)")
    parser.add_argument("--capacities", default="1,4,16", help="row 1's capacities (1,4,16)")
    args = parser.parse_args(argv)
    os.environ.setdefault(KEY_ENV, "sk-bench")
    only = {part.strip() for part in args.only.split(",")}
    rows: list[Row] = []
    if "1" in only:
        capacities = [int(c) for c in args.capacities.split(",")]
        rows += await rows_capacity(args.questions, args.chunk_s, capacities)
        for row in rows:
            print(row.line(), flush=True)
    if "2" in only:
        row = await row_llama_server(12)
        print(row.line(), flush=True)
        rows.append(row)
    if "3" in only:
        row = await row_local(8)
        print(row.line(), flush=True)
        rows.append(row)
    missed = [row for row in rows if not row.ok]
    print(f"{len(rows) - len(missed)} of {len(rows)} rows met their target")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
