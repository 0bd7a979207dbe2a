"""Headless replay: fakes for the flow, the tiny GGUF end to end, and kill -9 mid-stream."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kurabe.cli import main
from kurabe.session.events import PaneDelta, SessionEvent
from kurabe.session.replay import PlainProgress, resume_replay, run_replay, seeded
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile
from tests.postgres_support import engine_target

REPO = Path(__file__).resolve().parent.parent
# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")
PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。",
    char_name="オタク",
    register="casual",
)
SCENARIO = Scenario(
    id="seed-gpt4",
    title="シード: GPT-4",
    persona="anime-fan",
    turns=(
        Turn("ねえ、アニメ好きなの？"),
        Turn("宮崎さんの作品全部好き！"),
        Turn("ナウシカで何が起こったか忘れてしまったのですが、思い出してもらえますか？"),
    ),
)


@pytest.fixture
def unload() -> Iterator[None]:
    yield
    from backends.llama_cpp_backend import unload_all_models

    unload_all_models()


async def test_replay_runs_every_turn_and_repeats_with_seeds(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.sqlite3")
    made: dict[str, list[FakeBackend]] = {"gemma": [], "elyza": []}

    def factory(profile):  # type: ignore[no-untyped-def]
        backend = FakeBackend(
            profile.name,
            [Script.text(f"{profile.name}の返事です。", delay_s=0.002)],
            snapshot={"seed": profile.sampling.seed},
        )
        made[profile.name].append(backend)
        return backend

    out = io.StringIO()
    profiles = [fake_profile("gemma", local=True), fake_profile("elyza", local=True)]
    ids = await run_replay(
        store,
        SCENARIO,
        PERSONA,
        profiles,
        repeat=2,
        seed=5,
        rater="ci",
        backend_factory=factory,
        progress=PlainProgress(out),
    )
    assert len(ids) == 2
    for run, session_id in enumerate(ids):
        record = store.load_record(session_id)
        assert record.session.kind == "replay" and record.session.status == "finished"
        assert record.session.seed == 5 + run
        assert [t.text for t in record.turns] == [t.text for t in SCENARIO.turns]
        assert [t.scenario_turn for t in record.turns] == [0, 1, 2]
        assert len(record.replies) == 6 and all(r.completed for r in record.replies)
        for pane in record.panes:
            assert pane.settings["profile"]["sampling"]["seed"] == 5 + run
            assert pane.settings["backend"] == {"seed": 5 + run}
    assert all(b.closed for backends in made.values() for b in backends)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"[run 1/2] session {ids[0]}: seed-gpt4 × gemma, elyza"
    assert "[run 1/2] turn 1/3 > ねえ、アニメ好きなの？" in lines
    finished = [line for line in lines if "chars" in line and "[gemma]" in line]
    assert len(finished) == 6
    assert finished[0].startswith("[run 1/2] turn 1/3 [gemma] 11 chars ")
    assert "tok/s" in finished[0] and "chars/s" in finished[0]


def test_seeded_replaces_only_the_seed() -> None:
    profile = fake_profile("gemma", local=True)
    (changed,) = seeded([profile], 42)
    assert changed.sampling.seed == 42
    assert changed.sampling.temperature == profile.sampling.temperature
    assert seeded([profile], None) == [profile]


async def test_an_interrupted_replay_is_saved_and_resumes(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.sqlite3")
    first = {
        "gpt": FakeBackend("gpt", ["うん、大好きだよ！", "宮崎駿は最高！", "腐海の話だよ。"]),
        "claude": FakeBackend(
            "claude", ["ああ、好きだよ。", Script(chunks=("えっとね、", "宮崎"), stall=True)]
        ),
    }
    streaming = asyncio.Event()

    class Watch(PlainProgress):
        def event(self, event: SessionEvent) -> None:
            super().event(event)
            if isinstance(event, PaneDelta) and event.text == "宮崎":
                streaming.set()

    ids: list[int] = []
    task = asyncio.create_task(
        run_replay(
            store,
            SCENARIO,
            PERSONA,
            [fake_profile("gpt"), fake_profile("claude")],
            backend_factory=fake_factory(first),
            progress=Watch(io.StringIO()),
            on_session=ids.append,
        )
    )
    await asyncio.wait_for(streaming.wait(), timeout=5)
    task.cancel()  # what Ctrl-C does under asyncio.run
    with pytest.raises(asyncio.CancelledError):
        await task
    (session_id,) = ids
    record = store.load_record(session_id)
    assert record.session.status == "interrupted"
    cut = [r for r in record.replies if r.status == "cancelled"]
    assert [r.text for r in cut] == ["えっとね、宮崎"]
    assert sum(r.completed for r in record.replies) == 3
    assert first["gpt"].closed and first["claude"].closed

    second = {
        "gpt": FakeBackend("gpt", ["腐海の話だよ。"]),
        "claude": FakeBackend("claude", ["宮崎さん最高だね", "ナウシカは風の谷の話"]),
    }
    out = io.StringIO()
    await resume_replay(
        store,
        session_id,
        profiles={"gpt": fake_profile("gpt"), "claude": fake_profile("claude")},
        backend_factory=fake_factory(second),
        progress=PlainProgress(out),
    )
    record = store.load_record(session_id)
    assert record.session.status == "finished"
    latest = record.latest_replies()
    assert all(r.completed for r in latest.values()) and len(latest) == 6
    assert latest[(1, 1)].text == "宮崎さん最高だね" and latest[(1, 1)].version == 2
    assert len(second["gpt"].calls) == 1  # only the turn gpt never reached
    assert [m.content for m in second["claude"].calls[0].turns] == [
        "ねえ、アニメ好きなの？",
        "ああ、好きだよ。",
        "宮崎さんの作品全部好き！",
    ]
    assert "turn 2/3 [claude]" in out.getvalue()


async def test_replay_with_no_usable_pane_is_an_error(tmp_path: Path) -> None:
    from foundation.errors import KurabeError

    store = Store(tmp_path / "k.sqlite3")
    backends = {"claude": FakeBackend("claude", unusable="API key missing: set ANTHROPIC_API_KEY")}
    with pytest.raises(KurabeError, match="ANTHROPIC_API_KEY"):
        await run_replay(
            store,
            SCENARIO,
            PERSONA,
            [fake_profile("claude")],
            backend_factory=fake_factory(backends),
        )


def test_replay_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "k.sqlite3")
    assert main(["replay", "no-such-scenario", "--models", "gemma-270m", "--db", db]) == 2
    assert "no-such-scenario" in capsys.readouterr().err
    assert main(["replay", "seed-gpt4", "--models", "nope", "--db", db]) == 2
    assert "unknown model profile nope" in capsys.readouterr().err
    assert main(["replay", "--db", db]) == 2
    assert main(["replay", "seed-gpt4", "--models", "a,b,c,d,e,f,g", "--db", db]) == 2


def _models_file(tmp_path: Path, gguf: Path, *, long_tokens: int) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(
        f"""
