"""The pane's text flow: literal display of control characters and cell-width-aware wrapping."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from tui.textflow import NO_LINE_START, GrowingText, make_visible, wrap_paragraph

SEED_REPLY = (
    "もちろん知ってるよ！「紅蓮華」っていう曲を、LiSAが歌ってるんだよ。めっちゃハマるよね！"
    "Chainsaw Man のオープニングは米津玄師の KICK BACK だよ。"
)


def lines_of(text: str, width: int) -> list[str]:
    return [text[start:end] for start, end in wrap_paragraph(text, width)]


def test_escape_sequences_and_controls_become_visible() -> None:
    shown = make_visible("a\x1b[31mred\x1b[0m\x07\x00b\x9bc\u202eZ")
    assert "\x1b" not in shown and "\x07" not in shown and "\x00" not in shown
    assert shown == "a␛[31mred␛[0m␇␀b<U+009B>c<U+202E>Z"


def test_newlines_kept_tabs_expanded_carriage_returns_shown() -> None:
    assert make_visible("a\r\nb\tc\rd") == "a\nb    c␍d"


def test_markup_is_left_alone() -> None:
    assert (
        make_visible("[bold]太字[/bold] [link=x]y[/link]") == "[bold]太字[/bold] [link=x]y[/link]"
    )


def test_japanese_wraps_by_cells_never_inside_a_wide_character() -> None:
    for width in range(2, 30):
        for line in lines_of(SEED_REPLY, width):
            assert cell_len(line) <= width


def test_odd_width_leaves_one_cell_rather_than_splitting_a_character() -> None:
    assert lines_of("あいうえお", 5) == ["あい", "うえ", "お"]


def test_latin_words_break_at_spaces() -> None:
    assert lines_of("hello world, this is kurabe", 12) == ["hello world,", "this is", "kurabe"]


def test_closing_punctuation_does_not_start_a_line() -> None:
    lines = lines_of("あいうえ。かきくけこ", 8)
    assert lines == ["あいう", "え。かき", "くけこ"]
    for line in lines[1:]:
        assert line[0] not in NO_LINE_START


def test_a_word_longer_than_the_line_is_cut() -> None:
    assert lines_of("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_growing_text_reports_first_changed_line() -> None:
    flow = GrowingText(10)
    assert flow.append("あいうえお") == 0
    assert flow.lines == ["あいうえお"]
    assert flow.append("かき") == 0
    assert flow.lines == ["あいうえお", "かき"]
    assert flow.append("く\n次") == 1
    assert flow.lines == ["あいうえお", "かきく", "次"]


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("あいう。、「」ーabc xyz\nカタ漢字😀!?")), max_size=200
    ),
    width=st.integers(min_value=2, max_value=40),
    cuts=st.lists(st.integers(min_value=1, max_value=7), max_size=60),
)
def test_streaming_in_pieces_wraps_like_the_whole_text(
    text: str, width: int, cuts: list[int]
) -> None:
    flow = GrowingText(width)
    position = 0
    for cut in cuts:
        flow.append(text[position : position + cut])
        position += cut
    flow.append(text[position:])
    whole = GrowingText(width, text)
    assert flow.lines == whole.lines
    assert flow.text == text
    expected = [line for paragraph in text.split("\n") for line in lines_of(paragraph, width)]
    assert flow.lines == expected


def test_rewrap_for_a_new_width() -> None:
    flow = GrowingText(40, SEED_REPLY)
    flow.rewrap(12)
    assert flow.lines == lines_of(SEED_REPLY, 12)
    assert all(cell_len(line) <= 12 for line in flow.lines)


async def test_transcript_view_appends_replaces_and_badges() -> None:
    from textual.app import App, ComposeResult

    from tui.transcript_view import TranscriptView

    class OneView(App[None]):
        def compose(self) -> ComposeResult:
            yield TranscriptView()

    app = OneView()
    async with app.run_test(size=(24, 10)) as pilot:
        view = app.query_one(TranscriptView)
        view.add_user("ねえ、アニメ好きなの？")
        view.start_reply(1, turn=0)
        for piece in ("うん、", "大好き", "だよ！\n\n", "[bold]お気に入り[/]は？", "\x1b[2J"):
            view.append(1, piece)
        await pilot.pause()
        width = view.scrollable_content_region.width
        assert all(cell_len(line) <= width for line in view.plain_lines)
        assert view.reply_text(1) == "うん、大好きだよ！\n\n[bold]お気に入り[/]は？␛[2J"
        view.set_badges(1, [("★4 良い", "transcript--score"), ("#too-long", "transcript--badge")])
        assert any("★4 良い  #too-long" in line for line in view.plain_lines)
        before = view.line_count
        view.replace_reply(1, 2, "短い")
        assert view.line_count < before and not view.has_reply(1) and view.has_reply(2)
        assert "短い" in view.plain_lines and not any("★4" in line for line in view.plain_lines)
