"""Runs (``kurabe run``): scripted faults over a whole run on the real OpenAI wire protocol,
concurrency limits the server never sees exceeded, kill -9 then resume, and the one rule for a
conversation after a failure in the app's session."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend, Conversation, StreamDone, StreamError, StreamEvent, TextDelta
from backends.profiles import ModelProfile
from kurabe.runs.attempts import RetryPolicy
from kurabe.runs.runner import RunSettings, start_run
from kurabe.session.comparison import ComparisonSession
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile
from tests.wire_servers import (
    RecordedRequest,
    Reply,
    WireServer,
    openai_429,
    openai_500,
    openai_stream,
)

REPO = Path(__file__).resolve().parent.parent
KEY_ENV = "KURABE_RUNS_TEST_KEY"
PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。",
    char_name="オタク",
    register="casual",
)


def scenarios(count: int, turns: int) -> list[Scenario]:
    return [
        Scenario(
            id=f"q{i}",
            title=f"質問{i}",
            persona="anime-fan",
            turns=tuple(Turn(f"q{i}-t{j} ねえ、アニメ好き？") for j in range(turns)),
        )
        for i in range(count)
    ]


def answer(model: str, user: str) -> str:
    return f"{model}の答え「{user}」"


def pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def asked(request: RecordedRequest) -> tuple[str, str]:
    body = request.body
    users = [m["content"] for m in body["messages"] if m["role"] == "user"]
    return str(body["model"]), str(users[-1])


class FaultyServer:
    """Answers every request with the full answer for its model and line, unless a fault is
    scripted for that (model, line): each scripted fault is used once, in order."""

    def __init__(self, faults: dict[tuple[str, str], list[str]], interval_s: float = 0.0):
        self.faults = {key: list(value) for key, value in faults.items()}
        self.interval_s = interval_s
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest, number: int) -> Reply:
        model, user = asked(request)
        with self.lock:
            queued = self.faults.get((model, user))
            fault = queued.pop(0) if queued else None
        text = answer(model, user)
        if fault == "429":
            return openai_429("0.05")
        if fault == "500":
            return openai_500()
        if fault == "drop":
            return openai_stream(pieces(text), drop_after=3, model=model)
        if fault == "stall":
            return openai_stream(pieces(text), stall_after=3, stall_s=5.0, model=model)
        return openai_stream(pieces(text), interval_s=self.interval_s, model=model)


def api_profile(server: WireServer, model: str, **changes: Any) -> ModelProfile:
    return ModelProfile(
        name=model,
        backend="openai",
        model=model,
        base_url=f"{server.origin}/v1",
        api_key_env=KEY_ENV,
        timeout_s=10.0,
        **changes,
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WireServer]:
    monkeypatch.setenv(KEY_ENV, "sk-kurabe-runs-test-0000")
    with WireServer("runs") as wire:
        yield wire
    assert wire.errors == []


async def test_faults_over_a_whole_run_are_retried_counted_and_never_stored_as_text(
    tmp_path: Path, server: WireServer
) -> None:
    questions = scenarios(6, 3)
    line = {(i, j): questions[i].turns[j].text for i in range(6) for j in range(3)}
    faults = {
        ("m1", line[0, 0]): ["429"],
        ("m1", line[1, 1]): ["500"],
        ("m2", line[2, 0]): ["drop"],
        ("m2", line[3, 1]): ["stall"],
        ("m1", line[4, 1]): ["500", "500", "500"],  # beyond the budget: the reply fails
    }
    server.responder = FaultyServer(faults)
    store = Store(tmp_path / "k.sqlite3")
    profiles = [api_profile(server, "m1"), api_profile(server, "m2")]
    settings = RunSettings(
        models="m1,m2", policy=RetryPolicy(retries=2, backoff_s=0.01, stall_timeout_s=0.5)
    )
    run_id = await start_run(store, [(q, PERSONA) for q in questions], profiles, settings)

    figures = store.runs.figures(run_id)
    assert len(server.requests) == figures.requests == 41
    assert figures.retries == 6  # one each for 429, 500, drop, stall; two for the lasting 500
    assert figures.replies_ok == 34 and figures.replies_failed == 1
    assert figures.requests == figures.replies + figures.retries
    kinds = sorted(a.error_kind or "" for a in store.runs.attempts(run_id) if a.error_kind)
    assert kinds == ["connection", "rate_limit", "server", "server", "server", "server", "timeout"]

    # every request carried the whole conversation so far: full answers, no partial, no hole
    for request in server.requests:
        model, user = asked(request)
        messages = [m for m in request.body["messages"] if m["role"] != "system"]
        users = [m["content"] for m in messages if m["role"] == "user"]
        assistants = [m["content"] for m in messages if m["role"] == "assistant"]
        assert users[-1] == user
        assert assistants == [answer(model, u) for u in users[:-1]]
    # the pane whose turn 2 failed for good was never asked turn 3
    assert ("m1", line[4, 2]) not in {asked(r) for r in server.requests}

    session_ids = store.runs.session_ids(run_id)
    assert len(session_ids) == 6
    for session_id in session_ids:
        record = store.load_record(session_id)
        for (pane, turn), reply in record.latest_replies().items():
            if reply.status == "complete":
                model = record.panes[pane].profile_name
                assert reply.text == answer(model, record.turns[turn].text)
            else:
                assert reply.text == ""  # never an error text, never a partial, as a reply
        scenario = record.session.scenario_id
        assert record.session.run_id == run_id
        if scenario == "q4":
            latest = record.latest_replies()
            assert latest[0, 1].status == "failed" and "server error" in (latest[0, 1].error or "")
            assert latest[0, 2].status == "blocked" and "stopped at turn 2" in (
                latest[0, 2].error or ""
            )
            assert latest[1, 2].status == "complete"
    texts = " ".join(r[0] for r in store.database.query("SELECT text FROM replies"))
    assert "Rate limit" not in texts and "server had an error" not in texts
    assert "sk-kurabe-runs-test" not in store.database.dump_text()
    assert [s.run_id for s in store.sessions.summaries()] == [run_id] * 6


async def test_an_endpoint_never_gets_more_than_its_limit(
    tmp_path: Path, server: WireServer
) -> None:
    server.responder = FaultyServer({}, interval_s=0.01)
    store = Store(tmp_path / "k.sqlite3")
    profiles = [api_profile(server, "m1", concurrency=3), api_profile(server, "m2")]
    questions = scenarios(12, 2)
    await start_run(store, [(q, PERSONA) for q in questions], profiles, RunSettings("m1,m2"))
    assert len(server.requests) == 48
    assert server.peak == 3  # reached, never exceeded (the profile's limit names the endpoint)


async def test_a_server_refusing_above_its_capacity_lowers_the_limit_and_finishes(
    tmp_path: Path, server: WireServer
) -> None:
    server.responder = FaultyServer({}, interval_s=0.01)
    server.capacity, server.over_capacity = 2, "429"
    store = Store(tmp_path / "k.sqlite3")
    profiles = [api_profile(server, "m1", concurrency=6), api_profile(server, "m2")]
    settings = RunSettings("m1,m2", policy=RetryPolicy(retries=8, backoff_s=0.01))
    run_id = await start_run(store, [(q, PERSONA) for q in scenarios(10, 2)], profiles, settings)
    figures = store.runs.figures(run_id)
    assert figures.replies_ok == 40 and figures.replies_failed == 0
    assert server.refused == figures.retries > 0
    assert len(server.requests) == figures.requests


async def test_a_quota_error_fails_at_once_with_its_reason(
    tmp_path: Path, server: WireServer
) -> None:
    from tests.wire_servers import openai_error

    def quota(request: RecordedRequest, number: int) -> Reply:
        return openai_error(
            429,
            "You exceeded your current quota.",
            type="insufficient_quota",
            code="insufficient_quota",
        )

    server.responder = quota
    store = Store(tmp_path / "k.sqlite3")
    run_id = await start_run(
        store,
        [(q, PERSONA) for q in scenarios(1, 2)],
        [api_profile(server, "m1")],
        RunSettings("m1"),
    )
    assert len(server.requests) == 1  # not retried; the second turn is not sent
    (session_id,) = store.runs.session_ids(run_id)
    latest = store.load_record(session_id).latest_replies()
    assert latest[0, 0].error_kind == "quota" and "quota exceeded" in (latest[0, 0].error or "")
    assert latest[0, 1].status == "blocked"


def _models_file(tmp_path: Path, server: WireServer) -> Path:
    path = tmp_path / "models.toml"
    text = ""
    for model in ("m1", "m2"):
        text += (
            f'[models.{model}]\nbackend = "openai"\nmodel = "{model}"\n'
            f'base_url = "{server.origin}/v1"\napi_key_env = "{KEY_ENV}"\nconcurrency = 2\n\n'
        )
    path.write_text(text, encoding="utf-8")
    return path


def test_kill_9_mid_run_then_resume_asks_only_for_what_is_missing(
    tmp_path: Path, server: WireServer, kurabe_home: Path
) -> None:
    server.responder = FaultyServer({}, interval_s=0.03)
    models = _models_file(tmp_path, server)
    db = tmp_path / "k.sqlite3"
    store = Store(db)
    env = dict(os.environ, KURABE_HOME=str(kurabe_home), PYTHONPATH=str(REPO), **{KEY_ENV: "sk-x"})
    command = [
        sys.executable,
        "-m",
        "kurabe.cli",
        "run",
        "seed-gpt4",
        "--repeat",
        "6",
        "--models",
        "m1,m2",
        "--models-file",
        str(models),
        "--db",
        str(db),
        "--plain",
    ]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 90
    killed = False
    try:
        while time.monotonic() < deadline and process.poll() is None:
            row = store.database.query_one("SELECT COUNT(*) FROM replies WHERE status = 'complete'")
            if row is not None and row[0] >= 8:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None and not killed:
            process.kill()
        _, err = process.communicate(timeout=30)
    assert killed, err.decode()[-2000:]
    run_id = store.runs.latest_id()
    assert run_id is not None
    from scenarios.loader import load_scenarios

    turns = len(load_scenarios().get("seed-gpt4").turns)
    total = 6 * turns * 2
    done = store.database.query_one("SELECT COUNT(*) FROM replies WHERE status = 'complete'")
    assert done is not None and 8 <= done[0] < total
    asked_before = len(server.requests)

    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "kurabe.cli",
            "run",
            "--resume",
            str(run_id),
            "--models-file",
            str(models),
            "--db",
            str(db),
            "--plain",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert len(server.requests) - asked_before == total - done[0]
    after = Store(db)
    sessions = after.runs.session_ids(run_id)
    keys = [(after.sessions.get(s).scenario_id, after.sessions.get(s).run_repeat) for s in sessions]
    assert sorted(keys) == [("seed-gpt4", r) for r in range(6)]
    for session_id in sessions:
        complete = after.database.query(
            "SELECT r.turn_id, r.pane_id, COUNT(*) FROM replies r JOIN turns t ON t.id = r.turn_id"
            " WHERE t.session_id = ? AND r.status = 'complete' GROUP BY r.turn_id, r.pane_id",
            (session_id,),
        )
        assert len(complete) == turns * 2 and all(row[2] == 1 for row in complete)
    assert after.runs.get(run_id).status == "finished"


# -- the rule in the app's session ------------------------------------------------------------


async def test_after_a_failure_the_pane_stops_and_retry_goes_on_from_the_failed_turn(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    broken = FakeBackend(
        "broken",
        [
            "うん、好きだよ。",
            Script(
                chunks=("途中まで",), error=StreamError("connection dropped", True, "connection")
            ),
            "ジブリいいね。",
            "風の谷の話。",
        ],
    )
    fine = FakeBackend("fine", ["好き！", "ジブリ！", "ナウシカ！"])
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile("broken"), fake_profile("fine")],
        backend_factory=fake_factory({"broken": broken, "fine": fine}),
    )
    await session.send("アニメ好き？")
    await session.send("ジブリは？")  # broken fails here, mid-reply
    await session.send("ナウシカは？")  # so broken is not sent this one
    assert len(broken.calls) == 2 and len(fine.calls) == 3
    assert session.reply_status(0, 1) == "failed"
    assert session.reply_status(0, 2) == "blocked"
    # the healthy pane's conversation is whole
    assert [m.content for m in fine.calls[2].turns] == [
        "アニメ好き？",
        "好き！",
        "ジブリは？",
        "ジブリ！",
        "ナウシカは？",
    ]
    await session.retry(0)
    assert [m.content for m in broken.calls[2].turns] == [
        "アニメ好き？",
        "うん、好きだよ。",
        "ジブリは？",
    ]
    assert [m.content for m in broken.calls[3].turns] == [
        "アニメ好き？",
        "うん、好きだよ。",
        "ジブリは？",
        "ジブリいいね。",
        "ナウシカは？",
    ]  # the partial 途中まで was never sent as its answer
    assert session.reply_status(0, 2) == "complete"
    await session.aclose()


async def test_a_run_is_listed_exported_and_ranked_by_its_id(
    tmp_path: Path, server: WireServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from kurabe.cli import main

    server.responder = FaultyServer({})
    db = tmp_path / "k.sqlite3"
    store = Store(db)
    profiles = [api_profile(server, "m1"), api_profile(server, "m2")]
    other = await start_run(store, [(scenarios(1, 1)[0], PERSONA)], profiles, RunSettings("m1"))
    run_id = await start_run(
        store, [(q, PERSONA) for q in scenarios(3, 2)], profiles, RunSettings("m1,m2")
    )
    store.close()
    capsys.readouterr()
    assert main(["sessions", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[-1] == "run"
    assert sorted(line.split("\t")[-1] for line in lines[1:]) == [str(other)] + [str(run_id)] * 3
    assert main(["export", "--run", str(run_id), "--format", "jsonl", "--db", str(db)]) == 0
    exported = capsys.readouterr().out
    rows = [json.loads(line) for line in exported.splitlines()]
    assert len(rows) == 3 * 2 * 2  # three sessions, two turns, two panes
    assert {row["scenario_id"] for row in rows} == {"q0", "q1", "q2"}
    for question in ("q0", "q1", "q2"):
        assert answer("m2", f"{question}-t1 ねえ、アニメ好き？") in exported
    assert main(["export", "--run", str(run_id), "--format", "csv", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert table.count("session_id") == 1  # one header
    assert len(list(csv.reader(io.StringIO(table.lstrip("\ufeff"))))) == 1 + 12
    assert main(["leaderboard", "--run", str(run_id), "--format", "json", "--db", str(db)]) == 0
    assert '"sessions": 3' in capsys.readouterr().out


def test_a_profile_sets_its_endpoint_concurrency(tmp_path: Path) -> None:
    from backends.profiles import parse_models_file
    from foundation.errors import ConfigError
    from kurabe.runs.endpoints import endpoint_of

    path = tmp_path / "models.toml"
    path.write_text(
        '[models.a]\nbackend = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:9/v1"\n'
        "concurrency = 12\n",
        encoding="utf-8",
    )
    (profile,) = parse_models_file(path)
    assert profile.concurrency == 12 and endpoint_of(profile).limit == 12
    assert endpoint_of(ModelProfile(name="o", backend="openai", model="gpt")).limit == 4
    path.write_text(path.read_text(encoding="utf-8").replace("12", "0"), encoding="utf-8")
    with pytest.raises(ConfigError, match="concurrency"):
        parse_models_file(path)


class _Answering(Backend):
    """Answers every line at once and keeps nothing, so that what a run holds is the run's."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        await asyncio.sleep(0)
        yield TextDelta(f"{self.name}: うん、その作品なら全部見たよ！")
        yield StreamDone(
            finish_reason="stop", prompt_tokens=20, completion_tokens=9, ttft_s=0.0, total_s=0.0
        )


