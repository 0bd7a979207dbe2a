"""Pilot tests that drive whole sessions through the app and check the database afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.segment import Segment

from backends.base import StreamError
from backends.sent import request_for
from kurabe.session.comparison import ComparisonSession
from kurabe.store.store import Store
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile
from tests.tui_support import make_harness, settle, type_text, wait_until
from tui.app import KurabeApp
from tui.main_screen import MainScreen
from tui.tag_picker import TagPicker


def panes_text(screen: MainScreen) -> str:
    parts = []
    for widget in screen.pane_widgets:
        parts.append(widget.header_text)
        parts.append(widget.status_text)
        parts.extend(widget.transcript.plain_lines)
    return "\n".join(parts)


async def test_whole_session_send_cancel_retry_rate_pick_verdict_export(tmp_path: Path) -> None:
    backends = {
        "alpha": FakeBackend("alpha", ["うん、大好きだよ！お気に入りのアニメは何？"]),
        "beta": FakeBackend(
            "beta", [Script(chunks=("えっと、", "ナウシカは"), stall=True), "もちろん！"]
        ),
        "gamma": FakeBackend(
            "gamma",
            [
                Script(chunks=("あ",), error=StreamError("HTTP 503 from server", retryable=True)),
                "リトライしたら答えられたよ。",
            ],
        ),
    }
    db = tmp_path / "kurabe.sqlite3"
    harness = make_harness(backends, db_path=db, export_dir=tmp_path / "exports")
    session = harness.session
    async with harness.app.run_test(size=(120, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in session.panes))
        assert screen.focused is screen.prompt
        await type_text(pilot, "ねえ、アニメ好きなの？")
        assert screen.prompt.text == "ねえ、アニメ好きなの？"
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: (
                "えっと、ナウシカは" in "".join(screen.pane_widget(1).transcript.plain_lines)
                and session.panes[2].status == "failed"
            ),
        )
        assert screen.prompt.text == ""
        assert "HTTP 503 from server · r: retry" in screen.pane_widget(2).status_text
        assert session.panes[0].status == "ready"  # the other panes went on

        # cancel only pane B (it stalls), by its letter then k
        await pilot.press("tab", "b", "k")
        await wait_until(pilot, lambda: not session.busy)
        assert "cancelled" in screen.pane_widget(1).status_text

        # retry the failed pane C
        await pilot.press("c", "r")
        await wait_until(
            pilot,
            lambda: (
                "リトライしたら答えられたよ。"
                in "".join(screen.pane_widget(2).transcript.plain_lines)
            ),
        )
        await wait_until(pilot, lambda: not session.busy)
        assert "ttft" in screen.pane_widget(2).status_text
        transcript_c = screen.pane_widget(2).transcript.plain_lines
        assert transcript_c.count("› ねえ、アニメ好きなの？") == 1  # replaced, not appended

        # rate pane A's reply: score, tags, note
        await pilot.press("a", "4")
        await pilot.press("t")
        assert isinstance(pilot.app.screen, TagPicker)
        await pilot.press("space", "down", "down", "space", "enter")  # too-long, wrong-fact
        await pilot.press("n")
        await type_text(pilot, "いい感じ")
        await pilot.press("enter")
        await settle(pilot)
        assert "★4 良い" in panes_text(screen)
        assert "#too-long" in panes_text(screen) and "#wrong-fact" in panes_text(screen)
        # change the score: the latest counts
        await pilot.press("5")
        # pick the best pane of the turn, then the verdict for pane A
        await pilot.press("p", "a")
        await pilot.press("v", "2", "enter")
        await settle(pilot)
        assert "◎ best" in "\n".join(screen.pane_widget(0).transcript.plain_lines)
        assert "★5 素晴らしい" in panes_text(screen)
        assert "✔ OK" in screen.pane_widget(0).header_text

        # export through the command palette, asking for the format
        await pilot.press("ctrl+p")
        for char in "export":
            await pilot.press(char)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.1)
        await pilot.press("down", "enter")  # md -> jsonl
        await wait_until(pilot, lambda: harness.app.last_export is not None)
        exported = harness.app.last_export
        assert exported is not None and exported.suffix == ".jsonl" and exported.exists()

    record = Store(db).load_record(session.id)
    latest = record.latest_replies()
    reply_a = latest[(0, 0)]
    rating = record.latest_rating(reply_a.id)
    assert rating is not None
    assert rating.score == 5
    assert rating.tags == ("too-long", "wrong-fact")
    assert rating.note == "いい感じ"
    assert len(record.ratings_of(reply_a.id)) >= 4  # every press is a committed row
    assert latest[(1, 0)].status == "cancelled"
    assert latest[(1, 0)].text == "えっと、ナウシカは"
    assert [r.status for r in record.versions(2, 0)] == ["failed", "complete"]
    pick = record.latest_pick(0)
    assert pick is not None and pick.outcome == "pane" and pick.winner == 0
    verdict = record.latest_verdict(0)
    assert verdict is not None and verdict.verdict == "ok"
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert lines and all(json.loads(line) for line in lines)


async def test_reply_with_markup_and_escape_codes_is_shown_literally() -> None:
    nasty = "[bold]太字[/bold] [red]赤[/] \x1b[31mESC赤\x1b[0m \x1b]0;title\x07 end"
    harness = make_harness({"alpha": FakeBackend("alpha", [nasty])})
    async with harness.app.run_test(size=(100, 24)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        screen.prompt.set_text("テスト")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: not harness.session.busy and bool(harness.session.user_turns)
        )
        await settle(pilot)
        transcript = screen.pane_widget(0).transcript
        shown = "\n".join(transcript.plain_lines)
        assert "[bold]太字[/bold] [red]赤[/]" in shown
        assert "␛[31mESC赤␛[0m" in shown
        assert "␛]0;title␇" in shown
        segments: list[Segment] = []
        for y in range(transcript.size.height):
            segments.extend(transcript.render_line(y))
        assert all("\x1b" not in s.text and "\x07" not in s.text for s in segments)
        literal = [s for s in segments if "太字" in s.text]
        assert literal and literal[0].style is not None and not literal[0].style.bold
        # the status line and header are literal too
        assert "\x1b" not in screen.pane_widget(0).status_text


async def test_blind_mode_hides_names_until_reveal_which_is_recorded() -> None:
    backends = {
        "secret-model-one": FakeBackend(
            "secret-model-one", ["ひとつめ"], load_messages=("loading secret-model-one weights",)
        ),
        "secret-model-two": FakeBackend(
            "secret-model-two",
            [Script(chunks=(), error=StreamError("secret-model-two: overloaded", retryable=True))],
        ),
    }
    harness = make_harness(backends, blind=True)
    session = harness.session
    async with harness.app.run_test(size=(100, 24)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in session.panes))
        screen.prompt.set_text("だれ？")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and bool(session.user_turns))
        await settle(pilot)
        visible = panes_text(screen) + str(screen.query_one("#top-bar").render())
        shot = harness.app.export_screenshot()
        for name in backends:
            assert name not in visible
            assert name not in shot
        assert [w.header_text.strip() for w in screen.pane_widgets] == ["A", "B"]
        await pilot.press("ctrl+r", "y")
        await settle(pilot)
        headers = " ".join(w.header_text for w in screen.pane_widgets)
        assert "secret-model-one" in headers and "secret-model-two" in headers
    assert session.revealed
    row = session.store.sessions.get(session.id)
    assert row.revealed
    assert any(event.kind == "reveal" for event in session.store.sessions.events(session.id))


async def test_replay_edit_send_next_send_all_and_expect_note() -> None:
    harness = make_harness(
        {"alpha": FakeBackend("alpha", ["うん！"]), "beta": FakeBackend("beta", ["そうだね。"])},
        scenario="seed-gpt3",
    )
    session = harness.session
    scenario = session.scenario
    assert scenario is not None
    total = len(scenario.turns)
    async with harness.app.run_test(size=(100, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in session.panes))
        assert screen.prompt.text == scenario.turns[0].text  # the next line is ready
        top = str(screen.query_one("#top-bar").render())
        assert f"turn 1/{total}" in top
        # the rater edits the scripted line before it goes
        await pilot.press("end")
        await type_text(pilot, "！")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and len(session.user_turns) == 1)
        await settle(pilot)
        assert session.user_turns[0] == scenario.turns[0].text + "！"
        assert session.next_scenario_turn() == 1
        assert screen.prompt.text == scenario.turns[1].text
        # the expect note, on request
        assert not screen.query_one("#expect").display
        await pilot.press("ctrl+t")
        assert screen.query_one("#expect").display
        # ctrl+n sends the line in the input
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not session.busy and len(session.user_turns) == 2)
        # ctrl+g sends every remaining line, one turn after another
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: session.next_scenario_turn() is None and not session.busy)
        await settle(pilot)
        assert len(session.user_turns) == total
        assert session.user_turns[2:] == [turn.text for turn in scenario.turns[2:]]
        assert f"turn {total}/{total} ✓" in str(screen.query_one("#top-bar").render())
    turns = session.store.replies.turns(session.id)
    assert [t.scenario_turn for t in turns] == list(range(total))


async def test_send_all_waits_for_a_pick_when_asked() -> None:
    harness = make_harness({"alpha": FakeBackend("alpha", ["うん"])}, scenario="seed-gpt3")
    session = harness.session
    async with harness.app.run_test(size=(100, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: session.panes[0].status == "ready")
        screen.action_toggle_wait()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(session.user_turns) == 1 and not session.busy)
        await pilot.pause(0.3)
        assert len(session.user_turns) == 1  # waiting for the rater
        await pilot.press("tab", "equals_sign")  # a tie for turn 1
        await wait_until(pilot, lambda: len(session.user_turns) == 2)
        await pilot.press("escape")  # stop the replay
        await wait_until(pilot, lambda: not screen.replaying)
    picks = session.store.ratings.picks(session.id)
    assert picks and picks[0].outcome == "tie"


async def test_escape_cancels_every_stream_of_the_turn() -> None:
    stall = Script(chunks=("ずっと",), stall=True)
    harness = make_harness(
        {"alpha": FakeBackend("alpha", [stall]), "beta": FakeBackend("beta", [stall])}
    )
    session = harness.session
    async with harness.app.run_test(size=(100, 24)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in session.panes))
        screen.prompt.set_text("こんにちは")
        await pilot.press("enter")
        await wait_until(pilot, lambda: all(p.busy for p in session.panes))
        await pilot.pause(0.1)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not session.busy)
        await settle(pilot)
        for widget in screen.pane_widgets:
            assert "cancelled" in widget.status_text
            assert "ずっと" in "".join(widget.transcript.plain_lines)
    statuses = {r.status for r in session.store.replies.replies(session.id)}
    assert statuses == {"cancelled"}


async def test_a_pane_that_cannot_load_shows_why_and_the_others_work() -> None:
    backends = {
        "alpha": FakeBackend("alpha", ["はい"]),
        "broken": FakeBackend("broken", load_error=RuntimeError("weights are corrupt")),
    }
    harness = make_harness(backends)
    session = harness.session
    async with harness.app.run_test(size=(100, 24)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: session.panes[1].status == "unusable")
        assert "weights are corrupt" in screen.pane_widget(1).status_text
        screen.prompt.set_text("やあ")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and bool(session.user_turns))
        await settle(pilot)
        assert "はい" in "".join(screen.pane_widget(0).transcript.plain_lines)
        # retry on an unusable pane is a one-line notice, not a crash
        await pilot.press("tab", "b", "r")
        await pilot.pause(0.2)
        assert harness.app.is_running


async def test_resume_shows_transcripts_and_ratings_ready_to_continue(tmp_path: Path) -> None:
    db = tmp_path / "kurabe.sqlite3"
    first = make_harness({"alpha": FakeBackend("alpha", ["最初の答え"])}, db_path=db)
    async with first.app.run_test(size=(100, 24)) as pilot:
        screen = first.screen
        await wait_until(pilot, lambda: first.session.panes[0].status == "ready")
        screen.prompt.set_text("はじめまして")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not first.session.busy and bool(first.session.user_turns))
        await pilot.press("tab", "3", "x")
        await settle(pilot)
    session_id = first.session.id
    first.store.close()

    store = Store(db)
    backend = FakeBackend("alpha", ["二つ目の答え"])
    profiles = {"alpha": fake_profile("alpha")}
    session = ComparisonSession.resume(
        store, session_id, profiles=profiles, backend_factory=fake_factory({"alpha": backend})
    )
    app = KurabeApp(first.context, session)
    first.context.store = store
    async with app.run_test(size=(100, 24)) as pilot:
        resumed = app.main_screen
        assert resumed is not None
        screen = resumed
        await wait_until(pilot, lambda: session.panes[0].status == "ready")
        await settle(pilot)
        shown = "\n".join(screen.pane_widget(0).transcript.plain_lines)
        assert "› はじめまして" in shown and "最初の答え" in shown
        assert "★3 OK" in shown and "✗ all bad" in shown
        assert "ttft" in screen.pane_widget(0).status_text
        screen.prompt.set_text("続けよう")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and len(session.user_turns) == 2)
        await settle(pilot)
        assert "二つ目の答え" in "\n".join(screen.pane_widget(0).transcript.plain_lines)
    history = backend.calls[-1].turns
    assert [m.content for m in history] == ["はじめまして", "最初の答え", "続けよう"]


@pytest.mark.parametrize(("width", "narrow"), [(80, True), (160, False)])
async def test_three_panes_stay_readable_in_small_terminals(width: int, narrow: bool) -> None:
    names = ("alpha", "beta", "gamma")
    harness = make_harness({name: FakeBackend(name) for name in names})
    async with harness.app.run_test(size=(width, 24)) as pilot:
        screen = harness.screen
        await settle(pilot)
        row = screen.query_one("#panes")
        assert row.has_class("-narrow") is narrow
        widths = [w.region.width for w in screen.pane_widgets]
        assert min(widths) >= 32
        assert max(widths) - min(widths) <= 1  # equal columns
        await pilot.press("tab", "c")
        await settle(pilot)
        assert screen.focused_pane() == 2
        pane_c = screen.pane_widget(2).region
        assert pane_c.x >= 0 and pane_c.right <= width  # scrolled into view


async def test_single_letter_keys_never_steal_typing() -> None:
    harness = make_harness({"alpha": FakeBackend("alpha")})
    async with harness.app.run_test(size=(100, 24)) as pilot:
        screen = harness.screen
        await pilot.press(*"abcdefgiknoprstvx12345=?")
        assert screen.prompt.text == "abcdefgiknoprstvx12345=?"
        assert isinstance(harness.app.screen, MainScreen)
        await pilot.press("ctrl+j")
        assert "\n" in screen.prompt.text
        assert harness.session.user_turns == []


async def test_help_and_summary_screens() -> None:
    harness = make_harness({"alpha": FakeBackend("alpha", ["はい"]), "beta": FakeBackend("beta")})
    async with harness.app.run_test(size=(120, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in harness.session.panes))
        screen.prompt.set_text("やあ")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: not harness.session.busy and bool(harness.session.user_turns)
        )
        await pilot.press("tab", "4", "p", "b", "f1")
        from tui.help_screen import HelpScreen
        from tui.summary_screen import SummaryScreen

        assert isinstance(harness.app.screen, HelpScreen)
        await pilot.press("escape", "s")
        assert isinstance(harness.app.screen, SummaryScreen)
        table = harness.app.screen.query_one("#summary-table")
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]  # type: ignore[attr-defined]
        assert rows[0][0] == "A" and rows[0][4] == "4.00"
        assert rows[1][5] == "1"  # B won the turn
        await pilot.press("escape")
        assert isinstance(harness.app.screen, MainScreen)


@pytest.mark.parametrize("blind", [False, True])
async def test_o_shows_what_the_focused_pane_sent(blind: bool) -> None:
    claude = fake_profile("claude", backend="anthropic", send_sampling=("temperature",))
    local = fake_profile("local", local=True)
    backends = {
        "claude": FakeBackend("claude", snapshot={"request": request_for(claude).record()}),
        "local": FakeBackend("local", snapshot={"request": request_for(local).record()}),
    }
    harness = make_harness(
        backends, profiles={"claude": claude, "local": local}, blind=blind, shuffle_seed=None
    )
    async with harness.app.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: all(p.status == "ready" for p in harness.session.panes))
        position = next(p.index for p in harness.session.panes if p.profile.name == "claude")
        harness.screen.action_focus_pane(position)
        await pilot.press("o")
        from tui.pane_settings import PaneSettingsScreen

        assert isinstance(harness.app.screen, PaneSettingsScreen)
        text = str(harness.app.screen.query_one("#pane-settings-text").render())
        if blind:
            assert "claude" not in text and "model default" not in text
            assert "hidden until the names are revealed" in text
        else:
            lines = [line.strip() for line in text.splitlines()]
            assert "Temperature: 0.7" in lines and "Top-K: model default" in lines
            assert "Max tokens: 256" in lines and "anthropic-version: 2023-06-01" in lines
        await pilot.press("escape")
        assert isinstance(harness.app.screen, MainScreen)


def test_bad_command_line_is_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from kurabe.cli import main

    assert main(["--models", "no-such-model", "--db", str(tmp_path / "db.sqlite3")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kurabe: unknown model profile 'no-such-model'")
    assert "\n" not in err and "Traceback" not in err
    bad = tmp_path / "models.toml"
    bad.write_text("[models.x]\nbackend = 'nope'\nmodel = 'm'\n", encoding="utf-8")
    assert main(["--models-file", str(bad), "--db", str(tmp_path / "db.sqlite3")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "backend" in err and "\n" not in err
    assert main(["--persona", "nobody", "--db", str(tmp_path / "db.sqlite3")]) == 2
    assert "unknown persona 'nobody'" in capsys.readouterr().err
    assert main(["--resume", "99", "--db", str(tmp_path / "db.sqlite3")]) == 2
    assert "no session 99" in capsys.readouterr().err


async def test_palette_starts_a_new_session_with_a_scenario_and_lists_unusable_models() -> None:
    from textual.widgets import SelectionList

    from backends.profiles import BUILTIN_PROFILES
    from tui.models_dialog import ModelsDialog

    profiles = {p.name: p for p in BUILTIN_PROFILES if p.name == "gpt-4.1-mini"}
    profiles["alpha"] = fake_profile("alpha")
    backend = FakeBackend("alpha", ["はい"])
    harness = make_harness({"alpha": backend}, profiles=profiles)
    app = harness.app
    first_id = harness.session.id
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        await pilot.press("ctrl+p")
        await type_text(pilot, "scenario")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        await pilot.press("down", "down", "enter")  # no scenario, seed-gpt4, seed-gpt3
        await wait_until(pilot, lambda: app.session.id != first_id)
        await wait_until(
            pilot, lambda: app.main_screen is not None and app.main_screen.session is app.session
        )
        new = app.session
        assert new.scenario is not None and new.scenario.id == "seed-gpt3"
        screen = app.main_screen
        assert screen is not None
        first_line = new.scenario.turns[0].text
        await wait_until(pilot, lambda: screen.prompt.text == first_line)
        assert backend.closed  # the old session let its backends go

        await pilot.press("ctrl+p")
        await type_text(pilot, "panes")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsDialog))
        dialog = app.screen
        options: SelectionList[str] = dialog.query_one(SelectionList)
        by_name = {
            options.get_option_at_index(i).value: options.get_option_at_index(i)
            for i in range(options.option_count)
        }
        assert by_name["gpt-4.1-mini"].disabled
        assert "OPENAI_API_KEY" in str(by_name["gpt-4.1-mini"].prompt)
        assert not by_name["alpha"].disabled
        await pilot.press("escape")


async def test_the_palette_runs_the_main_screens_commands() -> None:
    from tui.summary_screen import SummaryScreen

    harness = make_harness({"alpha": FakeBackend("alpha", ["はい"])}, scenario="seed-gpt3")
    async with harness.app.run_test(size=(120, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        assert not screen.wait_for_pick
        await pilot.press("ctrl+p")
        await type_text(pilot, "wait for a pick")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.wait_for_pick)
        await pilot.press("ctrl+p")
        await type_text(pilot, "session summary")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(harness.app.screen, SummaryScreen))


async def test_keys_still_work_when_textual_internals_for_fast_painting_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def moved(screen: MainScreen) -> None:
        calls.append("tried")
        raise AttributeError("'MainScreen' object has no attribute '_dirty_widgets'")

    monkeypatch.setattr("tui.main_screen.paint_pending_changes", moved)
    backends = {"alpha": FakeBackend("alpha", ["うん！"]), "beta": FakeBackend("beta", ["へえ"])}
    harness = make_harness(backends, db_path=tmp_path / "k.sqlite3")
    async with harness.app.run_test(size=(100, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in harness.session.panes))
        await type_text(pilot, "やあ")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not harness.session.busy and harness.session.user_turns)
        await pilot.press("tab")
        await settle(pilot)
        assert screen.focused is not screen.prompt
        assert screen.key_paint_deadline == 0.0
    assert calls == ["tried"]  # tried once, then keys are left to Textual's frame timer
    assert harness.session.user_turns == ["やあ"]


async def test_e_in_the_summary_screen_offers_the_export_formats() -> None:
    harness = make_harness({"alpha": FakeBackend("alpha", ["はい"])})
    async with harness.app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        harness.screen.prompt.set_text("やあ")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: not harness.session.busy and bool(harness.session.user_turns)
        )
        from tui.choice_dialog import ChoiceDialog
        from tui.summary_screen import SummaryScreen

        await pilot.press("tab", "s")
        assert isinstance(harness.app.screen, SummaryScreen)
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(harness.app.screen, ChoiceDialog)
