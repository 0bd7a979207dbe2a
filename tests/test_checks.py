"""The Japanese checks against the labelled replies of the seed page, hard cases and held-out cases.

``tests/data/seed_replies.toml`` holds every assistant reply of the seed page's six sections with
the labels a careful reader gives; the checks must agree with them exactly. The helpers at the top
(:func:`load_labelled_set`, :func:`score`, :func:`format_scores`) are also used by
``bench/bench_checks.py`` to print precision and recall per check.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import KurabeError
from kurabe.checks.japanese import (
    canonical_first_person,
    copies_previous,
    find_leaks,
    first_persons,
    japanese_share,
    polite_share,
    repeated_ngram_share,
    run_checks,
    sentence_register,
    split_sentences,
    strip_leaks,
)
from kurabe.checks.report import FLAG_CODES, CheckReport
from kurabe.commands import check as check_command
from personas import Persona

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "seed_replies.toml"
SEED_PAGE = ROOT.parent / "shared" / "seeds" / "003_9f1eb28be6545c69.txt"
SOURCES = ("seed", "hard", "heldout")

KNOWN_MISSES: dict[str, str] = {
    "heldout: a list with an English title on its own line": (
        "register: 好きなアニメはこれ！ drops the copula; a reader hears casual, the ending says "
        "nothing, so the check answers unknown (no flag either way)"
    ),
}
"""Cases where the checks and the labels still disagree, with the reason."""

HELDOUT_FIRST_RUN: dict[str, str] = {
    "heldout: a URL in a Japanese reply": "not-japanese raised: the URL's letters counted",
    "heldout: Llama-3 header": "not-japanese raised: 'assistant' between the header tokens",
    "heldout: a list with an English title on its own line": "register unknown (still missed)",
    "heldout: はい alone": "register casual: はい ends in い",
    "heldout: a persona name with a colon mid-line is no leak": "register casual: さん ends in ん",
    "heldout: long reply cut off": "label error: too-long labelled, but 62 ≤ 80 characters",
}
"""What the first run on the held-out cases got wrong, before the fixes (for the record)."""


@dataclass(frozen=True)
class LabelledCase:
    id: str
    source: str
    persona_id: str
    text: str
    register: str
    flags: frozenset[str]
    previous: str | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None


def load_labelled_set(path: Path = DATA) -> tuple[dict[str, Persona], list[LabelledCase]]:
    """The personas and the labelled cases of the data file, in file order."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    personas = {
        persona_id: Persona(
            id=persona_id,
            title=persona_id,
            system="",
            char_name=fields["char_name"],
            user_name=fields["user_name"],
            language=fields["language"],
            register=fields["register"],
            max_reply_chars=fields["max_reply_chars"],
            first_person=tuple(fields["first_person"]),
        )
        for persona_id, fields in data["personas"].items()
    }
    cases = [
        LabelledCase(
            id=entry["id"],
            source=entry["source"],
            persona_id=entry["persona"],
            text=entry["text"],
            register=entry["register"],
            flags=frozenset(entry["flags"]),
            previous=entry.get("previous"),
            finish_reason=entry.get("finish_reason"),
            completion_tokens=entry.get("completion_tokens"),
        )
        for entry in data["case"]
    ]
    return personas, cases


def predict(case: LabelledCase, personas: dict[str, Persona]) -> CheckReport:
    return run_checks(
        case.text,
        personas[case.persona_id],
        previous_reply=case.previous,
        finish_reason=case.finish_reason,
        completion_tokens=case.completion_tokens,
    )


