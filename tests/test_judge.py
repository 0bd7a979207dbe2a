"""The LLM judge against a loopback OpenAI-compatible server scripted with its answers: strict
parsing, the bounded retry, failures stored with their raw text and no score, pairwise in both
orders, resuming, blindness, and what a run records (settings, rubric hash, never the key)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import ChatMessage, Conversation
from backends.openai_backend import OpenAIBackend
from backends.profiles import Sampling
from foundation.errors import ConfigError
from kurabe.cli import main
from kurabe.export.exporter import export_session
from kurabe.judge.answers import (
    MAX_REASON_CHARS,
    SCHEMA_REASON_CHARS,
    AnswerError,
    answer_schema,
    parse_pairwise_answer,
    parse_single_answer,
)
from kurabe.judge.rubric import bundled_rubric_text, load_rubric
from kurabe.judge.runner import Judge, judge_session
from kurabe.store.store import Store
from tests.api_backend_support import run_closed
from tests.judge_support import (
    JUDGE_KEY,
    PANE_NAMES,
    answer,
    judge_profile,
    make_session,
    pair_answer,
    prompt_of,
    score_answer,
)
from tests.wire_servers import WireServer, openai_401, openai_500

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")

JUDGED_CONVERSATION = Conversation("あなたは店員です。", (ChatMessage("user", "こんにちは"),))


@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer("judge") as wire:
        yield wire
    assert wire.errors == []


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", JUDGE_KEY)
    return JUDGE_KEY


def make_judge(server: WireServer, **options: object) -> Judge:
    values: dict[str, object] = {"rubric": load_rubric(), "retry_delay_s": 0.0}
    values.update(options)
    return Judge(judge_profile(server), **values)  # type: ignore[arg-type]


# -- the strict answer format -------------------------------------------------------------------


def test_a_single_answer_is_one_json_object_with_score_and_reason() -> None:
    assert parse_single_answer('{"score": 4, "reason": "自然"}').score == 4
    fenced = '```json\n{"score": 2, "reason": "丁寧すぎる"}\n```'
    assert parse_single_answer(fenced).reason == "丁寧すぎる"
    refused = [
        "",
        "4",
        'スコアは4です。{"score": 4, "reason": "自然"}',  # prose around it: never picked out
        '{"score": 4, "reason": "自然"} 以上です',
        '{"score": "4", "reason": "自然"}',
        '{"score": 4.0, "reason": "自然"}',
        '{"score": true, "reason": "自然"}',
        '{"score": 6, "reason": "自然"}',
        '{"score": 0, "reason": "自然"}',
        '{"score": 4}',
        '{"score": 4, "reason": ""}',
        '{"score": 4, "reason": "自然", "confidence": 0.9}',
        '[{"score": 4, "reason": "自然"}]',
    ]
    for text in refused:
        with pytest.raises(AnswerError):
            parse_single_answer(text)


def test_a_pairwise_answer_names_A_B_or_tie() -> None:
    assert parse_pairwise_answer('{"winner": "B", "reason": "正確"}').winner == "B"
    assert parse_pairwise_answer('{"winner": "tie", "reason": "同等"}').winner == "tie"
    for text in ('{"winner": "C", "reason": "x"}', '{"winner": "a", "reason": "x"}', "A"):
        with pytest.raises(AnswerError):
            parse_pairwise_answer(text)


# -- single mode against a loopback server ------------------------------------------------------


async def test_a_malformed_answer_is_retried_then_the_valid_one_is_stored(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=1)
    server.script(
        answer("スコアは4点です。"),  # prose: refused
        score_answer(4, "短くカジュアル。"),
        score_answer(2, "丁寧すぎる。"),
    )
    summary = await judge_session(store, session_id, make_judge(server))
    assert (summary.ok, summary.unparseable, summary.errors) == (2, 0, 0)
    assert len(server.requests) == 3

    # the retry showed the judge its own answer and said what was wrong with it
    retry = server.requests[1].body["messages"]
    assert retry[-2] == {"role": "assistant", "content": "スコアは4点です。"}
    assert "回答の形式が正しくありません" in retry[-1]["content"]
    assert "not one JSON object alone" in retry[-1]["content"]

    record = store.load_record(session_id)
    judged = {r.reply_id: r for r in record.ratings if r.kind == "judge"}
    first = record.latest_replies()[(0, 0)]
    assert judged[first.id].score == 4
    assert judged[first.id].rater == "judge:wire-judge"
    assert judged[first.id].note == "短くカジュアル。"
    assert judged[first.id].blind
    # the human's rating is untouched: "the rating" of a reply stays the people's
    assert record.latest_rating(first.id) is None
    assert record.latest_rating(first.id, kind="judge") == judged[first.id]
    (row,) = [j for j in record.judgements if j.reply_id == first.id]
    assert row.status == "ok" and row.score == 4
    assert [a["raw"] for a in row.attempts] == [
        "スコアは4点です。",
        json.dumps({"score": 4, "reason": "短くカジュアル。"}, ensure_ascii=False),
    ]


async def test_retries_are_bounded_and_a_failure_keeps_the_raw_text_and_no_score(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, names=PANE_NAMES[:1], turns=1)
    server.script(answer("よくできています！"), answer('{"score": 9, "reason": "最高"}'))
    summary = await judge_session(store, session_id, make_judge(server, max_attempts=3))
    assert (summary.ok, summary.unparseable) == (0, 1)
    assert len(server.requests) == 3  # never more than the bound
    record = store.load_record(session_id)
    assert [r for r in record.ratings if r.kind == "judge"] == []  # no score was guessed
    (row,) = record.judgements
    assert row.status == "unparseable" and row.score is None and row.rating_id is None
    assert [a["raw"] for a in row.attempts] == [
        "よくできています！",
        '{"score": 9, "reason": "最高"}',
        '{"score": 9, "reason": "最高"}',
    ]
    assert '"score" must be from 1 to 5, got 9' in row.attempts[-1]["error"]
    assert "unparseable after 3 attempts" in summary.results[0].failure


async def test_a_backend_error_is_recorded_and_asked_again_on_the_next_run(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=1)
    server.script(score_answer(5), openai_401())  # 401: not retryable, one request only
    first = await judge_session(store, session_id, make_judge(server))
    assert (first.ok, first.errors) == (1, 1)
    assert len(server.requests) == 2
    (failed,) = [j for j in store.load_record(session_id).judgements if j.status == "error"]
    assert "401" in failed.attempts[0]["backend_error"] or "auth" in failed.attempts[0]["kind"]

    server.script(score_answer(3))
    second = await judge_session(store, session_id, make_judge(server))
    assert (second.skipped, second.ok) == (1, 1)  # only the failed one was asked again
    assert len(server.requests) == 3


async def test_a_retryable_server_error_counts_against_the_same_bound(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, names=PANE_NAMES[:1], turns=1)
    server.script(openai_500(), answer("四点"), score_answer(4))
    summary = await judge_session(store, session_id, make_judge(server, max_attempts=3))
    assert summary.ok == 1 and len(server.requests) == 3
    (row,) = store.load_record(session_id).judgements
    assert [("backend_error" in a, a.get("error") is not None) for a in row.attempts] == [
        (True, False),
        (False, True),
        (False, False),
    ]


# -- resuming -----------------------------------------------------------------------------------


async def test_a_second_run_skips_what_the_same_judge_and_rubric_judged(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=2)
    server.script(score_answer(4))
    first = await judge_session(store, session_id, make_judge(server))
    assert (first.planned, first.ok) == (4, 4)
    again = await judge_session(store, session_id, make_judge(server))
    assert (again.skipped, again.ok, again.run_id) == (4, 0, None)
    assert len(server.requests) == 4

    # another rubric (another hash) is another question
    changed = tmp_path / "rubric.toml"
    changed.write_text(bundled_rubric_text().replace("公平で厳格な審査員", "厳しい審査員"), "utf-8")
    other = await judge_session(store, session_id, make_judge(server, rubric=load_rubric(changed)))
    assert other.ok == 4 and len(server.requests) == 8
    runs = store.load_record(session_id).judge_runs
    assert len({run.rubric_hash for run in runs}) == 2


async def test_unparseable_answers_are_asked_again_only_when_asked_for(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, names=PANE_NAMES[:1], turns=1)
    server.script(answer("わかりません"))
    await judge_session(store, session_id, make_judge(server, max_attempts=2))
    skipped = await judge_session(store, session_id, make_judge(server, max_attempts=2))
    assert skipped.skipped == 1 and len(server.requests) == 2
    server.script(score_answer(3))
    retried = await judge_session(
        store, session_id, make_judge(server, max_attempts=2), retry_failed=True
    )
    assert retried.ok == 1 and len(server.requests) == 3


# -- pairwise -----------------------------------------------------------------------------------


async def test_pairwise_asks_both_orders_and_a_disagreement_is_a_tie(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=2)
    # turn 1: A in both orders -> position bias, the orders disagree: tie
    # turn 2: pane 0 is A first, then B: the same reply wins both times
    server.script(pair_answer("A"), pair_answer("A"), pair_answer("A"), pair_answer("B"))
    summary = await judge_session(store, session_id, make_judge(server, mode="pairwise"))
    assert summary.ok == 2 and len(server.requests) == 4

    record = store.load_record(session_id)
    latest = record.latest_replies()
    by_turn = {j.turn: j for j in record.judgements}
    assert by_turn[0].winner_reply_id is None  # a tie
    assert by_turn[1].winner_reply_id == latest[(0, 1)].id
    assert [a["order"] for a in by_turn[1].attempts] == ["AB", "BA"]
    assert [r for r in record.ratings if r.kind == "judge"] == []  # pairs are not scores

    # the second order really swapped the replies
    first_prompt = prompt_of(server.requests[2].body)
    second_prompt = prompt_of(server.requests[3].body)
    reply_0, reply_1 = latest[(0, 1)].text, latest[(1, 1)].text
    assert first_prompt.index(reply_0) < first_prompt.index(reply_1)
    assert second_prompt.index(reply_1) < second_prompt.index(reply_0)


async def test_a_pairwise_tie_in_one_order_is_a_tie(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=1)
    server.script(pair_answer("A"), pair_answer("tie"))
    await judge_session(store, session_id, make_judge(server, mode="pairwise"))
    (row,) = store.load_record(session_id).judgements
    assert row.status == "ok" and row.winner_reply_id is None


# -- what the judge sees, and what a run records -------------------------------------------------


async def test_the_judge_is_blind_and_sees_persona_note_and_checks(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=2, blind=False)
    server.script(score_answer(3))
    await judge_session(store, session_id, make_judge(server))
    server.script(pair_answer("tie"))
    await judge_session(store, session_id, make_judge(server, mode="pairwise"))
    assert server.requests
    for request in server.requests:
        sent = json.dumps(request.body, ensure_ascii=False)
        for name in PANE_NAMES:
            assert name not in sent
    second_turn = [
        prompt_of(r.body) for r in server.requests if "鬼滅の刃の主題歌" in prompt_of(r.body)
    ]
    prompt = second_turn[0]
    assert "LiSAの「紅蓮華」" in prompt  # the scenario's expect note
    assert "あなたは大のアニメファン" in prompt  # the persona
    assert "ユーザー: ねえ、アニメ好きなの？" in prompt  # the pane's own history
    assert "です・ます調は使わない" in prompt  # the register expectation
    beta_prompts = [
        prompt_of(r.body)
        for r in server.requests
        if "はい、アニメが好きです。" in prompt_of(r.body)
    ]
    assert any("丁寧語" in p for p in beta_prompts)  # the checks' finding on the polite reply


async def test_a_run_records_the_judges_request_settings_and_rubric_but_no_key(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=1)
    server.script(score_answer(4))
    rubric = load_rubric()
    await judge_session(store, session_id, make_judge(server, rubric=rubric))
    (run,) = store.load_record(session_id).judge_runs
    assert run.judge == "judge:wire-judge" and run.mode == "single"
    assert run.rubric_hash == rubric.hash and run.rubric_text == bundled_rubric_text()
    sent = run.settings["backend"]["request"]["sent"]
    assert sent["temperature"] == 0.0  # the judge's temperature, as it went out
    assert server.requests[0].body["temperature"] == 0.0
    assert sent["max_tokens"] == 200
    assert JUDGE_KEY not in store.database.dump_text()


# -- structured output ---------------------------------------------------------------------------


def test_the_answer_schemas_allow_only_what_the_parsers_accept() -> None:
    assert SCHEMA_REASON_CHARS <= MAX_REASON_CHARS  # every answer a schema allows parses
    for mode in ("single", "pairwise"):
        schema = answer_schema(mode)
        assert Sampling(json_schema=schema).validate() is None  # OpenAI's strict subset
        reason = schema.schema["properties"]["reason"]
        assert reason == {"type": "string", "minLength": 1, "maxLength": SCHEMA_REASON_CHARS}
    assert answer_schema("single").schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert answer_schema("pairwise").schema["properties"]["winner"]["enum"] == ["A", "B", "tie"]
    assert parse_single_answer(json.dumps({"score": 5, "reason": "x" * SCHEMA_REASON_CHARS}))


async def test_the_judge_asks_for_its_answer_schema_and_a_chat_pane_does_not(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=1)
    server.script(score_answer(4), score_answer(4), pair_answer("A"))
    await judge_session(store, session_id, make_judge(server))
    await judge_session(store, session_id, make_judge(server, mode="pairwise"))
    single, pairwise = server.requests[0].body, server.requests[-1].body
    for body, mode in ((single, "single"), (pairwise, "pairwise")):
        expected = answer_schema(mode)  # type: ignore[arg-type]
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": expected.name, "schema": expected.schema, "strict": True},
        }
    single_run = store.load_record(session_id).judge_runs[0]
    request = single_run.settings["backend"]["request"]
    assert request["sent"]["response_format"] == "json_schema"
    assert request["json_schema"]["schema"] == answer_schema("single").schema
    assert single_run.settings["judge"]["structured_output"] is True
    md = export_session(store, session_id, "md")  # the judge runs, named in the export
    assert "temperature 0.0, response_format: json_schema): 2 judged" in md

    # The same profile as a chat pane, and a judge told not to, send no schema.
    await run_closed(OpenAIBackend(judge_profile(server)), JUDGED_CONVERSATION)
    assert "response_format" not in server.requests[-1].body
    unheld = make_judge(server, structured_output=False)
    await unheld.ask("system", "prompt", parse_single_answer)
    await unheld.aclose()
    assert "response_format" not in server.requests[-1].body


def test_a_rubric_with_an_unknown_placeholder_names_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(bundled_rubric_text().replace("{{char_name}}: {{reply}}", "{{answer}}"), "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rubric(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad}:")
    assert "single.prompt" in message and "{{answer}}" in message
    line = int(message.split(":")[1])
    assert "prompt" in bad.read_text("utf-8").splitlines()[line - 1]


# -- the command line ---------------------------------------------------------------------------


def judge_command(server: WireServer, db: Path) -> list[str]:
    """``kurabe judge last`` on ``db`` with the wire judge, from a models file beside it."""
    models = db.with_name("models.toml")
    models.write_text(
        f'[models.wire-judge]\nbackend = "openai"\nmodel = "judge-model"\n'
        f'base_url = "{server.origin}/v1"\napi_key_env = "OPENAI_API_KEY"\nmax_retries = 0\n',
        "utf-8",
    )
    return ["judge", "last", "--judge", "wire-judge", "--models-file", str(models), "--db", str(db)]


async def test_kurabe_judge_prints_progress_and_resumes(
    server: WireServer, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "k.sqlite3"
    store = Store(db)
    session_id = await make_session(store, turns=1)
    store.close()
    server.script(score_answer(5, "完璧。"), answer("??"), answer("??"), answer("??"))
    argv = judge_command(server, db)
    assert await _main_in_thread(argv) == 0
    out = capsys.readouterr().out
    assert f"judge session {session_id}: judge:wire-judge, single" in out
    assert "judge 1/2 turn 1 [secret-model-alpha] 5: 完璧。" in out
    assert "judge 2/2 turn 1 [secret-model-beta] unparseable after 3 attempts" in out
    assert "1 judged, 1 unparseable, 0 errors, 0 already judged" in out
    assert await _main_in_thread(argv) == 0
    assert "0 to judge, 2 done before" in capsys.readouterr().out


async def test_kurabe_judge_no_schema_leaves_the_format_to_the_prompt(
    server: WireServer, key: str, tmp_path: Path
) -> None:
    db = tmp_path / "k.sqlite3"
    store = Store(db)
    session_id = await make_session(store, names=PANE_NAMES[:1], turns=1)
    store.close()
    server.script(score_answer(3))
    argv = judge_command(server, db)
    assert await _main_in_thread([*argv, "--no-schema"]) == 0
    assert "response_format" not in server.requests[-1].body
    (run,) = Store(db).load_record(session_id).judge_runs
    assert run.settings["judge"]["structured_output"] is False


async def _main_in_thread(argv: list[str]) -> int:
    """``main`` runs its own event loop (asyncio.run); run it off this test's loop."""
    import asyncio

    return await asyncio.to_thread(main, argv)


