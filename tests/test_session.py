"""The comparison session: fan-out, per-pane failure, scheduling, retries, ratings, resume.

Backends are scripted fakes (tests/fake_backends.py); the real backends have their own tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from backends.base import ProgressCallback, StreamError
from foundation.errors import KurabeError
from kurabe.core.blind import shown_name
from kurabe.core.rating_config import load_rating_config, resolve_rater
from kurabe.core.verdicts import normalize_verdict
from kurabe.session.comparison import ComparisonSession
from kurabe.session.compute_sharing import runs_on_gpu
from kurabe.session.events import (
    PaneDelta,
    PaneFailed,
    PaneFinished,
    PaneLoading,
    PaneReady,
    PaneStarted,
    SessionEvent,
    TurnFinished,
    TurnStarted,
)
from kurabe.session.reply_figures import compute_figures
from kurabe.session.reply_stream import ReplyStream, StreamState
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn
from tests.fake_backends import ActivityLog, FakeBackend, Script, fake_factory, fake_profile
from tests.postgres_support import db_arg

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")

ANIME_FAN = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。",
    char_name="オタク",
    user_name="ユーザー",
    register="casual",
    max_reply_chars=80,
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

E = TypeVar("E")


def reply_of(reply_id: int | None) -> int:
    assert reply_id is not None
    return reply_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "kurabe.sqlite3")


class Recorder:
    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    def __call__(self, event: SessionEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


def make_session(
    store: Store,
    backends: dict[str, FakeBackend],
    *,
    local: Collection[str] = frozenset(),
    **kwargs: Any,
) -> tuple[ComparisonSession, Recorder]:
    profiles = [fake_profile(name, local=name in local) for name in backends]
    session = ComparisonSession.create(
        store, ANIME_FAN, profiles, backend_factory=fake_factory(backends), rater="hana", **kwargs
    )
    recorder = Recorder()
    session.subscribe(recorder)
    return session, recorder


async def test_fan_out_each_pane_keeps_its_own_history(store: Store) -> None:
    fast = FakeBackend("fast", ["うん、大好きだよ！", "宮崎駿は最高だよね！"])
    slow = FakeBackend(
        "slow",
        [
            Script.text("まあね、けっこう見るよ。", delay_s=0.02),
            Script.text("ジブリいいよね〜", delay_s=0.02),
        ],
    )
    session, rec = make_session(store, {"fast": fast, "slow": slow})
    await session.load()
    assert [type(e) for e in rec.events].count(PaneReady) == 2
    assert all(p.status == "ready" for p in session.panes)
    assert session.panes[0].header == "fake fast"

    assert await session.send("ねえ、アニメ好きなの？") == 0
    assert await session.send("宮崎さんの作品全部好き！") == 1

    # every pane saw the same user line, and only its own earlier reply
    second_fast = fast.calls[1]
    assert [m.content for m in second_fast.turns] == [
        "ねえ、アニメ好きなの？",
        "うん、大好きだよ！",
        "宮崎さんの作品全部好き！",
    ]
    assert [m.content for m in slow.calls[1].turns][1] == "まあね、けっこう見るよ。"
    assert second_fast.system == ANIME_FAN.system
    assert second_fast.char_name == "オタク"
    assert fast.calls[0].conversation_id != slow.calls[0].conversation_id

    assert [m.content for m in session.panes[1].history][-1] == "ジブリいいよね〜"
    assert session.user_turns == ["ねえ、アニメ好きなの？", "宮崎さんの作品全部好き！"]

    # event order per pane: started, deltas, finished; turn framing around them
    assert isinstance(rec.events[-1], TurnFinished)
    turn_started = rec.of(TurnStarted)
    assert [t.text for t in turn_started] == session.user_turns
    finished = rec.of(PaneFinished)
    assert len(finished) == 4
    slow_first = next(f for f in finished if f.pane == 1)
    deltas = [d.text for d in rec.of(PaneDelta) if d.reply_id == slow_first.reply_id]
    assert "".join(deltas) == "まあね、けっこう見るよ。" == slow_first.text
    assert slow_first.figures.chars == len("まあね、けっこう見るよ。")
    assert slow_first.figures.chars_per_s is not None and slow_first.figures.chars_per_s > 0
    assert slow_first.figures.tokens_per_s is not None
    # the Japanese checks ran and were stored with the reply
    assert slow_first.checks["japanese_share"] == pytest.approx(1.0)
    stored = store.replies.reply(slow_first.reply_id)
    assert stored.status == "complete" and not stored.incomplete
    assert stored.checks == slow_first.checks
    assert stored.text == "まあね、けっこう見るよ。"
    assert stored.chars_per_s == pytest.approx(slow_first.figures.chars_per_s)


async def test_checks_see_the_previous_reply_and_persona(store: Store) -> None:
    looping = FakeBackend("loop", ["同じことを言うよ、同じことを言うよ。"] * 2)
    session, rec = make_session(store, {"loop": looping})
    await session.send("ねえ、アニメ好きなの？")
    await session.send("好きなアニメは何ですか?")
    second = rec.of(PaneFinished)[1]
    assert second.checks["repeats_previous"] is True


async def test_one_failing_pane_never_stops_the_others_and_can_be_retried(store: Store) -> None:
    good = FakeBackend("good", ["うん、大好きだよ！"])
    flaky = FakeBackend(
        "flaky",
        [
            Script(
                chunks=("えっと",),
                error=StreamError("rate limited (429)", retryable=True, kind="rate_limit"),
            ),
            Script.text("うん、好きだよ！"),
        ],
    )
    broken = FakeBackend(
        "broken", [Script(chunks=("あ",), raise_exc=RuntimeError("socket closed"))]
    )
    session, rec = make_session(store, {"good": good, "flaky": flaky, "broken": broken})
    await session.send("ねえ、アニメ好きなの？")

    failed = {f.pane: f for f in rec.of(PaneFailed)}
    assert set(failed) == {1, 2}
    assert failed[1].reason == "rate limited (429)" and failed[1].retryable
    assert failed[1].partial_text == "えっと" and not failed[1].cancelled
    assert "socket closed" in failed[2].reason
    assert [f.pane for f in rec.of(PaneFinished)] == [0]
    assert session.panes[1].status == "failed"
    assert session.panes[1].last_error == "rate limited (429)"

    first_failure = store.replies.reply(reply_of(failed[1].reply_id))
    assert first_failure.status == "failed" and first_failure.incomplete
    assert first_failure.text == "えっと" and first_failure.error_kind == "rate_limit"

    with pytest.raises(KurabeError):
        await session.retry(0)  # its reply is complete: regenerate instead
    await session.retry(1)
    retried = rec.of(PaneFinished)[-1]
    assert retried.pane == 1 and retried.text == "うん、好きだよ！"
    assert store.replies.reply(retried.reply_id).version == 2
    assert store.replies.reply(first_failure.id).status == "failed"  # the failed version is kept
    assert session.panes[1].status == "ready"
    assert session.panes[1].history[-1].content == "うん、好きだよ！"

    view = session.transcript()[0]
    assert view.replies[1].text == "うん、好きだよ！" and view.replies[1].versions == 2
    assert view.replies[2].status == "failed" and view.replies[2].incomplete


async def test_a_stalled_pane_times_out_alone(store: Store) -> None:
    stalled = FakeBackend("stalled", [Script(chunks=("考え中",), stall=True)])
    fine = FakeBackend("fine", [Script.text("宮崎駿の作品はマジで最高だよね！", delay_s=0.01)])
    session, rec = make_session(store, {"stalled": stalled, "fine": fine}, stall_timeout_s=0.2)
    await asyncio.wait_for(session.send("宮崎さんの作品全部好き！"), timeout=5)
    (failure,) = rec.of(PaneFailed)
    assert failure.pane == 0 and "timed out" in failure.reason and failure.retryable
    assert failure.partial_text == "考え中"
    assert stalled.cancelled == 1
    assert rec.of(PaneFinished)[0].text == "宮崎駿の作品はマジで最高だよね！"
    row = store.replies.reply(reply_of(failure.reply_id))
    assert row.status == "failed" and row.error_kind == "timeout" and row.text == "考え中"
    assert not session.busy


async def test_cancel_one_pane_keeps_partial_text_and_others_finish(store: Store) -> None:
    stalled = FakeBackend("stalled", [Script(chunks=("ナウシカは", "ね、"), stall=True)])
    fine = FakeBackend("fine", [Script.text("腐海を守る話だよ。", delay_s=0.03)])
    session, rec = make_session(store, {"stalled": stalled, "fine": fine})
    task = asyncio.create_task(session.send("ナウシカってどんな話？"))
    while not any(isinstance(e, PaneDelta) and e.pane == 0 for e in rec.events):
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)
    assert session.busy
    session.cancel(0)
    assert await asyncio.wait_for(task, timeout=5) == 0
    (cancelled,) = rec.of(PaneFailed)
    assert cancelled.cancelled and cancelled.partial_text == "ナウシカはね、"
    assert store.replies.reply(reply_of(cancelled.reply_id)).status == "cancelled"
    assert rec.of(PaneFinished)[0].text == "腐海を守る話だよ。"
    # a cancelled reply can be retried on its own
    stalled.replies = ["腐海は森だよ。"]
    await session.retry(0)
    assert rec.of(PaneFinished)[-1].text == "腐海は森だよ。"


async def test_cancel_all_then_send_again(store: Store) -> None:
    a = FakeBackend("a", [Script(chunks=("あ",), stall=True), "二回目だよ"])
    b = FakeBackend("b", [Script(chunks=("い",), stall=True), "二回目だね"])
    session, rec = make_session(store, {"a": a, "b": b})
    task = asyncio.create_task(session.send("ねえ"))
    while len(rec.of(PaneDelta)) < 2:
        await asyncio.sleep(0.005)
    session.cancel()
    await asyncio.wait_for(task, timeout=5)
    assert sorted(f.pane for f in rec.of(PaneFailed) if f.cancelled) == [0, 1]
    await session.send("もう一回")
    # the cancelled partial text stays in each pane's history
    assert [m.content for m in a.calls[1].turns] == ["ねえ", "あ", "もう一回"]


async def test_local_cpu_panes_take_turns_in_rotated_order(store: Store) -> None:
    log = ActivityLog()
    script = Script.text("うん、好きだよ。", delay_s=0.01)
    backends = {
        name: FakeBackend(name, [script], activity=log) for name in ("gemma", "elyza", "api")
    }
    session, _ = make_session(store, backends, local={"gemma", "elyza"})
    await session.send("一回目")
    first_order = [n for n in log.order() if n != "api"]
    assert not log.overlapped("gemma", "elyza")
    assert log.overlapped("api", first_order[0])  # API panes run beside the local one
    log.spans.clear()
    await session.send("二回目")
    second_order = [n for n in log.order() if n != "api"]
    assert second_order == list(reversed(first_order))
    assert not log.overlapped("gemma", "elyza")


async def test_local_panes_on_one_file_stream_together_other_files_wait(store: Store) -> None:
    log = ActivityLog()
    script = Script.text("うん、好きだよ。", delay_s=0.01)
    shared = "/models/gemma-3-270m.gguf"
    backends = {
        name: FakeBackend(name, [script], activity=log, model_key=key)
        for name, key in (("gemma-a", shared), ("gemma-b", shared), ("elyza", None))
    }
    session, _ = make_session(store, backends, local=set(backends))
    firsts = []
    for line in ("一回目", "二回目"):
        log.spans.clear()
        await session.send(line)
        assert log.overlapped("gemma-a", "gemma-b")  # one engine batches them
        assert not log.overlapped("gemma-a", "elyza")
        assert not log.overlapped("gemma-b", "elyza")
        firsts.append(log.order()[0] == "elyza")
    assert firsts in ([True, False], [False, True])  # the order of files rotates


def test_a_partly_offloaded_model_competes_for_the_cpu() -> None:
    partly = FakeBackend("x", offloaded_layers=10, shares_compute=True)
    assert not runs_on_gpu(partly)
    wholly = FakeBackend("y", offloaded_layers=10, shares_compute=False)
    assert runs_on_gpu(wholly)


@pytest.mark.parametrize("how", ["parallel_local", "gpu"])
async def test_local_panes_run_together_when_asked_or_on_gpu(store: Store, how: str) -> None:
    log = ActivityLog()
    script = Script.text("うん、好きだよ。", delay_s=0.01)
    layers = 27 if how == "gpu" else 0
    backends = {
        name: FakeBackend(name, [script], activity=log, offloaded_layers=layers)
        for name in ("gemma", "elyza")
    }
    session, _ = make_session(
        store, backends, local={"gemma", "elyza"}, parallel_local=how == "parallel_local"
    )
    await session.send("ねえ")
    assert log.overlapped("gemma", "elyza")
    assert log.max_active == 2


async def test_cancel_a_local_pane_still_waiting_for_its_turn(store: Store) -> None:
    first = FakeBackend("first", [Script(chunks=("えっと",), stall=True)])
    second = FakeBackend("second", ["待ってた"])
    session, rec = make_session(
        store, {"first": first, "second": second}, local={"first", "second"}
    )
    task = asyncio.create_task(session.send("ねえ"))
    while not rec.of(PaneDelta):
        await asyncio.sleep(0.005)
    waiting = 1 if rec.of(PaneDelta)[0].pane == 0 else 0
    session.cancel(waiting)
    session.cancel(1 - waiting)
    await asyncio.wait_for(task, timeout=5)
    failures = {f.pane: f for f in rec.of(PaneFailed)}
    assert set(failures) == {0, 1} and all(f.cancelled for f in failures.values())
    assert failures[waiting].partial_text == ""
    assert (first, second)[waiting].calls == []  # never streamed
    assert store.replies.reply(reply_of(failures[waiting].reply_id)).status == "cancelled"


async def test_a_reply_stream_owns_its_task_cancel_and_state(store: Store) -> None:
    first = FakeBackend("first", [Script(chunks=("えっと",), stall=True)])
    second = FakeBackend("second", ["待ってた"])
    broken = FakeBackend("broken", [Script(chunks=(), error=StreamError("切れた", retryable=True))])
    session, rec = make_session(
        store, {"first": first, "second": second, "broken": broken}, local={"first", "second"}
    )
    task = asyncio.create_task(session.send("ねえ"))
    while not rec.of(PaneDelta):
        await asyncio.sleep(0.005)
    running = rec.of(PaneDelta)[0].pane
    streams = [pane.stream for pane in session.panes]
    assert all(isinstance(stream, ReplyStream) for stream in streams)
    streaming, waiting = (cast(ReplyStream, streams[i]) for i in (running, 1 - running))
    assert streaming.state is StreamState.STREAMING and not streaming.done
    assert waiting.state is StreamState.WAITING and session.panes[1 - running].busy
    assert waiting.cancel() and streaming.cancel()
    await asyncio.wait_for(task, timeout=5)
    assert streaming.state is waiting.state is StreamState.CANCELLED
    assert streaming.done and waiting.done and not any(p.busy for p in session.panes)
    assert not streaming.cancel()  # already ended: nothing to cancel, no event
    assert cast(ReplyStream, streams[2]).state is StreamState.FAILED
    second.replies = ["二回目"]
    await session.retry(1 - running)
    again = cast(ReplyStream, session.panes[1 - running].stream)
    assert again is not waiting and again.state is StreamState.COMPLETE and again.text == "二回目"


async def test_a_header_that_changed_while_other_panes_loaded_is_shown_again(store: Store) -> None:
    loaded: list[str] = []

    class Sharing(FakeBackend):
        """Held by every pane that has loaded, as one local model shared by several panes."""

        async def load(self, progress: ProgressCallback | None = None) -> None:
            await super().load(progress)
            loaded.append(self.name)

        @property
        def shared_by(self) -> int:
            return len(loaded)

    panes: dict[str, FakeBackend] = {"a": Sharing("a"), "b": Sharing("b", load_delay_s=0.05)}
    session, rec = make_session(store, panes)
    await session.load()
    shared = ["fake a · shared by 2", "fake b · shared by 2"]
    assert [p.header for p in session.panes] == shared
    assert [(e.pane, e.header) for e in rec.of(PaneReady)] == [
        (0, "fake a"),
        (1, "fake b · shared by 2"),
        (0, "fake a · shared by 2"),
    ]
    assert [p.header for p in store.load_record(session.id).panes] == shared


async def test_unusable_and_failing_loads_are_skipped(store: Store) -> None:
    nokey = FakeBackend("claude", unusable="API key missing: set ANTHROPIC_API_KEY")
    badfile = FakeBackend("elyza", load_error=FileNotFoundError("elyza-q6_K.gguf"))
    ok = FakeBackend("gemma", ["うん！"], load_messages=["assembling the GGUF"])
    session, rec = make_session(store, {"claude": nokey, "elyza": badfile, "gemma": ok})
    await session.load()
    statuses = [p.status for p in session.panes]
    assert statuses == ["unusable", "unusable", "ready"]
    load_failures = rec.of(PaneFailed)
    assert {f.pane for f in load_failures} == {0, 1}
    assert all(f.reply_id is None and not f.retryable for f in load_failures)
    assert "ANTHROPIC_API_KEY" in load_failures[0].reason
    assert "elyza-q6_K.gguf" in load_failures[1].reason
    assert any(
        isinstance(e, PaneLoading) and e.message == "assembling the GGUF" for e in rec.events
    )
    await session.send("ねえ")
    assert nokey.calls == [] and badfile.calls == []
    assert [f.pane for f in rec.of(PaneFinished)] == [2]
    with pytest.raises(KurabeError):
        await session.retry(0)


async def test_factory_failure_makes_an_unusable_pane(store: Store) -> None:
    ok = FakeBackend("ok", ["うん"])

    def factory(profile):  # type: ignore[no-untyped-def]
        if profile.name == "boom":
            raise ImportError("llama_cpp is not installed")
        return ok

    session = ComparisonSession.create(
        store, ANIME_FAN, [fake_profile("boom"), fake_profile("ok")], backend_factory=factory
    )
    await session.send("ねえ")
    assert session.panes[0].status == "unusable"
    assert "llama_cpp is not installed" in (session.panes[0].last_error or "")


async def test_regenerate_keeps_both_versions_and_history_uses_newest(store: Store) -> None:
    fake = FakeBackend("gemma", ["最初の返事", "作り直した返事", "次の返事"])
    session, rec = make_session(store, {"gemma": fake})
    await session.send("ねえ")
    first_id = rec.of(PaneFinished)[0].reply_id
    await session.regenerate(0)
    second = rec.of(PaneFinished)[1]
    assert second.text == "作り直した返事"
    assert store.replies.reply(first_id).text == "最初の返事"
    assert store.replies.reply(first_id).status == "complete"
    assert store.replies.reply(second.reply_id).version == 2
    await session.send("それで？")
    assert [m.content for m in fake.calls[2].turns] == ["ねえ", "作り直した返事", "それで？"]


async def test_partial_text_is_flushed_while_streaming(store: Store) -> None:
    words = "ゆっくり話すね、ほんとうにね"
    slow = FakeBackend("slow", [Script(chunks=tuple(words), delay_s=0.1)])
    session, rec = make_session(store, {"slow": slow})
    task = asyncio.create_task(session.send("ねえ"))
    while not rec.of(PaneDelta):
        await asyncio.sleep(0.005)
    reply_id = rec.of(PaneStarted)[0].reply_id
    other = Store(db_arg(store))  # what another process would see
    first = other.replies.reply(reply_id)
    assert first.status == "streaming" and first.text == "ゆ"  # the first delta is saved at once
    await asyncio.sleep(0.7)
    partial = other.replies.reply(reply_id)
    assert partial.status == "streaming" and partial.incomplete
    assert 1 < len(partial.text) < len(words) and words.startswith(partial.text)
    other.close()
    await task
    assert store.replies.reply(reply_id).text == words


async def test_outer_cancellation_saves_and_propagates(store: Store) -> None:
    stalled = FakeBackend("a", [Script(chunks=("途中まで",), stall=True)])
    session, rec = make_session(store, {"a": stalled})
    task = asyncio.create_task(session.send("ねえ"))
    while not rec.of(PaneDelta):
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (failure,) = rec.of(PaneFailed)
    assert failure.cancelled
    row = store.replies.reply(reply_of(failure.reply_id))
    assert row.status == "cancelled" and row.text == "途中まで"
    assert not session.busy


async def test_busy_session_refuses_a_second_send(store: Store) -> None:
    fake = FakeBackend("a", [Script(chunks=("あ",), stall=True)])
    session, _ = make_session(store, {"a": fake})
    task = asyncio.create_task(session.send("ねえ"))
    await asyncio.sleep(0.02)
    with pytest.raises(KurabeError):
        await session.send("まだ？")
    await session.aclose()
    await task
    assert fake.closed


async def test_ratings_verdicts_and_picks(store: Store) -> None:
    a = FakeBackend("a", ["うん、大好きだよ！"])
    b = FakeBackend("b", ["はい、アニメが大好きです。"])
    session, rec = make_session(store, {"a": a, "b": b})
    await session.send("ねえ、アニメ好きなの？")
    reply_a, reply_b = (f.reply_id for f in sorted(rec.of(PaneFinished), key=lambda f: f.pane))

    session.rate_reply(reply_b, score=2)
    session.rate_reply(reply_b, tags=["wrong-register", "敬語すぎ"])
    session.rate_reply(reply_b, note="です・ます調になってる")
    session.rate_reply(reply_a, score=5)
    session.rate_reply(reply_a, score=4)  # re-rating: history kept, latest counts
    with pytest.raises(KurabeError):
        session.rate_reply(reply_a, score=6)
    session.set_verdict(0, "Great", "短くてタメ口")
    session.set_verdict(1, "can't stay in character", "丁寧語")
    session.pick_best(0, 0)
    session.pick_best(0, "tie")
    with pytest.raises(KurabeError):
        session.pick_best(3, 0)
    with pytest.raises(KurabeError):
        session.set_verdict(0, "meh")

    ratings = store.ratings.ratings(session.id)
    assert len(ratings) == 5
    latest_b = [r for r in ratings if r.reply_id == reply_b][-1]
    assert latest_b.score == 2
    assert latest_b.tags == ("wrong-register", "敬語すぎ")
    assert latest_b.note == "です・ます調になってる"
    assert latest_b.rater == "hana" and not latest_b.blind
    assert [r.score for r in ratings if r.reply_id == reply_a] == [5, 4]

    view = session.transcript()[0]
    assert view.replies[0].rating.score == 4
    assert view.replies[1].ratings.tags == ("wrong-register", "敬語すぎ")
    assert view.pick == "tie"
    assert session.verdict_of(1) == ("out-of-character", "丁寧語")
    assert [v.verdict for v in store.ratings.verdicts(session.id)] == ["great", "out-of-character"]
    assert [p.outcome for p in store.ratings.picks(session.id)] == ["pane", "tie"]


async def test_rating_a_reply_of_another_session_is_refused(store: Store) -> None:
    one, rec = make_session(store, {"a": FakeBackend("a", ["うん"])})
    await one.send("ねえ")
    other, _ = make_session(store, {"a": FakeBackend("a", ["うん"])})
    with pytest.raises(KurabeError):
        other.rate_reply(rec.of(PaneFinished)[0].reply_id, score=3)


async def test_blind_session_shuffles_hides_and_reveals(store: Store) -> None:
    names = ["gpt", "claude", "elyza", "weblab"]
    backends = {n: FakeBackend(n, [f"{n}の返事"]) for n in names}
    session, rec = make_session(store, backends, blind=True, shuffle_seed=3)
    order = [p.profile.name for p in session.panes]
    assert sorted(order) == sorted(names) and order != names
    assert [shown_name(p.label, p.profile.name, hidden=session.hidden) for p in session.panes] == [
        "A",
        "B",
        "C",
        "D",
    ]
    assert [p.label for p in store.sessions.panes(session.id)] == ["A", "B", "C", "D"]
    created = store.sessions.events(session.id)[0]
    assert created.kind == "created" and created.data["blind"] is True
    assert [names[i] for i in created.data["order"]] == order
    assert store.sessions.summaries()[0].models == ("A", "B", "C", "D")

    await session.send("ねえ")
    session.rate_reply(rec.of(PaneFinished)[0].reply_id, score=3)
    session.reveal()
    assert [
        shown_name(p.label, p.profile.name, hidden=session.hidden) for p in session.panes
    ] == order
    session.rate_reply(rec.of(PaneFinished)[0].reply_id, score=4)
    assert [r.blind for r in store.ratings.ratings(session.id)] == [True, False]
    assert store.sessions.get(session.id).revealed
    assert "reveal" in [e.kind for e in store.sessions.events(session.id)]


async def test_scenario_turns_are_tracked(store: Store) -> None:
    fake = FakeBackend("a", ["うん"])
    session, _ = make_session(store, {"a": fake}, scenario=SCENARIO)
    assert session.next_scenario_turn() == 0
    await session.send_scenario_turn()
    await session.send("自由な一言")  # a free line in between does not advance the script
    assert session.next_scenario_turn() == 1
    await session.send(SCENARIO.turns[1].text)  # typed exactly: counted as the scripted line
    assert session.next_scenario_turn() == 2
    await session.send_scenario_turn()
    assert session.next_scenario_turn() is None
    assert await session.send_scenario_turn() is None
    assert [t.scenario_turn for t in store.replies.turns(session.id)] == [0, None, 1, 2]
    assert store.sessions.get(session.id).status == "finished"


async def test_the_session_records_how_it_ended_and_reads_itself_back(store: Store) -> None:
    session, _ = make_session(store, {"a": FakeBackend("a", ["うん"])})
    assert store.sessions.get(session.id).status == "open"
    await session.send("やあ")
    record = session.record()
    assert record.session.id == session.id and [t.text for t in record.turns] == ["やあ"]
    assert session.judgements() == []
    session.finish("interrupted")
    assert store.sessions.get(session.id).status == "interrupted"
    assert [e.data for e in store.sessions.events(session.id) if e.kind == "interrupted"] == [
        {"turns": 1}
    ]
    session.reopen()
    assert store.sessions.get(session.id).status == "open"
    session.finish("failed")
    assert store.sessions.get(session.id).status == "failed"
    with pytest.raises(KurabeError, match="session status is one of"):
        store.sessions.set_status(session.id, "done")  # type: ignore[arg-type]
    assert store.sessions.get(session.id).status == "failed"


async def test_resume_rebuilds_histories_and_fills_missing_replies(store: Store) -> None:
    a = FakeBackend("a", ["うん、好きだよ！", "ジブリ最高！"])
    b = FakeBackend("b", ["もちろん！", Script(chunks=("途中",), stall=True)])
    session, rec = make_session(store, {"a": a, "b": b}, scenario=SCENARIO)
    await session.send_scenario_turn()
    task = asyncio.create_task(session.send_scenario_turn())
    while not any(
        isinstance(e, PaneDelta) and e.pane == 1 and e.text == "途中" for e in rec.events
    ):
        await asyncio.sleep(0.005)
    # simulate a killed process: the task vanishes without saving anything more
    stuck_reply = [e for e in rec.of(PaneStarted) if e.pane == 1][-1].reply_id
    store.replies.update_partial(stuck_reply, "途中")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.database.execute(  # what kill -9 leaves behind: the row still says streaming
        "UPDATE replies SET status = 'streaming', incomplete = 1 WHERE id = ?", (stuck_reply,)
    )

    a2 = FakeBackend("a", ["ナウシカは腐海の話だよ。"])
    b2 = FakeBackend("b", ["ジブリ大好き！", "ナウシカは風の谷の話。"])
    resumed = ComparisonSession.resume(
        store,
        session.id,
        profiles={},  # rebuilt from the stored snapshots
        backend_factory=fake_factory({"a": a2, "b": b2}),
    )
    assert resumed.persona == ANIME_FAN
    assert resumed.scenario == SCENARIO
    assert resumed.rater == "hana"
    assert store.replies.reply(stuck_reply).status == "interrupted"
    assert resumed.user_turns == [SCENARIO.turns[0].text, SCENARIO.turns[1].text]
    assert [m.content for m in resumed.panes[0].history] == [
        SCENARIO.turns[0].text,
        "うん、好きだよ！",
        SCENARIO.turns[1].text,
        "ジブリ最高！",
    ]
    assert resumed.first_incomplete_turn() == 1
    assert await resumed.fill_missing() == 1
    assert a2.calls == []
    assert [m.content for m in b2.calls[0].turns] == [
        SCENARIO.turns[0].text,
        "もちろん！",
        SCENARIO.turns[1].text,
    ]
    assert resumed.first_incomplete_turn() is None
    assert resumed.next_scenario_turn() == 2
    await resumed.send_scenario_turn()
    views = resumed.transcript()
    assert [v.replies[1].text for v in views] == [
        "もちろん！",
        "ジブリ大好き！",
        "ナウシカは風の谷の話。",
    ]
    assert views[1].replies[1].versions == 2
    assert [e.kind for e in store.sessions.events(session.id)].count("resumed") == 1


async def test_listener_errors_do_not_break_the_stream(store: Store) -> None:
    fake = FakeBackend("a", ["うん、大好き"])
    session, rec = make_session(store, {"a": fake})

    def broken(event: SessionEvent) -> None:
        raise ValueError("ui bug")

    unsubscribe = session.subscribe(broken)
    await session.send("ねえ")
    assert rec.of(PaneFinished)[0].text == "うん、大好き"
    unsubscribe()
    unsubscribe()


async def test_no_api_key_reaches_the_database(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-ひみつ-0123456789abcdef"
    monkeypatch.setenv("KURABE_TEST_KEY", secret)
    leaky = FakeBackend(
        "gpt",
        ["うん！"],
        snapshot={
            "model": "gpt-4.1-mini",
            "api_key": secret,
            "base_url": f"https://example.invalid/v1?key={secret}",
            "nested": {"authorization": f"Bearer {secret}", "note": secret},
        },
        header=f"gpt via {secret}",
    )
    profile = fake_profile("gpt", api_key_env="KURABE_TEST_KEY")
    session = ComparisonSession.create(
        store, ANIME_FAN, [profile], backend_factory=fake_factory({"gpt": leaky})
    )
    await session.send("ねえ")
    dump = store.database.dump_text()
    assert secret not in dump
    assert "KURABE_TEST_KEY" in dump  # the variable's name is recorded, its value never
    settings = store.sessions.panes(session.id)[0].settings
    assert settings["backend"]["model"] == "gpt-4.1-mini"
    assert "api_key" not in settings["backend"]


def test_too_many_or_no_panes(store: Store) -> None:
    with pytest.raises(KurabeError):
        ComparisonSession.create(store, ANIME_FAN, [])
    profiles = [fake_profile(f"m{i}") for i in range(7)]
    with pytest.raises(KurabeError):
        ComparisonSession.create(
            store, ANIME_FAN, profiles, backend_factory=lambda p: FakeBackend(p.name)
        )


def test_compute_figures() -> None:
    figures = compute_figures(40, prompt_tokens=30, completion_tokens=20, ttft_s=0.5, total_s=2.5)
    assert figures.tokens_per_s == pytest.approx(10.0)
    assert figures.chars_per_s == pytest.approx(20.0)
    no_ttft = compute_figures(10, completion_tokens=None, ttft_s=None, total_s=2.0)
    assert no_ttft.chars_per_s == pytest.approx(5.0) and no_ttft.tokens_per_s is None
    one_chunk = compute_figures(6, completion_tokens=1, ttft_s=0.3, total_s=0.3)
    assert one_chunk.chars_per_s == pytest.approx(20.0) and one_chunk.tokens_per_s is None


def test_runs_on_gpu() -> None:
    assert runs_on_gpu(FakeBackend("x", offloaded_layers=19))
    assert not runs_on_gpu(FakeBackend("x", offloaded_layers=0))

    class Declared(FakeBackend):
        @property
        def offloaded_layers(self) -> int:
            return 5

    method = Declared("x")
    assert runs_on_gpu(method)


def test_rater_and_labels_from_config(kurabe_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_rater("  ken ") == "ken"
    assert resolve_rater(None)  # the OS user name
    config = kurabe_home / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        'rater = "はな"\nscore_labels = "en"\ntags = ["kawaii", "too-long"]\ntheme = "dark"\n',
        encoding="utf-8",
    )
    assert resolve_rater(None) == "はな"
    assert resolve_rater("ken") == "ken"
    cfg = load_rating_config()
    assert cfg.score_labels[1] == "broken"
    assert cfg.tags[-1] == "kawaii" and cfg.tags.count("too-long") == 1
    (config / "config.toml").write_text('[score_labels]\n1 = "ダメ"\n', encoding="utf-8")
    assert load_rating_config().score_labels == {
        1: "ダメ",
        2: "不自然",
        3: "OK",
        4: "良い",
        5: "素晴らしい",
    }
    (config / "config.toml").write_text('score_labels = "fr"\n', encoding="utf-8")
    with pytest.raises(KurabeError, match=r"config\.toml:1"):
        load_rating_config()


def test_normalize_verdict() -> None:
    assert normalize_verdict("Great") == "great"
    assert normalize_verdict("OK") == "ok"
    assert normalize_verdict("Can't stay in character") == "out-of-character"
    assert normalize_verdict("subpar") == "subpar"