@dataclass
class CheckScore:
    """Agreement of one flag code with the labels."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        raised = self.true_positives + self.false_positives
        return self.true_positives / raised if raised else None

    @property
    def recall(self) -> float | None:
        labelled = self.true_positives + self.false_negatives
        return self.true_positives / labelled if labelled else None


@dataclass
class Scores:
    cases: int = 0
    register_agreed: int = 0
    register_misses: list[str] = field(default_factory=list)
    flags: dict[str, CheckScore] = field(default_factory=dict)


def score(cases: Iterable[LabelledCase], personas: dict[str, Persona]) -> Scores:
    """Precision and recall per flag code, and register agreement, over ``cases``."""
    scores = Scores(flags={code: CheckScore() for code in FLAG_CODES})
    for case in cases:
        report = predict(case, personas)
        scores.cases += 1
        if report.register == case.register:
            scores.register_agreed += 1
        else:
            scores.register_misses.append(case.id)
        raised = set(report.flag_codes)
        for code, check_score in scores.flags.items():
            if code in raised and code in case.flags:
                check_score.true_positives += 1
            elif code in raised:
                check_score.false_positives += 1
                check_score.misses.append(f"{case.id} (false {code})")
            elif code in case.flags:
                check_score.false_negatives += 1
                check_score.misses.append(f"{case.id} (missed {code})")
    return scores


def format_scores(title: str, scores: Scores) -> str:
    def ratio(value: float | None) -> str:
        return "   -" if value is None else f"{value:4.2f}"

    lines = [
        f"{title}: {scores.cases} replies; register agrees on "
        f"{scores.register_agreed}/{scores.cases}",
        f"  {'check':<18} {'labelled':>8} {'raised':>6} {'precision':>9} {'recall':>6}",
    ]
    for code, s in scores.flags.items():
        labelled = s.true_positives + s.false_negatives
        raised = s.true_positives + s.false_positives
        lines.append(
            f"  {code:<18} {labelled:>8} {raised:>6} {ratio(s.precision):>9} {ratio(s.recall):>6}"
        )
    for case_id in scores.register_misses:
        lines.append(f"  register miss: {case_id}")
    for s in scores.flags.values():
        lines.extend(f"  flag miss: {miss}" for miss in s.misses)
    return "\n".join(lines)


PERSONAS, CASES = load_labelled_set()


def case_params() -> Iterator[Any]:
    for case in CASES:
        marks = []
        if case.id in KNOWN_MISSES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[case.id]))
        yield pytest.param(case, id=case.id, marks=marks)


# --- the labelled set --------------------------------------------------------------------------


def test_labelled_set_holds_every_reply_of_the_seed_page() -> None:
    sections: dict[str, int] = {}
    for case in CASES:
        if case.source == "seed":
            section = case.id.rsplit(" #", 1)[0]
            sections[section] = sections.get(section, 0) + 1
    assert sections == {
        "GPT-4": 4,
        "GPT-3": 7,
        "Claude": 4,
        "Claude Try 2": 9,
        "ELYZA": 8,
        "weblab-10b": 13,
    }
    assert {case.source for case in CASES} == set(SOURCES)
    assert len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        assert case.persona_id in PERSONAS
        assert case.flags <= set(FLAG_CODES), case.id
        assert case.register in ("casual", "polite", "mixed", "unknown"), case.id
    assert set(KNOWN_MISSES) <= {case.id for case in CASES}
    assert set(HELDOUT_FIRST_RUN) <= {case.id for case in CASES if case.source == "heldout"}


@pytest.mark.skipif(not SEED_PAGE.exists(), reason="the seed page is not beside this checkout")
def test_seed_replies_are_verbatim() -> None:
    page = SEED_PAGE.read_text(encoding="utf-8")
    for case in CASES:
        if case.source == "seed":
            assert case.text in page, case.id
            if case.previous is not None:
                assert case.previous in page, case.id


def test_anime_fan_expectations_match_the_bundled_persona() -> None:
    """The labels assume the bundled anime-fan persona's limits; they must not drift apart."""
    from personas.loader import load_personas

    bundled = load_personas().get("anime-fan")
    labelled = PERSONAS["anime-fan"]
    assert bundled.register == labelled.register
    assert bundled.max_reply_chars == labelled.max_reply_chars
    assert bundled.char_name == labelled.char_name
    assert bundled.user_name == labelled.user_name
    assert bundled.language == labelled.language
    assert {canonical_first_person(p) for p in bundled.first_person} == {
        canonical_first_person(p) for p in labelled.first_person
    }


