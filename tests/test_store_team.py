"""A store a team shares: choosing PostgreSQL by URL (never a file named after it, never its
password shown), copying a solo SQLite store in, eight writers at once on both engines, and the
server going away in the middle of a replay and of a rating."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from foundation.errors import KurabeError
from kurabe.cli import main
from kurabe.session.comparison import ComparisonSession
from kurabe.session.pending import PendingWrites
from kurabe.session.replay import NullProgress, resume_replay, run_replay
from kurabe.store.copy import BOOKKEEPING_TABLES, COPIED_TABLES, copy_store
from kurabe.store.database import StoreUnavailable
from kurabe.store.records import ReplyFigures
from kurabe.store.store import Store
from kurabe.store.target import open_database, resolve_target
from personas import Persona
from scenarios import Scenario, Turn
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile
from tests.postgres_support import PostgresServer, require_server

PERSONA = Persona(id="anime-fan", title="大のアニメファン", system="あなたは大のアニメファンです。")
SCENARIO = Scenario(
    id="seed-team",
    title="チーム",
    persona="anime-fan",
    turns=(Turn("ねえ、アニメ好きなの？"), Turn("ジブリは？"), Turn("ナウシカは？")),
)
SECRET = "hunter2-s3cret"


# -- choosing the database -----------------------------------------------------------------


def test_a_postgres_url_is_never_a_file_and_its_password_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"postgresql://hana:{SECRET}@127.0.0.1:1/team"  # nothing listens on port 1
    assert main(["sessions", "--db", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unreachable" in err and "127.0.0.1:1/team" in err
    assert SECRET not in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no directory named after the URL
    assert main(["sessions", "--db", "mysql://root:pw@db/x"]) == 2
    assert "postgresql://" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_database_comes_from_db_then_the_environment_then_config(
    tmp_path: Path, kurabe_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_target(None) == kurabe_home / "data" / "kurabe.sqlite3"
    (kurabe_home / "config").mkdir(parents=True)
    (kurabe_home / "config" / "config.toml").write_text(
        'db = "postgresql://hana@db.example:5432/team"\n', encoding="utf-8"
    )
    assert resolve_target(None) == "postgresql://hana@db.example:5432/team"
    monkeypatch.setenv("KURABE_DB", str(tmp_path / "env.sqlite3"))
    assert resolve_target(None) == tmp_path / "env.sqlite3"
    assert resolve_target(str(tmp_path / "flag.sqlite3")) == tmp_path / "flag.sqlite3"


def test_a_url_with_a_password_works_and_nothing_stored_or_listed_carries_it(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.create_database()
    with_password = url.replace("kurabe@", f"kurabe:{SECRET}@")  # trust auth: accepted
    with Store(with_password) as store:
        assert SECRET not in store.name and store.path is None
        session_id = store.sessions.create(PERSONA, rater="hana")
        store.sessions.add_pane(
            session_id,
            0,
            "A",
            profile_name="team",
            backend="openai",
            model="m",
            settings={"base_url": with_password},
        )
        assert SECRET not in store.database.dump_text()
        with pytest.raises(KurabeError) as missing:
            store.sessions.get(999)
        assert SECRET not in str(missing.value)
    for command in (["sessions"], ["sessions", "--format", "json"], ["export", "last"]):
        assert main(["--db", with_password, *command[:1], "--db", with_password, *command[1:]]) == 0
        out, err = capsys.readouterr()
        assert SECRET not in out + err


# -- one schema, copied in -------------------------------------------------------------------


def a_solo_store(path: Path) -> Store:
    """An SQLite store with a row in every table."""
    store = Store(path)
    session_id = store.sessions.create(PERSONA, SCENARIO, rater="hana", kind="replay", seed=3)
    panes = [
        store.sessions.add_pane(
            session_id, i, label, profile_name=name, backend="llama_cpp", model=name, settings={}
        )
        for i, (label, name) in enumerate((("A", "gemma"), ("B", "elyza")))
    ]
    turn = store.replies.add_turn(session_id, 0, "ねえ、アニメ好きなの？", scenario_turn=0)
    replies = []
    for pane in panes:
        reply, _ = store.replies.start_reply(turn, pane)
        store.replies.finish_reply(
            reply,
            text=f"返事{pane}",
            finish_reason="stop",
            figures=ReplyFigures(chars=3, ttft_s=0.25),
            checks={"japanese_share": 1.0},
        )
        replies.append(reply)
    store.ratings.add_rating(
        replies[0], score=4, tags=["too-long"], note="", rater="hana", blind=False
    )
    store.ratings.add_verdict(panes[1], verdict="great", note="", rater="hana", blind=False)
    store.ratings.add_pick(turn, winner_pane_id=panes[0], outcome="pane", rater="hana", blind=False)
    store.sessions.add_event(session_id, "reveal")
    run = store.judging.add_run(
        session_id,
        judge="judge:mini",
        profile_name="mini",
        mode="single",
        rubric_name="default",
        rubric_hash="0" * 64,
        rubric_text="1〜5",
        settings={},
    )
    store.judging.add_judgement(run, turn_id=turn, reply_id=replies[1], status="ok", score=5)
    store.judging.add_judgement(
        run, turn_id=turn, reply_id=replies[0], other_reply_id=replies[1], status="error"
    )
    return store


def without_ids(store: Store, session_id: int) -> Any:
    """A session's record with every id left out (ids differ between stores)."""
    import dataclasses

    def strip(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: strip(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if not (f.name == "id" or f.name.endswith("_id"))
            }
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        return value

    return strip(store.load_record(session_id))


def test_every_table_is_copied() -> None:
    with open_database(":memory:") as database:
        tables = set(database.table_names())
    assert {table for table, _ in COPIED_TABLES} == tables - set(BOOKKEEPING_TABLES)


def test_copy_a_solo_store_in_remaps_ids_and_twice_adds_nothing(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    solo = a_solo_store(tmp_path / "solo.sqlite3")
    with Store(postgres_url) as team:  # the team's store already has a session of its own
        team.sessions.create(PERSONA, rater="taro")
    assert main(["store", "copy", str(tmp_path / "solo.sqlite3"), "--to", postgres_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "table\tin source\tcopied\talready there"
    counts = {line.split("\t")[0]: line.split("\t")[1:] for line in lines[1:]}
    assert counts["sessions"] == ["1", "1", "0"] and counts["replies"] == ["2", "2", "0"]
    assert counts["judgements"] == ["2", "2", "0"] and counts["ratings"] == ["2", "2", "0"]
    assert set(counts) == {table for table, _ in COPIED_TABLES}
    with Store(postgres_url) as team:
        assert team.sessions.ids() == [1, 2]
        assert without_ids(team, 2) == without_ids(solo, 1)
        record = team.load_record(2)
        (judged,) = [j for j in record.judgements if j.status == "ok"]
        assert judged.rating_id in {r.id for r in record.ratings if r.kind == "judge"}
        assert {r.turn_id for r in record.replies} == {t.id for t in record.turns}

    assert main(["store", "copy", str(tmp_path / "solo.sqlite3"), "--to", postgres_url]) == 0
    again = capsys.readouterr().out.splitlines()[1:]
    assert all(line.split("\t")[2] == "0" for line in again)
    solo.ratings.add_rating(1, score=2, tags=[], note="やり直し", rater="hana", blind=False)
    with open_database(tmp_path / "solo.sqlite3") as source, open_database(postgres_url) as target:
        added = {c.table: c.copied for c in copy_store(source, target)}
    assert added == {table: (1 if table == "ratings" else 0) for table, _ in COPIED_TABLES}
    with Store(postgres_url) as team:
        assert [r.note for r in team.load_record(2).ratings][-1] == "やり直し"
    solo.close()


def test_a_store_is_not_copied_into_itself(tmp_path: Path) -> None:
    a_solo_store(tmp_path / "solo.sqlite3").close()
    with pytest.raises(KurabeError, match="same store"):
        main_or_raise(
            [
                "store",
                "copy",
                str(tmp_path / "solo.sqlite3"),
                "--to",
                str(tmp_path / "solo.sqlite3"),
            ]
        )


def main_or_raise(argv: list[str]) -> None:
    from kurabe.cli import build_parser

    args = build_parser().parse_args(argv)
    args.func(args)


# -- many writers ----------------------------------------------------------------------------


def _writer(target: str, worker: int, seconds: float, results: Any) -> None:
    """One process: replies and ratings of its own session, as fast as it can."""
    written: list[tuple[int, int]] = []
    try:
        with Store(target) as store:
            session_id = store.sessions.create(PERSONA, rater=f"w{worker}")
            pane = store.sessions.add_pane(
                session_id, 0, "A", profile_name="p", backend="b", model="m", settings={}
            )
            end = time.monotonic() + seconds
            idx = 0
            while time.monotonic() < end:
                turn = store.replies.add_turn(session_id, idx, f"turn {idx}")
                reply, _ = store.replies.start_reply(turn, pane)
                store.replies.finish_reply(
                    reply, text="返事", finish_reason="stop", figures=ReplyFigures(chars=2)
                )
                rating = store.ratings.add_rating(
                    reply, score=1 + idx % 5, tags=[], note="", rater=f"w{worker}", blind=False
                )
                written.append((reply, rating))
                idx += 1
        results.put((worker, session_id, written, ""))
    except BaseException as exc:
        results.put((worker, 0, written, f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow
def test_eight_processes_write_at_once_and_every_write_is_there(db_target: str | Path) -> None:
    Store(db_target).close()  # created before the writers start
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_writer, args=(str(db_target), worker, 3.0, results))
        for worker in range(8)
    ]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=30)
    assert [error for *_, error in outcomes if error] == []  # no "database is locked"
    with Store(db_target) as store:
        for _worker, session_id, written, _ in outcomes:
            assert written, "every writer wrote"
            record = store.load_record(session_id)
            assert sorted(r.id for r in record.replies) == sorted(w[0] for w in written)
            assert sorted(r.id for r in record.ratings) == sorted(w[1] for w in written)
            assert all(r.status == "complete" for r in record.replies)
        replies = store.database.query_one("SELECT COUNT(*), COUNT(DISTINCT id) FROM replies")
        total = sum(len(written) for _, _, written, _ in outcomes)
        assert replies is not None and tuple(replies) == (total, total)


# -- the server goes away ----------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, to stop and start again."""
    server = PostgresServer(require_server())
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def test_pending_writes_keep_order_and_refuse_visibly() -> None:
    pending = PendingWrites()
    down = True
    saved: list[str] = []

    def write(name: str) -> Any:
        def call() -> str:
            if down:
                raise StoreUnavailable("the database postgresql://db/team is unreachable")
            if name == "bad":
                raise KurabeError("score must be 1 to 5, got 6")
            saved.append(name)
            return name

        return call

    first = pending.submit("rating", write("one"))
    assert (first.saved, first.left) == (0, 1) and "unreachable" in first.reason
    assert pending.submit("rating", write("bad")).left == 2
    assert pending.submit("pick", write("two")).left == 3
    down = False
    result = pending.flush()
    assert saved == ["one", "two"] and result.saved == 2 and result.left == 0
    assert result.refused == ["rating not saved: score must be 1 to 5, got 6"]
    assert len(pending) == 0


def test_a_rating_given_while_the_server_is_down_is_pending_then_saved(
    own_server: PostgresServer,
) -> None:
    from tui.rating_controller import RatingController

    url = own_server.create_database()
    store = Store(url)
    store.database.reconnect_s = 0.5
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile("gpt")],
        backend_factory=fake_factory({"gpt": FakeBackend("gpt", ["うん、大好き！"])}),
        rater="hana",
    )
    asyncio.run(session.send("ねえ"))
    (reply_id,) = [r.id for r in store.load_record(session.id).replies]
    notes: list[tuple[str, str]] = []
    timers: list[SimpleNamespace] = []
    shown: list[int] = []

    def set_interval(seconds: float, callback: Any) -> SimpleNamespace:
        timer = SimpleNamespace(callback=callback, stopped=False)
        timer.stop = lambda: setattr(timer, "stopped", True)
        timers.append(timer)
        return timer

    screen = SimpleNamespace(
        notify=lambda message, severity="information", timeout=None: notes.append(
            (severity, message)
        ),
        set_interval=set_interval,
    )
    strip = SimpleNamespace(latest_reply=lambda pane: reply_id, show_badges=shown.append)
    controller = RatingController(screen, session, strip, store=store, score_labels={}, tags=())  # type: ignore[arg-type]

    own_server.stop()
    controller.score(0, 4)
    controller.score(0, 5)  # a second press while down waits behind the first
    assert len(controller.pending) == 2 and shown == []
    (severity, message), *_ = notes
    assert severity == "error" and "could not save" in message and "pending" in message
    assert "\n" not in message and len(notes) == 1  # said once, in one line
    (timer,) = timers
    timer.callback()  # still down: kept, not said again
    assert len(controller.pending) == 2 and len(notes) == 1
    assert controller.still_pending() == 2  # what the app's quit asks before it closes

    own_server.start()
    timer.callback()
    assert len(controller.pending) == 0 and timer.stopped
    assert shown == [reply_id, reply_id]
    assert "saved 2 pending" in notes[-1][1]
    scores = [r.score for r in Store(url).load_record(session.id).ratings]
    assert scores == [4, 5]


async def test_a_replay_survives_the_server_restarting_or_stops_resumable(
    own_server: PostgresServer,
) -> None:
    url = own_server.create_database()
    store = Store(url)
    store.database.reconnect_s = 30.0
    words = "ゆっくり話すね、ほんとうに"
    backends = {
        name: FakeBackend(name, [Script(chunks=tuple(words), delay_s=0.05)] * 3)
        for name in ("gpt", "claude")
    }
    ids: list[int] = []
    stopped_at: list[float] = []

    def restart() -> None:
        time.sleep(0.6)  # in the middle of the first turn's streams
        own_server.stop()
        stopped_at.append(time.monotonic())
        time.sleep(1.5)
        own_server.start()

    restarter = threading.Thread(target=restart)
    restarter.start()
    stopped: StoreUnavailable | None = None
    try:
        await run_replay(
            store,
            SCENARIO,
            PERSONA,
            [fake_profile("gpt"), fake_profile("claude")],
            backend_factory=fake_factory(backends),
            progress=NullProgress(),
            on_session=ids.append,
        )
    except StoreUnavailable as exc:
        stopped = exc  # a clear reason: the statement that lost its connection
        assert "unreachable" in str(exc) or "went away" in str(exc)
    ended_at = time.monotonic()
    restarter.join()
    assert stopped_at and stopped_at[0] < ended_at  # the server did go away mid-replay
    (session_id,) = ids
    if stopped is not None:
        again = {
            name: FakeBackend(name, [Script.text("続きだよ")] * 3) for name in ("gpt", "claude")
        }
        await resume_replay(
            store,
            session_id,
            profiles={"gpt": fake_profile("gpt"), "claude": fake_profile("claude")},
            backend_factory=fake_factory(again),
            progress=NullProgress(),
        )
    record = store.load_record(session_id)
    assert record.session.status == "finished"
    latest = record.latest_replies()
    assert len(latest) == 6 and all(r.completed for r in latest.values())
    print("replay outcome:", "resumed after: " + str(stopped) if stopped else "completed")
    store.close()


def test_the_replay_command_says_in_one_line_why_it_stopped_and_how_to_resume(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import kurabe.session.replay as replay_module

    async def lost_midway(*args: Any, on_session: Any = None, **kwargs: Any) -> list[int]:
        on_session(7)
        raise StoreUnavailable("the database postgresql://127.0.0.1:5/team is unreachable: gone")

    monkeypatch.setattr(replay_module, "run_replay", lost_midway)
    code = main(["replay", "seed-gpt4", "--models", "openai:gpt-4.1-mini", "--db", postgres_url])
    out, err = capsys.readouterr()
    assert code == 1 and out == "session 7\n"
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "replay stopped: the database postgresql://127.0.0.1:5/team is unreachable" in err
    assert "resume with: kurabe replay --resume 7" in err


def test_a_server_down_at_start_is_one_line(
    own_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = own_server.create_database()
    own_server.stop()
    assert main(["sessions", "--db", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unreachable" in err and "Traceback" not in err
