"""The database schema: numbered SQL scripts, applied in order, each in one transaction, by
:meth:`kurabe.store.database.Database.migrate`; SQLite's ``PRAGMA user_version`` or
PostgreSQL's ``kurabe_schema`` table records how many have run. A new version appends a script
here, never edits an old one.

One history for both engines: the scripts are written once, in the SQL both understand, and each
engine reads the few type names that differ in its own dialect
(:meth:`~kurabe.store.database.Database.dialect_ddl`: ``id INTEGER PRIMARY KEY`` is an
auto-numbered key on both). So: ``INTEGER`` for whole numbers and 0/1 flags, ``REAL``, ``TEXT``
(times as ISO 8601 text, JSON as text), no engine-only syntax."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'interactive',
        persona_id TEXT NOT NULL,
        persona_json TEXT NOT NULL,
        scenario_id TEXT,
        scenario_json TEXT,
        blind INTEGER NOT NULL DEFAULT 0,
        revealed INTEGER NOT NULL DEFAULT 0,
        rater TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open',
        kurabe_version TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE panes (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        label TEXT NOT NULL,
        profile_name TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT NOT NULL,
        settings_json TEXT NOT NULL DEFAULT '{}',
        header TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, position)
    );
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        text TEXT NOT NULL,
        scenario_turn INTEGER,
        created_at TEXT NOT NULL,
        UNIQUE (session_id, idx)
    );
    CREATE TABLE replies (
        id INTEGER PRIMARY KEY,
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        pane_id INTEGER NOT NULL REFERENCES panes(id) ON DELETE CASCADE,
        version INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL DEFAULT 'streaming',
        incomplete INTEGER NOT NULL DEFAULT 1,
        text TEXT NOT NULL DEFAULT '',
        finish_reason TEXT,
        error TEXT,
        retryable INTEGER,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        ttft_s REAL,
        total_s REAL,
        chars INTEGER NOT NULL DEFAULT 0,
        chars_per_s REAL,
        tokens_per_s REAL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        UNIQUE (turn_id, pane_id, version)
    );
    CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        reply_id INTEGER NOT NULL REFERENCES replies(id) ON DELETE CASCADE,
        score INTEGER CHECK (score IS NULL OR score BETWEEN 1 AND 5),
        tags_json TEXT NOT NULL DEFAULT '[]',
        note TEXT NOT NULL DEFAULT '',
        rater TEXT NOT NULL,
        blind INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        pane_id INTEGER NOT NULL REFERENCES panes(id) ON DELETE CASCADE,
        verdict TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        rater TEXT NOT NULL,
        blind INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE picks (
        id INTEGER PRIMARY KEY,
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        winner_pane_id INTEGER REFERENCES panes(id) ON DELETE CASCADE,
        outcome TEXT NOT NULL CHECK (outcome IN ('pane', 'tie', 'bothbad')),
        rater TEXT NOT NULL,
        blind INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        data_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX panes_session ON panes (session_id);
    CREATE INDEX turns_session ON turns (session_id);
    CREATE INDEX replies_turn ON replies (turn_id);
    CREATE INDEX replies_pane ON replies (pane_id);
    CREATE INDEX ratings_reply ON ratings (reply_id);
    CREATE INDEX verdicts_pane ON verdicts (pane_id);
    CREATE INDEX picks_turn ON picks (turn_id);
    CREATE INDEX events_session ON events (session_id);
    """,
    # 2: the automatic Japanese checks stored with each reply; error kinds; context size; seeds.
    """
    ALTER TABLE replies ADD COLUMN checks_json TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE replies ADD COLUMN error_kind TEXT;
    ALTER TABLE replies ADD COLUMN context_size INTEGER;
    ALTER TABLE sessions ADD COLUMN seed INTEGER;
    CREATE INDEX replies_status ON replies (status);
    """,
    # 3: what the local engine did to a reply: prefix reused, batching, context fitting.
    """
    ALTER TABLE replies ADD COLUMN cached_prompt_tokens INTEGER;
    ALTER TABLE replies ADD COLUMN decoded_alongside INTEGER;
    ALTER TABLE replies ADD COLUMN history_trimmed_turns INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE replies ADD COLUMN max_tokens_clamped INTEGER;
    """,
    # 4: the LLM judge. A rating's kind (human or judge); each judge run with the judge's exact
    # request settings and the rubric it used (text and hash); each judgement asked of it, the
    # failed ones too, with every raw answer.
    """
    ALTER TABLE ratings ADD COLUMN kind TEXT NOT NULL DEFAULT 'human';
    CREATE TABLE judge_runs (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        judge TEXT NOT NULL,
        profile_name TEXT NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('single', 'pairwise')),
        rubric_name TEXT NOT NULL,
        rubric_hash TEXT NOT NULL,
        rubric_text TEXT NOT NULL,
        settings_json TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE judgements (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES judge_runs(id) ON DELETE CASCADE,
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        reply_id INTEGER NOT NULL REFERENCES replies(id) ON DELETE CASCADE,
        other_reply_id INTEGER REFERENCES replies(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('ok', 'unparseable', 'error')),
        score INTEGER CHECK (score IS NULL OR score BETWEEN 1 AND 5),
        winner_reply_id INTEGER REFERENCES replies(id) ON DELETE CASCADE,
        reason TEXT NOT NULL DEFAULT '',
        attempts_json TEXT NOT NULL DEFAULT '[]',
        rating_id INTEGER REFERENCES ratings(id) ON DELETE SET NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX ratings_kind ON ratings (kind);
    CREATE INDEX judge_runs_session ON judge_runs (session_id);
    CREATE INDEX judgements_run ON judgements (run_id);
    CREATE INDEX judgements_reply ON judgements (reply_id);
    """,
    # 5: judgments imported from MT-Bench (FastChat's model_judgment files), on their own scale
    # (1-10, never rescaled into ratings' 1-5). Single: a score for one reply, NULL with status
    # 'failed' when the judge's answer had none (FastChat's -1). Pairwise: the two position
    # orders' winners as FastChat wrote them (model_1, model_2, tie, error). Self-contained: it
    # only adds a table, so it can be renumbered.
    """
    CREATE TABLE imported_judgements (
        id INTEGER PRIMARY KEY,
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        reply_id INTEGER NOT NULL REFERENCES replies(id) ON DELETE CASCADE,
        other_reply_id INTEGER REFERENCES replies(id) ON DELETE CASCADE,
        judge TEXT NOT NULL,
        prompt_name TEXT NOT NULL DEFAULT '',
        mode TEXT NOT NULL CHECK (mode IN ('single', 'pairwise')),
        scale TEXT NOT NULL CHECK (scale IN ('1-10')),
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        score INTEGER CHECK (score IS NULL OR score BETWEEN 1 AND 10),
        g1_winner TEXT CHECK (g1_winner IS NULL
            OR g1_winner IN ('model_1', 'model_2', 'tie', 'error')),
        g2_winner TEXT CHECK (g2_winner IS NULL
            OR g2_winner IN ('model_1', 'model_2', 'tie', 'error')),
        judgment TEXT NOT NULL DEFAULT '',
        judgment_2 TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        tstamp REAL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX imported_judgements_reply ON imported_judgements (reply_id);
    CREATE INDEX imported_judgements_turn ON imported_judgements (turn_id);
    """,
    # 6: what `kurabe store copy` brought in from another store. Each store has an id of its own
    # (store_meta 'store_id'); each copied row keeps its source store and id beside its id here,
    # so copying the same store twice adds nothing.
    """
    CREATE TABLE store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE copied_rows (
        source TEXT NOT NULL,
        table_name TEXT NOT NULL,
        source_id INTEGER NOT NULL,
        target_id INTEGER NOT NULL,
        PRIMARY KEY (source, table_name, source_id)
    );
    """,
    # 7: indexes for listing many sessions (kurabe.store.sessions.SUMMARIES_SQL). An index on a
    # column of a few values (a reply's status, a rating's kind) matches nearly every row, yet a
    # planner without statistics takes an equality on it as selective and preferred it to the
    # turn's or reply's own index: counting one session's replies then read every reply, and
    # listing N sessions grew as N². The counts go through the parent's id first instead; the
    # one query that wants a rare status (a dead process's streaming replies) has a partial index.
    """
    DROP INDEX replies_status;
    DROP INDEX ratings_kind;
    CREATE INDEX replies_turn_status ON replies (turn_id, status);
    CREATE INDEX ratings_reply_kind ON ratings (reply_id, kind);
    CREATE INDEX replies_streaming ON replies (pane_id) WHERE status = 'streaming';
    """,
    # 8: rating studies (kurabe.store.studies). A study is a named set of items (one turn of one
    # session each); a claim gives an item to one rater in one of its ``per_item`` slots, and the
    # two UNIQUE constraints are what keep an item from reaching more raters than it needs, or a
    # rater twice, whatever the engine and however many raters ask at once. A claim records the
    # pane order that rater was shown. Skips, scores, picks and verdicts are append-only rows
    # carrying their rater.
    """
    CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        per_item INTEGER NOT NULL CHECK (per_item >= 1),
        blind INTEGER NOT NULL DEFAULT 1,
        reveal TEXT NOT NULL DEFAULT 'closed' CHECK (reveal IN ('closed', 'finished')),
        open_to_all INTEGER NOT NULL DEFAULT 1,
        claim_timeout_s INTEGER NOT NULL DEFAULT 1800,
        source TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
        closed_at TEXT
    );
    CREATE TABLE study_raters (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
        rater TEXT NOT NULL,
        joined_at TEXT,
        UNIQUE (study_id, rater)
    );
    CREATE TABLE study_items (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        UNIQUE (study_id, idx),
        UNIQUE (study_id, turn_id)
    );
    CREATE TABLE study_claims (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES study_items(id) ON DELETE CASCADE,
        rater TEXT NOT NULL,
        slot INTEGER NOT NULL,
        positions_json TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        done_at TEXT,
        UNIQUE (item_id, rater),
        UNIQUE (item_id, slot)
    );
    CREATE TABLE study_skips (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES study_items(id) ON DELETE CASCADE,
        rater TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE study_scores (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES study_items(id) ON DELETE CASCADE,
        rater TEXT NOT NULL,
        reply_id INTEGER NOT NULL REFERENCES replies(id) ON DELETE CASCADE,
        shown_position INTEGER NOT NULL,
        score INTEGER CHECK (score IS NULL OR score BETWEEN 1 AND 5),
        tags_json TEXT NOT NULL DEFAULT '[]',
        note TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE TABLE study_picks (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES study_items(id) ON DELETE CASCADE,
        rater TEXT NOT NULL,
        winner_reply_id INTEGER REFERENCES replies(id) ON DELETE CASCADE,
        winner_shown_position INTEGER,
        outcome TEXT NOT NULL CHECK (outcome IN ('pane', 'tie', 'bothbad')),
        created_at TEXT NOT NULL
    );
    CREATE TABLE study_verdicts (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES study_items(id) ON DELETE CASCADE,
        rater TEXT NOT NULL,
        reply_id INTEGER NOT NULL REFERENCES replies(id) ON DELETE CASCADE,
        shown_position INTEGER NOT NULL,
        verdict TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE INDEX study_items_study ON study_items (study_id);
    CREATE INDEX study_claims_item ON study_claims (item_id);
    CREATE INDEX study_claims_rater ON study_claims (rater);
    CREATE INDEX study_skips_item ON study_skips (item_id);
    CREATE INDEX study_scores_item ON study_scores (item_id);
    CREATE INDEX study_picks_item ON study_picks (item_id);
    CREATE INDEX study_verdicts_item ON study_verdicts (item_id);
    """,
    # 9: runs. A run replays many scenarios across the same models; its sessions carry its id
    # and which repeat they are. Every request a run made for a reply is one attempt row
    # (the retried ones too), so a run's figures add up: requests = replies + retries.
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'running',
        settings_json TEXT NOT NULL DEFAULT '{}'
    );
    ALTER TABLE sessions ADD COLUMN run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL;
    ALTER TABLE sessions ADD COLUMN run_repeat INTEGER;
    CREATE TABLE reply_attempts (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        profile_name TEXT NOT NULL,
        turn_idx INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'retried', 'failed')),
        error_kind TEXT,
        reason TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL,
        duration_s REAL
    );
    CREATE INDEX sessions_run ON sessions (run_id);
    CREATE INDEX reply_attempts_session ON reply_attempts (session_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