@pytest.mark.parametrize("case", case_params())
def test_checks_agree_with_the_label(case: LabelledCase) -> None:
    report = predict(case, PERSONAS)
    assert (set(report.flag_codes), report.register) == (set(case.flags), case.register)


def test_precision_and_recall_are_perfect_on_seed_and_hard_cases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for source in SOURCES:
        scores = score((c for c in CASES if c.source == source), PERSONAS)
        with capsys.disabled():
            print("\n" + format_scores(source, scores))
        if source == "heldout":
            assert scores.register_misses == list(KNOWN_MISSES)
        else:
            assert scores.register_misses == []
        for code, check_score in scores.flags.items():
            assert check_score.misses == [], code
    seed = score((c for c in CASES if c.source == "seed"), PERSONAS)
    # Every failure the seed page shows is in the seed set, so its figures are not vacuous.
    supported = {code for code, s in seed.flags.items() if s.true_positives}
    assert supported == {"empty", "template-leak", "out-of-character", "wrong-register", "too-long"}


def test_score_counts_false_positives_and_misses() -> None:
    personas = {"p": Persona(id="p", title="p", system="", register="casual", max_reply_chars=5)}
    cases = [
        LabelledCase("long", "hard", "p", "うん、そうだよ！", "casual", frozenset()),
        LabelledCase("ok", "hard", "p", "うん", "casual", frozenset({"too-long"})),
        LabelledCase("hit", "hard", "p", "そうなんだよね", "polite", frozenset({"too-long"})),
    ]
    scores = score(cases, personas)
    too_long = scores.flags["too-long"]
    assert (too_long.true_positives, too_long.false_positives, too_long.false_negatives) == (
        1,
        1,
        1,
    )
    assert too_long.precision == 0.5 and too_long.recall == 0.5
    assert scores.register_misses == ["hit"]
    assert scores.flags["empty"].precision is None


# --- single checks -----------------------------------------------------------------------------

ANIME_FAN = Persona(
    id="anime-fan",
    title="anime fan",
    system="",
    char_name="オタク",
    user_name="ユーザー",
    register="casual",
    max_reply_chars=10,
    first_person=("私", "僕", "あたし"),
)


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("そうですよね", "polite"),
        ("そうだよね", "casual"),
        ("大切でしたよね。", "polite"),
        ("知ってるよ！", "casual"),
        ("よろしくお願いいたします。", "polite"),
        ("失礼します", "polite"),
        ("ございますか？", "polite"),
        ("トトロ最高じゃん！", "casual"),
        ("絶対ジブリでしょ？", "casual"),
        ("ジブリの作品でしょう。", "polite"),
        ("楽しみだな！", "casual"),
        ("面白いってｗ", "casual"),
        ("そうなんですね〜♪", "polite"),
        ("さようなら", None),
        ("了解！", None),
        ("はい！", None),
        ("花澤香菜さん！", None),
        ("〓", None),
    ],
)
def test_sentence_register(sentence: str, expected: str | None) -> None:
    assert sentence_register(sentence) == expected


def test_polite_share_ignores_quoted_text() -> None:
    share, classified = polite_share("「よろしくお願いします」って歌詞、いいよね。")
    assert (share, classified) == (0.0, 1)
    share, classified = polite_share("はい、そうです。うん、そうだよ。")
    assert (share, classified) == (0.5, 2)
    assert polite_share("了解！") == (None, 0)


def test_split_sentences() -> None:
    assert split_sentences("うん！そうだよ。\n\nまたね…名前だけはｗ 一度観よう") == [
        "うん！",
        "そうだよ。",
        "またね",
        "名前だけはｗ",
        "一度観よう",
    ]
    assert split_sentences("Chainsaw Manは最高！") == ["Chainsaw Manは最高！"]
    assert split_sentences("……！？") == []