async def test_kurabe_replay_with_a_judge_judges_the_session_right_after(
    server: WireServer,
    key: str,
    tmp_path: Path,
    kurabe_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenarios = kurabe_home / "config" / "scenarios"
    scenarios.mkdir(parents=True)
    (scenarios / "judge-cli.toml").write_text(
        'id = "judge-cli"\ntitle = "審査"\npersona = "anime-fan"\n\n'
        '[[turns]]\ntext = "ねえ、アニメ好きなの？"\nexpect = "短く答える"\n',
        "utf-8",
    )
    with WireServer("panes") as panes:
        panes.script(answer("うん、大好き！"))
        models = tmp_path / "models.toml"
        models.write_text(
            "".join(
                f'[models.{name}]\nbackend = "openai"\nmodel = "{name}"\n'
                f'base_url = "{origin}/v1"\napi_key_env = "OPENAI_API_KEY"\nmax_retries = 0\n\n'
                for name, origin in (
                    ("pane-one", panes.origin),
                    ("pane-two", panes.origin),
                    ("wire-judge", server.origin),
                )
            ),
            "utf-8",
        )
        server.script(pair_answer("A"), pair_answer("B"))
        db = tmp_path / "k.sqlite3"
        argv = [
            "replay", "judge-cli", "--models", "pane-one,pane-two", "--models-file", str(models),
            "--db", str(db), "--judge", "wire-judge", "--judge-mode", "pairwise",
        ]  # fmt: skip
        assert await _main_in_thread(argv) == 0
    out = capsys.readouterr().out
    assert "judge session 1: judge:wire-judge, pairwise" in out
    assert "turn 1 [pane-one] vs [pane-two]: pane-one wins" in out
    record = Store(db).load_record(1)
    (row,) = record.judgements
    assert row.winner_reply_id == record.latest_replies()[(0, 0)].id
    assert len(server.requests) == 2 and len(panes.requests) == 2


def test_config_names_the_apps_judge_and_when_its_badge_shows(tmp_path: Path) -> None:
    from kurabe.core.rating_config import load_rating_config

    config = tmp_path / "config.toml"
    config.write_text('rater = "hana"\njudge = "local-server"\njudge_badge = "always"\n', "utf-8")
    loaded = load_rating_config(config)
    assert (loaded.judge, loaded.judge_badge) == ("local-server", "always")
    config.write_text('judge = "local-server"\n', "utf-8")
    assert load_rating_config(config).judge_badge == "after-rating"
    config.write_text('rater = "hana"\njudge_badge = "sometimes"\n', "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rating_config(config)
    assert str(caught.value).startswith(f"{config}:2: judge_badge:")