def _run_peak(
    folder: Path, count: int, live: weakref.WeakSet[ComparisonSession]
) -> tuple[int, int]:
    """(most sessions alive at once when counted, peak of traced memory in bytes) over a run of
    ``count`` one-turn questions on two panes, four sessions at a time."""
    peak_sessions = made = 0
    created = ComparisonSession.__init__

    def tracked(self: ComparisonSession, *args: Any, **kwargs: Any) -> None:
        nonlocal peak_sessions, made
        created(self, *args, **kwargs)
        live.add(self)
        made += 1
        if made % 50 == 0:
            # Sessions done with may wait in a reference cycle for the collector; a full
            # collection per session would take minutes in a process that holds the whole suite.
            gc.collect()
            peak_sessions = max(peak_sessions, len(live))

    store = Store(folder / f"run-{count}.sqlite3")
    profiles = [fake_profile("m1"), fake_profile("m2")]
    backends: dict[str, Backend] = {"m1": _Answering("m1"), "m2": _Answering("m2")}
    settings = RunSettings("m1,m2", sessions_at_once=4)
    pairs = [(q, PERSONA) for q in scenarios(count, 1)]
    gc.collect()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ComparisonSession, "__init__", tracked)
        run_id = asyncio.run(
            start_run(store, pairs, profiles, settings, backend_factory=fake_factory(backends))
        )
    peak = tracemalloc.get_traced_memory()[1] - before
    assert store.runs.figures(run_id).replies_ok == 2 * count
    store.close()
    return peak_sessions, peak


def test_a_long_run_holds_only_what_is_in_flight(tmp_path: Path) -> None:
    # 1,000 questions hold no more than 100 do: the sessions in flight, not the run's history.
    live: weakref.WeakSet[ComparisonSession] = weakref.WeakSet()
    tracemalloc.start()
    try:
        _run_peak(tmp_path, 20, live)  # first-use caches (imports, prepared statements) filled
        short_sessions, short_peak = _run_peak(tmp_path, 100, live)
        long_sessions, long_peak = _run_peak(tmp_path, 1000, live)
    finally:
        tracemalloc.stop()
    assert short_sessions <= 4 and long_sessions <= 4
    # 900 more sessions of two replies: a reply's text kept for each would show here.
    assert long_peak < short_peak + 128 * 1024, (short_peak, long_peak)