def test_japanese_share() -> None:
    assert japanese_share("うん、大好きだよ！") == 1.0
    assert japanese_share("Yeah, I love anime!") == 0.0
    assert japanese_share("我也很喜欢动漫") == 0.0
    assert japanese_share("１２３！") == 1.0
    assert japanese_share("!!!") is None
    half = japanese_share("いいね。This is a really great anime.")
    assert half is not None and 0.1 < half < 0.3


def test_leaks_are_normalised_and_only_markers_are_stripped() -> None:
    text = "オタク：うん！\n### 指示:\n<|im_start|>user\nねえ\n**ユーザー:** 何？\nASSISTANT"
    assert find_leaks(text, ("オタク", "ユーザー")) == (
        "オタク:",
        "### 指示",
        "<|im_start|>",
        "ユーザー:",
        "ASSISTANT",
    )
    assert find_leaks(text) == ("### 指示", "<|im_start|>", "ユーザー:", "ASSISTANT")
    stripped = strip_leaks(text, ("オタク", "ユーザー"))
    assert "うん！" in stripped and "ねえ" in stripped and "何？" in stripped
    assert "###" not in stripped and "im_start" not in stripped and "ASSISTANT" not in stripped
    assert find_leaks("オタク同士で語ろうよ！", ("オタク",)) == ()


def test_repetition_measures() -> None:
    assert repeated_ngram_share("そうだね") == 0.0
    twice = repeated_ngram_share("ネコバスに乗りたいな。ネコバスに乗りたいな。")
    assert twice == pytest.approx(0.5)
    assert copies_previous("うん、大好きだよ！", "うん、 大好きだよ!")
    assert not copies_previous("", "")
    assert not copies_previous("そうなんだ！", "そうだよ！")


def test_first_persons_are_canonical_and_skip_quotes() -> None:
    assert first_persons("ボクもオレもわたしも。") == ("僕", "俺", "私")
    assert first_persons("「俺は海賊王になる」って言ってた") == ()
    assert first_persons("私立の公私混同") == ()
    assert canonical_first_person("わたくし") == "私"


def test_too_long_counts_characters_other_than_whitespace() -> None:
    assert "too-long" not in run_checks("うん、好きだよ。あれ", ANIME_FAN).flag_codes  # 10 chars
    assert "too-long" not in run_checks("うん、好きだよ。\n\n あれ ", ANIME_FAN).flag_codes
    report = run_checks("うん、好きだよ。あれも", ANIME_FAN)
    assert report.chars == 11
    too_long = [flag for flag in report.flags if flag.code == "too-long"]
    assert too_long[0].label == "長い too long 11/10"


def test_chars_per_token() -> None:
    assert run_checks("うん、好き", completion_tokens=2).chars_per_token == 2.5
    assert run_checks("うん、好き", completion_tokens=0).chars_per_token is None
    assert run_checks("うん、好き").chars_per_token is None


def test_without_a_persona_only_persona_free_checks_flag() -> None:
    report = run_checks("はい、そうでございます。俺はAIとして答えます。\nUSER: 何ですか")
    assert report.flag_codes == ("template-leak", "out-of-character")
    assert report.persona_breaks == ("AIとして",)
    assert report.register == "polite"
    assert run_checks("I love it. It is great.").flag_codes == ("not-japanese",)


def test_persona_settings_switch_checks_off() -> None:
    english = Persona(id="en", title="en", system="", language="en")
    assert run_checks("I love it. It is great.", english).flag_codes == ()
    any_register = Persona(id="any", title="any", system="", register="any")
    assert run_checks("はい、そうです。", any_register).flag_codes == ()