[models.tiny-a]
backend = "llama_cpp"
model = "{gguf}"
prompt_format = "chatml"
n_ctx = 4096
[models.tiny-a.sampling]
max_tokens = 12

[models.tiny-b]
backend = "llama_cpp"
model = "{gguf}"
prompt_format = "chatml"
n_ctx = 4096
[models.tiny-b.sampling]
max_tokens = {long_tokens}
""",
        encoding="utf-8",
    )
    return path


def test_end_to_end_replay_on_the_tiny_gguf(
    tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], unload: None
) -> None:
    models = _models_file(tmp_path, tiny_gguf, long_tokens=20)
    db = tmp_path / "k.sqlite3"
    code = main(
        [
            "replay",
            "seed-gpt4",
            "--models",
            "tiny-a,tiny-b",
            "--models-file",
            str(models),
            "--db",
            str(db),
            "--seed",
            "11",
            "--rater",
            "ci",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("session ")
    session_id = int(out[-1].split()[1])
    assert any(line.startswith("turn 1/4 [tiny-a] ") and "tok/s" in line for line in out)
    store = Store(db)
    record = store.load_record(session_id)
    assert record.session.rater == "ci" and record.session.status == "finished"
    assert len(record.turns) == 4 and len(record.replies) == 8
    for reply in record.replies:
        assert reply.completed and reply.text
        assert reply.completion_tokens == (12 if reply.pane == 0 else 20)
        assert reply.tokens_per_s and reply.chars_per_s and reply.ttft_s is not None
        assert "japanese_share" in reply.checks  # the checks ran on the real reply
    settings = record.panes[0].settings
    assert settings["backend"]["model_file"] == "tiny.gguf"
    assert settings["backend"]["model_size"] == tiny_gguf.stat().st_size
    assert settings["profile"]["sampling"]["seed"] == 11
    assert record.panes[1].header  # llama.cpp · F32 · CPU


def _start_replay(
    models: Path, db: Path, kurabe_home: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """``kurabe replay seed-gpt4`` on the two tiny panes, as a separate process."""
    command = [
        sys.executable,
        "-m",
        "kurabe.cli",
        "replay",
        "seed-gpt4",
        "--models",
        "tiny-a,tiny-b",
        "--models-file",
        str(models),
        "--db",
        str(engine_target(db)),
        *extra,
    ]
    env = dict(os.environ, KURABE_HOME=str(kurabe_home), PYTHONPATH=str(REPO))
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_kill_9_mid_stream_keeps_everything_completed(
    tiny_gguf: Path, tmp_path: Path, kurabe_home: Path, unload: None
) -> None:
    models = _models_file(tmp_path, tiny_gguf, long_tokens=3000)
    db = tmp_path / "k.sqlite3"
    store = Store(db)  # created (and migrated) before the replay opens it
    process = _start_replay(models, db, kurabe_home, "--seed", "3")
    completed: dict[int, str] = {}
    rated: dict[int, tuple[int, str]] = {}
    victim = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            rows = store.database.query("SELECT id, status, text FROM replies ORDER BY id")
            for reply_id, status, text in rows:
                if status == "complete" and reply_id not in completed:
                    completed[reply_id] = text
                    # a rater on the same database while the replay runs
                    score = 1 + reply_id % 5
                    note = f"返信{reply_id}はまあまあ"
                    store.ratings.add_rating(
                        reply_id,
                        score=score,
                        tags=["repetitive"],
                        note=note,
                        rater="ci",
                        blind=False,
                    )
                    rated[reply_id] = (score, note)
            streaming = [r for r in rows if r[1] == "streaming" and r[2]]
            if completed and streaming:
                victim = streaming[0][0]
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None and victim is None:
            process.kill()
        _, err = process.communicate(timeout=30)
    assert victim is not None, f"never caught a reply mid-stream: {err.decode()[-2000:]}"
    assert process.returncode == -signal.SIGKILL

    after = Store(db)
    stored = {r.id: r for r in after.replies.replies(after.sessions.latest_id() or 0)}
    for reply_id, text in completed.items():
        assert stored[reply_id].status == "complete" and stored[reply_id].text == text
        assert stored[reply_id].checks
    ratings = {
        r.reply_id: (r.score, r.note)
        for r in after.ratings.ratings(after.sessions.latest_id() or 0)
    }
    assert ratings == rated
    half = stored[victim]
    assert half.status == "streaming" and half.incomplete and half.text
    assert half.finished_at is None
    session_id = after.sessions.latest_id()
    after.close()

    # the interrupted replay resumes from the first turn without a completed reply
    models.write_text(models.read_text(encoding="utf-8").replace("= 800", "= 16"), "utf-8")
    assert (
        main(["replay", "--resume", str(session_id), "--models-file", str(models), "--db", str(db)])
        == 0
    )
    final = Store(db).load_record(session_id or 0)
    assert final.session.status == "finished"
    assert next(r for r in final.replies if r.id == victim).status == "interrupted"
    latest = final.latest_replies()
    assert len(latest) == 8 and all(r.completed for r in latest.values())
    for reply_id, text in completed.items():
        assert next(r for r in final.replies if r.id == reply_id).text == text


def test_ctrl_c_stops_cleanly_with_everything_saved(
    tiny_gguf: Path, tmp_path: Path, kurabe_home: Path
) -> None:
    models = _models_file(tmp_path, tiny_gguf, long_tokens=3000)
    db = tmp_path / "k.sqlite3"
    store = Store(db)
    process = _start_replay(models, db, kurabe_home)
    interrupted = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            rows = store.database.query("SELECT id, status, text FROM replies ORDER BY id")
            streaming = [r for r in rows if r[1] == "streaming" and r[2]]
            if any(r[1] == "complete" for r in rows) and streaming:
                interrupted = streaming[0][0]
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.01)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert interrupted is not None, err.decode()[-2000:]
    assert process.returncode == 130, err.decode()[-2000:]
    session_id = store.sessions.latest_id()
    assert out.decode().splitlines()[-1] == f"session {session_id}"
    assert f"kurabe replay --resume {session_id}" in err.decode()
    assert "Traceback" not in err.decode()
    record = store.load_record(session_id or 0)
    assert record.session.status == "interrupted"
    cut = next(r for r in record.replies if r.id == interrupted)
    assert cut.status == "cancelled" and cut.text and cut.incomplete
    assert all(r.status in ("complete", "cancelled") for r in record.replies)
    assert "interrupted" in [e.kind for e in record.events]
