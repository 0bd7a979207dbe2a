"""The store: SQLite's pragmas, migrations from an older schema, rows as they are written (on
SQLite and on PostgreSQL: ``db_target``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from foundation.errors import KurabeError
from kurabe.core.secret_scrub import scrub_secrets
from kurabe.store.records import ReplyFigures
from kurabe.store.schema import MIGRATIONS, SCHEMA_VERSION
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn

PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。",
    char_name="オタク",
    first_person=("私", "僕"),
)
SCENARIO = Scenario(
    id="seed-elyza",
    title="シード: ELYZA",
    persona="anime-fan",
    turns=(Turn("ねえ、アニメ好きなの？", expect="タメ口で短く"), Turn("トトロはどうでしょうか？")),
    tags=("seed",),
)


def test_open_sets_wal_foreign_keys_and_latest_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "sub" / "kurabe.sqlite3")
    assert store.database.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert store.database.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.database.query("PRAGMA foreign_keys")[0][0] == 1
    with pytest.raises(sqlite3.IntegrityError):
        store.sessions.add_pane(
            999, 0, "A", profile_name="x", backend="openai", model="x", settings={}
        )
    store.close()


def test_open_default_uses_the_data_dir_or_db(kurabe_home: Path, tmp_path: Path) -> None:
    store = Store.open_default(None)
    assert store.path == kurabe_home / "data" / "kurabe.sqlite3"
    assert store.path.exists()
    store.close()
    chosen = Store.open_default(str(tmp_path / "mine.db"))
    assert chosen.path == tmp_path / "mine.db"
    chosen.close()


def test_migrates_a_v1_database_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO sessions (id, created_at, updated_at, persona_id, persona_json, rater)"
        " VALUES (1, '2025-01-01T00:00:00.000+00:00', '2025-01-01T00:00:00.000+00:00',"
        " 'anime-fan', ?, 'はな')",
        ('{"id": "anime-fan", "title": "大のアニメファン", "system": "あなたは大のアニメファン"}',),
    )
    conn.execute(
        "INSERT INTO panes (id, session_id, position, label, profile_name, backend, model)"
        " VALUES (1, 1, 0, 'A', 'elyza-7b', 'llama_cpp', 'elyza.gguf')"
    )
    conn.execute(
        "INSERT INTO turns (id, session_id, idx, text, created_at)"
        " VALUES (1, 1, 0, 'ねえ、アニメ好きなの？', '2025-01-01T00:00:01.000+00:00')"
    )
    conn.execute(
        "INSERT INTO replies (id, turn_id, pane_id, status, incomplete, text, chars, started_at)"
        " VALUES (1, 1, 1, 'complete', 0, 'おうよ！私は週に３回くらい見てるな', 17,"
        " '2025-01-01T00:00:02.000+00:00')"
    )
    conn.execute(
        "INSERT INTO ratings (reply_id, score, tags_json, rater, created_at)"
        " VALUES (1, 3, '[\"wrong-fact\"]', 'はな', '2025-01-01T00:00:03.000+00:00')"
    )
    conn.commit()
    conn.close()

    store = Store(path)
    assert store.database.schema_version == SCHEMA_VERSION
    columns = {row[1] for row in store.database.query("PRAGMA table_info(replies)")}
    assert {"checks_json", "error_kind", "context_size"} <= columns
    record = store.load_record(1)
    assert record.session.rater == "はな" and record.session.seed is None
    assert record.session.persona_obj().title == "大のアニメファン"
    (reply,) = record.replies
    assert reply.text == "おうよ！私は週に３回くらい見てるな" and reply.checks == {}
    assert record.ratings[0].tags == ("wrong-fact",)
    # the migrated database takes new rows of the new shape
    reply_id, version = store.replies.start_reply(1, 1)
    assert version == 2
    store.replies.finish_reply(
        reply_id,
        text="トトロ大好き",
        finish_reason="stop",
        figures=ReplyFigures(chars=6),
        checks={"japanese_share": 1.0},
    )
    assert store.replies.reply(reply_id).checks == {"japanese_share": 1.0}
    store.close()
    assert Store(path).database.schema_version == SCHEMA_VERSION  # reopening is a no-op


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(KurabeError, match="newer"):
        Store(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("これはデータベースではありません" * 200, encoding="utf-8")
    with pytest.raises(KurabeError):
        Store(path)


def test_a_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kurabe.store.database as store_module

    path = tmp_path / "half.sqlite3"
    Store(path, migrate=False).database.migrate(1)
    broken = (MIGRATIONS[0], "ALTER TABLE replies ADD COLUMN checks_json TEXT; SELECT nope FROM x;")
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)
    store = Store(path, migrate=False)
    with pytest.raises(sqlite3.Error):
        store.database.migrate(2)
    assert store.database.schema_version == 1
    columns = {row[1] for row in store.database.query("PRAGMA table_info(replies)")}
    assert "checks_json" not in columns


def test_session_roundtrip_and_listing(db_target: str | Path) -> None:
    store = Store(db_target)
    sid = store.sessions.create(PERSONA, SCENARIO, blind=False, rater="はな", kind="replay", seed=7)
    pane_a = store.sessions.add_pane(
        sid, 0, "A", profile_name="gemma-270m", backend="llama_cpp", model="g.gguf", settings={}
    )
    pane_b = store.sessions.add_pane(
        sid, 1, "B", profile_name="elyza-7b", backend="llama_cpp", model="e.gguf", settings={}
    )
    turn = store.replies.add_turn(sid, 0, "ねえ、アニメ好きなの？", scenario_turn=0)
    ra, _ = store.replies.start_reply(turn, pane_a)
    rb, _ = store.replies.start_reply(turn, pane_b)
    store.replies.update_partial(rb, "おうよ！私は")
    store.replies.finish_reply(
        ra,
        text="うん、大好きだよ！",
        finish_reason="stop",
        figures=ReplyFigures(completion_tokens=9, ttft_s=0.1, total_s=1.0, chars=9),
    )
    store.ratings.add_rating(ra, score=5, tags=["repetitive"], note="", rater="はな", blind=False)
    store.ratings.add_verdict(pane_a, verdict="great", note="", rater="はな", blind=False)
    store.ratings.add_pick(turn, winner_pane_id=pane_a, outcome="pane", rater="はな", blind=False)
    with pytest.raises(KurabeError):
        store.ratings.add_pick(turn, winner_pane_id=None, outcome="pane", rater="はな", blind=False)
    with pytest.raises(KurabeError):
        store.ratings.add_rating(ra, score=0, tags=[], note="", rater="はな", blind=False)

    record = store.load_record(sid)
    assert record.session.scenario_obj() == SCENARIO
    assert record.session.persona_obj() == PERSONA
    assert record.session.seed == 7 and record.session.kind == "replay"
    streaming = store.replies.reply(rb)
    assert streaming.status == "streaming" and streaming.incomplete
    assert streaming.text == "おうよ！私は"

    (summary,) = store.sessions.summaries()
    assert summary.models == ("gemma-270m", "elyza-7b")
    assert (summary.turns, summary.replies, summary.ratings) == (1, 1, 3)
    assert summary.scenario_id == "seed-elyza"

    assert store.replies.mark_interrupted(sid) == 1
    interrupted = store.replies.reply(rb)
    assert interrupted.status == "interrupted" and interrupted.text == "おうよ！私は"
    assert store.replies.reply(ra).status == "complete"
    with pytest.raises(KurabeError):
        store.sessions.get(sid + 1)


def test_scrub_secrets() -> None:
    secret = "sk-ant-abcdef123456"
    data = {
        "api_key": secret,
        "api_key_env": "ANTHROPIC_API_KEY",
        "headers": [{"Authorization": f"Bearer {secret}"}, {"x": f"…{secret}…"}],
        "path": Path("/models/x.gguf"),
        "n": 3,
    }
    clean = scrub_secrets(data, [secret, ""])
    assert clean == {
        "api_key_env": "ANTHROPIC_API_KEY",
        "headers": [{}, {"x": "…***…"}],
        "path": "/models/x.gguf",
        "n": 3,
    }


def test_opening_a_new_database_from_several_connections_at_once(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str
) -> None:
    import threading

    errors: list[BaseException] = []
    # Twenty new files, six openers each: the switch to WAL answered "locked" in about one
    # race in ten before it was retried. On PostgreSQL, six new databases: the advisory lock
    # lets one opener migrate.
    for attempt in range(20 if engine == "sqlite" else 6):
        path: str | Path = (
            tmp_path / f"race-{attempt}.sqlite3"
            if engine == "sqlite"
            else request.getfixturevalue("postgres_server").create_database()
        )
        barrier = threading.Barrier(6)

        def open_it(path: str | Path = path, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait()
                Store(path).close()
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert Store(path).database.schema_version == SCHEMA_VERSION


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    engine_name: str = request.param
    return engine_name


def test_a_new_table_is_written_once_and_works_on_both_engines(
    db_target: str | Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kurabe.store.database as store_module

    store = Store(db_target)
    new_table = """
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        weight REAL,
        big INTEGER,
        text TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX notes_session ON notes (session_id);
    """
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, new_table))
    assert store.database.migrate(SCHEMA_VERSION + 1) == SCHEMA_VERSION + 1
    sid = store.sessions.create(PERSONA)
    first = store.database.insert(
        "INSERT INTO notes (session_id, weight, big, text) VALUES (?, ?, ?, ?)",
        (sid, 0.1 + 0.2, 2**40, "100% 'quoted' ?"),
    )
    second = store.database.insert("INSERT INTO notes (session_id) VALUES (?)", (sid,))
    assert second == first + 1
    row = store.database.query_one("SELECT * FROM notes WHERE id = ?", (first,))
    assert row is not None
    assert (row["weight"], row["big"], row["text"]) == (0.1 + 0.2, 2**40, "100% 'quoted' ?")
    assert row[0] == first and "weight" in list(row.keys())
    literal = store.database.query(
        "SELECT id FROM notes WHERE text LIKE '100% ''quoted'' ?' AND id = ?", (first,)
    )
    assert [r[0] for r in literal] == [first]
    with pytest.raises(store.database.integrity_error):
        store.database.insert("INSERT INTO notes (session_id) VALUES (?)", (sid + 99,))
    store.close()