def test_flags_come_in_flag_code_order_with_labels() -> None:
    report = run_checks(
        "オタク: はい、そうです。ありがとうございます。",
        ANIME_FAN,
        previous_reply="オタク: はい、そうです。ありがとうございます。",
        finish_reason="length",
    )
    assert report.flag_codes == (
        "cut-off",
        "template-leak",
        "wrong-register",
        "too-long",
        "repeats-previous",
    )
    assert list(report.flag_codes) == [c for c in FLAG_CODES if c in report.flag_codes]
    labels = {flag.code: flag.label for flag in report.flags}
    assert labels["wrong-register"] == "丁寧語 polite 100%"
    assert labels["template-leak"] == "漏れ leak オタク:"
    polite_persona = Persona(id="p", title="p", system="", register="polite")
    casual = run_checks("うん、いいよ！行こう。", polite_persona)
    assert casual.flags[0].label == "タメ口 casual 100%"


def test_report_round_trips_through_json() -> None:
    report = run_checks(
        "オレはAIとして答えるよ。\n### 指示:",
        ANIME_FAN,
        previous_reply="うん",
        completion_tokens=7,
    )
    data = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert list(data) == [
        "version",
        "japanese_share",
        "polite_share",
        "register",
        "chars",
        "sentences",
        "chars_per_token",
        "leaks",
        "repeated_ngram_share",
        "repeats_previous",
        "persona_breaks",
        "flags",
    ]
    assert data["flags"][0] == {
        "code": "template-leak",
        "label": "漏れ leak ### 指示",
        "detail": "Prompt-format markers or role labels in the reply: ### 指示",
    }
    assert CheckReport.from_dict(data) == report
    assert CheckReport.from_dict({}).register == "unknown"


def test_empty_reply_reports_nothing_else() -> None:
    report = run_checks("\n### 指示:", ANIME_FAN, previous_reply="\n### 指示:")
    assert report.flag_codes == ("empty", "template-leak")
    assert (report.japanese_share, report.polite_share, report.sentences) == (None, None, 0)
    assert not report.repeats_previous


# --- kurabe check ------------------------------------------------------------------------------


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="kurabe")
    parser.add_argument("--persona")
    check_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = args.func(args)
    return code, out.getvalue()


def test_cli_json(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_cli(["check", "Yeah, I love anime!", "--json", "--tokens", "5"], monkeypatch)
    assert code == 0
    data = json.loads(out)
    assert [flag["code"] for flag in data["flags"]] == ["not-japanese"]
    assert data["chars_per_token"] == pytest.approx(19 / 5)


def test_cli_plain_lines_and_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_cli(["check", "-", "--previous", "うん！"], monkeypatch, stdin="うん！")
    assert code == 0
    lines = out.splitlines()
    assert "persona: -" in lines
    assert "repeats_previous: yes" in lines
    assert (
        "flag: repeats-previous\t前と同じ repeats previous\t"
        + ("The reply mostly repeats the pane's previous reply.")
        in lines
    )
    code, out = run_cli(["check", "うん、好きだよ"], monkeypatch)
    assert "flags: none" in out.splitlines()


def test_cli_persona_from_the_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_cli(
        ["check", "俺はアニメが大好きだぜ！", "--persona", "anime-fan"], monkeypatch
    )
    assert code == 0
    assert (
        "flag: out-of-character\tキャラ崩れ OOC 一人称 俺\tSteps out of character: 一人称 俺"
        in (out.splitlines())
    )
    assert "persona: anime-fan" in out.splitlines()
    # The top-level --persona works too.
    code, out = run_cli(["--persona", "anime-fan", "check", "はい、そうです。"], monkeypatch)
    assert code == 0
    assert "wrong-register" in out
    with pytest.raises(KurabeError, match="unknown persona"):
        run_cli(["check", "うん", "--persona", "no-such-persona"], monkeypatch)


def test_cli_uses_the_loader_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class FakeCatalog:
        def get(self, persona_id: str) -> Persona:
            calls.append(persona_id)
            return ANIME_FAN

    fake = types.ModuleType("personas.loader")
    fake.load_personas = lambda extra_paths=(): FakeCatalog()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "personas.loader", fake)
    code, out = run_cli(["check", "うん、好きだよ！あれもこれも", "--persona", "x"], monkeypatch)
    assert code == 0
    assert calls == ["x"]
    assert "too-long" in out
